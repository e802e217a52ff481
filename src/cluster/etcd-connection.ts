// How a coordinator group member reaches etcd: the endpoints (`host:port`, or with an explicit
// `http://` or `https://`), TLS with the CA that signed etcd's certificates and a client
// certificate (etcd's `--client-cert-auth`), and etcd's own user/password authentication. Files are
// read and checked before anything connects, and etcd in plaintext off loopback is refused unless
// the member is told `insecure`, as a coordinator refuses to serve such an address.

import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { IOptions } from 'etcd3';
import { isLoopbackHost } from '../common/tls.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { parseEtcdEndpoint } from './group-member-options.js';

/** TLS to etcd, as files (read once, when the member starts). */
export interface EtcdTlsFiles {
  /** The CA that signed etcd's server certificates (PEM); without it, the system's CAs. */
  readonly caFile?: string;
  /** This member's client certificate (PEM), for etcd's `--client-cert-auth`; with `keyFile`. */
  readonly certFile?: string;
  /** The private key of `certFile` (PEM). */
  readonly keyFile?: string;
}

/** etcd's user/password authentication (etcd's `auth enable`). */
export interface EtcdCredentials {
  readonly username: string;
  /** Never logged; pass it from a file or the environment, never a command line. */
  readonly password: string;
}

/** Everything that says how to reach etcd. */
export interface EtcdConnectionOptions {
  /** Endpoints: `host:port` (TLS when `tls` is given), `http://host:port` or `https://host:port`. */
  readonly etcd: readonly string[];
  /** TLS to etcd; implied (with the system's CAs) by `https://` endpoints. */
  readonly tls?: EtcdTlsFiles;
  /** etcd's user/password authentication. */
  readonly auth?: EtcdCredentials;
  /** Allow plaintext etcd endpoints off loopback. */
  readonly insecure?: boolean;
}

/** The first line of an error's message (grpc-js appends a dated "resolution note" on later lines). */
export function firstLine(message: string): string {
  return message.split('\n')[0]?.trim() ?? '';
}

function bad(message: string): never {
  throw new VerdictError(ErrorCode.INVALID_ARGUMENT, message);
}

/** Reads and checks the TLS files; errors name the file and what is wrong, never a key. */
function readTls(tls: EtcdTlsFiles): { rootCertificate: Buffer | undefined; certChain: Buffer | undefined; privateKey: Buffer | undefined } {
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) bad('the etcd client certificate and its key go together (--etcd-cert, --etcd-key)');
  if (tls.certFile !== undefined && tls.caFile === undefined) bad("an etcd client certificate needs the CA that signed etcd's certificates (--etcd-ca)");
  const read = (file: string | undefined): Buffer | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (e) {
      return bad(`cannot read the etcd TLS file ${file}: ${(e as Error).message}`);
    }
  };
  const out = { rootCertificate: read(tls.caFile), certChain: read(tls.certFile), privateKey: read(tls.keyFile) };
  try {
    // Throws when the key does not match the certificate, or a file is not PEM.
    createSecureContext({ ...(out.rootCertificate ? { ca: out.rootCertificate } : {}), ...(out.certChain ? { cert: out.certChain, key: out.privateKey } : {}) });
  } catch (e) {
    bad(`unusable etcd TLS files (${[tls.caFile, tls.certFile, tls.keyFile].filter((f) => f !== undefined).join(', ')}): ${(e as Error).message}`);
  }
  return out;
}

/**
 * The `etcd3` client options for `options`: `https://` hosts and the TLS credentials when TLS is
 * on, and etcd's user/password. Throws INVALID_ARGUMENT for a malformed endpoint, mixed schemes,
 * TLS files with `http://` endpoints, unreadable or mismatched files, and plaintext off loopback
 * without `insecure`.
 */
export function etcdClientOptions(options: EtcdConnectionOptions): IOptions {
  if (options.etcd.length === 0) bad('at least one etcd endpoint is needed');
  const endpoints = options.etcd.map((e) => parseEtcdEndpoint(e) ?? bad(`etcd endpoint ${JSON.stringify(e)} is not host:port, http://host:port or https://host:port`));
  const schemes = new Set(endpoints.flatMap((e) => (e.scheme ? [e.scheme] : [])));
  if (schemes.size > 1) bad('etcd endpoints mix http:// and https://');
  if (schemes.has('http') && options.tls) bad('etcd TLS files (--etcd-ca, --etcd-cert, --etcd-key) given with http:// endpoints: use https:// or host:port');
  const tls = options.tls !== undefined || schemes.has('https');
  if (!tls && !options.insecure) {
    const remote = endpoints.find((e) => !isLoopbackHost(e.hostPort.slice(0, e.hostPort.lastIndexOf(':'))));
    if (remote) bad(`refusing to reach etcd at ${remote.hostPort} without TLS: give --etcd-ca (and --etcd-cert, --etcd-key), use https:// endpoints, or pass --insecure`);
  }
  if (options.auth) {
    if (options.auth.username === '') bad('the etcd user name is empty');
    if (options.auth.password === '') bad(`the etcd password of user ${options.auth.username} is empty`);
  }
  const files = options.tls ? readTls(options.tls) : undefined;
  return {
    hosts: endpoints.map((e) => `${tls ? 'https' : 'http'}://${e.hostPort}`),
    ...(files?.rootCertificate
      ? { credentials: { rootCertificate: files.rootCertificate, ...(files.certChain && files.privateKey ? { certChain: files.certChain, privateKey: files.privateKey } : {}) } }
      : {}),
    ...(options.auth ? { auth: { username: options.auth.username, password: options.auth.password } } : {}),
  };
}
