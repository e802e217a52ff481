// Test support: real coordinators and participants on 127.0.0.1:0 in fresh temp directories,
// with recording hooks, and a bounded poll for conditions (never a sleep).

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Coordinator, type CoordinatorOptions } from '../../src/coordinator/index.js';
import { Participant, type ParticipantHooks, type ParticipantOptions, type PrepareResult } from '../../src/participant/index.js';
import { VerdictClient } from '../../src/client/index.js';

/** A silent logger for tests (set VERDICT_LOG_LEVEL to see logs). */
export const testLogger = pino({ level: process.env.VERDICT_LOG_LEVEL ?? 'silent' });

/** A fresh temporary directory, removed by `cleanup`. */
export function tempDir(prefix = 'verdict-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A free TCP port on 127.0.0.1, for a coordinator that must come back on the same address. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port was assigned'))));
    });
  });
}

let nameCounter = 0;

/** A participant name no other test in this process uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${++nameCounter}`;
}

/** A latch a test opens by hand: hooks wait on it to hold a transaction at a chosen step. */
export class Gate {
  readonly #opened: Promise<void>;
  #open!: () => void;
  #isOpen = false;

  constructor() {
    this.#opened = new Promise((resolve) => (this.#open = resolve));
  }

  /** Whether `open` was called. */
  get isOpen(): boolean {
    return this.#isOpen;
  }

  /** Lets every waiter through, now and later. */
  open(): void {
    this.#isOpen = true;
    this.#open();
  }

  /** Resolves once the gate is open; rejects when `signal` aborts first. */
  wait(signal?: AbortSignal): Promise<void> {
    if (!signal) return this.#opened;
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      void this.#opened.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }
}

/** One hook call, as recorded. */
export interface HookCall {
  readonly hook: 'prepare' | 'commit' | 'abort';
  readonly txId: string;
  readonly payload?: string;
}

/** How a recording participant votes: fixed, or decided per call. */
export type VotePolicy = PrepareResult | ((txId: string, payload: string) => PrepareResult | Promise<PrepareResult>);

/** Hooks that record every call and vote by `policy`. */
export function recordingHooks(policy: VotePolicy = 'yes', calls: HookCall[] = []): { hooks: ParticipantHooks; calls: HookCall[] } {
  const hooks: ParticipantHooks = {
    prepare: async (txId, payload) => {
      const text = Buffer.from(payload).toString('utf8');
      calls.push({ hook: 'prepare', txId, payload: text });
      return typeof policy === 'function' ? policy(txId, text) : policy;
    },
    commit: (txId) => void calls.push({ hook: 'commit', txId }),
    abort: (txId) => void calls.push({ hook: 'abort', txId }),
  };
  return { hooks, calls };
}

/** A coordinator, participants and a client in one temp directory; `close()` tears it all down. */
export class TestCluster {
  readonly dir = tempDir();
  coordinator!: Coordinator;
  client!: VerdictClient;
  readonly participants = new Map<string, Participant>();
  readonly calls = new Map<string, HookCall[]>();
  /** Every incarnation ever started, so that `close()` leaves nothing running after a failure. */
  readonly #started: { close(): Promise<void> }[] = [];

  /** Starts a cluster with a coordinator (and its client). */
  static async start(options: Partial<CoordinatorOptions> = {}): Promise<TestCluster> {
    const cluster = new TestCluster();
    await cluster.startCoordinator(options);
    return cluster;
  }

  /** (Re)starts the coordinator on this cluster's data directory. */
  async startCoordinator(options: Partial<CoordinatorOptions> = {}): Promise<Coordinator> {
    this.coordinator = await Coordinator.start({ listen: '127.0.0.1:0', dataDir: join(this.dir.path, 'coordinator'), logger: testLogger, ...options });
    this.#started.push(this.coordinator);
    this.client?.close();
    this.client = new VerdictClient(this.coordinator.address);
    return this.coordinator;
  }

  /** The record of hook calls kept for `name` across its incarnations (for hand-written hooks). */
  callsOf(name: string): HookCall[] {
    let calls = this.calls.get(name);
    if (!calls) this.calls.set(name, (calls = []));
    return calls;
  }

  /**
   * Starts a participant with recording hooks (or `hooks`) and, unless `ready` is false, waits
   * until it is connected. Restarting a name reuses its data directory and its record of calls.
   */
  async participant(
    name: string,
    policy: VotePolicy = 'yes',
    options: Partial<ParticipantOptions> = {},
    { ready = true }: { ready?: boolean } = {},
  ): Promise<{ participant: Participant; calls: HookCall[] }> {
    // A restarted participant keeps appending to the same record of calls.
    const calls = this.callsOf(name);
    const hooks = options.hooks ?? recordingHooks(policy, calls).hooks;
    const participant = await Participant.start({
      name,
      coordinator: this.coordinator.address,
      dataDir: join(this.dir.path, name),
      hooks,
      logger: testLogger,
      ...options,
    });
    this.participants.set(name, participant);
    this.#started.push(participant);
    if (ready) await participant.ready();
    return { participant, calls };
  }

  /** Closes everything and removes the directory. */
  async close(): Promise<void> {
    this.client?.close();
    // Newest first, every incarnation (closing is idempotent): nothing keeps running after a failure.
    for (const s of [...this.#started].reverse()) await s.close();
    this.dir.cleanup();
  }
}
