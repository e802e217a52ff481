// The coordinator's two-phase commit with presumed abort, as a pure state machine: inputs in,
// effects out. No I/O, clock or randomness: the caller passes `now` and carries out the effects.
// The same code runs under gRPC + LevelDB and inside the deterministic simulator.

import {
  CoordinatorRecordKind,
  TxState,
  type BranchView,
  type CoordinatorEffect,
  type CoordinatorInput,
  type CoordinatorMessage,
  type CoordinatorRecord,
  type CoordinatorReply,
  type IgnoredReason,
  type InitiatorRequest,
  type ParticipantMessage,
  type PersistToken,
  type TxView,
} from './coordinator-events.js';
import { compareTxIds, formatTxId, idempotencyKeyProblem, parseTxId, participantNameProblem, scopedIdempotencyKey, txIdProblem } from './ids.js';
import { backoffDelayMs, ErrorCode, Outcome, Vote, type BranchSpec, type ProtocolError } from './types.js';

/** Tunables of the coordinator protocol. */
export interface CoordinatorMachineConfig {
  /** This incarnation's epoch: persisted and bumped at every start, part of every tx id. */
  readonly epoch: number;
  /** Transaction timeout when a request gives none, in ms. */
  readonly defaultTimeoutMs: number;
  /** The longest timeout a request may ask for, in ms. */
  readonly maxTimeoutMs: number;
  /** The most branches one transaction may have. */
  readonly maxBranches: number;
  /** The largest branch payload accepted, in bytes. */
  readonly maxPayloadBytes: number;
  /** The most live (undecided or undelivered) transactions; beyond it new ones are refused. */
  readonly maxLiveTransactions: number;
  /** First phase-2 retry delay, in ms. */
  readonly retryInitialMs: number;
  /** Cap of the phase-2 retry delay, in ms. */
  readonly retryMaxMs: number;
  /** After this many delivery attempts a transaction is flagged as needing attention. */
  readonly attentionAfterAttempts: number;
  /**
   * How long a transaction waits for a participant that never had a session with this
   * coordinator incarnation (a typo, a service not deployed) before it aborts with "participant X
   * is not registered", instead of holding the other branches' locks until its deadline, in ms.
   */
  readonly unregisteredGraceMs: number;
  /** The most branch payload bytes all live transactions may hold in memory together. */
  readonly maxPayloadBytesInMemory: number;
  /** The most reserved transaction ids not yet used, over all initiators. */
  readonly maxReservedTxIds: number;
  /** How long reserved ids stay usable, in ms; then the unused ones are presumed aborted. */
  readonly reservationTtlMs: number;
}

/** The most ids one reservation may hold. */
export const MAX_RESERVE_COUNT = 1024;

/** Defaults for everything but the epoch. */
export const DEFAULT_COORDINATOR_MACHINE_CONFIG: Omit<CoordinatorMachineConfig, 'epoch'> = {
  defaultTimeoutMs: 10_000,
  maxTimeoutMs: 600_000,
  maxBranches: 64,
  maxPayloadBytes: 1024 * 1024,
  maxLiveTransactions: 100_000,
  retryInitialMs: 200,
  retryMaxMs: 10_000,
  attentionAfterAttempts: 20,
  unregisteredGraceMs: 3_000,
  maxPayloadBytesInMemory: 512 * 1024 * 1024,
  maxReservedTxIds: 100_000,
  reservationTtlMs: 60_000,
};

/**
 * Ids handed to an initiator by `reserve`, for one-shot commits whose id it must know before it
 * sends. Each id can start one transaction at most: using it, asking about it (GetTransaction,
 * Abort) or its expiry marks it `used`, and from then on it is what any issued id without a
 * record is: presumed aborted (or FORGOTTEN below the garbage-collection horizon). Kept in memory only: a restart bumps the epoch,
 * which presumes every id of the old one aborted.
 */
interface Reservation {
  readonly firstSeq: number;
  readonly count: number;
  readonly owner: string | undefined;
  readonly expiresAt: number;
  readonly used: Uint8Array;
  left: number;
}

type Phase =
  /** Begun; participants may enlist. */
  | 'active'
  /** Prepare sent; collecting votes. */
  | 'preparing'
  /** Every vote is YES or READ_ONLY; the COMMIT record is being forced. */
  | 'committing'
  /** Forcing the ONE_PHASE record before handing the decision to the single branch. */
  | 'one-phase-logging'
  /** The single branch was asked to prepare and commit in one step. */
  | 'one-phase'
  /** A one-phase transaction whose outcome only the participant knows: asked with an abort. */
  | 'in-doubt'
  /** Decided (the decision is durable, or presumed for an abort); delivering it. */
  | 'decided';

interface Branch {
  readonly participant: string;
  payload: Uint8Array;
  vote?: Vote;
  /** A Prepare (or, in doubt, a resolving Decision) was handed to a live session. */
  sent: boolean;
  /** The participant enlisted itself (it may hold work under the transaction before Prepare). */
  enlisted: boolean;
  acked: boolean;
  attempts: number;
  lastError?: string | undefined;
}

interface Waiter {
  readonly requestId: number;
  readonly waitForCompletion: boolean;
}

interface Tx {
  readonly id: string;
  phase: Phase;
  readonly deadline?: number;
  readonly branches: Map<string, Branch>;
  outcome?: Outcome;
  reason?: string;
  /** Who began it (an identity URI), recorded with every record of it; opaque to the protocol. */
  owner?: string;
  /** The scoped idempotency key it was started under, recorded with every record of it. */
  key?: string;
  /** An `open/` record exists and must be deleted at the end. */
  hasOpenRecord: boolean;
  waiters: Waiter[];
  /** Branch payload bytes this transaction holds (counted against maxPayloadBytesInMemory). */
  payloadBytes: number;
  deliveryAttempts: number;
  needsAttention: boolean;
}

const deadlineKey = (txId: string): string => `deadline/${txId}`;
const retryKey = (txId: string): string => `retry/${txId}`;
const unregisteredKey = (txId: string): string => `unregistered/${txId}`;
const reservationKey = (firstSeq: number): string => `reservation/${firstSeq}`;

/** The END summary of `tx`. */
function endSummary(tx: Tx): CoordinatorRecord {
  return {
    kind: CoordinatorRecordKind.END,
    txId: tx.id,
    participants: [...tx.branches.keys()],
    outcome: tx.outcome ?? Outcome.ABORTED,
    ...(tx.reason ? { reason: tx.reason } : {}),
    ...recordContext(tx),
  };
}

/** What every record of `tx` carries besides its kind: its owner and idempotency key. */
function recordContext(tx: Tx): { owner?: string; idempotencyKey?: string } {
  if (!tx.key) return ownerOf(tx);
  return { ...ownerOf(tx), idempotencyKey: tx.key };
}

/** The owner field of `tx`'s records and view, when it has one. */
function ownerOf(tx: { readonly owner?: string | undefined }): { owner?: string } {
  return tx.owner ? { owner: tx.owner } : {};
}

function err(code: ProtocolError['code'], message: string, txId?: string, reason?: string): CoordinatorReply {
  const error: ProtocolError = { code, message, ...(txId ? { txId } : {}), ...(reason ? { reason } : {}) };
  return { type: 'error', error };
}

function abortedReply(txId: string, reason: string): CoordinatorReply {
  return err(ErrorCode.TX_ABORTED, `transaction ${txId} aborted: ${reason}`, txId, reason);
}

/**
 * The coordinator protocol. Feed it inputs with `handle`; it returns the effects to carry out.
 * After a restart, create it with a higher epoch and call `recover` with the `open/` records.
 */
export class CoordinatorMachine {
  readonly #config: CoordinatorMachineConfig;
  readonly #txs = new Map<string, Tx>();
  readonly #connected = new Set<string>();
  /** Every participant that had a session with this incarnation (the unregistered grace spares them). */
  readonly #registered = new Set<string>();
  /** Branch payload bytes held by live transactions. */
  #payloadBytes = 0;
  #lastSeq = 0;
  /** The highest garbage-collected transaction id: ids at or below it without a record are forgotten. */
  #horizon: string | undefined;
  /** Reservations with ids left, in increasing `firstSeq`. */
  readonly #reservations: Reservation[] = [];
  /** Reserved ids not yet used, over all reservations. */
  #reservedLeft = 0;
  /** Scoped idempotency key → live transaction (ended ones are found in the log by `lookup-key`). */
  readonly #keys = new Map<string, string>();
  #effects: CoordinatorEffect[] = [];
  #now = 0;

  constructor(config: CoordinatorMachineConfig) {
    if (!Number.isSafeInteger(config.epoch) || config.epoch < 1) throw new RangeError('epoch must be a positive integer');
    this.#config = config;
  }

  /** This incarnation's epoch. */
  get epoch(): number {
    return this.#config.epoch;
  }

  /** How many transactions are live (not yet ended). */
  get liveCount(): number {
    return this.#txs.size;
  }

  /** Names of the participants with a live session. */
  get connected(): ReadonlySet<string> {
    return this.#connected;
  }

  /** Names of every participant that had a session with this incarnation (kept until a restart). */
  get registered(): ReadonlySet<string> {
    return this.#registered;
  }

  /**
   * Rebuilds the transactions that recovery must finish from the `open/` records of the log:
   * every COMMIT is re-driven, every ONE_PHASE is resolved by asking its participant.
   */
  recover(records: readonly CoordinatorRecord[], now: number, gcHorizon?: string): CoordinatorEffect[] {
    this.#now = now;
    if (gcHorizon) this.#raiseHorizon(gcHorizon);
    for (const record of records) {
      if (this.#txs.has(record.txId)) continue;
      if (record.kind === CoordinatorRecordKind.COMMIT) {
        const tx = this.#newTx(record.txId, undefined, 'decided');
        if (record.owner) tx.owner = record.owner;
        this.#keep(tx, record.idempotencyKey);
        tx.outcome = Outcome.COMMITTED;
        tx.hasOpenRecord = true;
        for (const p of record.participants) tx.branches.set(p, newBranch(p, new Uint8Array(), Vote.YES));
        this.#scheduleRetry(tx);
      } else if (record.kind === CoordinatorRecordKind.ONE_PHASE) {
        const tx = this.#newTx(record.txId, undefined, 'in-doubt');
        if (record.owner) tx.owner = record.owner;
        this.#keep(tx, record.idempotencyKey);
        tx.hasOpenRecord = true;
        for (const p of record.participants) tx.branches.set(p, newBranch(p, new Uint8Array()));
        this.#scheduleRetry(tx);
      }
    }
    return this.#flush();
  }

  /** Handles one input at time `now` (ms) and returns the effects to carry out, in order. */
  handle(input: CoordinatorInput, now: number): CoordinatorEffect[] {
    this.#now = now;
    switch (input.type) {
      case 'begin':
        this.#begin(input);
        break;
      case 'commit':
        this.#commit(input, false);
        break;
      case 'reserve':
        this.#reserve(input);
        break;
      case 'abort':
        this.#abortRequest(input);
        break;
      case 'get':
        this.#get(input);
        break;
      case 'message':
        this.#message(input.from, input.message);
        break;
      case 'connected':
        this.#onConnected(input.participant);
        break;
      case 'disconnected':
        this.#connected.delete(input.participant);
        break;
      case 'persisted':
        this.#onPersisted(input.token);
        break;
      case 'persist-failed':
        this.#onPersistFailed(input.token, input.message, input.assumeNotWritten === true);
        break;
      case 'timer':
        this.#onTimer(input.key);
        break;
      case 'lookup-result':
        this.#onLookup(input.txId, input.record, input.pending);
        break;
      case 'gc-horizon':
        this.#raiseHorizon(input.txId);
        break;
      case 'key-lookup-result':
        this.#onKeyLookup(input.key, input.txId, input.pending);
        break;
    }
    return this.#flush();
  }

  /** Describes a live transaction, or returns `undefined` when it is not live. */
  view(txId: string): TxView | undefined {
    const tx = this.#txs.get(txId);
    return tx ? viewOf(tx) : undefined;
  }

  /** The ids of every live transaction (for diagnostics and tests). */
  liveTxIds(): string[] {
    return [...this.#txs.keys()];
  }

  // ---- initiator requests -------------------------------------------------------------------

  #begin(req: Extract<InitiatorRequest, { type: 'begin' }>): void {
    const created = this.#create(req.requestId, req.timeoutMs, req.owner);
    if (created) this.#reply(req.requestId, { type: 'begun', txId: created.id, deadline: created.deadline ?? 0 });
  }

  #create(requestId: number, timeoutMs: number, owner: string | undefined, reservedId?: string): Tx | undefined {
    const c = this.#config;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > c.maxTimeoutMs) {
      this.#reply(requestId, err(ErrorCode.INVALID_ARGUMENT, `timeout ${timeoutMs} ms is out of range (0 to ${c.maxTimeoutMs})`));
      return undefined;
    }
    if (this.#txs.size >= c.maxLiveTransactions) {
      this.#reply(requestId, err(ErrorCode.LIMIT_EXCEEDED, `too many live transactions (limit ${c.maxLiveTransactions})`));
      return undefined;
    }
    const id = reservedId ?? formatTxId(c.epoch, ++this.#lastSeq);
    const tx = this.#newTx(id, this.#now + (timeoutMs || c.defaultTimeoutMs), 'active');
    if (owner) tx.owner = owner;
    this.#emit({ type: 'set-timer', key: deadlineKey(id), at: tx.deadline ?? 0, jitterMs: 0 });
    return tx;
  }

  /** `keyLooked`: the log was already asked which transaction the request's idempotency key names. */
  #commit(req: Extract<InitiatorRequest, { type: 'commit' }>, keyLooked: boolean): void {
    const problem = this.#branchesProblem(req.branches);
    if (problem) return this.#reply(req.requestId, err(ErrorCode.INVALID_ARGUMENT, problem, req.txId || undefined));
    const reserved = req.txId === '' ? undefined : this.#reservationOf(req.txId);
    if (req.idempotencyKey !== undefined) {
      const keyProblem = idempotencyKeyProblem(req.idempotencyKey);
      if (keyProblem) return this.#reply(req.requestId, err(ErrorCode.INVALID_ARGUMENT, keyProblem, req.txId || undefined));
      const key = scopedIdempotencyKey(req.owner, req.idempotencyKey);
      const known = this.#keys.get(key);
      // A retry: answer for the transaction the key names, whatever id and branches this call has.
      if (known !== undefined) return this.#commit(withoutKey(req, known), true);
      if (!keyLooked) return this.#emit({ type: 'lookup-key', key, pending: req });
    }
    let tx: Tx | undefined;
    if (req.txId === '' || reserved) {
      if (req.branches.length === 0) {
        return this.#reply(req.requestId, err(ErrorCode.INVALID_ARGUMENT, 'a one-shot commit needs at least one branch', req.txId || undefined));
      }
      const full = this.#payloadLimitProblem(req.branches.reduce((n, b) => n + b.payload.length, 0));
      if (full) return this.#reply(req.requestId, err(ErrorCode.LIMIT_EXCEEDED, full, req.txId || undefined));
      if (reserved && reserved.owner !== req.owner) {
        return this.#reply(req.requestId, err(ErrorCode.PERMISSION_DENIED, `transaction id ${req.txId} was reserved by another initiator`, req.txId));
      }
      tx = this.#create(req.requestId, req.timeoutMs, req.owner, reserved ? req.txId : undefined);
      if (!tx) return;
      if (reserved) this.#use(reserved, req.txId);
    } else {
      tx = this.#live(req, req.txId);
      if (!tx) return;
    }
    const waiter = { requestId: req.requestId, waitForCompletion: req.waitForCompletion };
    switch (tx.phase) {
      case 'active': {
        if (tx.branches.size + req.branches.filter((b) => !tx.branches.has(b.participant)).length > this.#config.maxBranches) {
          return this.#reply(req.requestId, err(ErrorCode.INVALID_ARGUMENT, `too many branches (limit ${this.#config.maxBranches})`, tx.id));
        }
        let added = 0;
        for (const b of req.branches) {
          const existing = tx.branches.get(b.participant);
          if (!existing) added += b.payload.length;
          else if (b.payload.length > 0) added += b.payload.length - existing.payload.length;
        }
        const full = this.#payloadLimitProblem(added);
        if (full) return this.#reply(req.requestId, err(ErrorCode.LIMIT_EXCEEDED, full, tx.id));
        this.#holdPayload(tx, added);
        for (const b of req.branches) {
          const existing = tx.branches.get(b.participant);
          if (!existing) tx.branches.set(b.participant, newBranch(b.participant, b.payload));
          else if (b.payload.length > 0) existing.payload = b.payload;
        }
        if (tx.branches.size === 0) {
          return this.#reply(req.requestId, err(ErrorCode.INVALID_ARGUMENT, 'the transaction has no branches: name some or enlist participants', tx.id));
        }
        tx.waiters.push(waiter);
        if (req.idempotencyKey !== undefined) this.#keep(tx, scopedIdempotencyKey(req.owner, req.idempotencyKey));
        if (tx.branches.size === 1) this.#startOnePhase(tx);
        else this.#startPrepare(tx);
        return;
      }
      case 'preparing':
      case 'committing':
      case 'one-phase-logging':
      case 'one-phase':
      case 'in-doubt':
        // A retried Commit joins the one in flight: a transaction never runs twice.
        tx.waiters.push(waiter);
        return;
      case 'decided':
        if (tx.outcome === Outcome.ABORTED) return this.#reply(req.requestId, abortedReply(tx.id, tx.reason ?? 'aborted'));
        if (req.waitForCompletion) tx.waiters.push(waiter);
        else this.#reply(req.requestId, { type: 'committed', txId: tx.id });
        return;
    }
  }

  #branchesProblem(branches: readonly BranchSpec[]): string | undefined {
    if (branches.length > this.#config.maxBranches) return `too many branches: ${branches.length} (limit ${this.#config.maxBranches})`;
    const seen = new Set<string>();
    for (const b of branches) {
      const p = participantNameProblem(b.participant);
      if (p) return p;
      if (seen.has(b.participant)) return `participant ${b.participant} is named in two branches`;
      seen.add(b.participant);
      if (b.payload.length > this.#config.maxPayloadBytes) {
        return `payload for ${b.participant} is ${b.payload.length} bytes (limit ${this.#config.maxPayloadBytes})`;
      }
    }
    return undefined;
  }

  #abortRequest(req: Extract<InitiatorRequest, { type: 'abort' }>): void {
    if (!this.#settleReserved(req, req.caller)) return;
    const tx = this.#live(req, req.txId);
    if (!tx) return;
    switch (tx.phase) {
      case 'active':
      case 'preparing':
        this.#decideAbort(tx, req.reason ? `aborted by the initiator: ${req.reason}` : 'aborted by the initiator');
        return this.#reply(req.requestId, { type: 'aborted', txId: tx.id });
      case 'decided':
        if (tx.outcome === Outcome.ABORTED) return this.#reply(req.requestId, { type: 'aborted', txId: tx.id });
        return this.#reply(req.requestId, err(ErrorCode.WRONG_STATE, `transaction ${tx.id} is committed and cannot be aborted`, tx.id));
      case 'committing':
        return this.#reply(req.requestId, err(ErrorCode.WRONG_STATE, `transaction ${tx.id} is being committed and cannot be aborted`, tx.id));
      case 'one-phase-logging':
      case 'one-phase':
      case 'in-doubt':
        return this.#reply(
          req.requestId,
          err(ErrorCode.WRONG_STATE, `transaction ${tx.id} was handed to its only participant for a one-phase commit and cannot be aborted`, tx.id),
        );
    }
  }

  #get(req: Extract<InitiatorRequest, { type: 'get' }>): void {
    if (!this.#settleReserved(req, req.caller)) return;
    const tx = this.#live(req, req.txId);
    if (tx) this.#reply(req.requestId, { type: 'transaction', view: viewOf(tx) });
  }

  #reserve(req: Extract<InitiatorRequest, { type: 'reserve' }>): void {
    const c = this.#config;
    if (!Number.isSafeInteger(req.count) || req.count < 1 || req.count > MAX_RESERVE_COUNT) {
      return this.#reply(req.requestId, err(ErrorCode.INVALID_ARGUMENT, `count ${req.count} is out of range (1 to ${MAX_RESERVE_COUNT})`));
    }
    if (this.#reservedLeft + req.count > c.maxReservedTxIds) {
      return this.#reply(req.requestId, err(ErrorCode.LIMIT_EXCEEDED, `too many reserved transaction ids not yet used (limit ${c.maxReservedTxIds})`));
    }
    const r: Reservation = {
      firstSeq: this.#lastSeq + 1,
      count: req.count,
      owner: req.owner,
      expiresAt: this.#now + c.reservationTtlMs,
      used: new Uint8Array(req.count),
      left: req.count,
    };
    this.#lastSeq += req.count;
    this.#reservations.push(r);
    this.#reservedLeft += r.count;
    this.#emit({ type: 'set-timer', key: reservationKey(r.firstSeq), at: r.expiresAt, jitterMs: 0 });
    this.#reply(req.requestId, { type: 'reserved', epoch: c.epoch, firstSeq: r.firstSeq, count: r.count, expiresAt: r.expiresAt });
  }

  /** The reservation holding `txId`, when the id is reserved and not used yet. */
  #reservationOf(txId: string): Reservation | undefined {
    if (this.#reservations.length === 0) return undefined;
    const parts = parseTxId(txId);
    if (!parts || parts.epoch !== this.#config.epoch || this.#txs.has(txId)) return undefined;
    const rs = this.#reservations;
    let lo = 0;
    let hi = rs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = rs[mid] as Reservation;
      if (parts.seq < r.firstSeq) hi = mid - 1;
      else if (parts.seq >= r.firstSeq + r.count) lo = mid + 1;
      else return r.used[parts.seq - r.firstSeq] === 0 ? r : undefined;
    }
    return undefined;
  }

  /** Marks a reserved id used: it can start no transaction any more. */
  #use(r: Reservation, txId: string): void {
    // The id parsed when its reservation was found; only its sequence number is read here.
    const seq = Number(txId.slice(txId.lastIndexOf('-') + 1));
    r.used[seq - r.firstSeq] = 1;
    r.left--;
    this.#reservedLeft--;
    if (r.left === 0) this.#dropReservation(r);
  }

  #dropReservation(r: Reservation): void {
    const i = this.#reservations.indexOf(r);
    if (i < 0) return;
    this.#reservations.splice(i, 1);
    this.#reservedLeft -= r.left;
    r.left = 0;
    this.#emit({ type: 'cancel-timer', key: reservationKey(r.firstSeq) });
  }

  /**
   * Before a status query or an abort answers for a reserved, unused id, the id is used up: the
   * answer "presumed aborted" must stay true, so a Commit arriving later must not start it.
   * Only the initiator that reserved it may do that (others could spoil its ids); returns false
   * after answering such a caller.
   */
  #settleReserved(req: InitiatorRequest, caller: string | undefined): boolean {
    if (req.type !== 'get' && req.type !== 'abort') return true;
    const r = this.#reservationOf(req.txId);
    if (!r) return true;
    if (r.owner !== undefined && caller !== undefined && r.owner !== caller) {
      this.#reply(req.requestId, err(ErrorCode.PERMISSION_DENIED, `transaction id ${req.txId} was reserved by another initiator`, req.txId));
      return false;
    }
    this.#use(r, req.txId);
    return true;
  }

  /** Remembers that `tx` was started under the scoped idempotency `key`. */
  #keep(tx: Tx, key: string | undefined): void {
    if (key === undefined) return;
    tx.key = key;
    this.#keys.set(key, tx.id);
  }

  #onKeyLookup(key: string, txId: string | undefined, pending: CoordinatorInput): void {
    if (pending.type !== 'commit') return;
    const known = this.#keys.get(key) ?? txId;
    if (known !== undefined) return this.#commit(withoutKey(pending, known), true);
    this.#commit(pending, true);
  }

  /**
   * Finds the live transaction a request names. When it is not live, answers the request itself:
   * malformed or never issued ids directly, others after looking up the END summary.
   */
  #live(req: InitiatorRequest, txId: string): Tx | undefined {
    const tx = this.#txs.get(txId);
    if (tx) return tx;
    const problem = txIdProblem(txId);
    if (problem) {
      this.#reply(req.requestId, err(ErrorCode.INVALID_ARGUMENT, problem));
    } else if (!this.#wasIssued(txId)) {
      this.#reply(req.requestId, err(ErrorCode.TX_NOT_FOUND, `transaction ${txId} was never begun by this coordinator`, txId));
    } else {
      this.#emit({ type: 'lookup', txId, pending: req });
    }
    return undefined;
  }

  #raiseHorizon(txId: string): void {
    // A reserved, unused id may fall below the horizon and still start later: it is live from
    // then on, and its END summary answers for it before the horizon is ever consulted.
    if (parseTxId(txId) && (this.#horizon === undefined || compareTxIds(txId, this.#horizon) > 0)) this.#horizon = txId;
  }

  /** An id this coordinator (in this or an earlier epoch) could have issued. */
  #wasIssued(txId: string): boolean {
    const parts = parseTxId(txId);
    if (!parts) return false;
    return parts.epoch < this.#config.epoch || (parts.epoch === this.#config.epoch && parts.seq <= this.#lastSeq);
  }

  /** At or below the garbage-collection horizon: its summary may have been dropped. */
  #isForgotten(txId: string): boolean {
    return this.#horizon !== undefined && compareTxIds(txId, this.#horizon) <= 0;
  }

  /** Answers for a transaction whose summary was garbage-collected: never a guess. */
  #answerForgotten(txId: string, pending: CoordinatorInput): void {
    const message = `transaction ${txId} finished long ago and its outcome is no longer kept (past the retention horizon)`;
    switch (pending.type) {
      case 'get':
        return this.#reply(pending.requestId, {
          type: 'transaction',
          view: { txId, state: TxState.FORGOTTEN, reason: message, branches: [], presumed: false, needsAttention: false },
        });
      case 'commit':
      case 'abort':
        return this.#reply(pending.requestId, err(ErrorCode.WRONG_STATE, message, txId));
      default:
        return;
    }
  }

  #onLookup(txId: string, record: CoordinatorRecord | undefined, pending: CoordinatorInput): void {
    if (this.#txs.has(txId)) {
      // It became live again meanwhile (cannot happen for an ended id, but stay correct): re-run.
      // `handle` flushes and replaces the effect list: take its result first, then append it to
      // the new list (`this.#effects.push(...this.handle())` would push into the old one).
      const effects = this.handle(pending, this.#now);
      this.#effects.push(...effects);
      return;
    }
    // A participant asking holds the transaction prepared without having acknowledged it, and a
    // COMMIT record stays open until every YES voter acknowledged (after forcing its outcome):
    // so for a participant, no record always means aborted. Initiators get no such guess.
    if (record === undefined && pending.type !== 'message' && this.#isForgotten(txId)) return this.#answerForgotten(txId, pending);
    const outcome = record?.outcome ?? Outcome.ABORTED;
    const presumed = record === undefined;
    const reason = record?.reason ?? (presumed ? 'no decision was recorded (presumed abort)' : undefined);
    switch (pending.type) {
      case 'commit':
        if (outcome === Outcome.COMMITTED) return this.#reply(pending.requestId, { type: 'committed', txId });
        return this.#reply(pending.requestId, abortedReply(txId, reason ?? 'aborted'));
      case 'abort':
        if (outcome === Outcome.COMMITTED) {
          return this.#reply(pending.requestId, err(ErrorCode.WRONG_STATE, `transaction ${txId} is committed and cannot be aborted`, txId));
        }
        return this.#reply(pending.requestId, { type: 'aborted', txId });
      case 'get': {
        const view: TxView = {
          txId,
          state: TxState.ENDED,
          outcome,
          ...(reason ? { reason } : {}),
          branches: (record?.participants ?? []).map((participant) => ({ participant, acknowledged: true, attempts: 0 })),
          presumed,
          needsAttention: false,
          ...ownerOf(record ?? {}),
        };
        return this.#reply(pending.requestId, { type: 'transaction', view });
      }
      case 'message':
        if (pending.message.type === 'enlist') {
          return this.#send(pending.from, {
            type: 'enlist-result',
            requestId: pending.message.requestId,
            error: { code: ErrorCode.WRONG_STATE, message: `transaction ${txId} is no longer active`, txId },
          });
        }
        // An inquiry, or a YES vote for a transaction that is gone: tell the participant.
        return this.#send(pending.from, { type: 'decision', txId, outcome });
      default:
        return;
    }
  }

  // ---- participant messages -----------------------------------------------------------------

  #message(from: string, msg: ParticipantMessage): void {
    const tx = this.#txs.get(msg.txId);
    if (!tx) return this.#messageForUnknown(from, msg);
    const branch = tx.branches.get(from);
    if (msg.type === 'enlist') return this.#enlist(from, tx, msg);
    if (!branch) return this.#ignored('not-a-branch', msg.type, tx.id, from);
    switch (msg.type) {
      case 'vote':
        return this.#onVote(tx, branch, msg.vote, msg.reason);
      case 'ack':
        return this.#onAck(tx, branch, msg.outcome);
      case 'inquiry':
        return this.#onInquiry(tx, branch);
    }
  }

  #messageForUnknown(from: string, msg: ParticipantMessage): void {
    if (msg.type === 'enlist') {
      const problem = txIdProblem(msg.txId);
      if (problem) return this.#send(from, { type: 'enlist-result', requestId: msg.requestId, error: { code: ErrorCode.INVALID_ARGUMENT, message: problem } });
      if (!this.#wasIssued(msg.txId)) {
        return this.#send(from, {
          type: 'enlist-result',
          requestId: msg.requestId,
          error: { code: ErrorCode.TX_NOT_FOUND, message: `transaction ${msg.txId} was never begun by this coordinator`, txId: msg.txId },
        });
      }
      return this.#emit({ type: 'lookup', txId: msg.txId, pending: { type: 'message', from, message: msg } });
    }
    const wantsAnswer = msg.type === 'inquiry' || (msg.type === 'vote' && msg.vote === Vote.YES);
    if (wantsAnswer && this.#wasIssued(msg.txId)) {
      // The participant holds this transaction prepared: tell it the outcome from the log.
      return this.#emit({ type: 'lookup', txId: msg.txId, pending: { type: 'message', from, message: msg } });
    }
    this.#ignored(this.#wasIssued(msg.txId) ? 'unknown-tx' : 'never-issued', msg.type, msg.txId, from);
  }

  #enlist(from: string, tx: Tx, msg: Extract<ParticipantMessage, { type: 'enlist' }>): void {
    let error: ProtocolError | undefined;
    if (tx.phase !== 'active') {
      error = { code: ErrorCode.WRONG_STATE, message: `transaction ${tx.id} is no longer active (it is ${viewOf(tx).state})`, txId: tx.id };
    } else if (msg.payload.length > this.#config.maxPayloadBytes) {
      error = { code: ErrorCode.LIMIT_EXCEEDED, message: `payload is ${msg.payload.length} bytes (limit ${this.#config.maxPayloadBytes})`, txId: tx.id };
    } else if (!tx.branches.has(from) && tx.branches.size >= this.#config.maxBranches) {
      error = { code: ErrorCode.LIMIT_EXCEEDED, message: `too many branches (limit ${this.#config.maxBranches})`, txId: tx.id };
    } else if (this.#payloadLimitProblem(msg.payload.length - (tx.branches.get(from)?.payload.length ?? 0))) {
      error = { code: ErrorCode.LIMIT_EXCEEDED, message: this.#payloadLimitProblem(msg.payload.length) ?? '', txId: tx.id };
    } else {
      const existing = tx.branches.get(from);
      if (!existing || msg.payload.length > 0) this.#holdPayload(tx, msg.payload.length - (existing?.payload.length ?? 0));
      if (!existing) tx.branches.set(from, { ...newBranch(from, msg.payload), enlisted: true });
      else {
        existing.enlisted = true;
        if (msg.payload.length > 0) existing.payload = msg.payload;
      }
    }
    this.#send(from, { type: 'enlist-result', requestId: msg.requestId, ...(error ? { error } : {}) });
  }

  #onVote(tx: Tx, branch: Branch, vote: Vote, reason: string): void {
    if (tx.phase === 'one-phase' || tx.phase === 'in-doubt') {
      // One phase: the participant decided. YES (or READ_ONLY) means it committed.
      branch.vote = vote;
      return this.#finishOnePhase(tx, vote === Vote.NO ? Outcome.ABORTED : Outcome.COMMITTED, reason);
    }
    if (branch.vote !== undefined) {
      return this.#ignored(branch.vote === vote ? 'duplicate' : 'conflicting-vote', 'vote', tx.id, branch.participant);
    }
    if (tx.phase === 'preparing') {
      branch.vote = vote;
      if (vote === Vote.NO) {
        branch.lastError = reason ? `voted NO: ${reason}` : 'voted NO';
        return this.#decideAbort(tx, `participant ${branch.participant} voted NO${reason ? `: ${reason}` : ''}`);
      }
      return this.#maybeDecideCommit(tx);
    }
    if (tx.phase === 'decided' && tx.outcome === Outcome.ABORTED && vote === Vote.YES) {
      // A late YES after the abort: the participant is prepared and must still learn the abort.
      branch.vote = vote;
      this.#deliver(tx, branch);
      return this.#scheduleRetry(tx);
    }
    this.#ignored('late', 'vote', tx.id, branch.participant);
  }

  #onAck(tx: Tx, branch: Branch, outcome: Outcome): void {
    if (tx.phase === 'one-phase' || tx.phase === 'in-doubt') return this.#finishOnePhase(tx, outcome, undefined);
    if (tx.phase !== 'decided') return this.#ignored('late', 'ack', tx.id, branch.participant);
    if (branch.acked) return this.#ignored('duplicate', 'ack', tx.id, branch.participant);
    if (outcome !== tx.outcome) {
      branch.lastError = `acknowledged ${outcome} but the decision is ${tx.outcome}`;
      return this.#ignored('outcome-mismatch', 'ack', tx.id, branch.participant);
    }
    branch.acked = true;
    branch.lastError = undefined;
    this.#maybeEnd(tx);
  }

  #onInquiry(tx: Tx, branch: Branch): void {
    switch (tx.phase) {
      case 'decided':
        if (tx.outcome === Outcome.ABORTED && branch.vote === undefined) branch.vote = Vote.YES;
        if (needsAck(tx, branch) && !branch.acked) this.#deliver(tx, branch);
        else this.#send(branch.participant, { type: 'decision', txId: tx.id, outcome: tx.outcome ?? Outcome.ABORTED });
        return;
      default:
        // Undecided: the decision will be sent when it is made.
        return;
    }
  }

  // ---- phases -------------------------------------------------------------------------------

  #startPrepare(tx: Tx): void {
    tx.phase = 'preparing';
    for (const branch of tx.branches.values()) this.#sendPrepare(tx, branch, false);
    for (const p of tx.branches.keys()) {
      if (this.#registered.has(p)) continue;
      this.#emit({ type: 'set-timer', key: unregisteredKey(tx.id), at: this.#now + this.#config.unregisteredGraceMs, jitterMs: 0 });
      break;
    }
  }

  #startOnePhase(tx: Tx): void {
    tx.phase = 'one-phase-logging';
    tx.hasOpenRecord = true;
    const [branch] = tx.branches.values();
    this.#emit({
      type: 'persist',
      ops: [{ op: 'put', space: 'open', record: { kind: CoordinatorRecordKind.ONE_PHASE, txId: tx.id, participants: [branch?.participant ?? ''], ...recordContext(tx) } }],
      force: true,
      token: { kind: 'one-phase', txId: tx.id },
    });
  }

  #sendPrepare(tx: Tx, branch: Branch, onePhase: boolean): void {
    if (!this.#connected.has(branch.participant)) {
      branch.lastError = `participant ${branch.participant} is not connected`;
      return;
    }
    branch.sent = true;
    branch.attempts++;
    this.#send(branch.participant, { type: 'prepare', txId: tx.id, payload: branch.payload, deadline: tx.deadline ?? this.#now, onePhase });
  }

  #maybeDecideCommit(tx: Tx): void {
    for (const b of tx.branches.values()) if (b.vote === undefined) return;
    if (tx.deadline !== undefined && this.#now > tx.deadline) {
      // The last vote came after the deadline (its timer had not fired yet): too late to commit.
      return this.#decideAbort(tx, 'the votes came in after the transaction deadline');
    }
    const yes = [...tx.branches.values()].filter((b) => b.vote === Vote.YES).map((b) => b.participant);
    this.#emit({ type: 'cancel-timer', key: deadlineKey(tx.id) });
    if (yes.length === 0) {
      // Every branch is read-only: nothing to deliver, but the answer COMMITTED must stay true.
      // Its END summary is forced before anyone hears it: otherwise a power loss could take the
      // summary back and a later status query would presume ABORTED.
      tx.phase = 'committing';
      tx.outcome = Outcome.COMMITTED;
      this.#emit({
        type: 'persist',
        ops: [{ op: 'put', space: 'done', record: endSummary(tx) }],
        force: true,
        token: { kind: 'read-only', txId: tx.id },
      });
      return;
    }
    tx.phase = 'committing';
    tx.hasOpenRecord = true;
    this.#emit({
      type: 'persist',
      ops: [{ op: 'put', space: 'open', record: { kind: CoordinatorRecordKind.COMMIT, txId: tx.id, participants: yes, ...recordContext(tx) } }],
      force: true,
      token: { kind: 'commit', txId: tx.id },
    });
  }

  #onPersisted(token: PersistToken): void {
    const tx = this.#txs.get(token.txId);
    if (!tx) return;
    if (token.kind === 'commit' && tx.phase === 'committing') {
      // The decision is durable: only now may commit messages leave.
      tx.phase = 'decided';
      tx.outcome = Outcome.COMMITTED;
      this.#emit({ type: 'decided', txId: tx.id, outcome: Outcome.COMMITTED });
      for (const b of tx.branches.values()) if (needsAck(tx, b)) this.#deliver(tx, b);
      this.#answerWaiters(tx, false);
      this.#scheduleRetry(tx);
    } else if (token.kind === 'read-only' && tx.phase === 'committing') {
      tx.phase = 'decided';
      this.#emit({ type: 'decided', txId: tx.id, outcome: Outcome.COMMITTED });
      this.#end(tx, Outcome.COMMITTED);
    } else if (token.kind === 'one-phase' && tx.phase === 'one-phase-logging') {
      tx.phase = 'one-phase';
      const [branch] = tx.branches.values();
      if (branch) this.#sendPrepare(tx, branch, true);
    }
  }

  #onPersistFailed(token: PersistToken, message: string, assumeNotWritten: boolean): void {
    const tx = this.#txs.get(token.txId);
    if (!tx) return;
    const pending = (token.kind !== 'one-phase' && tx.phase === 'committing') || (token.kind === 'one-phase' && tx.phase === 'one-phase-logging');
    if (!pending) return;
    if (assumeNotWritten) return this.#decideAbort(tx, `the decision log could not be written: ${message}`);
    // The record may have landed: nobody may hear an outcome from this incarnation.
    const unknown = err(
      ErrorCode.OUTCOME_UNKNOWN,
      `the decision log write for ${tx.id} failed (${message}); the outcome is unknown until the coordinator restarts and reads its log: ask again with GetTransaction`,
      tx.id,
    );
    for (const w of tx.waiters) this.#reply(w.requestId, unknown);
    tx.waiters = [];
  }

  #decideAbort(tx: Tx, reason: string): void {
    tx.phase = 'decided';
    tx.outcome = Outcome.ABORTED;
    tx.reason = reason;
    this.#emit({ type: 'cancel-timer', key: deadlineKey(tx.id) });
    this.#emit({ type: 'decided', txId: tx.id, outcome: Outcome.ABORTED, reason });
    for (const b of tx.branches.values()) {
      // Tell everyone who may hold it prepared or hold work under it (enlisted); only YES voters
      // must acknowledge.
      if (b.vote === Vote.YES || (b.vote === undefined && (b.sent || b.enlisted))) this.#deliver(tx, b);
    }
    this.#answerWaiters(tx, false);
    if (!this.#maybeEnd(tx)) this.#scheduleRetry(tx);
  }

  #finishOnePhase(tx: Tx, outcome: Outcome, reason: string | undefined): void {
    const [branch] = tx.branches.values();
    tx.phase = 'decided';
    tx.outcome = outcome;
    if (outcome === Outcome.ABORTED) {
      tx.reason = `participant ${branch?.participant ?? '?'} aborted the one-phase commit${reason ? `: ${reason}` : ''}`;
      if (branch) branch.lastError = reason ? `voted NO: ${reason}` : undefined;
    }
    if (branch) branch.acked = true;
    this.#emit({ type: 'cancel-timer', key: deadlineKey(tx.id) });
    this.#emit({ type: 'decided', txId: tx.id, outcome, ...(tx.reason ? { reason: tx.reason } : {}) });
    this.#answerWaiters(tx, false);
    this.#maybeEnd(tx);
  }

  /** Ends the transaction when every branch that must acknowledge has; returns whether it did. */
  #maybeEnd(tx: Tx): boolean {
    for (const b of tx.branches.values()) if (needsAck(tx, b) && !b.acked) return false;
    this.#emit({
      type: 'persist',
      ops: [...(tx.hasOpenRecord ? [{ op: 'del', space: 'open', txId: tx.id } as const] : []), { op: 'put', space: 'done', record: endSummary(tx) }],
      force: false,
    });
    this.#end(tx, tx.outcome ?? Outcome.ABORTED);
    return true;
  }

  /** Forgets `tx`, whose END summary is written or being written. */
  #end(tx: Tx, outcome: Outcome): void {
    this.#emit({ type: 'cancel-timer', key: retryKey(tx.id) });
    this.#emit({ type: 'cancel-timer', key: deadlineKey(tx.id) });
    this.#txs.delete(tx.id);
    if (tx.key !== undefined && this.#keys.get(tx.key) === tx.id) this.#keys.delete(tx.key);
    this.#holdPayload(tx, -tx.payloadBytes);
    this.#emit({ type: 'ended', txId: tx.id, outcome });
    this.#answerWaiters(tx, true);
  }

  #answerWaiters(tx: Tx, ended: boolean): void {
    const keep: Waiter[] = [];
    for (const w of tx.waiters) {
      if (w.waitForCompletion && !ended && tx.outcome === Outcome.COMMITTED) {
        keep.push(w);
      } else if (tx.outcome === Outcome.COMMITTED) {
        this.#reply(w.requestId, { type: 'committed', txId: tx.id });
      } else {
        this.#reply(w.requestId, abortedReply(tx.id, tx.reason ?? 'aborted'));
      }
    }
    tx.waiters = keep;
  }

  /** Sends the decision (or, in doubt, the resolving abort) to one branch. */
  #deliver(tx: Tx, branch: Branch): void {
    if (!this.#connected.has(branch.participant)) {
      branch.lastError = `participant ${branch.participant} is not connected`;
      return;
    }
    branch.attempts++;
    branch.sent = true;
    // A one-phase transaction in doubt is the participant's to decide: ask, never tell.
    if (tx.phase === 'in-doubt') return this.#send(branch.participant, { type: 'outcome-query', txId: tx.id });
    this.#send(branch.participant, { type: 'decision', txId: tx.id, outcome: tx.outcome ?? Outcome.ABORTED });
  }

  #scheduleRetry(tx: Tx): void {
    const c = this.#config;
    const delay = backoffDelayMs(tx.deliveryAttempts + 1, c.retryInitialMs, c.retryMaxMs);
    this.#emit({ type: 'set-timer', key: retryKey(tx.id), at: this.#now + delay, jitterMs: Math.floor(delay / 2) });
  }

  // ---- sessions and timers ------------------------------------------------------------------

  #onConnected(participant: string): void {
    this.#connected.add(participant);
    this.#registered.add(participant);
    for (const tx of this.#txs.values()) {
      const branch = tx.branches.get(participant);
      if (!branch) continue;
      if (tx.phase === 'preparing' && branch.vote === undefined) this.#sendPrepare(tx, branch, false);
      else if (tx.phase === 'one-phase' && !branch.sent) this.#sendPrepare(tx, branch, true);
      else if (tx.phase === 'in-doubt' || (tx.phase === 'decided' && needsAck(tx, branch) && !branch.acked)) this.#deliver(tx, branch);
    }
  }

  #onTimer(key: string): void {
    const slash = key.indexOf('/');
    const kind = key.slice(0, slash);
    if (kind === 'reservation') {
      const firstSeq = Number(key.slice(slash + 1));
      const r = this.#reservations.find((x) => x.firstSeq === firstSeq);
      if (r) this.#dropReservation(r);
      return;
    }
    const tx = this.#txs.get(key.slice(slash + 1));
    if (!tx) return;
    if (kind === 'deadline') this.#onDeadline(tx);
    else if (kind === 'retry') this.#onRetry(tx);
    else if (kind === 'unregistered') this.#onUnregistered(tx);
  }

  /** The grace for participants that never registered ran out: abort fast, naming them. */
  #onUnregistered(tx: Tx): void {
    if (tx.phase !== 'preparing') return;
    const unknown = [...tx.branches.values()].filter((b) => b.vote === undefined && !this.#registered.has(b.participant));
    if (unknown.length === 0) return;
    for (const b of unknown) b.lastError = 'not registered';
    this.#decideAbort(tx, unknown.map((b) => `participant ${b.participant} is not registered`).join(', '));
  }

  #onDeadline(tx: Tx): void {
    switch (tx.phase) {
      case 'active':
        return this.#decideAbort(tx, 'the transaction passed its deadline before Commit');
      case 'preparing': {
        const missing = [...tx.branches.values()].filter((b) => b.vote === undefined);
        const unavailable = missing.filter((b) => !b.sent);
        const reason =
          unavailable.length > 0
            ? unavailable.map((b) => `participant ${b.participant} unavailable`).join(', ')
            : `prepare deadline exceeded waiting for ${missing.map((b) => b.participant).join(', ')}`;
        for (const b of missing) b.lastError = unavailable.includes(b) ? 'unavailable' : 'no vote before the deadline';
        return this.#decideAbort(tx, reason);
      }
      case 'one-phase-logging':
      case 'one-phase': {
        const [branch] = tx.branches.values();
        if (branch && !branch.sent) {
          // The participant never saw the request: aborting is safe.
          branch.lastError = 'unavailable';
          return this.#decideAbort(tx, `participant ${branch.participant} unavailable`);
        }
        // Only the participant knows whether it committed: ask it with an abort, which it either
        // applies (if it had not decided) or answers with its own outcome.
        tx.phase = 'in-doubt';
        if (branch) this.#deliver(tx, branch);
        return this.#scheduleRetry(tx);
      }
      default:
        return;
    }
  }

  #onRetry(tx: Tx): void {
    if (tx.phase !== 'decided' && tx.phase !== 'in-doubt') return;
    tx.deliveryAttempts++;
    if (tx.deliveryAttempts >= this.#config.attentionAfterAttempts) tx.needsAttention = true;
    for (const b of tx.branches.values()) {
      if (tx.phase === 'in-doubt' || (needsAck(tx, b) && !b.acked)) this.#deliver(tx, b);
    }
    this.#scheduleRetry(tx);
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** Why holding `bytes` more payload would pass maxPayloadBytesInMemory, if it would. */
  #payloadLimitProblem(bytes: number): string | undefined {
    const limit = this.#config.maxPayloadBytesInMemory;
    if (bytes <= 0 || this.#payloadBytes + bytes <= limit) return undefined;
    return `the coordinator holds ${this.#payloadBytes} payload bytes of live transactions; ${bytes} more would pass its limit of ${limit}: retry once transactions finished`;
  }

  #holdPayload(tx: Tx, bytes: number): void {
    tx.payloadBytes += bytes;
    this.#payloadBytes += bytes;
  }

  #newTx(id: string, deadline: number | undefined, phase: Phase): Tx {
    const tx: Tx = {
      id,
      phase,
      ...(deadline !== undefined ? { deadline } : {}),
      branches: new Map(),
      hasOpenRecord: false,
      waiters: [],
      payloadBytes: 0,
      deliveryAttempts: 0,
      needsAttention: false,
    };
    this.#txs.set(id, tx);
    return tx;
  }

  #send(to: string, message: CoordinatorMessage): void {
    this.#emit({ type: 'send', to, message });
  }

  #reply(requestId: number, reply: CoordinatorReply): void {
    this.#emit({ type: 'reply', requestId, reply });
  }

  #ignored(why: IgnoredReason, what: string, txId: string | undefined, participant: string | undefined): void {
    this.#emit({ type: 'ignored', why, what, ...(txId ? { txId } : {}), ...(participant ? { participant } : {}) });
  }

  #emit(effect: CoordinatorEffect): void {
    this.#effects.push(effect);
  }

  #flush(): CoordinatorEffect[] {
    const out = this.#effects;
    this.#effects = [];
    return out;
  }
}

function newBranch(participant: string, payload: Uint8Array, vote?: Vote): Branch {
  return { participant, payload, ...(vote ? { vote } : {}), sent: false, enlisted: false, acked: false, attempts: 0 };
}

/** Branches that must acknowledge the decision: those that voted YES. */
function needsAck(tx: Tx, branch: Branch): boolean {
  return tx.phase === 'decided' && branch.vote === Vote.YES;
}

function viewOf(tx: Tx): TxView {
  const state: TxState =
    tx.phase === 'active'
      ? TxState.ACTIVE
      : tx.phase === 'decided'
        ? TxState.DECIDED
        : tx.phase === 'in-doubt'
          ? TxState.IN_DOUBT
          : TxState.PREPARING;
  const branches: BranchView[] = [...tx.branches.values()].map((b) => ({
    participant: b.participant,
    ...(b.vote ? { vote: b.vote } : {}),
    acknowledged: b.acked,
    attempts: b.attempts,
    ...(b.lastError ? { lastError: b.lastError } : {}),
  }));
  return {
    txId: tx.id,
    state,
    ...(tx.outcome ? { outcome: tx.outcome } : {}),
    ...(tx.reason ? { reason: tx.reason } : {}),
    ...(tx.deadline !== undefined ? { deadline: tx.deadline } : {}),
    branches,
    presumed: false,
    needsAttention: tx.needsAttention,
    ...ownerOf(tx),
  };
}

/** A keyed commit turned into the same call for the transaction `txId` its key names (no key, no branches). */
function withoutKey<T extends { readonly idempotencyKey?: string; readonly branches: readonly unknown[]; readonly txId: string }>(req: T, txId: string): T {
  const { idempotencyKey: _key, ...rest } = req;
  return { ...rest, txId, branches: [] } as unknown as T;
}
