// The participant's side of two-phase commit as a pure state machine. It decides when to run the
// application's hooks, what to log (and whether to force it) and what to answer; it never decides
// an in-doubt transaction on its own: only the coordinator's word moves a PREPARED transaction.

import type { CoordinatorMessage } from './coordinator-events.js';
import {
  ParticipantRecordState,
  type ParticipantEffect,
  type ParticipantIgnoredReason,
  type ParticipantInput,
  type ParticipantPersistToken,
  type ParticipantRecord,
} from './participant-events.js';
import { backoffDelayMs, Outcome, Vote } from './types.js';

/** Tunables of the participant protocol. */
export interface ParticipantMachineConfig {
  /** How often to ask the coordinator about transactions still in doubt, in ms. */
  readonly inquiryIntervalMs: number;
  /** First delay before re-running a commit or abort hook that threw, in ms. */
  readonly hookRetryInitialMs: number;
  /** Cap of that delay, in ms. */
  readonly hookRetryMaxMs: number;
}

/** Defaults for the participant protocol. */
export const DEFAULT_PARTICIPANT_MACHINE_CONFIG: ParticipantMachineConfig = {
  inquiryIntervalMs: 2_000,
  hookRetryInitialMs: 100,
  hookRetryMaxMs: 5_000,
};

type Stage =
  /** Joined an active transaction; nothing prepared yet. */
  | 'enlisted'
  /** The prepare hook is running. */
  | 'preparing'
  /** Forcing the PREPARED record. */
  | 'logging-prepared'
  /** Voted YES; in doubt until the coordinator says. */
  | 'prepared'
  /** The commit or abort hook is running. */
  | 'applying'
  /** Writing the outcome record. */
  | 'logging-outcome';

interface PTx {
  readonly id: string;
  stage: Stage;
  onePhase: boolean;
  payload: Uint8Array;
  /** An abort arrived while preparing: apply it once the prepare hook returns. */
  abortRequested: boolean;
  outcome?: Outcome;
  /** What to answer once the outcome is logged. */
  answer: 'vote' | 'ack';
  /** The NO vote's reason, when this participant refused. */
  noReason?: string;
  /** When it became in doubt (for inquiries). */
  preparedAt: number;
  applyAttempts: number;
}

const INQUIRY_TIMER = 'inquire';
const applyKey = (txId: string): string => `apply/${txId}`;

/**
 * The participant protocol. Feed it inputs with `handle`; it returns the effects to carry out.
 * After a restart, call `recover` with every PREPARED record of the log.
 */
export class ParticipantMachine {
  readonly #config: ParticipantMachineConfig;
  readonly #txs = new Map<string, PTx>();
  #effects: ParticipantEffect[] = [];
  #now = 0;
  #inquiryTimerSet = false;

  constructor(config: ParticipantMachineConfig = DEFAULT_PARTICIPANT_MACHINE_CONFIG) {
    this.#config = config;
  }

  /** Rebuilds the in-doubt transactions from the PREPARED records of the log. */
  recover(records: readonly ParticipantRecord[], now: number): ParticipantEffect[] {
    this.#now = now;
    for (const r of records) {
      if (r.state !== ParticipantRecordState.PREPARED || this.#txs.has(r.txId)) continue;
      const tx = this.#newTx(r.txId, 'prepared', r.onePhase, r.payload ?? new Uint8Array());
      // Ask at the first chance (the connect), then on the inquiry timer.
      tx.preparedAt = now - this.#config.inquiryIntervalMs;
    }
    this.#armInquiry();
    return this.#flush();
  }

  /** The ids of the transactions this participant holds prepared without knowing the outcome. */
  inDoubt(): string[] {
    return [...this.#txs.values()].filter((t) => t.stage === 'prepared').map((t) => t.id);
  }

  /** The in-doubt transactions with their branch payloads (for a service to re-lock after a restart). */
  inDoubtWithPayloads(): { txId: string; payload: Uint8Array }[] {
    return [...this.#txs.values()].filter((t) => t.stage === 'prepared').map((t) => ({ txId: t.id, payload: t.payload }));
  }

  /** How many transactions are live here. */
  get liveCount(): number {
    return this.#txs.size;
  }

  /** Handles one input at time `now` (ms) and returns the effects to carry out, in order. */
  handle(input: ParticipantInput, now: number): ParticipantEffect[] {
    this.#now = now;
    switch (input.type) {
      case 'message':
        if (input.message.type === 'prepare') this.#onPrepare(input.message, input);
        else if (input.message.type === 'outcome-query') this.#onOutcomeQuery(input.message.txId, input);
        else if (input.message.type === 'decision') this.#onDecision(input.message.txId, input.message.outcome, input);
        break;
      case 'enlisted':
        if (!this.#txs.has(input.txId)) {
          this.#newTx(input.txId, 'enlisted', false, new Uint8Array());
          this.#armInquiry();
        }
        break;
      case 'prepare-done':
        this.#onPrepared(input.txId, input.vote, input.reason);
        break;
      case 'apply-done':
        this.#onApplied(input.txId);
        break;
      case 'apply-failed':
        this.#onApplyFailed(input.txId);
        break;
      case 'persisted':
        this.#onPersisted(input.token);
        break;
      case 'connected':
        this.#inquire(true);
        break;
      case 'disconnected':
        break;
      case 'timer':
        this.#onTimer(input.key);
        break;
      case 'lookup-result':
        this.#onLookup(input.txId, input.record, input.pending);
        break;
    }
    return this.#flush();
  }

  // ---- coordinator messages -----------------------------------------------------------------

  #onPrepare(msg: Extract<CoordinatorMessage, { type: 'prepare' }>, input: ParticipantInput): void {
    const tx = this.#txs.get(msg.txId);
    if (!tx) return this.#emit({ type: 'lookup', txId: msg.txId, pending: input });
    switch (tx.stage) {
      case 'enlisted':
        if (this.#now >= msg.deadline) {
          // Too late to prepare; release what was done under the transaction and say NO.
          tx.answer = 'vote';
          tx.noReason = 'the prepare deadline had passed when the request arrived';
          return this.#apply(tx, Outcome.ABORTED);
        }
        return this.#startPrepare(tx, msg.payload.length > 0 ? msg.payload : tx.payload, msg.deadline, msg.onePhase);
      case 'prepared':
        // A repeated Prepare (e.g. after a reconnect): the answer has not changed.
        return this.#send({ type: 'vote', txId: tx.id, vote: Vote.YES, reason: '' });
      default:
        // The answer follows when the work in progress finishes.
        return this.#ignored('duplicate', 'prepare', tx.id);
    }
  }

  #onDecision(txId: string, outcome: Outcome, input: ParticipantInput): void {
    const tx = this.#txs.get(txId);
    if (!tx) return this.#emit({ type: 'lookup', txId, pending: input });
    switch (tx.stage) {
      case 'enlisted':
        if (outcome === Outcome.COMMITTED) return this.#ignored('premature-commit', 'decision', txId);
        tx.answer = 'ack';
        return this.#apply(tx, Outcome.ABORTED);
      case 'preparing':
      case 'logging-prepared':
        if (outcome === Outcome.COMMITTED) return this.#ignored('premature-commit', 'decision', txId);
        tx.abortRequested = true;
        return;
      case 'prepared':
        tx.answer = 'ack';
        return this.#apply(tx, outcome);
      case 'applying':
      case 'logging-outcome':
        return this.#ignored(tx.outcome === outcome || tx.onePhase ? 'duplicate' : 'conflicting-decision', 'decision', txId);
    }
  }

  /**
   * The coordinator lost the vote of a one-phase transaction and asks for the outcome decided
   * here. Decided: it is answered from the record. Undecided or never seen: this participant
   * decides ABORTED, exactly as on an abort. A transaction prepared in two phases is not ours to
   * decide: the query is ignored.
   */
  #onOutcomeQuery(txId: string, input: ParticipantInput): void {
    const tx = this.#txs.get(txId);
    if (tx && !tx.onePhase && tx.stage === 'prepared') return this.#ignored('query-for-two-phase', 'outcome query', txId);
    this.#onDecision(txId, Outcome.ABORTED, input);
  }

  #onLookup(txId: string, record: ParticipantRecord | undefined, pending: ParticipantInput): void {
    if (this.#txs.has(txId)) {
      // Another message made it live while the lookup ran: handle this one as a repeat.
      // `handle` flushes and replaces the effect list: take its result first, then append it to
      // the new list (`this.#effects.push(...this.handle())` would push into the old one).
      const effects = this.handle(pending, this.#now);
      this.#effects.push(...effects);
      return;
    }
    if (pending.type !== 'message') return;
    const msg = pending.message;
    if (record && record.state !== ParticipantRecordState.PREPARED) {
      const committed = record.state === ParticipantRecordState.COMMITTED;
      if (msg.type === 'prepare') {
        return this.#send({ type: 'vote', txId, vote: committed ? Vote.YES : Vote.NO, reason: committed ? '' : 'already aborted here' });
      }
      return this.#send({ type: 'ack', txId, outcome: committed ? Outcome.COMMITTED : Outcome.ABORTED });
    }
    if (msg.type === 'prepare') {
      if (this.#now >= msg.deadline) {
        return this.#send({ type: 'vote', txId, vote: Vote.NO, reason: 'the prepare deadline had passed when the request arrived' });
      }
      const tx = this.#newTx(txId, 'preparing', msg.onePhase, msg.payload);
      return this.#startPrepare(tx, msg.payload, msg.deadline, msg.onePhase);
    }
    if (msg.type === 'decision' && msg.outcome === Outcome.COMMITTED) {
      // Never apply a commit for a transaction not prepared here.
      return this.#ignored('commit-unknown-tx', 'decision', txId);
    }
    // An abort before any prepare: leave a tombstone so that a late Prepare votes NO.
    const tx = this.#newTx(txId, 'logging-outcome', false, new Uint8Array());
    tx.answer = 'ack';
    tx.outcome = Outcome.ABORTED;
    this.#persistOutcome(tx);
  }

  // ---- hooks and log ------------------------------------------------------------------------

  #startPrepare(tx: PTx, payload: Uint8Array, deadline: number, onePhase: boolean): void {
    tx.stage = 'preparing';
    tx.onePhase = onePhase;
    tx.payload = payload;
    this.#emit({ type: 'run-prepare', txId: tx.id, payload, deadline, onePhase });
  }

  #onPrepared(txId: string, vote: Vote, reason: string): void {
    const tx = this.#txs.get(txId);
    if (!tx || tx.stage !== 'preparing') return;
    if (tx.abortRequested) {
      tx.answer = 'ack';
      return this.#apply(tx, Outcome.ABORTED);
    }
    switch (vote) {
      case Vote.READ_ONLY:
        if (tx.onePhase) {
          // Decided here: keep a (forced) record, or a coordinator recovering the one-phase
          // commit would find nothing and read it as aborted after telling the initiator committed.
          tx.answer = 'vote';
          tx.outcome = Outcome.COMMITTED;
          return this.#persistOutcome(tx);
        }
        this.#txs.delete(txId);
        this.#send({ type: 'vote', txId, vote: Vote.READ_ONLY, reason: '' });
        return this.#emit({ type: 'finished', txId, outcome: undefined });
      case Vote.NO:
        tx.answer = 'vote';
        tx.noReason = reason || 'the prepare hook refused';
        return this.#apply(tx, Outcome.ABORTED);
      case Vote.YES:
        if (tx.onePhase) {
          tx.answer = 'vote';
          return this.#apply(tx, Outcome.COMMITTED);
        }
        tx.stage = 'logging-prepared';
        // YES only after PREPARED is durable.
        return this.#emit({
          type: 'persist',
          record: { txId, state: ParticipantRecordState.PREPARED, onePhase: false, payload: tx.payload },
          force: true,
          token: { kind: 'prepared', txId },
        });
    }
  }

  #apply(tx: PTx, outcome: Outcome): void {
    tx.stage = 'applying';
    tx.outcome = outcome;
    tx.applyAttempts++;
    this.#emit({ type: 'run-apply', txId: tx.id, outcome });
  }

  #onApplied(txId: string): void {
    const tx = this.#txs.get(txId);
    if (!tx || tx.stage !== 'applying') return;
    this.#persistOutcome(tx);
  }

  #onApplyFailed(txId: string): void {
    const tx = this.#txs.get(txId);
    if (!tx || tx.stage !== 'applying') return;
    // The decision stands; the hook is retried until it succeeds.
    const c = this.#config;
    const delay = backoffDelayMs(tx.applyAttempts, c.hookRetryInitialMs, c.hookRetryMaxMs);
    this.#emit({ type: 'set-timer', key: applyKey(txId), at: this.#now + delay, jitterMs: Math.floor(delay / 2) });
  }

  #persistOutcome(tx: PTx): void {
    tx.stage = 'logging-outcome';
    const committed = tx.outcome === Outcome.COMMITTED;
    this.#emit({
      type: 'persist',
      record: { txId: tx.id, state: committed ? ParticipantRecordState.COMMITTED : ParticipantRecordState.ABORTED, onePhase: tx.onePhase },
      // Forced: once acknowledged, the coordinator may forget the transaction, so a power loss
      // must not take this participant back to PREPARED. (A one-phase commit is decided here.)
      // A tombstone or an abort needs no force: losing it only means asking again.
      force: committed,
      token: { kind: 'outcome', txId: tx.id },
    });
  }

  #onPersisted(token: ParticipantPersistToken): void {
    const tx = this.#txs.get(token.txId);
    if (!tx) return;
    if (token.kind === 'prepared' && tx.stage === 'logging-prepared') {
      if (tx.abortRequested) {
        tx.answer = 'ack';
        return this.#apply(tx, Outcome.ABORTED);
      }
      tx.stage = 'prepared';
      tx.preparedAt = this.#now;
      this.#send({ type: 'vote', txId: tx.id, vote: Vote.YES, reason: '' });
      return this.#armInquiry();
    }
    if (token.kind === 'outcome' && tx.stage === 'logging-outcome') {
      const outcome = tx.outcome ?? Outcome.ABORTED;
      this.#txs.delete(tx.id);
      this.#emit({ type: 'cancel-timer', key: applyKey(tx.id) });
      if (tx.answer === 'vote') {
        const vote = outcome === Outcome.COMMITTED ? Vote.YES : Vote.NO;
        this.#send({ type: 'vote', txId: tx.id, vote, reason: vote === Vote.NO ? (tx.noReason ?? 'aborted') : '' });
      } else {
        this.#send({ type: 'ack', txId: tx.id, outcome });
      }
      this.#emit({ type: 'finished', txId: tx.id, outcome });
    }
  }

  // ---- timers and inquiries -----------------------------------------------------------------

  #onTimer(key: string): void {
    if (key === INQUIRY_TIMER) {
      this.#inquiryTimerSet = false;
      this.#inquire(false);
      return this.#armInquiry();
    }
    if (key.startsWith('apply/')) {
      const tx = this.#txs.get(key.slice('apply/'.length));
      if (tx && tx.stage === 'applying' && tx.outcome) this.#apply(tx, tx.outcome);
    }
  }

  /** Asks the outcome of in-doubt transactions: all of them, or those in doubt for a while. */
  #inquire(all: boolean): void {
    for (const tx of this.#txs.values()) {
      // An enlisted transaction is asked about too: if its abort was lost (we were offline, or
      // the coordinator restarted), this is how we learn it and release the work done under it.
      if (tx.stage !== 'prepared' && tx.stage !== 'enlisted') continue;
      if (all || this.#now - tx.preparedAt >= this.#config.inquiryIntervalMs) this.#send({ type: 'inquiry', txId: tx.id });
    }
  }

  #armInquiry(): void {
    if (this.#inquiryTimerSet) return;
    let waiting = false;
    for (const tx of this.#txs.values()) if (tx.stage === 'prepared' || tx.stage === 'enlisted') waiting = true;
    if (!waiting) return;
    this.#inquiryTimerSet = true;
    const interval = this.#config.inquiryIntervalMs;
    this.#emit({ type: 'set-timer', key: INQUIRY_TIMER, at: this.#now + interval, jitterMs: Math.floor(interval / 4) });
  }

  // ---- helpers ------------------------------------------------------------------------------

  #newTx(id: string, stage: Stage, onePhase: boolean, payload: Uint8Array): PTx {
    const tx: PTx = { id, stage, onePhase, payload, abortRequested: false, answer: 'ack', preparedAt: this.#now, applyAttempts: 0 };
    this.#txs.set(id, tx);
    return tx;
  }

  #send(message: Extract<ParticipantEffect, { type: 'send' }>['message']): void {
    this.#emit({ type: 'send', message });
  }

  #ignored(why: ParticipantIgnoredReason, what: string, txId: string): void {
    this.#emit({ type: 'ignored', why, what, txId });
  }

  #emit(effect: ParticipantEffect): void {
    this.#effects.push(effect);
  }

  #flush(): ParticipantEffect[] {
    const out = this.#effects;
    this.#effects = [];
    return out;
  }
}
