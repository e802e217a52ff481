// The contexts the participant hands its hooks. One object per hook call, with its methods on the
// prototype: the functions a hook may take out of it (`const { lock, batch } = ctx`) are made
// only when it reads them, so a hook that reads nothing costs one small object per call. A
// prepare at 64 in flight ran with seven closures made for it whether used or not.

import type { Clock, Timer } from '../common/clock.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { LockConflictError, LockMode, type LockManager } from './lock-manager.js';
import type { StagedOp } from './participant-log.js';
import type { HookContext, PrepareContext, StagedWrites } from './participant-options.js';

/** What a hook context needs from its participant. */
export interface HookHost {
  readonly clock: Clock;
  readonly locks: LockManager;
  /** Aborted when the participant closes. */
  readonly closeSignal: AbortSignal;
  /** Whether `txId`'s outcome is decided here and being applied. */
  isApplying(txId: string): boolean;
  /** Resolves once `txId` released its locks, at `deadline`, or when the participant closes. */
  untilReleased(txId: string, deadline: number): Promise<void>;
  /** What a hook stages into (`apply`: a commit or abort hook). */
  staging(ops: StagedOp[], apply: boolean): StagedWrites;
  /** A hook's read of `key`: its staged writes, then `prepared`'s, then the store. */
  read(key: string, ops: readonly StagedOp[], prepared: readonly StagedOp[] | undefined): Promise<unknown>;
  /** Checks a key as a staged (or locked) key; throws INVALID_ARGUMENT. */
  checkKey(key: unknown): string;
  /** The longest key a lock may take (the same limit as a staged key). */
  readonly maxKeyLength: number;
}

/** What `lock` returns when the lock is granted at once. */
const GRANTED: Promise<void> = Promise.resolve();

/** The context of one commit or abort hook call. */
export class ApplyContext implements HookContext {
  readonly deadline = Infinity;
  readonly #host: HookHost;
  readonly #ops: StagedOp[];
  readonly #prepared: readonly StagedOp[] | undefined;
  readonly #apply: boolean;
  #batch: StagedWrites | undefined;
  #get: ((key: string) => Promise<unknown>) | undefined;

  /**
   * `ops` receives the hook's staged writes; `prepared` are its prepare's, not written yet;
   * `apply` is false only for the mutant that re-runs a commit hook.
   */
  constructor(host: HookHost, ops: StagedOp[], prepared: readonly StagedOp[] | undefined, apply = true) {
    this.#host = host;
    this.#ops = ops;
    this.#prepared = prepared;
    this.#apply = apply;
  }

  get signal(): AbortSignal {
    return this.#host.closeSignal;
  }

  get batch(): StagedWrites {
    return (this.#batch ??= this.#host.staging(this.#ops, this.#apply));
  }

  get get(): (key: string) => Promise<unknown> {
    return (this.#get ??= (key) => this.#host.read(key, this.#ops, this.#prepared));
  }
}

/**
 * The context of one prepare hook call. `finish` ends it: a lock asked for afterwards is refused,
 * the deadline timer of a signal that was read is cleared, and the first lock conflict (a NO
 * whatever the hook returned) is reported.
 */
export class PrepareHookContext implements PrepareContext {
  readonly deadline: number;
  readonly onePhase: boolean;
  readonly #host: HookHost;
  readonly #txId: string;
  readonly #ops: StagedOp[];
  #running = true;
  #conflict: LockConflictError | undefined;
  #signal: AbortSignal | undefined;
  #timer: Timer | undefined;
  #batch: StagedWrites | undefined;
  #lock: ((key: string, mode?: LockMode) => Promise<void>) | undefined;
  #get: ((key: string) => Promise<unknown>) | undefined;

  constructor(host: HookHost, txId: string, ops: StagedOp[], deadline: number, onePhase: boolean) {
    this.#host = host;
    this.#txId = txId;
    this.#ops = ops;
    this.deadline = deadline;
    this.onePhase = onePhase;
  }

  /** Aborted at the prepare deadline or when the participant closes (made, with its timer, when first read). */
  get signal(): AbortSignal {
    if (!this.#signal) {
      const controller = new AbortController();
      const { clock } = this.#host;
      const txId = this.#txId;
      this.#timer = clock.setTimer(() => controller.abort(new VerdictError(ErrorCode.OUTCOME_UNKNOWN, 'prepare deadline reached', { txId })), Math.max(0, this.deadline - clock.now()));
      this.#signal = AbortSignal.any([controller.signal, this.#host.closeSignal]);
    }
    return this.#signal;
  }

  get batch(): StagedWrites {
    return (this.#batch ??= this.#host.staging(this.#ops, false));
  }

  get get(): (key: string) => Promise<unknown> {
    return (this.#get ??= (key) => this.#host.read(key, this.#ops, undefined));
  }

  get lock(): (key: string, mode?: LockMode) => Promise<void> {
    return (this.#lock ??= (key, mode = LockMode.EXCLUSIVE) => {
      // The common case, a lock granted at once, allocates no promise of its own.
      if (this.#running && typeof key === 'string' && key.length > 0 && key.length <= this.#host.maxKeyLength && (mode === LockMode.EXCLUSIVE || mode === LockMode.SHARED)) {
        if (this.#host.locks.acquire(this.#txId, key, mode).granted) return GRANTED;
      }
      return this.#slowLock(key, mode);
    });
  }

  /** Ends the hook's call; returns the first lock conflict it met, if any. */
  finish(): LockConflictError | undefined {
    this.#running = false;
    if (this.#timer) this.#host.clock.clearTimer(this.#timer);
    return this.#conflict;
  }

  async #slowLock(key: string, mode: LockMode): Promise<void> {
    const host = this.#host;
    const txId = this.#txId;
    // A lock key is kept in the PREPARED record: the same limits as a staged key.
    host.checkKey(key);
    if (mode !== LockMode.SHARED && mode !== LockMode.EXCLUSIVE) {
      throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `lock mode must be 'shared' or 'exclusive', got ${JSON.stringify(mode)}`, { txId });
    }
    for (;;) {
      if (!this.#running) throw new VerdictError(ErrorCode.WRONG_STATE, `lock(${JSON.stringify(key)}) after the prepare hook of ${txId} returned`, { txId });
      const r = host.locks.acquire(txId, key, mode);
      if (r.granted) return;
      // Wait only for holders whose outcome is decided and being applied here: they wait on
      // nothing themselves (commit and abort take no lock), so no cycle can form, and the
      // wait ends at the prepare deadline whatever happens. Any other holder is a NO now.
      const holder = r.holders.find((h) => !host.isApplying(h)) === undefined ? r.holders[0] : undefined;
      if (holder === undefined || host.clock.now() >= this.deadline || host.closeSignal.aborted) {
        const error = new LockConflictError(txId, key, mode, r.holders);
        this.#conflict ??= error;
        throw error;
      }
      await host.untilReleased(holder, this.deadline);
    }
  }
}
