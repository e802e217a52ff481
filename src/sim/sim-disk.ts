// Simulated disks under the storage seam. A disk is a write-ahead log of atomic batches, like
// LevelDB's: a prefix of it is synced (survives a power loss) and the rest sits in the OS page
// cache (survives a process crash, not a power loss). A process opens it as a SimStore: the
// in-memory abstract-level store (`memory-level`) that the production logs are written against,
// under a fault layer with LevelDB's failure modes: a write can fail before it lands, or land and
// then fail (as a failed sync can), after which the store refuses every write until reopened; the
// disk can be full; a read can fail. Writes take simulated time and complete in order.

import { MemoryLevel } from 'memory-level';
import type { LogDatabase } from '../common/group-commit.js';
import type { LogStorage } from '../common/level-errors.js';
import type { Prng } from './prng.js';

/** One operation of an atomic batch, as stored: string keys (sublevel prefixes included), raw values. */
export type DiskOp = { readonly type: 'put'; readonly key: string; readonly value: Uint8Array } | { readonly type: 'del'; readonly key: string };

/** The faults a disk can be armed with: the next write (or read) fails that way. */
export type DiskFault = 'write-fails' | 'write-lands-then-fails' | 'disk-full' | 'read-fails';

/** A node's disk: it outlives the node's processes. */
export class SimDisk {
  readonly name: string;
  readonly #synced = new Map<string, Uint8Array>();
  readonly #view = new Map<string, Uint8Array>();
  #unsynced: DiskOp[][] = [];
  /** Armed faults, taken by the next write or read. */
  readonly faults: DiskFault[] = [];
  /** Batches written, synced batches written, batches lost to power loss. */
  readonly stats = { batches: 0, syncs: 0, lost: 0 };
  /** Called just before a batch is written (the disk still holds what it replaces). */
  beforeAppend: ((ops: readonly DiskOp[]) => void) | undefined;
  /** Called when a batch is written (visible to the process). */
  onAppend: ((ops: readonly DiskOp[]) => void) | undefined;
  /** Called when a batch becomes durable (synced, or kept by a power loss). */
  onDurable: ((ops: readonly DiskOp[]) => void) | undefined;
  /** Called when a write failed; `landed` says whether it reached the log all the same. */
  onWriteFailed: ((ops: readonly DiskOp[], landed: boolean) => void) | undefined;

  constructor(name: string) {
    this.name = name;
  }

  /** Appends an atomic batch; `sync` makes it and everything before it durable. */
  append(ops: readonly DiskOp[], sync: boolean): void {
    this.stats.batches++;
    this.beforeAppend?.(ops);
    apply(this.#view, ops);
    this.#unsynced.push([...ops]);
    this.onAppend?.(ops);
    if (sync) this.sync();
  }

  /** fsync: everything written so far becomes durable. */
  sync(): void {
    this.stats.syncs++;
    const batches = this.#unsynced;
    this.#unsynced = [];
    for (const batch of batches) {
      apply(this.#synced, batch);
      this.onDurable?.(batch);
    }
  }

  /** How many written batches are not yet durable. */
  get unsyncedBatches(): number {
    return this.#unsynced.length;
  }

  /**
   * A power loss: the synced prefix survives, and of the unsynced batches only a prefix of
   * `keep` that the OS happened to flush (the log is append-only, so never a later one alone).
   */
  powerLoss(keep: number): void {
    const kept = this.#unsynced.slice(0, Math.max(0, keep));
    this.stats.lost += this.#unsynced.length - kept.length;
    this.#unsynced = [];
    for (const batch of kept) {
      apply(this.#synced, batch);
      this.onDurable?.(batch);
    }
    this.#view.clear();
    for (const [k, v] of this.#synced) this.#view.set(k, v);
  }

  /** The value of `key` as the process reads it (page cache included). */
  get(key: string): Uint8Array | undefined {
    return this.#view.get(key);
  }

  /** The value of `key` on the durable layer only. */
  getSynced(key: string): Uint8Array | undefined {
    return this.#synced.get(key);
  }

  /** Keys starting with `prefix`, sorted like a LevelDB iterator, with their values (page cache included). */
  scan(prefix: string): [string, Uint8Array][] {
    const out: [string, Uint8Array][] = [];
    for (const entry of this.#view) if (entry[0].startsWith(prefix)) out.push(entry);
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** Every entry the process would read. */
  entries(): IterableIterator<[string, Uint8Array]> {
    return this.#view.entries();
  }
}

function apply(map: Map<string, Uint8Array>, ops: readonly DiskOp[]): void {
  for (const op of ops) {
    if (op.type === 'put') map.set(op.key, op.value);
    else map.delete(op.key);
  }
}

/** Disk timing, in simulated ms. */
export interface DiskTiming {
  readonly writeMinMs: number;
  readonly writeMaxMs: number;
  /** Extra time of a synced batch (fsync). */
  readonly syncMinMs: number;
  readonly syncMaxMs: number;
}

/** What a store needs from its process: its clock and randomness. */
export interface StoreIo {
  /** The simulated time, in ms. */
  readonly now: number;
  /** Runs `fn` after `delayMs` in the store's process (never once the process died). */
  after(delayMs: number, fn: () => void): void;
  readonly prng: Prng;
  readonly timing: DiskTiming;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Op {
  readonly type: 'put' | 'del';
  readonly key: Uint8Array;
  readonly value?: Uint8Array;
}

/** A write the process started that has not completed: a crash may or may not let it land. */
export interface InFlightWrite {
  readonly ops: readonly DiskOp[];
  readonly sync: boolean;
}

/** abstract-level's implementation methods, which its type declarations leave out. */
interface Implementation {
  _open(options: object): Promise<void>;
  _put(key: Uint8Array, value: Uint8Array, options: object): Promise<void>;
  _del(key: Uint8Array, options: object): Promise<void>;
  _batch(operations: readonly Op[], options: object): Promise<void>;
  _get(key: Uint8Array, options: object): Promise<Uint8Array | undefined>;
  _getMany(keys: Uint8Array[], options: object): Promise<(Uint8Array | undefined)[]>;
  _getSync(key: Uint8Array, options: object): Uint8Array | undefined;
}

const MemoryStore = MemoryLevel as unknown as new (options: object) => MemoryLevel<string, Uint8Array> & Implementation;

/** One process's open view of a SimDisk: memory-level under the fault layer. */
export class SimStore extends MemoryStore {
  readonly #disk: SimDisk;
  readonly #io: StoreIo;
  /** A write failed: like LevelDB, refuse every later write until reopened. */
  #failed: Error | undefined;
  /** When the last queued write completes: writes complete in order. */
  #lastDone = 0;
  readonly inFlight: InFlightWrite[] = [];

  constructor(disk: SimDisk, io: StoreIo) {
    super({ storeEncoding: 'view', keyEncoding: 'utf8', valueEncoding: 'view' });
    this.#disk = disk;
    this.#io = io;
  }

  override async _open(options: object): Promise<void> {
    await super._open(options);
    const ops: Op[] = [];
    for (const [key, value] of this.#disk.entries()) ops.push({ type: 'put', key: encoder.encode(key), value });
    await super._batch(ops, {});
  }

  override _put(key: Uint8Array, value: Uint8Array, options: object): Promise<void> {
    return this._batch([{ type: 'put', key, value }], options);
  }

  override _del(key: Uint8Array, options: object): Promise<void> {
    return this._batch([{ type: 'del', key }], options);
  }

  override _batch(ops: readonly Op[], options: object): Promise<void> {
    const sync = (options as { sync?: boolean }).sync === true;
    if (this.#failed) return Promise.reject(refused(this.#disk.name, this.#failed));
    const diskOps: DiskOp[] = ops.map((op) =>
      op.type === 'put' ? { type: 'put', key: decoder.decode(op.key), value: op.value ?? new Uint8Array() } : { type: 'del', key: decoder.decode(op.key) },
    );
    const fault = this.#takeFault('write');
    const io = this.#io;
    const t = io.timing;
    const delay = io.prng.int(t.writeMinMs, t.writeMaxMs) + (sync ? io.prng.int(t.syncMinMs, t.syncMaxMs) : 0);
    // Writes are serialized, as LevelDB's are: none completes before an earlier one.
    const done = Math.max(io.now + delay, this.#lastDone);
    this.#lastDone = done;
    const write: InFlightWrite = { ops: diskOps, sync };
    this.inFlight.push(write);
    return new Promise<void>((resolve, reject) => {
      io.after(done - io.now, () => {
        this.inFlight.splice(this.inFlight.indexOf(write), 1);
        if (this.#failed) return reject(refused(this.#disk.name, this.#failed));
        if (fault === 'write-fails' || fault === 'disk-full') {
          this.#failed = new Error(fault === 'disk-full' ? 'IO error: No space left on device' : 'IO error: simulated write failure (EIO)');
          this.#disk.onWriteFailed?.(diskOps, false);
          return reject(this.#failed);
        }
        this.#disk.append(diskOps, sync);
        super._batch(ops, {}).then(() => {
          if (fault === 'write-lands-then-fails') {
            // The record is in the log, but the sync reported an error: the caller cannot tell.
            this.#failed = new Error('IO error: simulated sync failure (EIO) after the write reached the log');
            this.#disk.onWriteFailed?.(diskOps, true);
            return reject(this.#failed);
          }
          resolve();
        }, reject);
      });
    });
  }

  override async _get(key: Uint8Array, options: object): Promise<Uint8Array | undefined> {
    this.#readFault();
    return super._get(key, options);
  }

  override async _getMany(keys: Uint8Array[], options: object): Promise<(Uint8Array | undefined)[]> {
    this.#readFault();
    return super._getMany(keys, options);
  }

  override _getSync(key: Uint8Array, options: object): Uint8Array | undefined {
    this.#readFault();
    return super._getSync(key, options);
  }

  #readFault(): void {
    if (this.#takeFault('read')) throw new Error(`IO error: simulated read failure on ${this.#disk.name}`);
  }

  #takeFault(kind: 'read' | 'write'): DiskFault | undefined {
    const faults = this.#disk.faults;
    const i = faults.findIndex((f) => (f === 'read-fails') === (kind === 'read'));
    if (i < 0) return undefined;
    return faults.splice(i, 1)[0];
  }
}

function refused(name: string, cause: Error): Error {
  return new Error(`IO error: ${name} refuses writes after an earlier failure (${cause.message})`, { cause });
}

/** The storage seam over `disk`: each open is a new process's view of it. */
export function simStorage(disk: SimDisk, io: StoreIo, opened: (store: SimStore) => void): LogStorage {
  return {
    location: `simulated disk ${disk.name}`,
    async open(): Promise<LogDatabase> {
      const store = new SimStore(disk, io);
      await store.open();
      opened(store);
      return store as unknown as LogDatabase;
    },
  };
}
