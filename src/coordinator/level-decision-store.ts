// The default decision store: one LevelDB directory, owned by one process (its LOCK), written in
// group-committed synced batches. A compare-and-swap needs no guard here: nobody else can write.

import type { Clock } from '../common/clock.js';
import { GroupCommitter, type LogDatabase } from '../common/group-commit.js';
import type { LogStorage } from '../common/level-errors.js';
import type { DecisionStore, DecisionStoreStats, StoreOp, StoreRange } from './decision-store.js';

const SYNC = Object.freeze({ sync: true });

/** A decision store on a LevelDB (or, in the simulator, on an abstract-level under a fault layer). */
export class LevelDecisionStore implements DecisionStore {
  readonly location: string;
  readonly #db: LogDatabase;
  readonly #writer: GroupCommitter;

  /** Over an open database; `groupCommit` false writes every call as its own batch (the naive baseline). */
  constructor(db: LogDatabase, location: string, options: { groupCommit?: boolean; clock?: Clock } = {}) {
    this.#db = db;
    this.location = location;
    this.#writer = new GroupCommitter(db, { batching: options.groupCommit ?? true, ...(options.clock ? { clock: options.clock } : {}) });
  }

  /** Opens the database of `storage` ("decision log" in its errors). */
  static async open(storage: LogStorage, options: { groupCommit?: boolean; clock?: Clock } = {}): Promise<LevelDecisionStore> {
    return new LevelDecisionStore(await storage.open('decision log'), storage.location, options);
  }

  get stats(): DecisionStoreStats {
    return this.#writer.stats;
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#db.get(key);
  }

  entries(range: StoreRange): AsyncIterable<readonly [string, Uint8Array]> {
    return this.#db.iterator(range);
  }

  keys(range: StoreRange): AsyncIterable<string> {
    return this.#db.keys(range);
  }

  write(ops: readonly StoreOp[], force: boolean): Promise<void> {
    return this.#writer.write(ops, force);
  }

  async compareAndSwap(key: string, expected: Uint8Array | undefined, value: Uint8Array): Promise<boolean> {
    const now = await this.#db.get(key);
    if (!sameBytes(now, expected)) return false;
    const batch = this.#db.batch();
    batch.put(key, value);
    await batch.write(SYNC);
    return true;
  }

  async close(): Promise<void> {
    // Let queued writes settle before closing the database under them.
    await this.#writer.write([], false).catch(() => undefined);
    if (this.#db.status === 'open' || this.#db.status === 'opening') await this.#db.close();
  }
}

/** Whether two optional byte strings are equal. */
export function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.compare(a, b) === 0;
}
