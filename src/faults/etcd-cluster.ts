// A throwaway 3-member etcd cluster on 127.0.0.1 for tests, chaos runs and benchmarks: free ports,
// fresh temp data dirs, short Raft timings so that elections are quick. Members are real processes
// that may be SIGKILLed and started again. When etcd is not installed and this runs from a checkout,
// scripts/ensure-etcd.sh installs Debian's package; from an installed package, etcd must be on the
// PATH. Any failure is one line saying why: a suite that needs etcd fails without it, never skips.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixedPort } from './process-cluster.js';

const ENSURE_SCRIPT = fileURLToPath(new URL('../../scripts/ensure-etcd.sh', import.meta.url));
/** Attempts at finding ports nobody took between choosing them and the members binding them. */
const START_ATTEMPTS = 3;
/** How long a cluster (or a restarted member) gets to report healthy, in ms. */
const HEALTHY_WITHIN_MS = 20_000;
/** Raft heartbeat and election timeout for tests, in ms (etcd's defaults are 100 and 1000). */
const HEARTBEAT_MS = 50;
const ELECTION_TIMEOUT_MS = 500;
const POLL_MS = 50;

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

  private constructor(bin: string, dir: string, members: Member[]) {
    this.#bin = bin;
    this.#dir = dir;
    this.#members = members;
  }

  /** Installs etcd if needed, starts three members and waits until the cluster is healthy. Throws one line on failure. */
  static async start(size = 3): Promise<EtcdCluster> {
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
      const cluster = new EtcdCluster(bin, dir, members);
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
    const peers = this.#members.map((p) => `${p.name}=http://127.0.0.1:${p.peerPort}`).join(',');
    const child = spawn(
      this.#bin,
      [
        '--name', m.name,
        '--data-dir', m.dataDir,
        '--listen-client-urls', `http://127.0.0.1:${m.clientPort}`,
        '--advertise-client-urls', `http://127.0.0.1:${m.clientPort}`,
        '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
        '--initial-cluster', peers,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', `verdict-test-${process.pid}`,
        '--heartbeat-interval', String(HEARTBEAT_MS),
        '--election-timeout', String(ELECTION_TIMEOUT_MS),
        '--logger', 'zap',
        '--log-level', 'error',
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
      const res = await fetch(`http://127.0.0.1:${m.clientPort}/health`, { signal: AbortSignal.timeout(1_000) });
      const body = (await res.json()) as { health?: string };
      return body.health === 'true';
    } catch {
      return false;
    }
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
