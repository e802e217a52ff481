// Per-key shared/exclusive locks owned by transaction ids: what keeps the hooks of concurrent
// transactions from reading and writing the same keys. Pure bookkeeping (no I/O, clock or
// timers): the participant takes locks for a prepare hook, records them with PREPARED, restores
// them at start-up and releases them once the transaction's outcome is written.
//
// The table itself never waits: a lock that cannot be granted at once is refused with the
// holders in the way. The participant then votes NO (`lock conflict`), with one exception: when
// every holder's outcome is already decided here and only being applied, it waits for their
// release, bounded by the prepare's deadline. Why not wait otherwise (or wait-die): a holder may
// be in doubt for as long as a coordinator outage lasts, and the waits-for edges that make a
// deadlock run through other participants, where no participant can see them. A decided holder
// waits on nothing (commit and abort take no locks), so waiting for it cannot close a cycle, and
// it spares a client that commits one transaction after another (the call returns once the
// decision is durable, before the participants applied it) a conflict with its own last one.

import { mutant } from '../common/mutants.js';
import { ErrorCode, VerdictError } from '../errors.js';

/** How a key is locked: many shared holders, or one exclusive holder. */
export const LockMode = {
  /** Readers: any number of transactions may hold a key shared at once. */
  SHARED: 'shared',
  /** A writer (or a reader that must see no change): the only holder of the key. */
  EXCLUSIVE: 'exclusive',
} as const;
/** How a key is locked. */
export type LockMode = (typeof LockMode)[keyof typeof LockMode];

/** The reason a prepare gives when one of its locks conflicted: the vote is then NO. */
export const LOCK_CONFLICT_REASON = 'lock conflict';

/** One lock a transaction holds. */
export interface HeldLock {
  readonly key: string;
  readonly mode: LockMode;
}

/** Who holds a key, and how. */
export interface KeyHolders {
  readonly mode: LockMode;
  /** The holding transactions (exactly one when `mode` is exclusive). */
  readonly txIds: readonly string[];
}

/** The answer to `acquire`: granted, or refused with the transactions in the way. */
export type LockResult = { readonly granted: true } | { readonly granted: false; readonly holders: readonly string[] };

/** A lock could not be granted at once (no-wait): the prepare votes NO with `lock conflict`. */
export class LockConflictError extends VerdictError {
  override readonly name = 'LockConflictError';
  /** The key asked for. */
  readonly key: string;
  /** The mode asked for. */
  readonly mode: LockMode;
  /** The transactions holding the key when it was asked for. */
  readonly holders: readonly string[];

  constructor(txId: string, key: string, mode: LockMode, holders: readonly string[]) {
    super(ErrorCode.LOCK_CONFLICT, `${txId} cannot lock ${JSON.stringify(key)} ${mode}: held by ${holders.join(', ')}`, { txId, reason: LOCK_CONFLICT_REASON });
    this.key = key;
    this.mode = mode;
    this.holders = holders;
  }
}

/**
 * Whether `error` is a transaction that aborted because a participant's lock conflicted: the
 * one kind of abort worth retrying as is. (The vote's reason is application text carried to the
 * initiator, so this reads it: it is the SDK's own constant, not a message.)
 */
export function isLockConflictAbort(error: unknown): boolean {
  if (!(error instanceof VerdictError) || error.code !== ErrorCode.TX_ABORTED) return false;
  return error.reason !== undefined && error.reason.endsWith(`voted NO: ${LOCK_CONFLICT_REASON}`);
}

/**
 * A key's lock: its mode and holders. Most keys have one holder, kept as the string itself; an
 * array only once a second transaction shares the key.
 */
interface KeyLock {
  mode: LockMode;
  owners: string | string[];
}

const EMPTY: readonly HeldLock[] = [];
const GRANTED: LockResult = Object.freeze({ granted: true });

function ownedBy(lock: KeyLock, txId: string): boolean {
  return typeof lock.owners === 'string' ? lock.owners === txId : lock.owners.includes(txId);
}

function ownerCount(lock: KeyLock): number {
  return typeof lock.owners === 'string' ? 1 : lock.owners.length;
}

function ownersList(lock: KeyLock): string[] {
  return typeof lock.owners === 'string' ? [lock.owners] : [...lock.owners];
}

function addOwner(lock: KeyLock, txId: string): void {
  if (typeof lock.owners === 'string') lock.owners = [lock.owners, txId];
  else lock.owners.push(txId);
}

/** The lock table of one participant. */
export class LockManager {
  readonly #keys = new Map<string, KeyLock>();
  /** Each transaction's locks in the order taken (an array: most hold one or two). */
  readonly #byTx = new Map<string, HeldLock[]>();

  /** How many keys are locked. */
  get lockedKeys(): number {
    return this.#keys.size;
  }

  /** How many transactions hold at least one lock. */
  get holders(): number {
    return this.#byTx.size;
  }

  /**
   * Grants `txId` a lock on `key` in `mode` if no other transaction's lock is in the way, and
   * returns at once either way (never waits). Asking again for a lock already held (or a weaker
   * one) is granted and changes nothing; a shared lock held alone is upgraded to exclusive.
   */
  acquire(txId: string, key: string, mode: LockMode): LockResult {
    const lock = this.#keys.get(key);
    if (!lock) {
      this.#keys.set(key, { mode, owners: txId });
      this.#remember(txId, key, mode);
      return GRANTED;
    }
    const mine = ownedBy(lock, txId);
    if (mine && (lock.mode === LockMode.EXCLUSIVE || mode === LockMode.SHARED)) return GRANTED;
    if (mine && ownerCount(lock) === 1) {
      lock.mode = LockMode.EXCLUSIVE;
      this.#remember(txId, key, LockMode.EXCLUSIVE);
      return GRANTED;
    }
    if (!mine && mode === LockMode.SHARED && lock.mode === LockMode.SHARED) {
      addOwner(lock, txId);
      this.#remember(txId, key, mode);
      return GRANTED;
    }
    if (mutant('lock-conflicts-ignored')) {
      if (!mine) addOwner(lock, txId);
      this.#remember(txId, key, mode);
      return GRANTED;
    }
    return { granted: false, holders: ownersList(lock).filter((t) => t !== txId) };
  }

  /**
   * Releases every lock of `txId` and returns them; a second call returns none (a lock is
   * released exactly once).
   */
  release(txId: string): readonly HeldLock[] {
    const mine = this.#byTx.get(txId);
    if (!mine) return EMPTY;
    this.#byTx.delete(txId);
    for (const { key } of mine) {
      const lock = this.#keys.get(key);
      if (!lock) continue;
      const { owners } = lock;
      if (typeof owners === 'string') {
        if (owners === txId) this.#keys.delete(key);
        continue;
      }
      const i = owners.indexOf(txId);
      if (i < 0) continue;
      owners.splice(i, 1);
      if (owners.length === 0) this.#keys.delete(key);
      else if (owners.length === 1) lock.owners = owners[0] as string;
    }
    return mine;
  }

  /**
   * Takes back the locks a transaction held when it was prepared (read from its PREPARED record
   * at start-up). Throws LOG_CORRUPT when they conflict with locks restored before: two prepared
   * transactions can never have held them together, so the log is not what this SDK wrote.
   */
  restore(txId: string, locks: readonly HeldLock[]): void {
    for (const { key, mode } of locks) {
      const r = this.acquire(txId, key, mode);
      if (!r.granted) {
        throw new VerdictError(
          ErrorCode.LOG_CORRUPT,
          `prepared transactions ${txId} and ${r.holders.join(', ')} both hold a lock on ${JSON.stringify(key)}; refusing to start`,
          { txId },
        );
      }
    }
  }

  /** The locks `txId` holds, in the order it took them. */
  locksOf(txId: string): readonly HeldLock[] {
    return this.#byTx.get(txId) ?? EMPTY;
  }

  /** Who holds `key`, or undefined when nobody does. */
  holdersOf(key: string): KeyHolders | undefined {
    const lock = this.#keys.get(key);
    return lock ? { mode: lock.mode, txIds: ownersList(lock) } : undefined;
  }

  #remember(txId: string, key: string, mode: LockMode): void {
    const mine = this.#byTx.get(txId);
    if (!mine) {
      this.#byTx.set(txId, [{ key, mode }]);
      return;
    }
    const i = mine.findIndex((l) => l.key === key);
    // A new array element, never an edit: arrays handed out by locksOf and release stay as they were.
    if (i < 0) mine.push({ key, mode });
    else mine[i] = { key, mode };
  }
}
