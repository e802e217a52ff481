// The decision store of a coordinator group: the log's keys under a cluster prefix in etcd, every
// write an etcd transaction guarded by the writer's leadership (the leader key still has the
// create revision it had when this member was elected). A deposed leader's writes are refused by
// etcd itself, whatever its own clock believes; a refused or failed write breaks the store for good.
//
// Group commit: writes that arrive while a transaction is in flight go out together in the next.
// etcd caps the operations of one transaction (--max-txn-ops, 128 by default), so a group is cut
// into chunks, each its own transaction, applied one after the other. Why that keeps the log's
// atomicity (see also README "Running a coordinator group"):
// - A chunk boundary never falls inside one `write()` call of up to `maxOpsPerTxn` operations, so
//   each such call (a COMMIT record; an END summary with its index entry and the delete of its
//   open record) is all-or-nothing, as on LevelDB.
// - Calls grouped together are independent: the coordinator issues a record that depends on
//   another (an END after its COMMIT) only once the first one's write resolved, so both never
//   share a group. Any subset of a group landing is a state some order of single writes reaches.
// - Only garbage collection writes more than `maxOpsPerTxn` operations in one call. It puts the
//   raised horizon first and then deletes summaries below it, in order: any prefix of it leaves
//   each summary either present or covered by a durable horizon (FORGOTTEN), never absent below it.
// - A chunk that fails (refused, or unknown because etcd did not answer) fails every call in it and
//   after it, and the store refuses every later write: the coordinator stops, and the next leader
//   reads what etcd holds.

import type { Clock } from '../common/clock.js';
import { mutant } from '../common/mutants.js';
import type { DecisionStore, DecisionStoreStats, StoreOp, StoreRange } from '../coordinator/decision-store.js';
import { ErrorCode, VerdictError } from '../errors.js';
import type { EtcdClient, EtcdKeyValue } from './etcd-client.js';

/** etcd's default limit on the operations of one transaction (`--max-txn-ops`). */
export const DEFAULT_MAX_OPS_PER_TXN = 128;
/** Deadline of one etcd call made by the store, in ms. */
export const DEFAULT_ETCD_CALL_TIMEOUT_MS = 5_000;
/** Keys fetched per page of a range read. */
const RANGE_PAGE = 1_000;

/** Proof of leadership that every write carries: the leader key and its create revision. */
export interface LeaderFence {
  /** The full etcd key of the leader (with the cluster prefix). */
  readonly key: string;
  /** Its create revision when this member created it: the term, which no later term repeats. */
  readonly createRevision: string;
  /**
   * The value this member put in it (its node id and address). The same in every term of the
   * member, so it is no fence: only the per-node mutant compares it.
   */
  readonly value: string;
}

/** Options of an EtcdDecisionStore. */
export interface EtcdDecisionStoreOptions {
  /** The etcd client (shared; the store does not close it). */
  readonly client: EtcdClient;
  /** The cluster prefix, e.g. `/verdict/`; the log's keys go under `<prefix>log/`. */
  readonly prefix: string;
  /** The leadership every write is guarded by. */
  readonly fence: LeaderFence;
  /** The clock seam, for call deadlines. */
  readonly clock: Clock;
  /** The most operations one etcd transaction may carry (default 128, etcd's default). */
  readonly maxOpsPerTxn?: number;
  /** Deadline of one etcd call, in ms (default 5 s). */
  readonly callTimeoutMs?: number;
}

interface Pending {
  readonly ops: readonly StoreOp[];
  readonly force: boolean;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/** Decision records in etcd, written by the current leader only. */
export class EtcdDecisionStore implements DecisionStore {
  readonly location: string;
  readonly stats: DecisionStoreStats = { batches: 0, syncedBatches: 0, writes: 0 };
  readonly #client: EtcdClient;
  readonly #root: string;
  readonly #fence: LeaderFence;
  readonly #clock: Clock;
  readonly #maxOps: number;
  readonly #timeoutMs: number;
  #queue: Pending[] = [];
  #draining: Promise<void> | undefined;
  /** The first write failure: every later write is refused with it. */
  #broken: unknown;

  /** A store writing under `options.fence`; it makes no etcd call until used. */
  constructor(options: EtcdDecisionStoreOptions) {
    this.#client = options.client;
    this.#root = `${options.prefix}log/`;
    this.#fence = options.fence;
    this.#clock = options.clock;
    this.#maxOps = options.maxOpsPerTxn ?? DEFAULT_MAX_OPS_PER_TXN;
    this.#timeoutMs = options.callTimeoutMs ?? DEFAULT_ETCD_CALL_TIMEOUT_MS;
    this.location = `etcd ${this.#root}`;
  }

  #options(): { deadline: Date } {
    return { deadline: new Date(this.#clock.now() + this.#timeoutMs) };
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const value = await this.#client.get(this.#root + key).options(this.#options()).buffer();
    return value ?? undefined;
  }

  async *entries(range: StoreRange): AsyncIterable<readonly [string, Uint8Array]> {
    for await (const kv of this.#range(range)) yield [kv.key.toString('utf8').slice(this.#root.length), kv.value];
  }

  async *keys(range: StoreRange): AsyncIterable<string> {
    for await (const kv of this.#range(range)) yield kv.key.toString('utf8').slice(this.#root.length);
  }

  /** The key-values in `range`, in pages (linearizable reads: each page sees every write acknowledged before it). */
  async *#range(range: StoreRange): AsyncIterable<EtcdKeyValue> {
    let start = this.#root + range.gte;
    const end = this.#root + range.lt;
    let left = range.limit ?? Number.POSITIVE_INFINITY;
    while (left > 0) {
      const page = Math.min(RANGE_PAGE, left);
      const res = await this.#client.getAll().inRange({ start, end }).sort('Key', 'Ascend').limit(page).options(this.#options()).exec();
      for (const kv of res.kvs) yield kv;
      left -= res.kvs.length;
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || !last) return;
      start = `${last.key.toString('utf8')}\0`;
    }
  }

  write(ops: readonly StoreOp[], force: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#broken !== undefined) return reject(this.#refusal());
      this.#queue.push({ ops, force, resolve, reject });
      this.#draining ??= this.#drain();
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const group = this.#queue;
        this.#queue = [];
        await this.#commitGroup(group);
      }
    } finally {
      this.#draining = undefined;
    }
  }

  /** Commits a group in chunks; each call resolves once its chunk (the last of its chunks) landed. */
  async #commitGroup(group: readonly Pending[]): Promise<void> {
    let chunk: StoreOp[] = [];
    let waiting: Pending[] = [];
    let force = false;
    const flush = async (): Promise<void> => {
      if (chunk.length > 0) await this.#txn(chunk, force);
      for (const p of waiting) p.resolve();
      chunk = [];
      waiting = [];
      force = false;
    };
    let i = 0;
    try {
      for (; i < group.length; i++) {
        const p = group[i] as Pending;
        this.stats.writes++;
        // A call that would straddle a boundary starts a new chunk (only calls bigger than a chunk are split).
        if (chunk.length > 0 && chunk.length + p.ops.length > this.#maxOps) await flush();
        for (const op of p.ops) {
          if (chunk.length === this.#maxOps) {
            // A full chunk of a call bigger than a chunk: its caller waits for the rest of it.
            await this.#txn(chunk, force || p.force);
            chunk = [];
          }
          chunk.push(op);
        }
        force ||= p.force;
        waiting.push(p);
      }
      await flush();
    } catch (e) {
      this.#broken ??= e;
      for (const p of waiting) p.reject(e);
      for (const p of group.slice(i + 1)) p.reject(e);
      for (const p of this.#queue) p.reject(e);
      this.#queue = [];
    }
  }

  /** One etcd transaction: the operations, if this member still holds the leader key it created. */
  async #txn(ops: readonly StoreOp[], force: boolean): Promise<void> {
    const txn = this.#fenced().options(this.#options());
    const clauses = ops.map((op) =>
      op.type === 'put' ? this.#client.put(this.#root + op.key).value(Buffer.from(op.value.buffer, op.value.byteOffset, op.value.byteLength)) : this.#client.delete().key(this.#root + op.key),
    );
    const res = await txn.then(...clauses).commit();
    this.stats.batches++;
    if (force) this.stats.syncedBatches++;
    if (!res.succeeded) throw this.#deposed();
  }

  /** A transaction that applies only while this member still holds the leader key it created. */
  #fenced(): ReturnType<EtcdClient['if']> {
    // One mutant compares on a create revision that always holds (any key's is > -1): no fence at
    // all. The other compares who holds the key, not which term: a member's old term passes again.
    if (mutant('decision-write-unfenced')) return this.#client.if(this.#fence.key, 'Create', '>', -1);
    if (mutant('decision-write-fenced-per-node')) return this.#client.if(this.#fence.key, 'Value', '==', this.#fence.value);
    return this.#client.if(this.#fence.key, 'Create', '==', this.#fence.createRevision);
  }

  async compareAndSwap(key: string, expected: Uint8Array | undefined, value: Uint8Array): Promise<boolean> {
    if (this.#broken !== undefined) throw this.#refusal();
    const full = this.#root + key;
    let txn = this.#fenced();
    txn = expected === undefined ? txn.and(full, 'Create', '==', 0) : txn.and(full, 'Value', '==', Buffer.from(expected));
    const res = await txn.options(this.#options()).then(this.#client.put(full).value(Buffer.from(value))).commit();
    if (res.succeeded) return true;
    // Which comparison failed? A lost leadership is a refusal, not a changed value.
    const leader = await this.#client.get(this.#fence.key).options(this.#options()).exec();
    if (leader.kvs[0]?.create_revision !== this.#fence.createRevision) {
      this.#broken ??= this.#deposed();
      throw this.#broken;
    }
    return false;
  }

  async close(): Promise<void> {
    await this.#draining;
  }

  #deposed(): VerdictError {
    return new VerdictError(ErrorCode.NOT_LEADER, `etcd refused a decision-log write: this coordinator no longer holds the leader key ${this.#fence.key}`);
  }

  #refusal(): VerdictError {
    const cause = this.#broken;
    return new VerdictError(ErrorCode.UNAVAILABLE, `the decision log in ${this.location} refuses writes after a failed one (${(cause as Error)?.message ?? String(cause)})`, { cause });
  }
}
