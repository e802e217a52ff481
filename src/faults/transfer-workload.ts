// A workload of concurrent transfers between accounts at different banks, and its history: every
// attempt with what the initiator was told. Each transfer is `begin` then `commit`, so every
// attempt that got as far as Commit has a tx id that can be looked up after the run. An answer the
// initiator cannot trust (the call timed out, the coordinator was unreachable) is recorded as
// `unknown`, like Jepsen's `info`: the checker resolves it from the coordinator later, and it is
// never read as a failure. The transfers come from a seeded plan: the n-th transfer of a seed is
// always the same, however the workers interleave.

import { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { VerdictClient } from '../client/client.js';
import { encodeLeg } from '../demo/bank.js';
import type { AccountRef } from '../demo/audit.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { Prng } from '../sim/prng.js';

/** The workload's defaults. */
export const DEFAULT_CONCURRENCY = 6;
/** Transaction timeout given to Begin, in ms: short, so that faults longer than it make aborts. */
export const DEFAULT_TX_TIMEOUT_MS = 1_500;
/** Deadline of every client call, in ms: a call still open after it is an unknown outcome. */
export const DEFAULT_CALL_TIMEOUT_MS = 4_000;
/** Largest amount of an ordinary transfer. */
export const DEFAULT_MAX_AMOUNT = 40;
/** Share of transfers that ask for more than all the money there is (they must abort on a NO vote). */
export const DEFAULT_OVERDRAFT_RATIO = 0.1;
/** Pause of a worker after an attempt that reached no coordinator, in ms (pacing, not waiting on anything). */
export const UNREACHABLE_PAUSE_MS = 100;
/** Upper bound on the attempts of one run, so a history never grows without bound. */
export const DEFAULT_MAX_ATTEMPTS = 20_000;

/** What the initiator learnt of one attempt. */
export type ObservedOutcome =
  /** Commit answered committed. */
  | 'committed'
  /** Commit answered TX_ABORTED. */
  | 'aborted'
  /** Commit failed in a way that says nothing about the outcome (deadline, unavailable, …). */
  | 'unknown'
  /** Begin failed: no tx id, no branch was ever named, so nothing can have happened. */
  | 'not-begun';

/** One transfer attempt, as the initiator saw it. */
export interface TransferAttempt {
  /** Position in the seeded plan. */
  readonly seq: number;
  readonly from: AccountRef;
  readonly to: AccountRef;
  readonly amount: number;
  /** Asks for more than all the money there is: must never commit. */
  readonly overdraft: boolean;
  readonly txId: string | undefined;
  readonly observed: ObservedOutcome;
  /** The error code of a failed call, with its message. */
  readonly error: string | undefined;
  readonly startedAt: number;
  readonly endedAt: number;
}

/** A bank the workload moves money between. */
export interface WorkloadBank {
  readonly name: string;
  /** Account ids (`1` … `N` for a demo bank). */
  readonly accounts: readonly string[];
}

/** Options of a transfer workload. */
export interface TransferWorkloadOptions {
  /** The coordinator's `host:port`, or a coordinator group's members (the client follows the leader). */
  readonly address: string | readonly string[];
  /** At least two banks: every transfer goes between two different ones. */
  readonly banks: readonly WorkloadBank[];
  /** The seed of the transfer plan. */
  readonly seed: number;
  /** All the money there is (an overdraft asks for more than this). */
  readonly totalMoney: number;
  readonly concurrency?: number;
  readonly txTimeoutMs?: number;
  readonly callTimeoutMs?: number;
  readonly maxAmount?: number;
  readonly overdraftRatio?: number;
  readonly maxAttempts?: number;
}

/** Events: `attempt` after every finished attempt. */
export interface TransferWorkloadEvents {
  attempt: [attempt: TransferAttempt];
}

/** Runs transfers with `concurrency` workers until stopped. */
export class TransferWorkload extends EventEmitter<TransferWorkloadEvents> {
  readonly #options: TransferWorkloadOptions;
  readonly #attempts: TransferAttempt[] = [];
  #nextSeq = 0;
  #stopped = false;
  #running: Promise<void> | undefined;

  constructor(options: TransferWorkloadOptions) {
    super();
    if (options.banks.length < 2) throw new RangeError('a transfer workload needs at least two banks');
    this.#options = options;
  }

  /** Every finished attempt, in the order they finished. */
  get attempts(): readonly TransferAttempt[] {
    return this.#attempts;
  }

  /** Whether workers are running. */
  get running(): boolean {
    return this.#running !== undefined && !this.#stopped;
  }

  /** Starts the workers; after `stop`, starts them again (the plan goes on where it stopped). */
  start(): void {
    if (this.running) return;
    this.#stopped = false;
    const workers = Array.from({ length: this.#options.concurrency ?? DEFAULT_CONCURRENCY }, () => this.#worker());
    // Workers of an earlier start that are still finishing their last attempt count too.
    this.#running = Promise.all([this.#running, ...workers]).then(() => undefined);
  }

  /** Stops taking new transfers and resolves once every attempt in flight finished (bounded by the call deadline). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }

  /** Resolves once `count` more attempts (of any outcome) have finished; rejects after `timeoutMs`. */
  async whenMore(count: number, timeoutMs: number, matching: (a: TransferAttempt) => boolean = () => true): Promise<void> {
    if (count <= 0) return;
    let seen = 0;
    await new Promise<void>((resolve, reject) => {
      const onAttempt = (a: TransferAttempt): void => {
        if (!matching(a) || ++seen < count) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`only ${seen} of ${count} awaited transfers finished within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('attempt', onAttempt);
      };
      this.on('attempt', onAttempt);
    });
  }

  /** The `seq`-th transfer of the plan: the same for a seed whatever the interleaving. */
  plan(seq: number): Pick<TransferAttempt, 'seq' | 'from' | 'to' | 'amount' | 'overdraft'> {
    const { banks, seed, totalMoney } = this.#options;
    const rng = new Prng((seed ^ Math.imul(seq + 1, 0x9e3779b1)) >>> 0);
    const fromIndex = rng.int(0, banks.length - 1);
    const toIndex = (fromIndex + rng.int(1, banks.length - 1)) % banks.length;
    const fromBank = banks[fromIndex] as WorkloadBank;
    const toBank = banks[toIndex] as WorkloadBank;
    const overdraft = rng.chance(this.#options.overdraftRatio ?? DEFAULT_OVERDRAFT_RATIO);
    const amount = overdraft ? totalMoney + rng.int(1, 100) : rng.int(1, this.#options.maxAmount ?? DEFAULT_MAX_AMOUNT);
    return {
      seq,
      from: { bank: fromBank.name, account: rng.pick(fromBank.accounts) },
      to: { bank: toBank.name, account: rng.pick(toBank.accounts) },
      amount,
      overdraft,
    };
  }

  async #worker(): Promise<void> {
    const { address, callTimeoutMs = DEFAULT_CALL_TIMEOUT_MS, maxAttempts = DEFAULT_MAX_ATTEMPTS } = this.#options;
    // One client per worker: after the coordinator was unreachable, a fresh channel connects at
    // once instead of waiting out grpc's reconnect backoff (seconds, growing).
    let client = new VerdictClient(address, { callTimeoutMs });
    try {
      while (!this.#stopped && this.#nextSeq < maxAttempts) {
        const attempt = await this.#transfer(client, this.#nextSeq++);
        this.#attempts.push(attempt);
        this.emit('attempt', attempt);
        if (attempt.observed === 'not-begun' || attempt.observed === 'unknown') {
          client.close();
          client = new VerdictClient(address, { callTimeoutMs });
          if (!this.#stopped) await delay(UNREACHABLE_PAUSE_MS);
        }
      }
    } finally {
      client.close();
    }
  }

  async #transfer(client: VerdictClient, seq: number): Promise<TransferAttempt> {
    const planned = this.plan(seq);
    const startedAt = Date.now();
    const done = (observed: ObservedOutcome, txId: string | undefined, error?: unknown): TransferAttempt => ({
      ...planned,
      txId,
      observed,
      error: error === undefined ? undefined : describeError(error),
      startedAt,
      endedAt: Date.now(),
    });
    let txId: string;
    try {
      ({ txId } = await client.begin({ timeoutMs: this.#options.txTimeoutMs ?? DEFAULT_TX_TIMEOUT_MS }));
    } catch (e) {
      return done('not-begun', undefined, e);
    }
    try {
      await client.commit(txId, [
        { participant: planned.from.bank, payload: encodeLeg({ account: planned.from.account, delta: -planned.amount }) },
        { participant: planned.to.bank, payload: encodeLeg({ account: planned.to.account, delta: planned.amount }) },
      ]);
      return done('committed', txId);
    } catch (e) {
      return done(e instanceof VerdictError && e.code === ErrorCode.TX_ABORTED ? 'aborted' : 'unknown', txId, e);
    }
  }
}

function describeError(e: unknown): string {
  if (e instanceof VerdictError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}
