// A bank as a Verdict participant: accounts in the participant's own store, a transfer leg per
// branch. The hooks follow the SDK's pattern for shared keys: prepare locks the account
// exclusively, reads its committed balance under the lock, checks it and stages a hold (or votes
// NO); commit, with the lock still held, reads the balance again and stages balance + delta;
// abort drops the hold. Every write rides the SDK's batch, so it lands exactly once, and the lock
// is released only once that batch is written: the next transaction on the account reads it.
//
// Store layout (JSON values): `acct/<id>` → balance, `hold/<txId>` → the prepared leg,
// `applied/<txId>` → the delta a commit applied (what an auditor checks), `meta/seed` → how the
// bank was opened. Amounts are integers.

import type { AbstractBatchOptions } from 'abstract-level';
import { ErrorCode, VerdictError } from '../errors.js';
import { Participant, type AppStore, type ParticipantHooks, type PrepareResult } from '../participant/index.js';
import { Outcome } from '../protocol/types.js';
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
  /** Committed balances (what the store holds once every written commit is counted). */
  readonly #balances = new Map<string, number>();
  /** Balances staged by commit hooks, applied to `#balances` once their outcome is written. */
  readonly #staged = new Map<string, { readonly account: string; readonly balance: number }>();
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
   * Opens the bank: starts its participant (which takes back the locks of transactions in doubt
   * before it serves anything), opens the accounts when the store has none (one synced batch),
   * and loads the balances. Hooks wait until this is done. The session connects in the
   * background (see `ready()`).
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
      ...options.security,
    });
    bank.#participant = participant;
    participant.on('finished', (txId, outcome) => bank.#onFinished(txId, outcome));
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

  /** True when nothing is pending here: no transaction live (preparing, in doubt or applying). */
  get idle(): boolean {
    return (this.#participant?.liveCount ?? 0) === 0 && this.#staged.size === 0;
  }

  /** Pending work, for diagnostics: live transactions, commits not yet written, in doubt. */
  get pending(): { holds: number; unsettled: number; inDoubt: number } {
    return { holds: this.#participant?.liveCount ?? 0, unsettled: this.#staged.size, inDoubt: this.#participant?.inDoubt().length ?? 0 };
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
    prepare: async (txId, payload, { lock, get, batch }): Promise<PrepareResult> => {
      await this.#loaded;
      const leg = parseLeg(payload);
      if (typeof leg === 'string') return { vote: 'no', reason: leg };
      if (!this.#balances.has(leg.account)) return { vote: 'no', reason: `no account ${leg.account} at ${this.name}` };
      // Held until this transaction's outcome is written: no other transaction reads or writes
      // the account in between, so the balance read here is the one commit will change.
      await lock(ACCOUNT_PREFIX + leg.account, 'exclusive');
      const balance = (await get(ACCOUNT_PREFIX + leg.account)) as number;
      if (balance + leg.delta < 0) {
        return { vote: 'no', reason: `insufficient funds: account ${leg.account} has ${balance}, ${-leg.delta} needed` };
      }
      batch.put(HOLD_PREFIX + txId, leg);
      return 'yes';
    },

    commit: async (txId, { get, batch }) => {
      await this.#loaded;
      const leg = parseLeg(await get(HOLD_PREFIX + txId));
      if (typeof leg === 'string') throw new VerdictError(ErrorCode.INTERNAL, `bank ${this.name} has no readable hold for committed ${txId} (${leg})`, { txId });
      // Under the lock: the stored balance carries every earlier commit on the account.
      const balance = (await get(ACCOUNT_PREFIX + leg.account)) as number;
      batch.put(ACCOUNT_PREFIX + leg.account, balance + leg.delta);
      batch.del(HOLD_PREFIX + txId);
      batch.put(APPLIED_PREFIX + txId, leg.delta);
      this.#staged.set(txId, { account: leg.account, balance: balance + leg.delta });
    },

    abort: async (txId, { batch }) => {
      await this.#loaded;
      batch.del(HOLD_PREFIX + txId);
    },
  };

  #onFinished(txId: string, outcome: Outcome | undefined): void {
    const staged = this.#staged.get(txId);
    if (!staged) return;
    this.#staged.delete(txId);
    if (outcome === Outcome.COMMITTED) this.#balances.set(staged.account, staged.balance);
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
