// Builds a coordinator's security from its options before anything is opened: the server
// credentials, the authorizer, and the refusal to serve a non-loopback address in the clear.

import { ServerCredentials } from '@grpc/grpc-js';
import { isLoopbackHost, ServerCertificates } from '../common/tls.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { Authorizer } from './authorization.js';
import type { CoordinatorSecurityOptions } from './security-options.js';
import { TokenStore } from './token-store.js';

/** A coordinator's security, ready to use. */
export interface CoordinatorSecurity {
  readonly authorizer: Authorizer;
  /** The reloadable certificate files, with TLS. */
  readonly certificates: ServerCertificates | undefined;
  readonly credentials: ServerCredentials;
}

/**
 * Reads the TLS files and the tokens, and refuses (INVALID_ARGUMENT) to serve `listen` off
 * loopback without TLS plus client authentication, unless `insecure`.
 */
export function coordinatorSecurity(listen: string, options: CoordinatorSecurityOptions): CoordinatorSecurity {
  const certificates = options.tls ? new ServerCertificates(options.tls) : undefined;
  const tokens = options.tokensFile === undefined ? undefined : TokenStore.fromFile(options.tokensFile);
  const clientAuth = certificates?.requiresClientCertificates === true || tokens !== undefined;
  const host = listen.slice(0, listen.lastIndexOf(':'));
  if (!isLoopbackHost(host) && !(certificates && clientAuth) && !options.insecure) {
    throw new VerdictError(
      ErrorCode.INVALID_ARGUMENT,
      `refusing to serve ${listen} without TLS and client authentication: give --tls-cert, --tls-key and --tls-ca (or --tokens), listen on 127.0.0.1, or pass --insecure`,
    );
  }
  return {
    authorizer: new Authorizer({ required: certificates?.requiresClientCertificates === true, tokens }),
    certificates,
    // With tokens too, a client without a certificate must get through the handshake to show its token.
    credentials: certificates ? certificates.credentials(tokens === undefined) : ServerCredentials.createInsecure(),
  };
}

/**
 * The same certificates, tokens and credentials with a fresh authorizer (a new capability key): a
 * coordinator group member builds its security once, for its port and its SIGHUP reloads, and
 * gives each term's coordinator a renewed copy, so that no capability outlives its term.
 */
export function renewedSecurity(security: CoordinatorSecurity): CoordinatorSecurity {
  return { ...security, authorizer: security.authorizer.renewed() };
}
