// Test support: real coordinators and participants on 127.0.0.1:0 in fresh temp directories,
// with recording hooks, and a bounded poll for conditions (never a sleep).

import { mkdtempSync, rmSync } from 'node:fs';
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

  /** Starts a cluster with a coordinator (and its client). */
  static async start(options: Partial<CoordinatorOptions> = {}): Promise<TestCluster> {
    const cluster = new TestCluster();
    await cluster.startCoordinator(options);
    return cluster;
  }

  /** (Re)starts the coordinator on this cluster's data directory. */
  async startCoordinator(options: Partial<CoordinatorOptions> = {}): Promise<Coordinator> {
    this.coordinator = await Coordinator.start({ listen: '127.0.0.1:0', dataDir: join(this.dir.path, 'coordinator'), logger: testLogger, ...options });
    this.client?.close();
    this.client = new VerdictClient(this.coordinator.address);
    return this.coordinator;
  }

  /** Starts a participant with recording hooks (or `hooks`) and waits until it is connected. */
  async participant(
    name: string,
    policy: VotePolicy = 'yes',
    options: Partial<ParticipantOptions> = {},
  ): Promise<{ participant: Participant; calls: HookCall[] }> {
    // A restarted participant keeps appending to the same record of calls.
    const calls = this.calls.get(name) ?? [];
    this.calls.set(name, calls);
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
    await participant.ready();
    return { participant, calls };
  }

  /** Closes everything and removes the directory. */
  async close(): Promise<void> {
    this.client?.close();
    for (const p of this.participants.values()) await p.close();
    await this.coordinator?.close();
    this.dir.cleanup();
  }
}
