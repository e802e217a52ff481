// A throwaway 3-member etcd cluster on 127.0.0.1 for tests, chaos runs and benchmarks: free ports,
// fresh temp data dirs, short Raft timings so that elections are quick. Members are real processes
// that may be SIGKILLed and started again. When etcd is not installed and this runs from a checkout,
// scripts/ensure-etcd.sh installs Debian's package; from an installed package, etcd must be on the
// PATH. Any failure is one line saying why: a suite that needs etcd fails without it, never skips.
// With `tls`, the members serve clients (and each other) over TLS from a throwaway PKI of their own
// and require a client certificate signed by its CA (etcd's `--client-cert-auth`).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixedPort } from './process-cluster.js';
import { createCa, issueCertificate, type CertificatePaths } from '../common/dev-certs.js';

const ENSURE_SCRIPT = fileURLToPath(new URL('../../scripts/ensure-etcd.sh', import.meta.url));
/** Attempts at finding ports nobody took between choosing them and the members binding them. */
const START_ATTEMPTS = 3;
/** How long a cluster (or a restarted member) gets to report healthy, in ms. */
const HEALTHY_WITHIN_MS = 20_000;
/** Raft heartbeat and election timeout for tests, in ms (etcd's defaults are 100 and 1000). */
const HEARTBEAT_MS = 50;
const ELECTION_TIMEOUT_MS = 500;
const POLL_MS = 50;
/** How long one health request may take, in ms. */
const HEALTH_TIMEOUT_MS = 1_000;

/** Pids of every member started by this process, killed if the test process exits first. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function oneLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).slice(-1)[0] ?? '';
}

function etcdBinary(): string | undefined {
  const which = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  const path = which.stdout.trim();
  return which.status === 0 && path ? path : undefined;
}

/** Options of `EtcdCluster.start`. */
export interface EtcdClusterOptions {
  /**
   * Serve clients and peers over TLS with a throwaway PKI (made in the cluster's directory) and
   * require client certificates signed by its CA. Default: plain HTTP.
   */
  readonly tls?: boolean;
}

/** A TLS etcd cluster's PKI: the CA, and a client certificate it accepts (CN `verdict`). */
export interface EtcdClusterTls {
  /** The CA that signed the members' certificates and accepts client certificates. */
  readonly caFile: string;
  /** A client certificate the members accept (CN `verdict`). */
  readonly certFile: string;
  /** The private key of `certFile`. */
  readonly keyFile: string;
  /** The directory of the PKI: `issueClient` puts more certificates there. */
  readonly dir: string;
  /** Issues another client certificate (CN `name`) signed by the cluster's CA. */
  issueClient(name: string): Promise<CertificatePaths>;
}

/** The name (CN) of the client certificate a TLS cluster issues at its start. */
const TLS_CLIENT_NAME = 'verdict';

interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  child: ChildProcess | undefined;
  stderr: string;
}

/** A running 3-member etcd cluster on 127.0.0.1. */
export class EtcdCluster {
  readonly #bin: string;
  readonly #dir: string;
  readonly #members: Member[];
  readonly #server: CertificatePaths | undefined;
  /** The PKI of a TLS cluster; undefined for plain HTTP. */
  readonly tls: EtcdClusterTls | undefined;

  private constructor(bin: string, dir: string, members: Member[], pki?: { server: CertificatePaths; tls: EtcdClusterTls }) {
    this.#bin = bin;
    this.#dir = dir;
    this.#members = members;
    this.#server = pki?.server;
    this.tls = pki?.tls;
  }

  /**
   * Installs etcd if needed, starts `size` members (default 3) and waits until the cluster is
   * healthy. Throws one line on failure.
   */
  static async start(size = 3, options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    let bin = etcdBinary();
    if (!bin) {
      if (!existsSync(ENSURE_SCRIPT)) throw new Error('etcd could not be started: no etcd binary on the PATH (install etcd, e.g. Debian\'s etcd-server package)');
      const installed = spawnSync('bash', [ENSURE_SCRIPT], { encoding: 'utf8' });
      if (installed.status !== 0) throw new Error(`etcd could not be installed: ${oneLine(installed.stderr) || `exit ${installed.status}`}`);
      bin = etcdBinary();
      if (!bin) throw new Error('etcd could not be started: the etcd binary is not on this machine after installing it');
    }
    let last: unknown;
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      const dir = mkdtempSync(join(tmpdir(), 'verdict-etcd-'));
      const members: Member[] = [];
      for (let i = 0; i < size; i++) {
        members.push({ name: `m${i}`, clientPort: await fixedPort(), peerPort: await fixedPort(), dataDir: join(dir, `m${i}`), child: undefined, stderr: '' });
      }
      const cluster = new EtcdCluster(bin, dir, members, options.tls ? await makePki(join(dir, 'tls')) : undefined);
      try {
        for (let i = 0; i < size; i++) cluster.#spawn(i);
        await cluster.waitHealthy();
        return cluster;
      } catch (e) {
        last = e;
        await cluster.stop();
      }
    }
    throw new Error(`etcd could not be started: ${(last as Error).message}`);
  }

  /** The client endpoints, `127.0.0.1:port,...`, as `--etcd` takes them. */
  get endpoints(): string {
    return this.#members.map((m) => `127.0.0.1:${m.clientPort}`).join(',');
  }

  /** The client URLs, `http://` or, with TLS, `https://` each. */
  get urls(): string[] {
    return this.hosts.map((h) => `${this.#scheme}://${h}`);
  }

  /**
   * Options of an `etcd3` client of this cluster (with TLS: the CA and the cluster's client
   * certificate), for tests that read or write etcd themselves.
   */
  clientOptions(): { hosts: string[]; credentials?: { rootCertificate: Buffer; certChain: Buffer; privateKey: Buffer } } {
    const tls = this.tls;
    return {
      hosts: this.urls,
      ...(tls ? { credentials: { rootCertificate: readFileSync(tls.caFile), certChain: readFileSync(tls.certFile), privateKey: readFileSync(tls.keyFile) } } : {}),
    };
  }

  /** The `verdict coordinator --etcd` flags of TLS to this cluster (its CA and client certificate); none without TLS. */
  get tlsArgs(): string[] {
    const tls = this.tls;
    return tls ? ['--etcd-ca', tls.caFile, '--etcd-cert', tls.certFile, '--etcd-key', tls.keyFile] : [];
  }

  get #scheme(): 'http' | 'https' {
    return this.tls ? 'https' : 'http';
  }

  /** The client endpoints as a list. */
  get hosts(): string[] {
    return this.#members.map((m) => `127.0.0.1:${m.clientPort}`);
  }

  /** The pids of the members running now (for reading their CPU time). */
  get pids(): number[] {
    return this.#members.flatMap((m) => (m.child?.pid !== undefined && m.child.exitCode === null && m.child.signalCode === null ? [m.child.pid] : []));
  }

  /** How many members there are. */
  get size(): number {
    return this.#members.length;
  }

  #spawn(i: number): void {
    const m = this.#members[i];
    if (!m) throw new Error(`no member ${i}`);
    const scheme = this.#scheme;
    const peers = this.#members.map((p) => `${p.name}=${scheme}://127.0.0.1:${p.peerPort}`).join(',');
    const tls = this.tls;
    const server = this.#server;
    const tlsArgs =
      tls && server
        ? [
            '--cert-file', server.cert, '--key-file', server.key, '--trusted-ca-file', tls.caFile, '--client-cert-auth',
            '--peer-cert-file', server.cert, '--peer-key-file', server.key, '--peer-trusted-ca-file', tls.caFile, '--peer-client-cert-auth',
          ]
        : [];
    const child = spawn(
      this.#bin,
      [
        '--name', m.name,
        '--data-dir', m.dataDir,
        '--listen-client-urls', `${scheme}://127.0.0.1:${m.clientPort}`,
        '--advertise-client-urls', `${scheme}://127.0.0.1:${m.clientPort}`,
        '--listen-peer-urls', `${scheme}://127.0.0.1:${m.peerPort}`,
        '--initial-advertise-peer-urls', `${scheme}://127.0.0.1:${m.peerPort}`,
        '--initial-cluster', peers,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', `verdict-test-${process.pid}`,
        '--heartbeat-interval', String(HEARTBEAT_MS),
        '--election-timeout', String(ELECTION_TIMEOUT_MS),
        '--logger', 'zap',
        '--log-level', 'error',
        ...tlsArgs,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    m.stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      m.stderr = (m.stderr + chunk).slice(-4000);
    });
    child.once('exit', () => live.delete(child));
    live.add(child);
    m.child = child;
  }

  /** Whether member `i` answers /health with `true` (it has a leader and serves). */
  async memberHealthy(i: number): Promise<boolean> {
    const m = this.#members[i];
    if (!m) return false;
    try {
      const body = JSON.parse(await this.#get(m.clientPort, '/health')) as { health?: string };
      return body.health === 'true';
    } catch {
      return false;
    }
  }

  /** The body of an HTTP GET of `path` on a member's client port (with TLS: presenting the cluster's client certificate). */
  async #get(port: number, path: string): Promise<string> {
    const tls = this.tls;
    if (!tls) return (await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) })).text();
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', servername: 'localhost', port, path, ca: readFileSync(tls.caFile), cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile), timeout: HEALTH_TIMEOUT_MS },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve(body));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${HEALTH_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end();
    });
  }

  /** Waits until every running member reports healthy, or throws one line naming the first that is not. */
  async waitHealthy(timeoutMs = HEALTHY_WITHIN_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = this.#members.map((m, i) => ({ m, i })).filter(({ m }) => m.child && m.child.exitCode === null && m.child.signalCode === null);
      for (const m of this.#members) {
        if (m.child && (m.child.exitCode !== null || m.child.signalCode !== null) && m.child.signalCode !== 'SIGKILL') {
          throw new Error(`etcd member ${m.name} exited (${m.child.exitCode ?? m.child.signalCode}): ${oneLine(m.stderr) || 'no output'}`);
        }
      }
      const healthy = await Promise.all(running.map(({ i }) => this.memberHealthy(i)));
      if (healthy.every(Boolean)) return;
      if (Date.now() > deadline) {
        const bad = running.find((_, k) => !healthy[k]);
        throw new Error(`etcd member ${bad?.m.name} not healthy within ${timeoutMs} ms: ${oneLine(bad?.m.stderr ?? '') || 'no output'}`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /** SIGKILLs member `i` and waits for it to be gone. */
  async kill(i: number): Promise<void> {
    const child = this.#members[i]?.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts member `i` again on its data dir (after `kill`). */
  restart(i: number): void {
    this.#spawn(i);
  }

  /** SIGKILLs every member and removes the data dirs (idempotent). */
  async stop(): Promise<void> {
    for (let i = 0; i < this.#members.length; i++) await this.kill(i);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** A CA, a server certificate for 127.0.0.1 (also a client one: members dial each other with it) and a client certificate, in `dir`. */
async function makePki(dir: string): Promise<{ server: CertificatePaths; tls: EtcdClusterTls }> {
  const ca = await createCa(dir, { commonName: 'verdict test etcd CA' });
  const server = await issueCertificate(dir, { kind: 'server', name: 'etcd', hosts: ['127.0.0.1', 'localhost'] });
  const client = await issueCertificate(dir, { kind: 'client', name: TLS_CLIENT_NAME });
  return {
    server,
    tls: { caFile: ca.cert, certFile: client.cert, keyFile: client.key, dir, issueClient: (name) => issueCertificate(dir, { kind: 'client', name }) },
  };
}
