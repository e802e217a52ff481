// Development certificates: a CA and the certificates Verdict's roles present, made with the
// `openssl` command (no hand-written ASN.1). Identities ride in SAN URIs
// (`verdict://participant/bank-a`); the coordinator's certificate names its hosts as IP or DNS
// SANs. Keys are P-256, written with mode 0600. For production, use your own PKI with the same SANs.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { formatIdentity, type IdentityRole } from './identity.js';
import { participantNameProblem } from '../protocol/ids.js';
import { ErrorCode, VerdictError } from '../errors.js';

/** How long a development CA is valid, in days. */
export const DEV_CA_DAYS = 3650;
/** How long a development leaf certificate is valid, in days. */
export const DEV_CERT_DAYS = 825;

/** The files of one certificate in a directory: `<base>.pem` and `<base>.key`. */
export interface CertificatePaths {
  readonly cert: string;
  readonly key: string;
}

/** Options of `issueCertificate`. */
export interface IssueOptions {
  /** Validity in days; a negative number makes an already expired certificate (for tests). */
  readonly days?: number;
  /** The CA files; default `ca.pem` / `ca.key` in the directory. */
  readonly ca?: CertificatePaths;
}

function openssl(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, (e, _stdout, stderr) => {
      if (!e) return resolve();
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      const why = missing ? 'the openssl command is not installed' : stderr.trim().split('\n').slice(-1)[0] || e.message;
      reject(new VerdictError(ErrorCode.INTERNAL, `openssl failed: ${why}`, { cause: e }));
    });
  });
}

const pathsIn = (dir: string, base: string): CertificatePaths => ({ cert: join(dir, `${base}.pem`), key: join(dir, `${base}.key`) });

/** Creates a development CA in `dir` (`ca.pem`, `ca.key`). */
export async function createCa(dir: string, options: { days?: number; commonName?: string } = {}): Promise<CertificatePaths> {
  await mkdir(dir, { recursive: true });
  const out = pathsIn(dir, 'ca');
  await openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', out.key, '-out', out.cert, '-days', String(options.days ?? DEV_CA_DAYS),
    '-subj', `/CN=${options.commonName ?? 'verdict development CA'}`,
    '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await chmod(out.key, 0o600);
  return out;
}

/**
 * What a certificate is for: the coordinator (server, by host), a Verdict identity (client, by SAN
 * URI), or, for the services Verdict uses (etcd), a plain `server` for hosts that also
 * authenticates as a client (etcd's members dial each other and themselves with it) and a plain
 * `client` named by its CN (a group member's etcd client certificate).
 */
export type CertificateSubject =
  | { readonly kind: 'coordinator'; readonly hosts: readonly string[] }
  | { readonly kind: 'server'; readonly name: string; readonly hosts: readonly string[] }
  | { readonly kind: 'client'; readonly name: string }
  | { readonly kind: IdentityRole; readonly name: string };

/** The base file name of a subject's certificate: `coordinator`, `participant-bank-a`, `server-etcd`, `client-c1`, … */
export function certificateBaseName(subject: CertificateSubject): string {
  return subject.kind === 'coordinator' ? 'coordinator' : `${subject.kind}-${subject.name}`;
}

function hostsSan(hosts: readonly string[]): string {
  if (hosts.length === 0) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, 'a server certificate needs at least one host');
  for (const h of hosts) {
    if (!/^[A-Za-z0-9.:-]+$/.test(h)) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `host ${JSON.stringify(h)} is not a DNS name or an IP address`);
  }
  return hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
}

/** Issues a certificate for `subject` signed by the CA in `dir`, into `dir`. */
export async function issueCertificate(dir: string, subject: CertificateSubject, options: IssueOptions = {}): Promise<CertificatePaths> {
  let san: string;
  let usage: string;
  let commonName: string;
  if (subject.kind === 'coordinator') {
    san = hostsSan(subject.hosts);
    usage = 'serverAuth';
    commonName = subject.hosts[0] ?? 'coordinator';
  } else if (subject.kind === 'server' || subject.kind === 'client') {
    const problem = participantNameProblem(subject.name);
    if (problem) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, problem.replace('participant name', 'name'));
    san = subject.kind === 'server' ? hostsSan(subject.hosts) : '';
    usage = subject.kind === 'server' ? 'serverAuth,clientAuth' : 'clientAuth';
    commonName = subject.name;
  } else {
    const problem = participantNameProblem(subject.name);
    if (problem) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, problem.replace('participant name', 'name'));
    san = `URI:${formatIdentity({ role: subject.kind, name: subject.name })}`;
    usage = 'clientAuth';
    commonName = subject.name;
  }
  const base = certificateBaseName(subject);
  const out = pathsIn(dir, base);
  const ca = options.ca ?? pathsIn(dir, 'ca');
  await mkdir(dir, { recursive: true });
  try {
    await access(ca.key);
  } catch {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `no CA key at ${ca.key}: run \`verdict certs ca --dir ${dir}\` first`);
  }
  const csr = join(dir, `.${base}.${randomBytes(4).toString('hex')}.csr`);
  const ext = `${csr}.ext`;
  try {
    await writeFile(ext, `${san ? `subjectAltName=${san}\n` : ''}extendedKeyUsage=${usage}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n`);
    await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', out.key, '-out', csr, '-subj', `/CN=${commonName}`]);
    await chmod(out.key, 0o600);
    await openssl([
      'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key,
      '-set_serial', `0x${randomBytes(16).toString('hex').replace(/^[89a-f]/, '7')}`,
      '-days', String(options.days ?? DEV_CERT_DAYS), '-extfile', ext, '-out', out.cert,
    ]);
  } finally {
    await rm(csr, { force: true });
    await rm(ext, { force: true });
  }
  return out;
}

/** Every file a throwaway TLS setup needs (tests, `--tls` of demo, chaos and bench). */
export interface DevPki {
  readonly dir: string;
  readonly ca: CertificatePaths;
  readonly coordinator: CertificatePaths;
  /** Issues (once) and returns the certificate of `role`/`name`. */
  identity(role: IdentityRole, name: string): Promise<CertificatePaths>;
}

/** A CA and a coordinator certificate for 127.0.0.1 and localhost in `dir`. */
export async function createDevPki(dir: string): Promise<DevPki> {
  const ca = await createCa(dir);
  const coordinator = await issueCertificate(dir, { kind: 'coordinator', hosts: ['127.0.0.1', 'localhost'] });
  const issued = new Map<string, Promise<CertificatePaths>>();
  return {
    dir,
    ca,
    coordinator,
    identity(role, name) {
      const key = `${role}/${name}`;
      let p = issued.get(key);
      if (!p) issued.set(key, (p = issueCertificate(dir, { kind: role, name })));
      return p;
    },
  };
}
