// One real OS process of a cluster, across its incarnations: fork it (through tsx from source), wait
// until it is ready, signal it (SIGKILL, SIGTERM, SIGSTOP/SIGCONT), await its exit, and restart it
// on the same data directory. Every exit is recorded with its cause. Each incarnation gets its own
// environment (failpoints hold for one incarnation only); stderr goes to one log file per process.
// Every live child is SIGKILLed when the parent exits, whatever way it exits.

import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { appendFileSync, closeSync, openSync, readFileSync } from 'node:fs';
import { within } from '../common/within.js';
import { FAILPOINTS_ENV } from '../common/failpoints.js';
import { childExecArgv, childModulePath } from '../runtime/child-module.js';
import { PROCESS_KILL_TIMEOUT_MS, PROCESS_START_TIMEOUT_MS, PROCESS_STOP_TIMEOUT_MS } from './process-cluster-options.js';

const ORPHAN_GUARD = childModulePath('./orphan-guard.js', import.meta.url);

/** Lines of stdout kept per process for diagnostics. */
const STDOUT_LINES_KEPT = 50;

/** Why an incarnation ended. */
export type ExitCause =
  /** Asked to stop (SIGTERM) and exited 0. */
  | 'stopped'
  /** SIGKILLed or otherwise signalled to death by the harness. */
  | 'killed'
  /** Died by SIGKILL with a `crash` failpoint armed, and nobody else sent one: the failpoint fired. */
  | 'failpoint'
  /** Anything else: a non-zero exit, a signal nobody sent, a stop that needed SIGKILL. */
  | 'unexpected';

/** One ended incarnation. */
export interface ExitRecord {
  readonly process: string;
  readonly incarnation: number;
  readonly pid: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly cause: ExitCause;
  /** VERDICT_FAILPOINTS of that incarnation. */
  readonly failpoints: string | undefined;
  /** What the process said about its failure, when it said something. */
  readonly reason: string | undefined;
  readonly at: number;
}

/** Options of one start. */
export interface StartOptions {
  /** VERDICT_FAILPOINTS for this incarnation only (none when absent). */
  readonly failpoints?: string;
}

/** Lifecycle of a managed process. */
export type ManagedProcessState = 'down' | 'starting' | 'running' | 'paused' | 'stopping';

/** Events: `exit` after every incarnation, `line` for every stdout line, `message` for every IPC message. */
export interface ManagedProcessEvents {
  exit: [record: ExitRecord];
  line: [line: string];
  message: [message: unknown];
}

/** What to run: a TypeScript entry, its arguments, and when it counts as ready. */
export interface ProcessSpec {
  readonly name: string;
  /** Absolute path of the entry module (from `siblingEntry`). */
  readonly entry: string;
  readonly args: readonly string[];
  /** The file stderr is appended to, across incarnations. */
  readonly logFile: string;
  /** The working directory of every incarnation (default: this process's). */
  readonly cwd?: string;
  /** Resolves once the started child is ready (it is rejected for the caller when the child exits first). */
  readonly ready: (process: ManagedProcess) => Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Synchronous, so it runs on every way out: nothing this process started may outlive it.
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  live.add(child);
}


/** One process of a cluster, restartable on the same data directory. */
export class ManagedProcess extends EventEmitter<ManagedProcessEvents> {
  readonly #spec: ProcessSpec;
  readonly #exits: ExitRecord[] = [];
  readonly #stdout: string[] = [];
  #child: ChildProcess | undefined;
  #exited: Promise<ExitRecord> | undefined;
  #state: ManagedProcessState = 'down';
  #incarnation = 0;
  #failpoints: string | undefined;
  /** The last signal the harness sent to end this incarnation. */
  #requested: NodeJS.Signals | undefined;
  #stopTimedOut = false;
  #reason: string | undefined;

  constructor(spec: ProcessSpec) {
    super();
    this.#spec = spec;
  }

  get name(): string {
    return this.#spec.name;
  }

  get state(): ManagedProcessState {
    return this.#state;
  }

  /** Whether an incarnation is alive (running, paused, starting or stopping). */
  get alive(): boolean {
    return this.#state !== 'down';
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** How many times the process was started. */
  get incarnation(): number {
    return this.#incarnation;
  }

  /** VERDICT_FAILPOINTS of the current incarnation. */
  get failpoints(): string | undefined {
    return this.#failpoints;
  }

  /** Every ended incarnation, oldest first. */
  get exits(): readonly ExitRecord[] {
    return this.#exits;
  }

  /** The last stdout lines (across incarnations). */
  get stdout(): readonly string[] {
    return this.#stdout;
  }

  get logFile(): string {
    return this.#spec.logFile;
  }

  /** The last `lines` lines of the log file. */
  logTail(lines = 20): string {
    try {
      return readFileSync(this.#spec.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** Sends an IPC message to the live incarnation; false when there is none to send to. */
  send(message: unknown): boolean {
    const child = this.#child;
    if (!child?.connected) return false;
    // A channel closing under the send is not an error here: the exit is recorded on its own.
    child.send(message as object, (e) => void e);
    return true;
  }

  /** Records what a child said about its failure (it is attached to the exit record). */
  noteFailure(reason: string): void {
    this.#reason ??= reason;
  }

  /**
   * Starts a new incarnation and resolves once it is ready. Rejects (after SIGKILLing it) when it
   * exits first or is not ready in time.
   */
  async start(options: StartOptions = {}): Promise<void> {
    if (this.#state !== 'down') throw new Error(`${this.name} is already running (pid ${this.pid})`);
    const incarnation = ++this.#incarnation;
    this.#failpoints = options.failpoints;
    this.#requested = undefined;
    this.#stopTimedOut = false;
    this.#reason = undefined;
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env[FAILPOINTS_ENV];
    if (options.failpoints) env[FAILPOINTS_ENV] = options.failpoints;
    appendFileSync(
      this.#spec.logFile,
      `--- ${this.name} incarnation ${incarnation} at ${new Date().toISOString()}${options.failpoints ? ` ${FAILPOINTS_ENV}=${options.failpoints}` : ''}\n`,
    );
    const logFd = openSync(this.#spec.logFile, 'a');
    let child: ChildProcess;
    try {
      child = fork(this.#spec.entry, [...this.#spec.args], {
        execArgv: childExecArgv([ORPHAN_GUARD]),
        stdio: ['ignore', 'pipe', logFd, 'ipc'],
        env,
        serialization: 'json',
        ...(this.#spec.cwd !== undefined ? { cwd: this.#spec.cwd } : {}),
      });
    } finally {
      closeSync(logFd);
    }
    track(child);
    this.#child = child;
    this.#state = 'starting';
    this.#exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        live.delete(child);
        const record = this.#record(incarnation, child.pid ?? 0, code, signal);
        if (this.#child === child) {
          this.#child = undefined;
          this.#state = 'down';
        }
        this.emit('exit', record);
        resolve(record);
      });
    });
    child.on('message', (m: unknown) => this.emit('message', m));
    child.on('error', (e) => this.noteFailure(e.message));
    let partial = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.#stdout.push(line);
        if (this.#stdout.length > STDOUT_LINES_KEPT) this.#stdout.shift();
        this.emit('line', line);
      }
    });
    const exitedFirst = this.#exited.then((r) => {
      throw new Error(`${this.name} exited before it was ready (${describeExit(r)}); see ${this.logFile}:\n${this.logTail()}`);
    });
    try {
      await within(Promise.race([this.#spec.ready(this), exitedFirst]), PROCESS_START_TIMEOUT_MS, () => new Error(`${this.name} was not ready within ${PROCESS_START_TIMEOUT_MS} ms`));
    } catch (e) {
      if (this.#child === child) await this.kill();
      throw e;
    } finally {
      exitedFirst.catch(() => undefined);
    }
    if (this.#child === child && this.#state === 'starting') this.#state = 'running';
  }

  /** Sends `signal` to the live incarnation (SIGSTOP/SIGCONT go through pause/resume). */
  signal(signal: NodeJS.Signals): void {
    const child = this.#child;
    if (!child?.pid) throw new Error(`${this.name} is not running`);
    if (signal !== 'SIGSTOP' && signal !== 'SIGCONT') this.#requested = signal;
    process.kill(child.pid, signal);
  }

  /**
   * Kills the live incarnation with `signal` (SIGKILL by default, which works on a paused process
   * too) and resolves with its exit record; rejects when it is still alive after the kill timeout.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ExitRecord> {
    const exited = this.#exited;
    if (!this.#child || !exited) return this.#lastExit();
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') throw new Error(`${signal} does not end a process: use pause() and resume()`);
    this.signal(signal);
    return within(exited, PROCESS_KILL_TIMEOUT_MS, () => new Error(`${this.name} (pid ${this.pid}) did not die within ${PROCESS_KILL_TIMEOUT_MS} ms of ${signal}`));
  }

  /** Freezes the process (SIGSTOP): it keeps its sockets and its LevelDB lock, and runs nothing. */
  pause(): void {
    if (this.#state !== 'running') throw new Error(`${this.name} cannot be paused while ${this.#state}`);
    this.signal('SIGSTOP');
    this.#state = 'paused';
  }

  /** Lets a paused process run again (SIGCONT). */
  resume(): void {
    if (this.#state !== 'paused') return;
    this.signal('SIGCONT');
    this.#state = 'running';
  }

  /** Resolves with the exit record of the live incarnation once it ends (or of the last one). */
  waitExit(timeoutMs: number): Promise<ExitRecord> {
    const exited = this.#exited;
    if (!this.#child || !exited) return Promise.resolve(this.#lastExit());
    return within(exited, timeoutMs, () => new Error(`${this.name} did not exit within ${timeoutMs} ms`));
  }

  /**
   * Stops the process politely: SIGCONT if paused, SIGTERM, and SIGKILL when it has not exited
   * within the stop timeout (which makes the exit `unexpected`). Resolves with the exit record.
   */
  async stop(timeoutMs = PROCESS_STOP_TIMEOUT_MS): Promise<ExitRecord> {
    const exited = this.#exited;
    if (!this.#child || !exited) return this.#lastExit();
    this.resume();
    this.#state = 'stopping';
    this.signal('SIGTERM');
    try {
      return await within(exited, timeoutMs, () => new Error('stop timed out'));
    } catch {
      this.#stopTimedOut = true;
      return this.kill();
    }
  }

  /** Restarts on the same data directory: SIGKILLs the live incarnation first, if any. */
  async restart(options: StartOptions = {}): Promise<void> {
    if (this.alive) await this.kill();
    await this.start(options);
  }

  #lastExit(): ExitRecord {
    const last = this.#exits.at(-1);
    if (!last) throw new Error(`${this.name} was never started`);
    return last;
  }

  #record(incarnation: number, pid: number, code: number | null, signal: NodeJS.Signals | null): ExitRecord {
    const requested = this.#requested;
    const crashArmed = this.#failpoints !== undefined && /=crash\b/.test(this.#failpoints);
    const cause: ExitCause =
      requested === 'SIGTERM' && code === 0 && !this.#stopTimedOut
        ? 'stopped'
        : requested !== undefined && requested !== 'SIGTERM' && signal === requested && !this.#stopTimedOut
          ? 'killed'
          : requested === undefined && signal === 'SIGKILL' && crashArmed
            ? 'failpoint'
            : 'unexpected';
    const record: ExitRecord = {
      process: this.name,
      incarnation,
      pid,
      code,
      signal,
      cause,
      failpoints: this.#failpoints,
      reason: this.#reason,
      at: Date.now(),
    };
    this.#exits.push(record);
    return record;
  }
}

/** `code 1`, `SIGKILL`, with the cause. */
export function describeExit(r: ExitRecord): string {
  const how = r.signal ?? `code ${r.code}`;
  return `${how}, ${r.cause}${r.reason ? `: ${r.reason}` : ''}`;
}

/**
 * The path of a module next to this one, named with `.js` (`./bank-node.js`): its source when
 * running from source (forked through tsx), its built file otherwise.
 */
export function siblingEntry(file: string): string {
  return childModulePath(file, import.meta.url);
}
