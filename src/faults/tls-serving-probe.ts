// Finds out from outside how a gRPC server serves TLS, as its clients dial it: one handshake
// presents a client certificate and must be accepted by a server whose certificate the CA vouches
// for and which names the address dialled; another presents none and must be refused. Chaos group
// runs ask it of every member, through the member's proxy, to say that every member served mutual TLS.

import { connect, type ConnectionOptions } from 'node:tls';
import { toBuffer, type ClientTlsOptions } from '../common/tls.js';

/** How long one handshake (and the server's first HTTP/2 frame after it) may take, in ms. */
export const TLS_PROBE_TIMEOUT_MS = 5_000;

/** How a server served TLS to the probe. */
export const TlsServing = {
  /** A client certificate was required: accepted with one, refused without. */
  MUTUAL: 'mutual',
  /** Accepted with a client certificate and without one. */
  CERTIFICATE_OPTIONAL: 'certificate-optional',
  /** Not even the handshake with a client certificate was accepted (unreachable, plaintext, a certificate that does not name the address, …). */
  FAILED: 'failed',
} as const;
/** How a server served TLS to the probe. */
export type TlsServing = (typeof TlsServing)[keyof typeof TlsServing];

/** What the probe of one address found. */
export interface TlsServingProbe {
  readonly serving: TlsServing;
  /** Why a handshake that should have been accepted was not, or why it counts as failed. */
  readonly detail?: string;
}

/** One handshake: accepted once the server sent its first bytes (HTTP/2's SETTINGS), or refused with a reason. */
type Attempt = { readonly accepted: true } | { readonly accepted: false; readonly reason: string };

/**
 * Dials `address` (`host:port`) twice with `tls`'s CA: presenting its client certificate, then
 * presenting none. Never throws.
 */
export async function probeTlsServing(address: string, tls: ClientTlsOptions, timeoutMs = TLS_PROBE_TIMEOUT_MS): Promise<TlsServingProbe> {
  if (tls.cert === undefined || tls.key === undefined) return { serving: TlsServing.FAILED, detail: 'the probe needs a client certificate and its key' };
  const ca = toBuffer(tls.ca);
  const withCertificate = await handshake(address, { ca, cert: toBuffer(tls.cert), key: toBuffer(tls.key) }, timeoutMs);
  if (!withCertificate.accepted) return { serving: TlsServing.FAILED, detail: `with a client certificate: ${withCertificate.reason}` };
  const without = await handshake(address, { ca }, timeoutMs);
  return without.accepted ? { serving: TlsServing.CERTIFICATE_OPTIONAL, detail: 'a handshake without a client certificate was accepted' } : { serving: TlsServing.MUTUAL };
}

/**
 * A TLS connection to `address` as gRPC makes one (ALPN h2, the server's certificate checked
 * against the CA and the host dialled). In TLS 1.3 the client's handshake completes before the
 * server has judged the client's certificate, so acceptance is the server's first HTTP/2 frame
 * and refusal its alert (or the connection closing) instead.
 */
function handshake(address: string, tls: Pick<ConnectionOptions, 'ca' | 'cert' | 'key'>, timeoutMs: number): Promise<Attempt> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  const port = Number(address.slice(colon + 1));
  return new Promise((resolve) => {
    let done = false;
    const socket = connect({ host, port, ALPNProtocols: ['h2'], ...tls });
    const finish = (attempt: Attempt): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(attempt);
    };
    const timer = setTimeout(() => finish({ accepted: false, reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.once('data', () => finish({ accepted: true }));
    socket.once('error', (e: NodeJS.ErrnoException) => finish({ accepted: false, reason: e.code ?? e.message }));
    socket.once('close', () => finish({ accepted: false, reason: 'the server closed the connection' }));
  });
}
