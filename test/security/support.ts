// Test support for the security tests: a throwaway PKI, and storage seams that keep a handle on
// the opened log so that a test can snapshot every key and value and show a refusal wrote nothing.

import { join } from 'node:path';
import { VerdictError } from '../../src/errors.js';
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { openLevel, type LogStorage } from '../../src/common/level-errors.js';
import type { CertificatePaths } from '../../src/common/dev-certs.js';
import type { ClientTlsOptions } from '../../src/common/tls.js';

/** A LevelDB log whose contents a test can read while it is open. */
export class TappedStorage implements LogStorage {
  readonly location: string;
  #db: Awaited<ReturnType<typeof openLevel>> | undefined;

  constructor(dir: string) {
    this.location = dir;
  }

  async open(what: string): ReturnType<typeof openLevel> {
    this.#db = await openLevel(this.location, what);
    return this.#db;
  }

  /** Every key and value, values in hex. */
  async snapshot(): Promise<Record<string, string>> {
    const db = this.#db as unknown as { iterator(): AsyncIterable<[string, Uint8Array]> } | undefined;
    if (!db) throw new Error(`${this.location} is not open`);
    const out: Record<string, string> = {};
    for await (const [k, v] of db.iterator()) out[k] = Buffer.from(v).toString('hex');
    return out;
  }
}

/** Client TLS options from a CA and, optionally, a client certificate. */
export function clientTls(ca: CertificatePaths, identity?: CertificatePaths): ClientTlsOptions {
  return {
    ca: readFileSync(ca.cert),
    ...(identity ? { cert: readFileSync(identity.cert), key: readFileSync(identity.key) } : {}),
  };
}

/** `dir/name`. */
export const under = (dir: string, name: string): string => join(dir, name);

/** The error code a call rejected with, or `resolved`; anything but a VerdictError is rethrown. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof VerdictError) return e.code;
    throw e;
  }
  return 'resolved';
}

/**
 * The serial number of the certificate the server at `address` presents to a new TLS connection
 * (ALPN h2, as gRPC dials, for the name `localhost`). With `ca`, the certificate must verify
 * against it; without, it is read unverified.
 */
export function servedSerial(address: string, ca?: Buffer): Promise<string> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const trust = ca ? { ca } : { rejectUnauthorized: false };
    const socket = connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)), ALPNProtocols: ['h2'], servername: 'localhost', ...trust });
    socket.once('secureConnect', () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.once('error', reject);
  });
}
