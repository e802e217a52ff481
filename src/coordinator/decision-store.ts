// The storage seam under the decision log: a small ordered key-value store with atomic,
// group-committed writes and one compare-and-swap. The decision log owns the layout (which keys,
// which values); a store only keeps bytes. LevelDB is the default (one process owns a directory);
// an etcd store (src/cluster) shares one log between a group of coordinators, and the simulator
// can drive a linearizable store with leases through the same interface.

/** One operation of an atomic write: keys are the log's own (`open/…`, `done/…`), values encoded. */
export type StoreOp =
  | { readonly type: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: string };

/** A key range, LevelDB style: `gte` ≤ key < `lt`, at most `limit` keys, in key order. */
export interface StoreRange {
  readonly gte: string;
  readonly lt: string;
  readonly limit?: number;
}

/** Write counters of a store. */
export interface DecisionStoreStats {
  /** Batches (atomic store writes) made. */
  batches: number;
  /** Batches made durable before they returned (fsync, or a quorum). */
  syncedBatches: number;
  /** `write()` calls served. */
  writes: number;
}

/**
 * Where the decision log keeps its records.
 *
 * Contract every implementation keeps:
 * - `write(ops)` is atomic for that call's operations: after any failure each call's operations
 *   are either all in the store or none are. Concurrent calls may be grouped into one durable
 *   batch; a call resolves only once its operations are durable when `force` is set.
 * - A write that rejects may or may not have landed (never read "failed" as "not written").
 * - Writes from one store instance are applied in the order their calls were made.
 * - `compareAndSwap` writes only when the key still holds `expected` (undefined: absent).
 * - A store that lost the right to write (a deposed leader's) refuses every write after that.
 */
export interface DecisionStore {
  /** Where the store lives, for messages (a directory, an etcd prefix). */
  readonly location: string;
  /** Write counters. */
  readonly stats: DecisionStoreStats;
  /** The value at `key`, if any. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** The entries in `range`, in key order. */
  entries(range: StoreRange): AsyncIterable<readonly [string, Uint8Array]>;
  /** The keys in `range`, in key order. */
  keys(range: StoreRange): AsyncIterable<string>;
  /** Writes `ops` atomically, group-committed with concurrent writes; `force` waits until durable. */
  write(ops: readonly StoreOp[], force: boolean): Promise<void>;
  /** Durably sets `key` to `value` if it holds `expected` now; false (nothing written) otherwise. */
  compareAndSwap(key: string, expected: Uint8Array | undefined, value: Uint8Array): Promise<boolean>;
  /** Releases the store (idempotent); writes already queued settle first. */
  close(): Promise<void>;
}
