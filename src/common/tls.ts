// TLS for every Verdict connection: the credentials a client (initiator or participant) dials
// with, and the coordinator's server credentials, whose certificate, key and CA are read from
// files and read again on `reload()` (SIGHUP in the CLI). A reload changes what new handshakes
// present and accept; connections already open keep the keys they agreed on, so live sessions
// are not dropped.

import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { credentials, experimental, InterceptingCall, type ChannelCredentials, type ClientOptions, type Interceptor, type ServerCredentials } from '@grpc/grpc-js';
import { ErrorCode, VerdictError } from '../errors.js';

/** PEM text or bytes. */
export type Pem = string | Uint8Array;

/**
 * TLS of a client (`VerdictClient`, `Participant`): the CA that signed the coordinator's
 * certificate, and this client's own certificate and key when the coordinator requires one.
 */
export interface ClientTlsOptions {
  readonly ca: Pem;
  readonly cert?: Pem;
  readonly key?: Pem;
}

/** How a client proves who it is: TLS (with a client certificate) and/or a bearer token. */
export interface ClientSecurityOptions {
  /** Dial TLS; without it the connection is plaintext (loopback development only). */
  readonly tls?: ClientTlsOptions;
  /** A bearer token from the coordinator's tokens file, sent as `authorization: Bearer …` on every call. */
  readonly token?: string;
}

/** TLS of the coordinator, as files (so that they can be reloaded). */
export interface ServerTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** With a CA, every client must present a certificate it signed. */
  readonly caFile?: string;
}

/** PEM text or bytes as a Buffer (what Node's TLS and grpc-js take). */
export const toBuffer = (pem: Pem): Buffer => (typeof pem === 'string' ? Buffer.from(pem, 'utf8') : Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength));

/** What a client dials with: plaintext without `tls`. */
export function channelCredentials(tls: ClientTlsOptions | undefined): ChannelCredentials {
  if (!tls) return credentials.createInsecure();
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, 'tls.cert and tls.key go together: give both or neither');
  }
  return credentials.createSsl(toBuffer(tls.ca), tls.key === undefined ? null : toBuffer(tls.key), tls.cert === undefined ? null : toBuffer(tls.cert));
}

/** Credentials and client options (the token interceptor) for a gRPC client with `security`. */
export function clientChannel(security: ClientSecurityOptions): { credentials: ChannelCredentials; options: Partial<ClientOptions> } {
  const creds = channelCredentials(security.tls);
  const token = security.token;
  if (token === undefined) return { credentials: creds, options: {} };
  if (!/^[!-~]+$/.test(token)) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, 'the token must be printable ASCII without spaces');
  const header = `Bearer ${token}`;
  const withToken: Interceptor = (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set('authorization', header);
        next(metadata, listener);
      },
    });
  return { credentials: creds, options: { interceptors: [withToken] } };
}

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

interface Loaded {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer | undefined;
}

/**
 * The coordinator's certificate files, as a grpc-js certificate provider. `reload()` reads them
 * again and, only if the new key matches the new certificate, hands them to the server;
 * otherwise it throws and the server keeps what it had.
 */
export class ServerCertificates implements experimental.CertificateProvider {
  readonly #files: ServerTlsFiles;
  readonly #caListeners = new Set<CaListener>();
  readonly #identityListeners = new Set<IdentityListener>();
  #loaded: Loaded;
  #reloads = 0;

  constructor(files: ServerTlsFiles) {
    this.#files = files;
    this.#loaded = this.#read();
  }

  /**
   * Server credentials over these files. With a CA, clients are asked for a certificate; when
   * `requireClientCertificate`, the handshake fails without a valid one. Otherwise (bearer tokens
   * accepted too) the handshake completes and a missing or invalid certificate simply carries no
   * identity, which the authorizer refuses at the first call.
   */
  credentials(requireClientCertificate = true): ServerCredentials {
    const ca = this.#files.caFile !== undefined ? this : null;
    return experimental.createCertificateProviderServerCredentials(this, ca, ca !== null && requireClientCertificate);
  }

  /** Whether clients must present a certificate. */
  get requiresClientCertificates(): boolean {
    return this.#files.caFile !== undefined;
  }

  /** How many reloads took effect. */
  get reloads(): number {
    return this.#reloads;
  }

  /** Reads the files again and applies them to new connections; throws (keeping the old ones) when they are unusable. */
  reload(): void {
    this.#loaded = this.#read();
    this.#reloads++;
    for (const l of this.#identityListeners) l({ certificate: this.#loaded.cert, privateKey: this.#loaded.key });
    const ca = this.#loaded.ca;
    if (ca) for (const l of this.#caListeners) l({ caCertificate: ca });
  }

  #read(): Loaded {
    const { certFile, keyFile, caFile } = this.#files;
    let loaded: Loaded;
    try {
      loaded = { cert: readFileSync(certFile), key: readFileSync(keyFile), ca: caFile === undefined ? undefined : readFileSync(caFile) };
    } catch (e) {
      throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `cannot read the TLS files: ${(e as Error).message}`, { cause: e });
    }
    try {
      // Throws when the key does not match the certificate, or a file is not PEM.
      createSecureContext({ cert: loaded.cert, key: loaded.key, ...(loaded.ca ? { ca: loaded.ca } : {}) });
    } catch (e) {
      throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `unusable TLS files (${certFile}, ${keyFile}${caFile ? `, ${caFile}` : ''}): ${(e as Error).message}`, { cause: e });
    }
    return loaded;
  }

  // grpc-js adds its listeners before the watcher that applies them: answer on the next
  // microtask, or the first update would reach nobody and every connection would be dropped.
  addCaCertificateListener(listener: CaListener): void {
    this.#caListeners.add(listener);
    queueMicrotask(() => {
      if (this.#caListeners.has(listener) && this.#loaded.ca) listener({ caCertificate: this.#loaded.ca });
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.#caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.#identityListeners.has(listener)) listener({ certificate: this.#loaded.cert, privateKey: this.#loaded.key });
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.delete(listener);
  }
}

/** Whether `host` (from `host:port`) is a loopback address or `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h === 'localhost' || h === '::1') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
