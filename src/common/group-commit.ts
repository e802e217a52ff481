// Group commit: writes that arrive while a batch is being written wait and go out together in the
// next one, synced if any of them asked to be forced. One fsync then covers many transactions.
// The first batch of a burst also waits for the end of the event-loop turn: a frame of twenty
// prepares makes twenty writes, in microtasks of one turn, and they belong in one batch.

import type { AbstractLevel, AbstractSublevel } from 'abstract-level';
import { systemClock, type Clock } from './clock.js';
import { mutant } from './mutants.js';

/**
 * The storage seam: the database a log lives in, string keys and binary values. In production a
 * LevelDB (`level`); in the simulator an in-memory one under a fault layer.
 */
export type LogDatabase = AbstractLevel<string | Uint8Array, string, Uint8Array>;

/** A sublevel of the log's database, whatever its value encoding. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type LogSublevel = AbstractSublevel<LogDatabase, string | Uint8Array, string, any>;

/** One operation in a LevelDB batch, on the root database or on `sublevel`. */
export type BatchOp =
  | { readonly type: 'put'; readonly key: string; readonly value: unknown; readonly sublevel?: LogSublevel }
  | { readonly type: 'del'; readonly key: string; readonly sublevel?: LogSublevel };

/** Counters of a GroupCommitter. */
export interface GroupCommitStats {
  /** Batches written. */
  batches: number;
  /** Batches written with sync (fsync). */
  syncedBatches: number;
  /** write() calls served. */
  writes: number;
}

/**
 * The value of an index entry, whose key says everything. One byte, never empty: classic-level
 * 3.0 copies every key and value into a `new char[size]` and frees the copy only when it is not
 * empty, so each empty value written leaks a malloc chunk (32 bytes) for good. An empty value per
 * transaction grew the main thread's malloc heap by about 40 bytes per transaction.
 */
export const INDEX_VALUE: Uint8Array = new Uint8Array([1]);

const ROOT_OPTIONS = Object.freeze({});
const SYNC = Object.freeze({ sync: true });
const NO_SYNC = Object.freeze({ sync: false });

interface Pending {
  readonly ops: readonly BatchOp[];
  readonly force: boolean;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/** An operation that the database refused before anything was written (a key or value it cannot encode). */
class UnstorableOp extends Error {
  constructor(cause: unknown) {
    super(`an operation cannot be stored: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/** Writes atomic groups of operations to a LevelDB, batching concurrent writers. */
export class GroupCommitter {
  readonly #db: LogDatabase;
  readonly #batching: boolean;
  readonly #clock: Clock;
  #queue: Pending[] = [];
  #writing = false;
  #drainScheduled = false;
  readonly #sublevelOptions = new Map<LogSublevel, { readonly sublevel: LogSublevel }>();
  readonly stats: GroupCommitStats = { batches: 0, syncedBatches: 0, writes: 0 };

  /** With `batching` false every write is its own batch (the naive baseline for benchmarks). */
  constructor(db: LogDatabase, options: { batching?: boolean; clock?: Clock } = {}) {
    this.#db = db;
    this.#batching = options.batching ?? true;
    this.#clock = options.clock ?? systemClock;
  }

  /** Writes `ops` atomically; with `force`, resolves only once they are synced to disk. */
  write(ops: readonly BatchOp[], force: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ ops, force, resolve, reject });
      if (this.#writing || this.#drainScheduled) return;
      if (!this.#batching) return void this.#drain();
      this.#drainScheduled = true;
      this.#clock.defer(this.#startDrain);
    });
  }

  readonly #startDrain = (): void => {
    this.#drainScheduled = false;
    if (!this.#writing) void this.#drain();
  };

  async #drain(): Promise<void> {
    this.#writing = true;
    while (this.#queue.length > 0) {
      const group = this.#batching ? this.#queue : this.#queue.slice(0, 1);
      this.#queue = this.#batching ? [] : this.#queue.slice(1);
      const sync = group.some((p) => p.force);
      const ops = group.length === 1 ? (group[0]?.ops ?? []) : group.flatMap((p) => p.ops);
      try {
        await this.#commit(ops, sync);
        this.#written(group.length, sync);
        for (const p of group) p.resolve();
      } catch (e) {
        if (e instanceof UnstorableOp && group.length > 1) await this.#oneByOne(group);
        else for (const p of group) p.reject(e);
      }
    }
    this.#writing = false;
  }

  /**
   * An operation of one write could not even be put into the batch (nothing was written): write
   * the group's writes one by one, so that only the write that holds it fails, never its neighbours.
   */
  async #oneByOne(group: readonly Pending[]): Promise<void> {
    for (const p of group) {
      try {
        await this.#commit(p.ops, p.force);
        this.#written(1, p.force);
        p.resolve();
      } catch (e) {
        p.reject(e);
      }
    }
  }

  #written(writes: number, sync: boolean): void {
    this.stats.batches++;
    if (sync) this.stats.syncedBatches++;
    this.stats.writes += writes;
  }

  /**
   * One options object per sublevel, made once: abstract-level spreads the options into every
   * operation, and a fresh object per operation sends V8 down its slow path of new hidden
   * classes each time (a tenth of a participant's CPU in profiles).
   */
  #optionsFor(sublevel: LogSublevel): { readonly sublevel: LogSublevel } {
    let options = this.#sublevelOptions.get(sublevel);
    if (!options) {
      options = Object.freeze({ sublevel });
      this.#sublevelOptions.set(sublevel, options);
    }
    return options;
  }

  /**
   * One atomic LevelDB write. A chained batch, not `db.batch(array)`: the array form clones and
   * re-normalises every operation, which costs about a fifth of the log's CPU per transaction.
   */
  async #commit(ops: readonly BatchOp[], sync: boolean): Promise<void> {
    const batch = this.#db.batch();
    try {
      for (const op of ops) {
        const options = op.sublevel ? this.#optionsFor(op.sublevel) : ROOT_OPTIONS;
        if (op.type === 'put') batch.put(op.key, op.value as Uint8Array, options);
        else batch.del(op.key, options);
      }
    } catch (e) {
      await batch.close();
      throw new UnstorableOp(e);
    }
    await batch.write(sync && !mutant('commit-write-unsynced') ? SYNC : NO_SYNC);
  }
}
