// The parent's handle on one bench child process: fork it, ask it things over IPC with a
// deadline on every answer, and make sure it is gone at the end — stopped politely when all
// went well (so a CPU profile gets written), SIGKILLed otherwise.

import { fork, type ChildProcess } from 'node:child_process';
import { childExecArgv, childModulePath } from '../runtime/child-module.js';
import { CHILD_REQUEST_TIMEOUT_MS, CHILD_START_TIMEOUT_MS, CHILD_STOP_TIMEOUT_MS } from './bench-options.js';
import type { BenchChildMessage, BenchNodeReport, BenchNodeSpec, BenchParentMessage } from './bench-ipc.js';

const NODE_ENTRY = childModulePath('./bench-node.js', import.meta.url);

type Answer = BenchChildMessage['type'];

interface Waiter {
  readonly type: Answer;
  readonly resolve: (m: BenchChildMessage) => void;
  readonly reject: (e: Error) => void;
}

/** Options of `BenchChild.fork`. */
export interface BenchChildOptions {
  /** Extra node flags for the child (e.g. `--cpu-prof`). */
  readonly execArgv?: readonly string[];
}

/** One forked bench node. */
export class BenchChild {
  readonly #proc: ChildProcess;
  readonly #label: string;
  readonly #exited: Promise<void>;
  readonly #booted: Promise<BenchChildMessage>;
  #waiters: Waiter[] = [];
  #gone: Error | undefined;

  private constructor(label: string, options: BenchChildOptions) {
    this.#label = label;
    this.#proc = fork(NODE_ENTRY, [], {
      execArgv: [...childExecArgv(), ...(options.execArgv ?? [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    this.#proc.on('message', (m: BenchChildMessage) => this.#onMessage(m));
    this.#exited = new Promise((resolve) => {
      this.#proc.once('exit', (code, signal) => {
        this.#goneWith(new Error(`${this.#label} exited (${signal ?? `code ${code}`})`));
        resolve();
      });
    });
    this.#proc.on('error', (e) => this.#goneWith(new Error(`${this.#label}: ${e.message}`, { cause: e })));
    this.#booted = this.#await('booted', CHILD_START_TIMEOUT_MS);
    // Observed by `start`; a child that dies unstarted must not be an unhandled rejection.
    this.#booted.catch(() => undefined);
  }

  /**
   * Forks a child that loads the bench node and waits for `start`. Forking every child first and
   * starting them later overlaps their boot (Node, tsx, module loading), which dominates a run's
   * set-up time.
   */
  static fork(label: string, options: BenchChildOptions = {}): BenchChild {
    return new BenchChild(label, options);
  }

  /** What the child runs, for messages. */
  get label(): string {
    return this.#label;
  }

  /** Starts the node of `spec`; resolves with its bound address ('' for participants) once it is ready. */
  async start(spec: BenchNodeSpec): Promise<string> {
    await this.#booted;
    this.#send({ type: 'init', spec });
    const m = await this.#await('ready', CHILD_START_TIMEOUT_MS);
    return m.type === 'ready' ? m.address : '';
  }

  /** Starts the measurement window in the child. */
  async mark(): Promise<void> {
    this.#send({ type: 'mark' });
    await this.#await('marked', CHILD_REQUEST_TIMEOUT_MS);
  }

  /** Ends the window: what the child measured since `mark`. */
  async report(): Promise<BenchNodeReport> {
    this.#send({ type: 'report' });
    const m = await this.#await('report', CHILD_REQUEST_TIMEOUT_MS);
    if (m.type !== 'report') throw new Error(`${this.#label} answered ${m.type} to report`);
    return m.report;
  }

  /**
   * The child's mean RSS since the window opened or its previous sample, in kB. Several samples
   * may be outstanding at once: the child answers in order, and each answer goes to the oldest
   * waiting request.
   */
  async sample(): Promise<number> {
    this.#send({ type: 'sample' });
    const m = await this.#await('sampled', CHILD_REQUEST_TIMEOUT_MS);
    if (m.type !== 'sampled') throw new Error(`${this.#label} answered ${m.type} to sample`);
    return m.rssKb;
  }

  /** Asks the child to close and exit; SIGKILL when it does not within the stop timeout. */
  async stop(): Promise<void> {
    if (this.#gone) return;
    this.#send({ type: 'stop' });
    const timer = setTimeout(() => this.kill(), CHILD_STOP_TIMEOUT_MS);
    await this.#exited;
    clearTimeout(timer);
  }

  /** SIGKILLs the child if it still runs; resolves once it is gone. */
  async kill(): Promise<void> {
    if (this.#proc.exitCode === null && this.#proc.signalCode === null) this.#proc.kill('SIGKILL');
    await this.#exited;
  }

  #send(message: BenchParentMessage): void {
    if (this.#gone || !this.#proc.connected) return;
    this.#proc.send(message);
  }

  #await(type: Answer, timeoutMs: number): Promise<BenchChildMessage> {
    if (this.#gone) return Promise.reject(this.#gone);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.#label} did not answer ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = {
        type,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  #onMessage(m: BenchChildMessage): void {
    if (m.type === 'failed') return this.#goneWith(new Error(m.message));
    const i = this.#waiters.findIndex((w) => w.type === m.type);
    if (i < 0) return;
    const [waiter] = this.#waiters.splice(i, 1);
    waiter?.resolve(m);
  }

  #goneWith(e: Error): void {
    // The first reason wins: a child's own 'failed' explains its exit better than the exit does.
    this.#gone ??= e;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(this.#gone);
  }
}
