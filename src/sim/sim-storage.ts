// Simulated disks. A disk is a write-ahead log of atomic batches, like LevelDB's: a prefix of it
// is synced (survives power loss) and the rest sits in the OS page cache (survives a process
// crash, not a power loss). A group committer in the owning process batches concurrent writes
// and syncs a batch if any write in it was forced, as the production GroupCommitter does.

import type { Prng } from './prng.js';

/** One operation of an atomic batch. */
export type DiskOp = { readonly type: 'put'; readonly key: string; readonly value: unknown } | { readonly type: 'del'; readonly key: string };

/** The kind of crash a node suffers. */
export type CrashKind = 'process' | 'power-loss';

/** A node's disk: it outlives the node's processes. */
export class SimDisk {
  readonly #synced = new Map<string, unknown>();
  readonly #view = new Map<string, unknown>();
  #unsynced: DiskOp[][] = [];
  /** Batches written, synced batches written, batches lost to power loss. */
  readonly stats = { batches: 0, syncs: 0, lost: 0 };
  /** Called when a batch is written (visible to the process). */
  onAppend: ((ops: readonly DiskOp[]) => void) | undefined;
  /** Called when a batch becomes durable (synced, or kept by a power loss). */
  onDurable: ((ops: readonly DiskOp[]) => void) | undefined;

  /** Appends an atomic batch; `sync` makes it and everything before it durable. */
  append(ops: readonly DiskOp[], sync: boolean): void {
    this.stats.batches++;
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
  get(key: string): unknown {
    return this.#view.get(key);
  }

  /** The value of `key` on the durable layer only. */
  getSynced(key: string): unknown {
    return this.#synced.get(key);
  }

  /** Keys starting with `prefix`, sorted like a LevelDB iterator, with their values (page cache included). */
  scan(prefix: string): [string, unknown][] {
    const out: [string, unknown][] = [];
    for (const entry of this.#view) if (entry[0].startsWith(prefix)) out.push(entry);
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** A stable description of the durable and cached contents (for trace hashes). */
  digest(): string {
    const dump = (m: Map<string, unknown>): string =>
      [...m.keys()]
        .sort()
        .map((k) => `${k}=${JSON.stringify(m.get(k))}`)
        .join(';');
    return `${dump(this.#synced)}|${this.#unsynced.length}`;
  }
}

function apply(map: Map<string, unknown>, ops: readonly DiskOp[]): void {
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

interface PendingWrite {
  readonly ops: readonly DiskOp[];
  readonly force: boolean;
  readonly done: (error: string | undefined) => void;
}

/**
 * The process side of a disk: writes that arrive while a batch is in flight wait and go out
 * together in the next one, synced if any of them was forced. It dies with its process.
 */
export class SimGroupCommitter {
  readonly #disk: SimDisk;
  readonly #timing: DiskTiming;
  readonly #prng: Prng;
  readonly #schedule: (delayMs: number, fn: () => void) => void;
  #queue: PendingWrite[] = [];
  #inFlight: { ops: DiskOp[]; sync: boolean } | undefined;
  /** Set by a disk-error fault: the next batch fails. */
  failNext = false;

  constructor(disk: SimDisk, timing: DiskTiming, prng: Prng, schedule: (delayMs: number, fn: () => void) => void) {
    this.#disk = disk;
    this.#timing = timing;
    this.#prng = prng;
    this.#schedule = schedule;
  }

  /** Writes `ops` atomically; `done` runs once written (and synced, when forced), or with an error. */
  write(ops: readonly DiskOp[], force: boolean, done: (error: string | undefined) => void): void {
    this.#queue.push({ ops, force, done });
    if (!this.#inFlight) this.#drain();
  }

  /** The batch being written when the process died, if any. */
  get inFlight(): { readonly ops: readonly DiskOp[]; readonly sync: boolean } | undefined {
    return this.#inFlight;
  }

  /** Whether writes are queued or in flight. */
  get busy(): boolean {
    return this.#inFlight !== undefined || this.#queue.length > 0;
  }

  #drain(): void {
    const group = this.#queue;
    if (group.length === 0) return;
    this.#queue = [];
    const sync = group.some((p) => p.force);
    const ops = group.flatMap((p) => p.ops);
    this.#inFlight = { ops, sync };
    const t = this.#timing;
    const delay = this.#prng.int(t.writeMinMs, t.writeMaxMs) + (sync ? this.#prng.int(t.syncMinMs, t.syncMaxMs) : 0);
    this.#schedule(delay, () => {
      this.#inFlight = undefined;
      if (this.failNext) {
        this.failNext = false;
        for (const p of group) p.done('simulated disk error (EIO)');
      } else {
        this.#disk.append(ops, sync);
        for (const p of group) p.done(undefined);
      }
      this.#drain();
    });
  }
}
