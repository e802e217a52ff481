// Throwaway TLS for the runs that start their own coordinator (`verdict demo`, `chaos` and `bench`
// with `--tls`, crash runs, and the `verdict/testing` harness with `tls: true`): a development CA
// and certificates (see dev-certs.ts) in a fresh directory, mutual TLS at every end. Child
// processes get the directory and read their own files from it (`clientTlsFromDir`).

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateBaseName, createDevPki, type DevPki } from './dev-certs.js';
import type { IdentityRole } from './identity.js';
import type { ClientSecurityOptions, ClientTlsOptions, ServerTlsFiles } from './tls.js';

/** A development PKI for one run, with what each end needs to use it. */
export interface ThrowawayTls {
  /** The directory of every certificate and key (`ca.pem`, `coordinator.pem`, `participant-<name>.pem`, …). */
  readonly dir: string;
  /** The coordinator's files: its certificate for 127.0.0.1 and localhost, its key, and the CA its clients must be signed by. */
  readonly serverFiles: ServerTlsFiles & { readonly caFile: string };
  /** The `verdict coordinator` flags that serve these files (client certificates required). */
  readonly coordinatorArgs: readonly string[];
  /** Issues (once) the certificate of `role`/`name`. */
  issue(role: IdentityRole, name: string): Promise<void>;
  /** Issues (once) and reads the TLS options of a client with the identity `role`/`name`. */
  client(role: IdentityRole, name: string): Promise<ClientSecurityOptions>;
  /** Deletes the directory when `createThrowawayTls` made it (idempotent). */
  remove(): Promise<void>;
}

/**
 * Makes a CA and a coordinator certificate in `dir` (default: a fresh directory under the system's
 * temp directory, deleted by `remove()`). Needs the `openssl` command.
 */
export async function createThrowawayTls(dir?: string): Promise<ThrowawayTls> {
  const own = dir === undefined;
  const where = dir ?? (await mkdtemp(join(tmpdir(), 'verdict-tls-')));
  let pki: DevPki;
  try {
    pki = await createDevPki(where);
  } catch (e) {
    if (own) await rm(where, { recursive: true, force: true });
    throw e;
  }
  const serverFiles = serverTlsFilesIn(where);
  let removed = false;
  return {
    dir: where,
    serverFiles,
    coordinatorArgs: ['--tls-cert', serverFiles.certFile, '--tls-key', serverFiles.keyFile, '--tls-ca', serverFiles.caFile],
    async issue(role, name) {
      await pki.identity(role, name);
    },
    async client(role, name) {
      await pki.identity(role, name);
      return { tls: clientTlsFromDir(where, role, name) };
    },
    async remove() {
      if (!own || removed) return;
      removed = true;
      await rm(where, { recursive: true, force: true });
    },
  };
}

/**
 * The client TLS options of `role`/`name` read from a throwaway PKI's directory, whose
 * certificate must have been issued already (a child process gets the directory from its parent).
 */
export function clientTlsFromDir(dir: string, role: IdentityRole, name: string): ClientTlsOptions {
  const base = join(dir, certificateBaseName({ kind: role, name }));
  return { ca: readFileSync(join(dir, 'ca.pem')), cert: readFileSync(`${base}.pem`), key: readFileSync(`${base}.key`) };
}

/** The coordinator's files in a throwaway PKI's directory: its certificate and key, and the CA its clients must be signed by. */
export function serverTlsFilesIn(dir: string): ServerTlsFiles & { readonly caFile: string } {
  return { certFile: join(dir, 'coordinator.pem'), keyFile: join(dir, 'coordinator.key'), caFile: join(dir, 'ca.pem') };
}
