// The coordinator's decision log, over a decision store (LevelDB by default, etcd for a group).
// `open/<tx>` holds decisions still being delivered (loaded at start: recovery cost follows
// unfinished work, not history), `done/<tx>` holds end summaries read on demand, `meta/epoch` the
// boot counter. Values are versioned protobuf.

import { createHash } from 'node:crypto';
import { ErrorCode, VerdictError } from '../errors.js';
import {
  CoordinatorRecord as WireRecord,
  CoordinatorRecordKind as WireKind,
} from '../gen/verdict/v1/log.js';
import { Outcome as WireOutcome } from '../gen/verdict/v1/common.js';
import type { Clock } from '../common/clock.js';
import { INDEX_VALUE } from '../common/group-commit.js';
import type { LogStorage } from '../common/level-errors.js';
import type { DecisionStore, DecisionStoreStats, StoreOp } from './decision-store.js';
import { LevelDecisionStore } from './level-decision-store.js';
import { mutant } from '../common/mutants.js';
import { compareTxIds } from '../protocol/ids.js';
import { CoordinatorRecordKind, type CoordinatorLogOp, type CoordinatorRecord } from '../protocol/coordinator-events.js';
import { Outcome } from '../protocol/types.js';

/** The record format version this build writes and reads. */
export const COORDINATOR_RECORD_VERSION = 1;

/** Key of the epoch counter. */
export const EPOCH_KEY = 'meta/epoch';
const HORIZON_KEY = 'meta/gc-horizon';
/** Prefix of the decisions still being delivered (COMMIT and one-phase intent records). */
export const OPEN = 'open/';
/** Prefix of the END summaries. */
export const DONE = 'done/';
/** Index of END summaries by the time they were written: `ended/<ms, 15 digits>/<tx>`. */
const ENDED = 'ended/';
const endedKey = (ms: number, txId: string): string => `${ENDED}${String(ms).padStart(15, '0')}/${txId}`;
/**
 * Index of transactions by scoped idempotency key: `key/<sha256 of the key, base64url>` → tx id.
 * Hashed, so that no caller's bytes become part of a LevelDB key. Written with the COMMIT or
 * one-phase record (forced: a retry after a crash must find a transaction that may have
 * committed) and again with the END summary; dropped with the summary by garbage collection.
 */
const KEY = 'key/';
const keyIndexKey = (scopedKey: string): string => KEY + createHash('sha256').update(scopedKey, 'utf8').digest('base64url');

/** An END summary past its retention, as found by `expired`. */
export interface ExpiredSummary {
  readonly txId: string;
  readonly indexKey: string;
  /** Its idempotency key's index entry, when it had a key. */
  readonly keyIndexKey?: string;
}

/** The coordinator's durable log. */
export class DecisionLog {
  readonly #store: DecisionStore;
  readonly #clock: Clock;
  /**
   * END summaries written but not yet settled. The machine forgets a transaction as soon as it
   * emits its END, so a lookup racing the write must still find it, never presume an abort.
   */
  readonly #ending = new Map<string, CoordinatorRecord>();
  /** The same, by scoped idempotency key. */
  readonly #endingKeys = new Map<string, CoordinatorRecord>();

  /** Over `store`. */
  constructor(store: DecisionStore, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /** Opens the log in the LevelDB `storage`; fails with DATA_DIR_LOCKED or LOG_CORRUPT rather than guess. */
  static async open(storage: LogStorage, clock: Clock, options: { groupCommit?: boolean } = {}): Promise<DecisionLog> {
    return new DecisionLog(await LevelDecisionStore.open(storage, { groupCommit: options.groupCommit ?? true, clock }), clock);
  }

  /** Where the log lives, for messages. */
  get location(): string {
    return this.#store.location;
  }

  /** Write counters (batches, synced batches). */
  get stats(): DecisionStoreStats {
    return this.#store.stats;
  }

  /**
   * Reads, increments and durably stores the epoch with a compare-and-swap; returns the new one.
   * Fails (NOT_LEADER) when another writer changed the epoch in between: two incarnations never
   * share an epoch.
   */
  async bumpEpoch(): Promise<number> {
    const raw = await this.#store.get(EPOCH_KEY);
    const previous = raw === undefined ? 0 : Number(Buffer.from(raw).toString('utf8'));
    if (!Number.isSafeInteger(previous) || previous < 0) throw this.#corrupt(`the epoch record is unreadable`);
    const epoch = mutant('epoch-not-bumped') ? Math.max(1, previous) : previous + 1;
    if (!(await this.#store.compareAndSwap(EPOCH_KEY, raw, Buffer.from(String(epoch), 'utf8')))) {
      throw new VerdictError(ErrorCode.NOT_LEADER, `the epoch in ${this.#store.location} changed while this coordinator was bumping it: another coordinator is starting`);
    }
    return epoch;
  }

  /** Every decision still being delivered: what recovery must re-drive. */
  async loadOpen(): Promise<CoordinatorRecord[]> {
    const out: CoordinatorRecord[] = [];
    for await (const [key, value] of this.#store.entries({ gte: OPEN, lt: 'open0' })) {
      out.push(this.#decode(key, value));
    }
    return out;
  }

  /** The END summary of `txId`, if the log has one. */
  async lookupDone(txId: string): Promise<CoordinatorRecord | undefined> {
    const ending = this.#ending.get(txId);
    if (ending) return ending;
    const value = await this.#store.get(DONE + txId);
    if (value === undefined && mutant('unknown-tx-committed')) return { kind: CoordinatorRecordKind.END, txId, participants: [], outcome: Outcome.COMMITTED };
    return value === undefined ? undefined : this.#decode(DONE + txId, value);
  }

  /** The transaction started under the scoped idempotency `key`, if the log has one. */
  async lookupKey(key: string): Promise<string | undefined> {
    const ending = this.#endingKeys.get(key);
    if (ending) return ending.txId;
    const value = await this.#store.get(keyIndexKey(key));
    return value === undefined ? undefined : Buffer.from(value).toString('utf8');
  }

  /** Writes `ops` atomically (group-committed); `force` waits until they are synced. */
  write(ops: readonly CoordinatorLogOp[], force: boolean): Promise<void> {
    const now = this.#clock.now();
    const batch: StoreOp[] = [];
    const ending: CoordinatorRecord[] = [];
    for (const op of ops) {
      if (op.op === 'del') {
        batch.push({ type: 'del', key: OPEN + op.txId });
      } else if (op.space === 'open') {
        batch.push({ type: 'put', key: OPEN + op.record.txId, value: encode(op.record, now) });
        if (op.record.idempotencyKey) batch.push({ type: 'put', key: keyIndexKey(op.record.idempotencyKey), value: Buffer.from(op.record.txId, 'utf8') });
      } else {
        const key = op.record.idempotencyKey;
        batch.push({ type: 'put', key: DONE + op.record.txId, value: encode(op.record, now) });
        // The time index names the key's index entry, so that collecting the summary drops it too.
        batch.push({ type: 'put', key: endedKey(now, op.record.txId), value: key ? Buffer.from(keyIndexKey(key), 'utf8') : INDEX_VALUE });
        if (key) {
          batch.push({ type: 'put', key: keyIndexKey(key), value: Buffer.from(op.record.txId, 'utf8') });
          this.#endingKeys.set(key, op.record);
        }
        this.#ending.set(op.record.txId, op.record);
        ending.push(op.record);
      }
    }
    const written = this.#store.write(batch, force);
    if (ending.length > 0) {
      // Once written the log answers; a failed write keeps the summary here, the only true answer left.
      const settle = (): void => {
        for (const r of ending) {
          if (this.#ending.get(r.txId) === r) this.#ending.delete(r.txId);
          if (r.idempotencyKey && this.#endingKeys.get(r.idempotencyKey) === r) this.#endingKeys.delete(r.idempotencyKey);
        }
      };
      written.then(settle, () => undefined);
    }
    return written;
  }

  /** The garbage-collection horizon: the highest tx id whose summary may have been dropped. */
  async loadHorizon(): Promise<string | undefined> {
    const raw = await this.#store.get(HORIZON_KEY);
    return raw === undefined ? undefined : Buffer.from(raw).toString('utf8');
  }

  /** Up to `limit` END summaries written before `cutoffMs`, oldest first. */
  async expired(cutoffMs: number, limit: number): Promise<ExpiredSummary[]> {
    const out: ExpiredSummary[] = [];
    for await (const [key, value] of this.#store.entries({ gte: ENDED, lt: endedKey(cutoffMs, ''), limit })) {
      const named = Buffer.from(value).toString('utf8');
      out.push({ txId: key.slice(key.lastIndexOf('/') + 1), indexKey: key, ...(named.startsWith(KEY) ? { keyIndexKey: named } : {}) });
    }
    return out;
  }

  /** Drops expired summaries and records the new horizon, in one atomic batch. */
  async forget(expired: readonly ExpiredSummary[], horizon: string): Promise<void> {
    // Summaries expire in the order they were written, not in id order: a later batch may hold
    // only lower ids than an earlier one. The stored horizon must never move back, or after a
    // restart a dropped id above it would read as presumed aborted.
    const previous = await this.loadHorizon();
    const highest = previous !== undefined && compareTxIds(previous, horizon) > 0 ? previous : horizon;
    // The horizon comes first: a store that must split this write (etcd's limit on operations
    // per transaction) applies it in order, so no summary is gone before the horizon covers it.
    const batch: StoreOp[] = [{ type: 'put', key: HORIZON_KEY, value: Buffer.from(highest, 'utf8') }];
    for (const e of expired) {
      batch.push({ type: 'del', key: DONE + e.txId }, { type: 'del', key: e.indexKey });
      if (e.keyIndexKey) batch.push({ type: 'del', key: e.keyIndexKey });
    }
    return this.#store.write(batch, false);
  }

  /** Closes the store (idempotent). */
  close(): Promise<void> {
    return this.#store.close();
  }

  #decode(key: string, value: Uint8Array): CoordinatorRecord {
    try {
      return decodeCoordinatorRecord(key, value);
    } catch (e) {
      throw this.#corrupt((e as Error).message, (e as Error).cause);
    }
  }

  #corrupt(detail: string, cause?: unknown): VerdictError {
    return new VerdictError(ErrorCode.LOG_CORRUPT, `the decision log in ${this.#store.location} is corrupt: ${detail}; refusing to start (it is never repaired automatically)`, {
      cause,
    });
  }
}

/** Decodes the record stored under `key`; throws (with a message naming the key) when it cannot. */
export function decodeCoordinatorRecord(key: string, value: Uint8Array): CoordinatorRecord {
  let wire: WireRecord;
  try {
    wire = WireRecord.decode(value);
  } catch (e) {
    throw new Error(`record ${key} cannot be decoded`, { cause: e });
  }
  if (wire.version !== COORDINATOR_RECORD_VERSION) throw new Error(`record ${key} has unknown version ${wire.version}`);
  const kind =
    wire.kind === WireKind.COORDINATOR_RECORD_KIND_COMMIT
      ? CoordinatorRecordKind.COMMIT
      : wire.kind === WireKind.COORDINATOR_RECORD_KIND_ONE_PHASE
        ? CoordinatorRecordKind.ONE_PHASE
        : wire.kind === WireKind.COORDINATOR_RECORD_KIND_END
          ? CoordinatorRecordKind.END
          : undefined;
  if (kind === undefined || !key.endsWith(wire.txId)) throw new Error(`record ${key} is inconsistent (kind ${wire.kind}, tx ${wire.txId})`);
  const outcome =
    wire.outcome === WireOutcome.OUTCOME_COMMITTED ? Outcome.COMMITTED : wire.outcome === WireOutcome.OUTCOME_ABORTED ? Outcome.ABORTED : undefined;
  if (kind === CoordinatorRecordKind.END && outcome === undefined) throw new Error(`END record ${key} has no outcome`);
  return {
    kind,
    txId: wire.txId,
    participants: wire.participants,
    ...(outcome ? { outcome } : {}),
    ...(wire.reason ? { reason: wire.reason } : {}),
    ...(wire.owner ? { owner: wire.owner } : {}),
    ...(wire.idempotencyKey ? { idempotencyKey: wire.idempotencyKey } : {}),
  };
}

function encode(record: CoordinatorRecord, now: number): Uint8Array {
  return WireRecord.encode({
    version: COORDINATOR_RECORD_VERSION,
    txId: record.txId,
    kind:
      record.kind === CoordinatorRecordKind.COMMIT
        ? WireKind.COORDINATOR_RECORD_KIND_COMMIT
        : record.kind === CoordinatorRecordKind.ONE_PHASE
          ? WireKind.COORDINATOR_RECORD_KIND_ONE_PHASE
          : WireKind.COORDINATOR_RECORD_KIND_END,
    participants: [...record.participants],
    outcome:
      record.outcome === Outcome.COMMITTED
        ? WireOutcome.OUTCOME_COMMITTED
        : record.outcome === Outcome.ABORTED
          ? WireOutcome.OUTCOME_ABORTED
          : WireOutcome.OUTCOME_UNSPECIFIED,
    reason: record.reason ?? '',
    writtenUnixMs: now,
    owner: record.owner ?? '',
    idempotencyKey: record.idempotencyKey ?? '',
  }).finish();
}
