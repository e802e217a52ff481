// The participant's durable log and application store, in one LevelDB so that a hook's writes
// and the protocol record commit in one atomic batch. Sublevel `log` maps tx id → versioned
// protobuf ParticipantRecord; sublevel `app` is the application's JSON key-value store.

import type { Level } from 'level';
import type { AbstractSublevel } from 'abstract-level';
import { GroupCommitter, type BatchOp } from '../common/group-commit.js';
import { openLevel } from '../common/level-errors.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { ParticipantRecord as WireRecord, ParticipantRecordState as WireState } from '../gen/verdict/v1/log.js';
import { ParticipantRecordState, type ParticipantRecord } from '../protocol/participant-events.js';

/** The record format version this build writes and reads. */
export const PARTICIPANT_RECORD_VERSION = 1;

/** The application's store: a LevelDB sublevel with string keys and JSON values. */
export type AppStore = AbstractSublevel<Level<string, Uint8Array>, string | Uint8Array, string, unknown>;

const STATE_TO_WIRE: Record<ParticipantRecordState, WireState> = {
  prepared: WireState.PARTICIPANT_RECORD_STATE_PREPARED,
  committed: WireState.PARTICIPANT_RECORD_STATE_COMMITTED,
  aborted: WireState.PARTICIPANT_RECORD_STATE_ABORTED,
};

/** A participant's log. */
export class ParticipantLog {
  readonly #db: Level<string, Uint8Array>;
  readonly #log: AbstractSublevel<Level<string, Uint8Array>, string | Uint8Array, string, Uint8Array>;
  readonly #dir: string;
  readonly #writer: GroupCommitter;
  /** The application's store. */
  readonly app: AppStore;

  private constructor(db: Level<string, Uint8Array>, dir: string, groupCommit: boolean) {
    this.#db = db;
    this.#dir = dir;
    this.#log = db.sublevel<string, Uint8Array>('log', { valueEncoding: 'view' });
    this.app = db.sublevel<string, unknown>('app', { valueEncoding: 'json' });
    this.#writer = new GroupCommitter(db, { batching: groupCommit });
  }

  /** Opens the log in `dir`; fails with DATA_DIR_LOCKED or LOG_CORRUPT. */
  static async open(dir: string, options: { groupCommit?: boolean } = {}): Promise<ParticipantLog> {
    return new ParticipantLog(await openLevel(dir, 'participant log'), dir, options.groupCommit ?? true);
  }

  /** Write counters. */
  get stats(): GroupCommitter['stats'] {
    return this.#writer.stats;
  }

  /** Every PREPARED record: the transactions in doubt after a restart. */
  async loadPrepared(): Promise<ParticipantRecord[]> {
    const out: ParticipantRecord[] = [];
    for await (const [key, value] of this.#log.iterator()) {
      const record = this.#decode(key, value);
      if (record.state === ParticipantRecordState.PREPARED) out.push(record);
    }
    return out;
  }

  /** This participant's record of `txId`, if any. */
  async get(txId: string): Promise<ParticipantRecord | undefined> {
    const value = await this.#log.get(txId);
    return value === undefined ? undefined : this.#decode(txId, value);
  }

  /** Writes `record` with the application's staged writes, atomically. */
  write(record: ParticipantRecord, appOps: readonly StagedOp[], force: boolean): Promise<void> {
    const ops: BatchOp[] = appOps.map((op) =>
      op.type === 'put'
        ? ({ type: 'put', sublevel: this.app, key: op.key, value: op.value } as unknown as BatchOp)
        : ({ type: 'del', sublevel: this.app, key: op.key } as unknown as BatchOp),
    );
    ops.push({ type: 'put', sublevel: this.#log, key: record.txId, value: encode(record) } as unknown as BatchOp);
    return this.#writer.write(ops, force);
  }

  /** Closes the database (idempotent). */
  async close(): Promise<void> {
    await this.#writer.write([], false).catch(() => undefined);
    if (this.#db.status === 'open' || this.#db.status === 'opening') await this.#db.close();
  }

  #decode(key: string, value: Uint8Array): ParticipantRecord {
    let wire: WireRecord;
    try {
      wire = WireRecord.decode(value);
    } catch (e) {
      throw this.#corrupt(`record ${key} cannot be decoded`, e);
    }
    if (wire.version !== PARTICIPANT_RECORD_VERSION) throw this.#corrupt(`record ${key} has unknown version ${wire.version}`);
    const state = (Object.keys(STATE_TO_WIRE) as ParticipantRecordState[]).find((s) => STATE_TO_WIRE[s] === wire.state);
    if (!state || wire.txId !== key) throw this.#corrupt(`record ${key} is inconsistent (state ${wire.state}, tx ${wire.txId})`);
    return { txId: wire.txId, state, onePhase: wire.onePhase, ...(wire.payload.length > 0 ? { payload: wire.payload } : {}) };
  }

  #corrupt(detail: string, cause?: unknown): VerdictError {
    return new VerdictError(ErrorCode.LOG_CORRUPT, `the participant log in ${this.#dir} is corrupt: ${detail}; refusing to start`, { cause });
  }
}

/** One staged application write. */
export type StagedOp = { readonly type: 'put'; readonly key: string; readonly value: unknown } | { readonly type: 'del'; readonly key: string };

function encode(record: ParticipantRecord): Uint8Array {
  const payload = record.payload;
  return WireRecord.encode({
    version: PARTICIPANT_RECORD_VERSION,
    txId: record.txId,
    state: STATE_TO_WIRE[record.state],
    onePhase: record.onePhase,
    payload: payload ? Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength) : Buffer.alloc(0),
    writtenUnixMs: Date.now(),
  }).finish();
}
