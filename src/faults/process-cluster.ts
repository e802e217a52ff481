// A coordinator and bank participants as real OS processes, for crash tests and chaos runs: start
// them (with failpoints per process and per incarnation), kill, pause and restart any of them on
// its own data directory, heal the whole cluster, stop it politely, and read every bank's durable
// state from its LevelDB once the bank has exited. The coordinator keeps one fixed port for its
// whole life, so that banks and clients reconnect to the same address after every restart.

import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { VerdictClient } from '../client/index.js';
import { readLedger, SEED_KEY, type BankLedger } from '../demo/bank.js';
import type { TxView } from '../protocol/coordinator-events.js';
import type { BankNodeMessage, BankNodeStatus } from './bank-node-ipc.js';
import { describeExit, ManagedProcess, siblingEntry, type ExitRecord } from './managed-process.js';
import { systemClock } from '../common/clock.js';
import { createThrowawayTls, type ThrowawayTls } from '../common/throwaway-tls.js';
import type { ClientSecurityOptions, ServerTlsFiles } from '../common/tls.js';
import { levelStorage } from '../common/level-errors.js';
import { ParticipantLog } from '../participant/participant-log.js';
import {
  COORDINATOR_PROCESS,
  CONNECT_TIMEOUT_MS,
  DEFAULT_ACCOUNTS_PER_BANK,
  DEFAULT_BANK_COUNT,
  DEFAULT_INITIAL_BALANCE,
  DEFAULT_INQUIRY_INTERVAL_MS,
  MIN_FIXED_PORT,
  POLL_INTERVAL_MS,
  STATUS_TIMEOUT_MS,
  type FailpointPlan,
  type ProcessClusterOptions,
} from './process-cluster-options.js';

const CLI_ENTRY = siblingEntry('../cli/main.js');
const BANK_ENTRY = siblingEntry('./bank-node.js');
const LISTENING = /^listening on (\S+)$/;

/** Resolves once a `verdict coordinator` process prints its `listening on HOST:PORT` line. */
export function untilListening(p: ManagedProcess): Promise<void> {
  return new Promise((resolve) => {
    const onLine = (line: string): void => {
      if (!LISTENING.test(line)) return;
      p.off('line', onLine);
      resolve();
    };
    p.on('line', onLine);
  });
}
/** The initiator identity of a TLS cluster's workloads and status queries. */
export const CLUSTER_INITIATOR = 'workload';

/**
 * Waits for the first IPC message of `proc` that `match` maps to a value; rejects when the process
 * exits first or, with `timeoutMs`, when none comes in time.
 */
function whenMessage<T>(proc: ManagedProcess, match: (m: BankNodeMessage) => T | undefined, timeoutMs?: number, what = 'a message'): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown): void => {
      const value = match(m as BankNodeMessage);
      if (value === undefined) return;
      cleanup();
      resolve(value);
    };
    const onExit = (r: ExitRecord): void => {
      cleanup();
      reject(new Error(`${proc.name} exited (${describeExit(r)})`));
    };
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
      cleanup();
      reject(new Error(`${proc.name} sent no ${what} within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      proc.off('message', onMessage);
      proc.off('exit', onExit);
    };
    proc.on('message', onMessage);
    proc.once('exit', onExit);
  });
}

/** Where and how a coordinator process runs. */
export interface CoordinatorProcessOptions {
  /** Default `coordinator`. */
  readonly name?: string;
  readonly address: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** Log level on stderr (the log file); default `info`. */
  readonly logLevel?: string;
  /** Serve mutual TLS with these files (client certificates required); plaintext without. */
  readonly tls?: ServerTlsFiles;
}

/** A coordinator, run by the `verdict coordinator` command on a fixed address. */
export class CoordinatorProcess extends ManagedProcess {
  readonly address: string;
  readonly dataDir: string;

  constructor(options: CoordinatorProcessOptions) {
    super({
      name: options.name ?? COORDINATOR_PROCESS,
      entry: CLI_ENTRY,
      args: [
        'coordinator', '--listen', options.address, '--data', options.dataDir, '--log-level', options.logLevel ?? 'info',
        ...(options.tls ? ['--tls-cert', options.tls.certFile, '--tls-key', options.tls.keyFile, ...(options.tls.caFile ? ['--tls-ca', options.tls.caFile] : [])] : []),
      ],
      logFile: options.logFile,
      ready: untilListening,
    });
    this.address = options.address;
    this.dataDir = options.dataDir;
  }
}

/** One finished transaction at a bank, as it reported it. */
export interface FinishedReport {
  readonly incarnation: number;
  readonly outcome: string | undefined;
}

/** A bank participant, run by `bank-node.ts`. */
export class BankProcess extends ManagedProcess {
  readonly dataDir: string;
  /** Every `finished` the bank reported, by tx id, across incarnations. */
  readonly finished = new Map<string, FinishedReport[]>();
  #epoch = 0;
  #nextRequest = 0;

  constructor(
    name: string,
    dir: string,
    coordinator: string,
    options: {
      accounts: number;
      initialBalance: number;
      inquiryIntervalMs: number;
      logLevel?: string;
      /** A throwaway PKI's directory holding this bank's participant certificate: the bank dials mutual TLS. */
      tlsDir?: string;
    },
  ) {
    const dataDir = join(dir, name);
    super({
      name,
      entry: BANK_ENTRY,
      args: [
        '--name', name,
        '--coordinator', coordinator,
        '--data', dataDir,
        '--accounts', String(options.accounts),
        '--initial-balance', String(options.initialBalance),
        '--inquiry-interval-ms', String(options.inquiryIntervalMs),
        ...(options.logLevel ? ['--log-level', options.logLevel] : []),
        ...(options.tlsDir ? ['--tls-dir', options.tlsDir] : []),
      ],
      logFile: join(dir, `${name}.log`),
      ready: async (p) => void (await whenMessage(p, (m) => (m.type === 'started' ? true : undefined))),
    });
    this.dataDir = dataDir;
    this.on('message', (raw) => {
      const m = raw as BankNodeMessage;
      if (m.type === 'connected') this.#epoch = m.epoch;
      else if (m.type === 'disconnected') this.#epoch = 0;
      else if (m.type === 'failed') this.noteFailure(m.message);
      else if (m.type === 'finished') {
        const reports = this.finished.get(m.txId) ?? [];
        reports.push({ incarnation: this.incarnation, outcome: m.outcome });
        this.finished.set(m.txId, reports);
      }
    });
    this.on('exit', () => {
      this.#epoch = 0;
    });
  }

  /** The coordinator epoch of the bank's session as last reported (0: not connected). */
  get epoch(): number {
    return this.#epoch;
  }

  /** Asks the bank for its status; rejects when it does not answer in time (e.g. it is paused). */
  async status(timeoutMs = STATUS_TIMEOUT_MS): Promise<BankNodeStatus> {
    const requestId = ++this.#nextRequest;
    if (!this.alive) throw new Error(`${this.name} is not running`);
    const answer = whenMessage(this, (m) => (m.type === 'status' && m.requestId === requestId ? m : undefined), timeoutMs, 'answer to a status request');
    if (!this.send({ type: 'status', requestId })) {
      answer.catch(() => undefined);
      throw new Error(`${this.name} is not running`);
    }
    const status = await answer;
    this.#epoch = status.epoch;
    return status;
  }
}

/** What a bank durably holds, read from its LevelDB after it exited. */
export interface DurableBank {
  readonly ledger: BankLedger;
  /** How the bank was seeded: accounts `1` … `accounts`, each opened with `balance`. */
  readonly seed: { readonly accounts: number; readonly balance: number } | undefined;
  /** Transactions the participant log still holds PREPARED (in doubt). */
  readonly prepared: readonly string[];
}

/** A coordinator and banks as real processes. */
export class ProcessCluster {
  readonly dir: string;
  readonly coordinator: CoordinatorProcess;
  readonly banks: readonly BankProcess[];
  /** Every bank must report at least this epoch to count as connected to the current coordinator. */
  #epochFloor = 1;
  #highestEpoch = 0;
  /** What the initiators of this cluster (workloads, status queries) dial with. */
  readonly clientSecurity: ClientSecurityOptions;

  private constructor(dir: string, address: string, options: ProcessClusterOptions, tls: ThrowawayTls | undefined, clientSecurity: ClientSecurityOptions) {
    this.dir = dir;
    this.clientSecurity = clientSecurity;
    this.coordinator = new CoordinatorProcess({
      address,
      dataDir: join(dir, COORDINATOR_PROCESS),
      logFile: join(dir, `${COORDINATOR_PROCESS}.log`),
      ...(options.logLevel ? { logLevel: options.logLevel } : {}),
      ...(tls ? { tls: tls.serverFiles } : {}),
    });
    const bankOptions = {
      ...(options.logLevel ? { logLevel: options.logLevel } : {}),
      ...(tls ? { tlsDir: tls.dir } : {}),
      accounts: options.accountsPerBank ?? DEFAULT_ACCOUNTS_PER_BANK,
      initialBalance: options.initialBalance ?? DEFAULT_INITIAL_BALANCE,
      inquiryIntervalMs: options.inquiryIntervalMs ?? DEFAULT_INQUIRY_INTERVAL_MS,
    };
    this.banks = Array.from({ length: options.banks ?? DEFAULT_BANK_COUNT }, (_, i) => new BankProcess(`bank-${i + 1}`, dir, options.bankCoordinator ?? address, bankOptions));
    for (const bank of this.banks) {
      bank.on('message', (m) => {
        const message = m as BankNodeMessage;
        if (message.type === 'connected') this.#highestEpoch = Math.max(this.#highestEpoch, message.epoch);
      });
    }
    // A new coordinator incarnation bumps the epoch: sessions with an older one are stale.
    this.coordinator.on('exit', () => {
      this.#epochFloor = Math.max(this.#epochFloor, this.#highestEpoch + 1);
    });
  }

  /** Creates the cluster's handles (nothing runs yet) and picks the coordinator's fixed port. */
  static async create(options: ProcessClusterOptions): Promise<ProcessCluster> {
    mkdirSync(options.dir, { recursive: true });
    const port = await fixedPort();
    let tls: ThrowawayTls | undefined;
    let clientSecurity: ClientSecurityOptions = {};
    if (options.tls === true) {
      tls = await createThrowawayTls(join(options.dir, 'tls'));
      const pki = tls;
      await Promise.all(Array.from({ length: options.banks ?? DEFAULT_BANK_COUNT }, (_, i) => pki.issue('participant', `bank-${i + 1}`)));
      clientSecurity = await tls.client('initiator', CLUSTER_INITIATOR);
    }
    return new ProcessCluster(options.dir, `127.0.0.1:${port}`, options, tls, clientSecurity);
  }

  /** The coordinator's `host:port`. */
  get address(): string {
    return this.coordinator.address;
  }

  /** Every process, the coordinator first. */
  get processes(): readonly ManagedProcess[] {
    return [this.coordinator, ...this.banks];
  }

  /** The process called `name`. */
  process(name: string): ManagedProcess {
    const found = this.processes.find((p) => p.name === name);
    if (!found) throw new Error(`no process ${name} in this cluster (${this.processes.map((p) => p.name).join(', ')})`);
    return found;
  }

  /** Every exit of every process, in time order. */
  get exits(): ExitRecord[] {
    return this.processes.flatMap((p) => p.exits).sort((a, b) => a.at - b.at);
  }

  /** Starts every process that is down (with `failpoints` by process name) and waits until every bank is connected. */
  async start(failpoints: FailpointPlan = {}): Promise<void> {
    await Promise.all(
      this.processes.filter((p) => !p.alive).map((p) => {
        const planned = failpoints[p.name];
        return p.start(planned ? { failpoints: planned } : {});
      }),
    );
    await this.waitConnected();
  }

  /**
   * Heals the cluster: resumes every paused process, restarts every process that is down (with no
   * failpoints) and waits until every bank is connected to the coordinator. Returns what it did
   * to which process.
   */
  async heal(): Promise<[ManagedProcess, 'resumed' | 'restarted'][]> {
    const healed: [ManagedProcess, 'resumed' | 'restarted'][] = [];
    for (const p of this.processes) {
      if (p.state === 'paused') {
        p.resume();
        healed.push([p, 'resumed']);
      } else if (!p.alive) {
        healed.push([p, 'restarted']);
      }
    }
    await this.start();
    return healed;
  }

  /** Waits until every bank reports a session to the current coordinator incarnation. */
  async waitConnected(timeoutMs = CONNECT_TIMEOUT_MS): Promise<void> {
    await poll(`every bank to connect to the coordinator at ${this.address}`, timeoutMs, async () => {
      const statuses = await Promise.all(this.banks.map((b) => b.status().catch(() => undefined)));
      return statuses.every((s) => s !== undefined && s.epoch >= this.#epochFloor);
    });
  }

  /** Statuses of every bank, by name (rejects when one does not answer). */
  async statuses(): Promise<Map<string, BankNodeStatus>> {
    return new Map(await Promise.all(this.banks.map(async (b) => [b.name, await b.status()] as const)));
  }

  /** Stops every process politely, the banks first; resolves with their exit records. */
  async stop(): Promise<ExitRecord[]> {
    const banks = await Promise.all(this.banks.filter((b) => b.alive).map((b) => b.stop()));
    const coordinator = this.coordinator.alive ? [await this.coordinator.stop()] : [];
    return [...banks, ...coordinator];
  }

  /** SIGKILLs whatever still runs (for cleanup; never throws). */
  async destroy(): Promise<void> {
    await Promise.all(this.processes.map((p) => (p.alive ? p.kill().then(() => undefined, () => undefined) : undefined)));
  }

  /** Reads every bank's durable state from its LevelDB. Every bank must be down. */
  async readDurableState(): Promise<Map<string, DurableBank>> {
    const out = new Map<string, DurableBank>();
    for (const bank of this.banks) {
      if (bank.alive) throw new Error(`${bank.name} still runs: its LevelDB can be read only after it exited`);
      const log = await ParticipantLog.open(levelStorage(bank.dataDir), systemClock, { groupCommit: false });
      try {
        const prepared = (await log.loadPrepared()).map((r) => r.txId);
        const ledger = await readLedger(log.app);
        const seed = (await log.app.get(SEED_KEY)) as DurableBank['seed'];
        out.set(bank.name, { ledger, seed, prepared });
      } finally {
        await log.close();
      }
    }
    return out;
  }
}

/** Polls `check` every POLL_INTERVAL_MS until it is true; rejects after `timeoutMs` naming `what`. */
export async function poll(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

/**
 * Polls until every transaction of `txIds` has ended at the coordinator (keeping the last view of
 * each in `views`) and `quiet()` confirms nothing is left in doubt at the participants. The
 * status queries go through a fresh client with `client`'s security (the identity that began the
 * transactions) and call timeout (default 2 s); `address` may list the members of a coordinator
 * group (the client follows the leader).
 */
export async function waitAllEnded(
  address: string | readonly string[],
  txIds: Iterable<string>,
  views: Map<string, TxView>,
  timeoutMs: number,
  what: string,
  quiet: () => boolean | Promise<boolean>,
  client: ClientSecurityOptions & { readonly callTimeoutMs?: number } = {},
): Promise<void> {
  const open = new Set(txIds);
  const verdict = new VerdictClient(address, { callTimeoutMs: 2_000, ...client });
  try {
    await poll(what, timeoutMs, async () => {
      await Promise.all(
        [...open].map(async (txId) => {
          const view = await verdict.get(txId).catch(() => undefined);
          if (!view) return;
          views.set(txId, view);
          if (view.state === 'ended') open.delete(txId);
        }),
      );
      return open.size === 0 && (await quiet());
    });
  } finally {
    verdict.close();
  }
}

/**
 * A free port on 127.0.0.1 below the kernel's ephemeral range: the coordinator rebinds it after
 * every restart, and a port from the ephemeral range could meanwhile become the local port of
 * some unrelated outgoing connection.
 */
export async function fixedPort(): Promise<number> {
  const [low] = ephemeralRange();
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = MIN_FIXED_PORT + Math.floor(Math.random() * (low - MIN_FIXED_PORT));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port between ${MIN_FIXED_PORT} and ${low} on 127.0.0.1`);
}

function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low && high && low > MIN_FIXED_PORT + 1_000) return [low, high];
  } catch {
    // Not Linux: assume the IANA range.
  }
  return [49_152, 65_535];
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
