// A bank as a Verdict participant: accounts in the participant's own store, a transfer leg per
// branch. Prepare reserves a debit as a hold (or votes NO on insufficient funds), commit applies
// the delta, abort releases the hold; every write rides the SDK's batch, so it lands exactly once.
//
// Store layout (JSON values): `acct/<id>` → balance, `hold/<txId>` → the prepared leg,
// `applied/<txId>` → the delta a commit applied (what an auditor checks), `meta/seed` → how the
// bank was opened. Amounts are integers.

import type { AbstractBatchOptions } from 'abstract-level';
import { ErrorCode, VerdictError } from '../errors.js';
import { Participant, type AppStore, type HookContext, type ParticipantHooks, type PrepareResult } from '../participant/index.js';
import { DEFAULT_ACCOUNTS, DEFAULT_INITIAL_BALANCE, type BankOptions } from './bank-options.js';

/** Key prefix of account balances. */
export const ACCOUNT_PREFIX = 'acct/';
/** Key prefix of prepared, undecided legs. */
export const HOLD_PREFIX = 'hold/';
/** Key prefix of the record each commit leaves: `applied/<txId>` → delta. */
export const APPLIED_PREFIX = 'applied/';
/** Written with the opening balances, in the same atomic batch. */
export const SEED_KEY = 'meta/seed';

/** One bank's part of a transfer: the branch payload, as JSON. */
export interface TransferLeg {
  /** Account id (the part after `acct/`). */
  readonly account: string;
  /** Negative debits, positive credits; a non-zero integer. */
  readonly delta: number;
}

/** Lifecycle of a bank. */
export type BankState = 'starting' | 'running' | 'closed';

/** A commit applied in memory whose outcome record is not durable yet. */
interface Unsettled {
  readonly leg: TransferLeg;
  readonly settled: Promise<void>;
  readonly settle: () => void;
}

/** The payload of a transfer leg. */
export function encodeLeg(leg: TransferLeg): string {
  return JSON.stringify({ account: leg.account, delta: leg.delta });
}

/** Reads a leg from a payload or a stored hold; a string says what is wrong with it. */
export function parseLeg(input: Uint8Array | unknown): TransferLeg | string {
  let value = input;
  if (input instanceof Uint8Array) {
    try {
      value = JSON.parse(Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8'));
    } catch {
      return 'the payload is not JSON';
    }
  }
  const { account, delta } = (value ?? {}) as { account?: unknown; delta?: unknown };
  if (typeof account !== 'string' || account === '') return 'the payload has no account';
  if (typeof delta !== 'number' || !Number.isSafeInteger(delta) || delta === 0) return 'the payload has no non-zero integer delta';
  return { account, delta };
}

/**
 * A bank participant.
 *
 * ```ts
 * const bank = await Bank.start({ name: 'bank-1', coordinator: '127.0.0.1:7070', dataDir: './data/bank-1' });
 * await client.transact([
 *   { participant: 'bank-1', payload: encodeLeg({ account: '3', delta: -5 }) },
 *   { participant: 'bank-2', payload: encodeLeg({ account: '7', delta: 5 }) },
 * ]);
 * ```
 */
export class Bank {
  readonly #options: BankOptions;
  readonly #balances = new Map<string, number>();
  /** Prepared legs by tx id, debits and credits alike. */
  readonly #holds = new Map<string, TransferLeg>();
  /** Sum of the prepared debits per account: what is not available to a new debit. */
  readonly #held = new Map<string, number>();
  readonly #unsettled = new Map<string, Unsettled>();
  /** The tx whose commit an account waits on, if any. */
  readonly #unsettledByAccount = new Map<string, string>();
  /** Commits waiting on an account, by the signal that cancels them. */
  readonly #waiters = new Map<AbortSignal, Set<(reason: unknown) => void>>();
  #accountIds: string[] = [];
  readonly #loaded: Promise<void>;
  #markLoaded!: (error?: unknown) => void;
  #participant: Participant | undefined;
  #state: BankState = 'starting';
  #closing: Promise<void> | undefined;

  private constructor(options: BankOptions) {
    this.#options = options;
    this.#loaded = new Promise<void>((resolve, reject) => {
      this.#markLoaded = (error) => (error === undefined ? resolve() : reject(error));
    });
    // Hooks that wait on a failed start only fail; nobody else awaits this promise.
    this.#loaded.catch(() => undefined);
  }

  /**
   * Opens the bank: starts its participant, re-reserves the holds of transactions in doubt,
   * opens the accounts when the store has none (one synced batch), and loads the balances.
   * Hooks wait until this is done. The session connects in the background (see `ready()`).
   */
  static async start(options: BankOptions): Promise<Bank> {
    const bank = new Bank(options);
    const participant = await Participant.start({
      name: options.name,
      coordinator: options.coordinator,
      dataDir: options.dataDir,
      hooks: bank.#hooks,
      ...(options.protocol ? { protocol: options.protocol } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    bank.#participant = participant;
    participant.on('finished', (txId) => bank.#onFinished(txId));
    // Before any I/O: once a decision arrives the transaction is no longer listed as in doubt.
    for (const { txId, payload } of participant.inDoubt()) {
      const leg = parseLeg(payload);
      if (typeof leg !== 'string') bank.#addHold(txId, leg);
    }
    try {
      await bank.#load(participant.store);
    } catch (e) {
      bank.#markLoaded(e);
      await participant.close();
      bank.#state = 'closed';
      throw e;
    }
    bank.#state = 'running';
    bank.#markLoaded();
    return bank;
  }

  /** The bank's participant name. */
  get name(): string {
    return this.#options.name;
  }

  /** Lifecycle state. */
  get state(): BankState {
    return this.#state;
  }

  /** The underlying participant (its store, events and in-doubt list). */
  get participant(): Participant {
    if (!this.#participant) throw new VerdictError(ErrorCode.WRONG_STATE, `bank ${this.name} is not started`);
    return this.#participant;
  }

  /** Account ids, in the order they sort in the store. */
  get accounts(): readonly string[] {
    return this.#accountIds;
  }

  /** The balance of `account` as the bank sees it now (committed transfers applied). */
  balanceOf(account: string): number | undefined {
    return this.#balances.get(account);
  }

  /**
   * True when nothing is pending here: no prepared leg, no commit awaiting its outcome record,
   * nothing in doubt.
   */
  get idle(): boolean {
    return this.#holds.size === 0 && this.#unsettled.size === 0 && (this.#participant?.inDoubt().length ?? 0) === 0;
  }

  /** Pending work, for diagnostics: prepared legs and commits not yet durable. */
  get pending(): { holds: number; unsettled: number; inDoubt: number } {
    return { holds: this.#holds.size, unsettled: this.#unsettled.size, inDoubt: this.#participant?.inDoubt().length ?? 0 };
  }

  /** Resolves when the session to the coordinator is up. */
  ready(): Promise<void> {
    return this.participant.ready();
  }

  /** Closes the participant; prepared legs stay in doubt until the next start. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#participant?.close();
      this.#state = 'closed';
    })();
    return this.#closing;
  }

  // ---- hooks --------------------------------------------------------------------------------

  readonly #hooks: ParticipantHooks = {
    prepare: async (txId, payload, { batch }): Promise<PrepareResult> => {
      await this.#loaded;
      const leg = parseLeg(payload);
      if (typeof leg === 'string') return { vote: 'no', reason: leg };
      const balance = this.#balances.get(leg.account);
      if (balance === undefined) return { vote: 'no', reason: `no account ${leg.account} at ${this.name}` };
      if (this.#holds.has(txId)) return 'yes';
      if (leg.delta < 0) {
        // Only money that no other prepared debit has reserved may be promised.
        const available = balance - (this.#held.get(leg.account) ?? 0);
        if (available < -leg.delta) {
          return { vote: 'no', reason: `insufficient funds: account ${leg.account} has ${available} available, ${-leg.delta} needed` };
        }
      }
      this.#addHold(txId, leg);
      batch.put(HOLD_PREFIX + txId, leg);
      return 'yes';
    },

    commit: async (txId, ctx) => {
      await this.#loaded;
      const leg = await this.#applyInMemory(txId, ctx);
      // The new balance carries every earlier commit on the account, all of them durable already.
      ctx.batch.put(ACCOUNT_PREFIX + leg.account, this.#balances.get(leg.account));
      ctx.batch.del(HOLD_PREFIX + txId);
      ctx.batch.put(APPLIED_PREFIX + txId, leg.delta);
    },

    abort: async (txId, { batch }) => {
      await this.#loaded;
      this.#removeHold(txId);
      batch.del(HOLD_PREFIX + txId);
    },
  };

  /**
   * Applies the committed leg of `txId` to the in-memory balance, once. A commit on an account
   * waits until the previous commit on it is durable: otherwise a later write could carry a delta
   * whose own outcome record never made it, and a restart would apply it a second time.
   */
  async #applyInMemory(txId: string, { signal }: HookContext): Promise<TransferLeg> {
    const again = this.#unsettled.get(txId);
    // The hook ran before but its writes were dropped (it is being retried): the balance already
    // holds this delta, so only the writes are staged again.
    if (again) return again.leg;
    const leg = this.#holds.get(txId) ?? (await this.#storedHold(txId));
    for (let other = this.#unsettledByAccount.get(leg.account); other !== undefined; other = this.#unsettledByAccount.get(leg.account)) {
      const waitFor = this.#unsettled.get(other);
      if (!waitFor) break;
      await this.#untilSettled(waitFor.settled, signal);
    }
    const balance = this.#balances.get(leg.account);
    if (balance === undefined) throw new VerdictError(ErrorCode.INTERNAL, `bank ${this.name} has no account ${leg.account} for ${txId}`, { txId });
    this.#balances.set(leg.account, balance + leg.delta);
    this.#removeHold(txId);
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    this.#unsettled.set(txId, { leg, settled, settle });
    this.#unsettledByAccount.set(leg.account, txId);
    return leg;
  }

  /** The hold recorded with PREPARED, for a commit that arrives before `start` re-reserved it. */
  async #storedHold(txId: string): Promise<TransferLeg> {
    const leg = parseLeg(await this.participant.store.get(HOLD_PREFIX + txId));
    if (typeof leg === 'string') {
      throw new VerdictError(ErrorCode.INTERNAL, `bank ${this.name} has no readable hold for committed ${txId} (${leg})`, { txId });
    }
    return leg;
  }

  /**
   * Waits for `settled`, or rejects when `signal` aborts (the participant is closing). One abort
   * listener per signal serves every waiter: many commits may wait on the same signal at once.
   */
  #untilSettled(settled: Promise<void>, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    let waiters = this.#waiters.get(signal);
    if (!waiters) {
      const set = new Set<(reason: unknown) => void>();
      waiters = set;
      this.#waiters.set(signal, set);
      const rejectAll = (): void => {
        this.#waiters.delete(signal);
        for (const reject of set) reject(signal.reason);
      };
      signal.addEventListener('abort', rejectAll, { once: true });
    }
    const set = waiters;
    return new Promise((resolve, reject) => {
      set.add(reject);
      void settled.then(() => {
        set.delete(reject);
        resolve();
      });
    });
  }

  #onFinished(txId: string): void {
    const entry = this.#unsettled.get(txId);
    if (!entry) return;
    this.#unsettled.delete(txId);
    if (this.#unsettledByAccount.get(entry.leg.account) === txId) this.#unsettledByAccount.delete(entry.leg.account);
    entry.settle();
  }

  #addHold(txId: string, leg: TransferLeg): void {
    this.#holds.set(txId, leg);
    if (leg.delta < 0) this.#held.set(leg.account, (this.#held.get(leg.account) ?? 0) - leg.delta);
  }

  #removeHold(txId: string): void {
    const leg = this.#holds.get(txId);
    if (!leg) return;
    this.#holds.delete(txId);
    if (leg.delta < 0) {
      const left = (this.#held.get(leg.account) ?? 0) + leg.delta;
      if (left > 0) this.#held.set(leg.account, left);
      else this.#held.delete(leg.account);
    }
  }

  // ---- opening ------------------------------------------------------------------------------

  async #load(store: AppStore): Promise<void> {
    if ((await store.get(SEED_KEY)) === undefined) {
      // One synced batch with its marker: the accounts exist entirely or not at all.
      const accounts = this.#options.accounts ?? DEFAULT_ACCOUNTS;
      const balance = this.#options.initialBalance ?? DEFAULT_INITIAL_BALANCE;
      if (!Number.isSafeInteger(accounts) || accounts < 1 || !Number.isSafeInteger(balance) || balance < 0) {
        throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `bank ${this.name}: accounts must be ≥ 1 and the opening balance a non-negative integer`);
      }
      const ops: { type: 'put'; key: string; value: unknown }[] = Array.from({ length: accounts }, (_, i) => ({
        type: 'put',
        key: `${ACCOUNT_PREFIX}${i + 1}`,
        value: balance,
      }));
      ops.push({ type: 'put', key: SEED_KEY, value: { accounts, balance } });
      // A sublevel hands its options to the LevelDB below, which knows `sync` (its types do not).
      await store.batch(ops, { sync: true } as AbstractBatchOptions<string, unknown>);
    }
    for await (const [key, value] of store.iterator({ gte: ACCOUNT_PREFIX, lt: prefixEnd(ACCOUNT_PREFIX) })) {
      if (typeof value !== 'number') throw new VerdictError(ErrorCode.LOG_CORRUPT, `bank ${this.name}: ${key} is not a balance`);
      this.#balances.set(key.slice(ACCOUNT_PREFIX.length), value);
    }
    this.#accountIds = [...this.#balances.keys()];
  }
}

/** What an auditor reads from one bank's store. */
export interface BankLedger {
  /** Balance by account id. */
  readonly balances: ReadonlyMap<string, number>;
  /** Sum of the balances. */
  readonly total: number;
  /** Delta applied by each committed transaction, by tx id. */
  readonly applied: ReadonlyMap<string, number>;
  /** Tx ids still holding a prepared leg. */
  readonly holds: readonly string[];
}

/** Reads balances, applied transactions and open holds from a bank's store (a consistent snapshot). */
export async function readLedger(store: AppStore): Promise<BankLedger> {
  const balances = new Map<string, number>();
  const applied = new Map<string, number>();
  const holds: string[] = [];
  let total = 0;
  for await (const [key, value] of store.iterator()) {
    if (key.startsWith(ACCOUNT_PREFIX)) {
      balances.set(key.slice(ACCOUNT_PREFIX.length), value as number);
      total += value as number;
    } else if (key.startsWith(APPLIED_PREFIX)) {
      applied.set(key.slice(APPLIED_PREFIX.length), value as number);
    } else if (key.startsWith(HOLD_PREFIX)) {
      holds.push(key.slice(HOLD_PREFIX.length));
    }
  }
  return { balances, total, applied, holds };
}

/** The smallest key above every key with `prefix` ('/' + 1 is '0'). */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
