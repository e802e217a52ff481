// The participant's durable log and application store, in one LevelDB so that a hook's writes
// and the protocol record commit in one atomic batch. Sublevel `prepared` holds the records in
// doubt (recovery reads only those, so its cost follows unfinished work, not history); `log` maps
// tx id → the outcome record of a finished transaction; `ended` indexes those by time for garbage
// collection; `app` is the application's JSON key-value store. Records are versioned protobuf.
// A PREPARED record is written once (under `prepared`) and an outcome replaces it: a transaction
// in doubt is always in memory, so only finished ones are ever looked up by id.

import type { AbstractSublevel } from 'abstract-level';
import type { Clock } from '../common/clock.js';
import { GroupCommitter, INDEX_VALUE, type BatchOp, type LogDatabase, type LogSublevel } from '../common/group-commit.js';
import type { LogStorage } from '../common/level-errors.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { type ParticipantLock as WireLock, ParticipantLockMode as WireLockMode, ParticipantRecord as WireRecord, ParticipantRecordState as WireState } from '../gen/verdict/v1/log.js';
import { ParticipantRecordState, type ParticipantRecord, type RecordedLock } from '../protocol/participant-events.js';

/** The record format version of a record without locks (every record before locks existed). */
export const PARTICIPANT_RECORD_VERSION = 1;
/**
 * The version of a PREPARED record that holds locks. A build that predates locks refuses it
 * (fail closed) instead of restarting with an in-doubt transaction's keys unlocked; records
 * without locks keep version 1, so such a build still reads the rest of the log.
 */
export const PARTICIPANT_RECORD_VERSION_WITH_LOCKS = 2;
const READABLE_VERSIONS: ReadonlySet<number> = new Set([PARTICIPANT_RECORD_VERSION, PARTICIPANT_RECORD_VERSION_WITH_LOCKS]);

/** The application's store: a LevelDB sublevel with string keys and JSON values. */
export type AppStore = AbstractSublevel<LogDatabase, string | Uint8Array, string, unknown>;

/** Names of the log's sublevels (their keys are stored as `!<name>!<key>`). */
export const SUBLEVELS = { log: 'log', prepared: 'prepared', ended: 'ended', app: 'app' } as const;

const STATE_TO_WIRE: Record<ParticipantRecordState, WireState> = {
  prepared: WireState.PARTICIPANT_RECORD_STATE_PREPARED,
  committed: WireState.PARTICIPANT_RECORD_STATE_COMMITTED,
  aborted: WireState.PARTICIPANT_RECORD_STATE_ABORTED,
};

/** A participant's log. */
export class ParticipantLog {
  readonly #db: LogDatabase;
  readonly #clock: Clock;
  readonly #log: BinarySublevel;
  readonly #prepared: BinarySublevel;
  readonly #ended: BinarySublevel;
  readonly #dir: string;
  readonly #writer: GroupCommitter;
  /** The application's store. */
  readonly app: AppStore;

  private constructor(db: LogDatabase, dir: string, groupCommit: boolean, clock: Clock) {
    this.#db = db;
    this.#dir = dir;
    this.#clock = clock;
    this.#log = db.sublevel<string, Uint8Array>(SUBLEVELS.log, { valueEncoding: 'view' });
    this.#prepared = db.sublevel<string, Uint8Array>(SUBLEVELS.prepared, { valueEncoding: 'view' });
    this.#ended = db.sublevel<string, Uint8Array>(SUBLEVELS.ended, { valueEncoding: 'view' });
    this.app = db.sublevel<string, unknown>(SUBLEVELS.app, { valueEncoding: 'json' });
    this.#writer = new GroupCommitter(db, { batching: groupCommit, clock });
  }

  /** Opens the log in `storage`; fails with DATA_DIR_LOCKED or LOG_CORRUPT. */
  static async open(storage: LogStorage, clock: Clock, options: { groupCommit?: boolean } = {}): Promise<ParticipantLog> {
    return new ParticipantLog(await storage.open('participant log'), storage.location, options.groupCommit ?? true, clock);
  }

  /** Write counters. */
  get stats(): GroupCommitter['stats'] {
    return this.#writer.stats;
  }

  /** Every PREPARED record: the transactions in doubt after a restart. */
  async loadPrepared(): Promise<ParticipantRecord[]> {
    const out: ParticipantRecord[] = [];
    for await (const [key, value] of this.#prepared.iterator()) {
      const record = this.#decode(key, value);
      if (record.state !== ParticipantRecordState.PREPARED) throw this.#corrupt(`index entry ${key} is not a PREPARED record`);
      out.push(record);
    }
    return out;
  }

  /**
   * The outcome record (COMMITTED or ABORTED) of `txId`: undefined when the transaction has not
   * finished here (or its record was collected). PREPARED records are read by `loadPrepared`
   * only. A synchronous read: it runs on the calling thread, which for the small, mostly absent
   * keys of a lookup costs a few µs, where an asynchronous read pays a thread-pool round trip of
   * tens of µs (and a turn of latency) on every first Prepare.
   */
  outcomeOf(txId: string): ParticipantRecord | undefined {
    const value = this.#log.getSync(txId);
    return value === undefined ? undefined : this.#decode(txId, value);
  }

  /**
   * Writes `record` with the application's staged writes, atomically; a PREPARED record with the
   * locks its transaction holds (`locks`, else those of `record`).
   */
  write(record: ParticipantRecord, appOps: readonly StagedOp[], force: boolean, locks: readonly RecordedLock[] = record.locks ?? NO_RECORDED_LOCKS): Promise<void> {
    const ops: BatchOp[] = appOps.map((op) => ({ ...op, sublevel: this.app }));
    const value = encode(record, this.#clock.now(), locks);
    if (record.state === ParticipantRecordState.PREPARED) {
      ops.push({ type: 'put', sublevel: this.#prepared, key: record.txId, value });
    } else {
      ops.push({ type: 'put', sublevel: this.#log, key: record.txId, value });
      ops.push({ type: 'del', sublevel: this.#prepared, key: record.txId });
      ops.push({ type: 'put', sublevel: this.#ended, key: endedKey(this.#clock.now(), record.txId), value: INDEX_VALUE });
    }
    return this.#writer.write(ops, force);
  }

  /**
   * Drops the records of transactions finished before `cutoffMs` (never a PREPARED one). Returns
   * how many were dropped. A repeated message for a dropped transaction is then treated as new,
   * so the retention must outlast any message delay and any coordinator outage.
   */
  async collectGarbage(cutoffMs: number, batchSize = 10_000): Promise<number> {
    let dropped = 0;
    for (;;) {
      const keys = await this.#ended.keys({ lt: endedKey(cutoffMs, ''), limit: batchSize }).all();
      if (keys.length === 0) return dropped;
      const ops = keys.flatMap((key): BatchOp[] => [
        { type: 'del', sublevel: this.#ended, key },
        { type: 'del', sublevel: this.#log, key: key.slice(key.indexOf('/') + 1) },
      ]);
      await this.#writer.write(ops, false);
      dropped += keys.length;
      if (keys.length < batchSize) return dropped;
    }
  }

  /** Closes the database (idempotent). */
  async close(): Promise<void> {
    await this.#writer.write([], false).catch(() => undefined);
    if (this.#db.status === 'open' || this.#db.status === 'opening') await this.#db.close();
  }

  #decode(key: string, value: Uint8Array): ParticipantRecord {
    try {
      return decodeParticipantRecord(key, value);
    } catch (e) {
      throw this.#corrupt((e as Error).message, (e as Error).cause);
    }
  }

  #corrupt(detail: string, cause?: unknown): VerdictError {
    return new VerdictError(ErrorCode.LOG_CORRUPT, `the participant log in ${this.#dir} is corrupt: ${detail}; refusing to start`, { cause });
  }
}

/** Decodes the record stored under `key` (a tx id); throws, naming the key, when it cannot. */
export function decodeParticipantRecord(key: string, value: Uint8Array): ParticipantRecord {
  let wire: WireRecord;
  try {
    wire = WireRecord.decode(value);
  } catch (e) {
    throw new Error(`record ${key} cannot be decoded`, { cause: e });
  }
  if (!READABLE_VERSIONS.has(wire.version)) throw new Error(`record ${key} has unknown version ${wire.version}`);
  const state = (Object.keys(STATE_TO_WIRE) as ParticipantRecordState[]).find((s) => STATE_TO_WIRE[s] === wire.state);
  if (!state || wire.txId !== key) throw new Error(`record ${key} is inconsistent (state ${wire.state}, tx ${wire.txId})`);
  const locks: RecordedLock[] = [];
  for (const l of wire.locks) {
    const mode = l.mode === WireLockMode.PARTICIPANT_LOCK_MODE_SHARED ? 'shared' : l.mode === WireLockMode.PARTICIPANT_LOCK_MODE_EXCLUSIVE ? 'exclusive' : undefined;
    if (!mode) throw new Error(`record ${key} holds a lock on ${JSON.stringify(l.key)} with unknown mode ${l.mode}`);
    locks.push({ key: l.key, mode });
  }
  return {
    txId: wire.txId,
    state,
    onePhase: wire.onePhase,
    ...(wire.payload.length > 0 ? { payload: wire.payload } : {}),
    ...(locks.length > 0 ? { locks } : {}),
  };
}

type BinarySublevel = AbstractSublevel<LogDatabase, string | Uint8Array, string, Uint8Array> & LogSublevel;

const endedKey = (ms: number, txId: string): string => `${String(ms).padStart(15, '0')}/${txId}`;

/** One staged application write. */
export type StagedOp = { readonly type: 'put'; readonly key: string; readonly value: unknown } | { readonly type: 'del'; readonly key: string };

const NO_BYTES = Buffer.alloc(0);
/** Shared by every record without locks; the encoder only reads it. */
const NO_LOCKS: WireLock[] = [];
const NO_RECORDED_LOCKS: readonly RecordedLock[] = [];

function encode(record: ParticipantRecord, now: number, locks: readonly RecordedLock[]): Uint8Array {
  const payload = record.payload;
  return WireRecord.encode({
    version: locks.length > 0 ? PARTICIPANT_RECORD_VERSION_WITH_LOCKS : PARTICIPANT_RECORD_VERSION,
    txId: record.txId,
    state: STATE_TO_WIRE[record.state],
    onePhase: record.onePhase,
    payload: payload ? Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength) : NO_BYTES,
    writtenUnixMs: now,
    locks: locks.length === 0 ? NO_LOCKS : locks.map((l) => ({
      key: l.key,
      mode: l.mode === 'shared' ? WireLockMode.PARTICIPANT_LOCK_MODE_SHARED : WireLockMode.PARTICIPANT_LOCK_MODE_EXCLUSIVE,
    })),
  }).finish();
}
