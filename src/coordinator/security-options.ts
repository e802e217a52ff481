// Security options of the coordinator: TLS files, bearer tokens, and the explicit opt-out that
// lets it serve a non-loopback address without them.

import type { ServerTlsFiles } from '../common/tls.js';

/** How the coordinator authenticates its connections and callers. */
export interface CoordinatorSecurityOptions {
  /**
   * Serve TLS with these files (reloaded by `reloadCertificates()`, SIGHUP in the CLI). With
   * `caFile`, clients must present a certificate signed by it, and its SAN URI is their identity.
   */
  readonly tls?: ServerTlsFiles;
  /** A tokens file (`verdict://<role>/<name> <token>` per line): bearer tokens as identities. */
  readonly tokensFile?: string;
  /**
   * Allow serving a non-loopback address without TLS and client authentication (certificates or
   * tokens). Off by default: such a start fails with INVALID_ARGUMENT.
   */
  readonly insecure?: boolean;
}
