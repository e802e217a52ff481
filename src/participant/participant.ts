// The participant SDK: embeds a resource manager in a service. It holds one session to the
// coordinator (reconnecting with backoff), keeps its own durable log, runs the application's
// hooks, and resolves in-doubt transactions with the coordinator after any restart.

import { EventEmitter } from 'node:events';
import { credentials, status as Status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { COMMON_CHANNEL_OPTIONS } from '../common/channel-options.js';
import { Backoff } from '../common/backoff.js';
import { KeyedTimers } from '../common/keyed-timers.js';
import { defaultLogger, type Logger } from '../common/logger.js';
import { outcomeFromWire, outcomeToWire, voteToWire } from '../common/wire.js';
import { ErrorCode, VerdictError, verdictError } from '../errors.js';
import { checkFailpointEnv, failpoint } from '../faults/failpoints.js';
import { ParticipantServiceClient, type SessionRequest, type SessionResponse } from '../gen/verdict/v1/participant.js';
import type { ParticipantMessage } from '../protocol/coordinator-events.js';
import { participantNameProblem, txIdProblem } from '../protocol/ids.js';
import { ParticipantRecordState, type ParticipantEffect, type ParticipantInput, type ParticipantRecord } from '../protocol/participant-events.js';
import { DEFAULT_PARTICIPANT_MACHINE_CONFIG, ParticipantMachine } from '../protocol/participant-machine.js';
import { Outcome, Vote } from '../protocol/types.js';
import { ParticipantLog, type AppStore, type StagedOp } from './participant-log.js';
import {
  DEFAULT_PARTICIPANT_RETENTION_MS,
  ENLIST_TIMEOUT_MS,
  PARTICIPANT_GC_INTERVAL_MS,
  RECONNECT_INITIAL_MS,
  RECONNECT_MAX_MS,
  SESSION_KEEPALIVE_MS,
  SESSION_KEEPALIVE_TIMEOUT_MS,
  type ParticipantHooks,
  type ParticipantOptions,
  type PrepareResult,
  type StagedWrites,
} from './participant-options.js';

/** Lifecycle of a participant. */
export type ParticipantState = 'connecting' | 'connected' | 'closing' | 'closed' | 'failed';

/** A transaction this participant holds prepared without knowing its outcome. */
export interface InDoubtTransaction {
  readonly txId: string;
  readonly payload: Uint8Array;
}

/** Events of a participant. */
export interface ParticipantEvents {
  /** The session is up (after every (re)connect). */
  connected: [];
  /** The session dropped; the SDK reconnects by itself. */
  disconnected: [reason: string];
  /** A transaction finished here: committed, aborted, or undefined for read-only. */
  finished: [txId: string, outcome: Outcome | undefined];
  /** The log could not be written: the participant stopped (fail-stop) and must be restarted. */
  error: [error: VerdictError];
}

const VOTES: ReadonlySet<string> = new Set(Object.values(Vote));
const GRPC_TO_CODE: Partial<Record<number, ErrorCode>> = {
  [Status.INVALID_ARGUMENT]: ErrorCode.INVALID_ARGUMENT,
  [Status.NOT_FOUND]: ErrorCode.TX_NOT_FOUND,
  [Status.FAILED_PRECONDITION]: ErrorCode.WRONG_STATE,
  [Status.RESOURCE_EXHAUSTED]: ErrorCode.LIMIT_EXCEEDED,
};

/**
 * A participant: the application supplies hooks, the SDK does the rest.
 *
 * ```ts
 * const participant = await Participant.start({
 *   name: 'bank-a',
 *   coordinator: '127.0.0.1:7070',
 *   dataDir: './data/bank-a',
 *   hooks: {
 *     prepare: async (txId, payload, { batch }) => { batch.put(`hold/${txId}`, 1); return 'yes'; },
 *     commit: async (txId, { batch }) => { batch.del(`hold/${txId}`); },
 *     abort: async (txId, { batch }) => { batch.del(`hold/${txId}`); },
 *   },
 * });
 * ```
 */
export class Participant extends EventEmitter<ParticipantEvents> {
  readonly #name: string;
  readonly #hooks: ParticipantHooks;
  readonly #log: Logger;
  readonly #store: ParticipantLog;
  readonly #machine: ParticipantMachine;
  readonly #timers: KeyedTimers;
  readonly #backoff = new Backoff({ initialMs: RECONNECT_INITIAL_MS, maxMs: RECONNECT_MAX_MS });
  readonly #client: ParticipantServiceClient;
  readonly #closeController = new AbortController();
  readonly #prepareOps = new Map<string, StagedOp[]>();
  readonly #applyOps = new Map<string, StagedOp[]>();
  /** Lookups asked for in this turn, read from the log once its effects are carried out. */
  #lookups: Extract<ParticipantEffect, { type: 'lookup' }>[] = [];
  readonly #enlists = new Map<number, { resolve: () => void; reject: (e: VerdictError) => void; timer: NodeJS.Timeout; txId: string }>();
  #nextEnlistId = 0;
  #call: ClientDuplexStream<SessionRequest, SessionResponse> | undefined;
  #frame: SessionRequest | undefined;
  #flushScheduled = false;
  readonly #frameBatching: boolean;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #state: ParticipantState = 'connecting';
  #closing: Promise<void> | undefined;
  #epoch = 0;
  #gcTimer: NodeJS.Timeout | undefined;
  #gcRunning: Promise<unknown> | undefined;
  readonly #connectedWaiters: { resolve: () => void; reject: (e: VerdictError) => void }[] = [];

  private constructor(options: ParticipantOptions, store: ParticipantLog, log: Logger) {
    super();
    this.#name = options.name;
    this.#hooks = options.hooks;
    this.#frameBatching = options.frameBatching ?? true;
    this.#log = log;
    this.#store = store;
    this.#machine = new ParticipantMachine({ ...DEFAULT_PARTICIPANT_MACHINE_CONFIG, ...options.protocol });
    this.#timers = new KeyedTimers((key) => this.#dispatch({ type: 'timer', key }));
    this.#client = new ParticipantServiceClient(options.coordinator, credentials.createInsecure(), {
      ...COMMON_CHANNEL_OPTIONS,
      'grpc.keepalive_time_ms': SESSION_KEEPALIVE_MS,
      'grpc.keepalive_timeout_ms': SESSION_KEEPALIVE_TIMEOUT_MS,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': RECONNECT_INITIAL_MS,
      'grpc.max_reconnect_backoff_ms': RECONNECT_MAX_MS,
    });
  }

  /**
   * Opens the participant's log, recovers its in-doubt transactions and starts the session. It
   * resolves once the log is open; the session connects in the background (see `ready()`).
   */
  static async start(options: ParticipantOptions): Promise<Participant> {
    checkFailpointEnv();
    const problem = participantNameProblem(options.name);
    if (problem) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, problem);
    const log = (options.logger ?? defaultLogger('verdict')).child({ component: 'participant', participant: options.name });
    const store = await ParticipantLog.open(options.dataDir, { groupCommit: options.groupCommit ?? true });
    try {
      const prepared = await store.loadPrepared();
      const participant = new Participant(options, store, log);
      participant.#run(participant.#machine.recover(prepared, Date.now()));
      if (prepared.length > 0) log.info({ inDoubt: prepared.length }, 'recovered in-doubt transactions');
      participant.#connect();
      participant.#startGc(options.retentionMs ?? DEFAULT_PARTICIPANT_RETENTION_MS);
      return participant;
    } catch (e) {
      await store.close();
      throw e;
    }
  }

  /** This participant's name. */
  get name(): string {
    return this.#name;
  }

  /** Lifecycle state. */
  get state(): ParticipantState {
    return this.#state;
  }

  /** The coordinator epoch seen at the last connect (0 before the first). */
  get coordinatorEpoch(): number {
    return this.#epoch;
  }

  /** The application's store (JSON values). Write to it through the hooks' `batch`; read freely. */
  get store(): AppStore {
    return this.#store.app;
  }

  /** Log write counters (batches, synced batches). */
  get logStats(): ParticipantLog['stats'] {
    return this.#store.stats;
  }

  /**
   * The transactions held prepared whose outcome is not known yet. A service should keep the
   * resources they touch locked: the SDK resolves them with the coordinator, never on its own.
   */
  inDoubt(): InDoubtTransaction[] {
    return this.#machine.inDoubtWithPayloads();
  }

  /** Resolves when the session is connected (now, or at the next connect). */
  ready(): Promise<void> {
    if (this.#state === 'connected') return Promise.resolve();
    if (this.#state !== 'connecting') return Promise.reject(new VerdictError(ErrorCode.UNAVAILABLE, `participant ${this.#name} is ${this.#state}`));
    return new Promise((resolve, reject) => this.#connectedWaiters.push({ resolve, reject }));
  }

  /**
   * Joins a transaction begun with `Begin` as one of its branches; `payload` is handed back to
   * the prepare hook. Fails with WRONG_STATE once the transaction is no longer active.
   */
  enlist(txId: string, payload: Uint8Array = new Uint8Array()): Promise<void> {
    const problem = txIdProblem(txId);
    if (problem) return Promise.reject(new VerdictError(ErrorCode.INVALID_ARGUMENT, problem));
    if (this.#state !== 'connected') {
      return Promise.reject(new VerdictError(ErrorCode.UNAVAILABLE, `participant ${this.#name} is not connected to the coordinator`, { txId }));
    }
    const requestId = ++this.#nextEnlistId;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#enlists.delete(requestId);
        reject(new VerdictError(ErrorCode.UNAVAILABLE, `no answer to enlist in ${txId} within ${ENLIST_TIMEOUT_MS} ms`, { txId }));
      }, ENLIST_TIMEOUT_MS);
      timer.unref();
      this.#enlists.set(requestId, { resolve, reject, timer, txId });
      this.#queue({ type: 'enlist', requestId, txId, payload });
    });
  }

  /**
   * Closes the session and the log. Hooks in progress see their signal aborted; nothing is
   * decided on the way out: in-doubt transactions stay in doubt until the next start. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#doClose('closed');
    return this.#closing;
  }

  async #doClose(final: ParticipantState): Promise<void> {
    this.#state = 'closing';
    if (this.#gcTimer) clearInterval(this.#gcTimer);
    await this.#gcRunning;
    this.#closeController.abort();
    for (const w of this.#connectedWaiters.splice(0)) w.reject(new VerdictError(ErrorCode.UNAVAILABLE, `participant ${this.#name} closed before it connected`));
    this.#timers.clear();
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    for (const [id, e] of this.#enlists) {
      clearTimeout(e.timer);
      this.#enlists.delete(id);
      e.reject(new VerdictError(ErrorCode.UNAVAILABLE, `participant ${this.#name} is closing`, { txId: e.txId }));
    }
    this.#call?.cancel();
    this.#call = undefined;
    this.#client.close();
    await this.#store.close();
    this.#state = final;
  }

  /** Drops records of transactions finished longer than `retentionMs` ago, periodically. */
  #startGc(retentionMs: number): void {
    this.#gcTimer = setInterval(() => {
      if (this.#gcRunning || this.#state === 'closing' || this.#state === 'closed' || this.#state === 'failed') return;
      this.#gcRunning = this.#store
        .collectGarbage(Date.now() - retentionMs)
        .catch((e: unknown) => this.#log.error({ err: e }, 'garbage collection failed'))
        .finally(() => {
          this.#gcRunning = undefined;
        });
    }, PARTICIPANT_GC_INTERVAL_MS);
    this.#gcTimer.unref();
  }

  /** Drops records of transactions finished before `cutoffMs` now (also runs by itself). */
  collectGarbage(cutoffMs: number): Promise<number> {
    return this.#store.collectGarbage(cutoffMs);
  }

  // ---- session ------------------------------------------------------------------------------

  #connect(): void {
    if (this.#state === 'closing' || this.#state === 'closed' || this.#state === 'failed') return;
    const call = this.#client.session();
    this.#call = call;
    let welcomed = false;
    call.write({ hello: { participant: this.#name }, votes: [], acks: [], inquiries: [], enlists: [] });
    call.on('data', (frame: SessionResponse) => {
      if (this.#call !== call) return;
      if (frame.welcome && !welcomed) {
        welcomed = true;
        this.#epoch = frame.welcome.epoch;
        this.#state = 'connected';
        this.#backoff.reset();
        this.#log.info({ epoch: this.#epoch }, 'connected to the coordinator');
        this.#dispatch({ type: 'connected' });
        this.emit('connected');
        for (const w of this.#connectedWaiters.splice(0)) w.resolve();
      }
      this.#onFrame(frame);
    });
    const lost = (reason: string): void => {
      if (this.#call !== call) return;
      this.#call = undefined;
      this.#frame = undefined;
      if (this.#state === 'closing' || this.#state === 'closed' || this.#state === 'failed') return;
      this.#state = 'connecting';
      this.#dispatch({ type: 'disconnected' });
      for (const [id, e] of this.#enlists) {
        clearTimeout(e.timer);
        this.#enlists.delete(id);
        e.reject(new VerdictError(ErrorCode.UNAVAILABLE, `the session dropped before enlisting in ${e.txId}`, { txId: e.txId }));
      }
      const delay = this.#backoff.next();
      this.#log.info({ reason, retryInMs: delay }, 'session lost; reconnecting');
      if (welcomed) this.emit('disconnected', reason);
      this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
      this.#reconnectTimer.unref();
    };
    call.on('error', (e: ServiceError) => {
      if (e.code === Status.ALREADY_EXISTS) this.#log.warn('another session holds this participant name; retrying');
      lost(e.details || e.message);
    });
    call.on('end', () => lost('the coordinator ended the session'));
  }

  #onFrame(frame: SessionResponse): void {
    for (const p of frame.prepares) {
      this.#dispatch({
        type: 'message',
        message: { type: 'prepare', txId: p.txId, payload: p.payload, deadline: p.deadlineUnixMs, onePhase: p.onePhase },
      });
    }
    for (const d of frame.decisions) {
      const outcome = outcomeFromWire(d.outcome);
      // An outcome that is not exactly a known one is never guessed at: wait for a clear one.
      if (!outcome) {
        this.#log.warn({ txId: d.txId, outcome: d.outcome }, 'ignored a decision with an unknown outcome');
        continue;
      }
      this.#dispatch({ type: 'message', message: { type: 'decision', txId: d.txId, outcome } });
    }
    for (const r of frame.enlistResults) {
      const pending = this.#enlists.get(r.requestId);
      if (!pending) continue;
      this.#enlists.delete(r.requestId);
      clearTimeout(pending.timer);
      if (r.code === 0) {
        this.#dispatch({ type: 'enlisted', txId: pending.txId });
        pending.resolve();
      } else {
        pending.reject(verdictError(GRPC_TO_CODE[r.code] ?? ErrorCode.INTERNAL, r.message, { txId: pending.txId }));
      }
    }
  }

  #queue(message: ParticipantMessage): void {
    if (!this.#call) return; // Lost with the session; the protocol repeats what matters.
    const frame = (this.#frame ??= { votes: [], acks: [], inquiries: [], enlists: [] });
    switch (message.type) {
      case 'vote':
        frame.votes.push({ txId: message.txId, vote: voteToWire(message.vote), reason: message.reason });
        break;
      case 'ack':
        frame.acks.push({ txId: message.txId, outcome: outcomeToWire(message.outcome) });
        break;
      case 'inquiry':
        frame.inquiries.push({ txId: message.txId });
        break;
      case 'enlist':
        frame.enlists.push({
          requestId: message.requestId,
          txId: message.txId,
          payload: Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength),
        });
        break;
    }
    if (!this.#frameBatching) return this.#flush();
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const frame = this.#frame;
    this.#frame = undefined;
    if (frame && this.#call) {
      this.#call.write(frame);
      if (frame.votes.length > 0) failpoint('participant.after-vote-sent');
    }
  };

  // ---- the protocol loop --------------------------------------------------------------------

  #dispatch(input: ParticipantInput): void {
    if (this.#state === 'closing' || this.#state === 'closed' || this.#state === 'failed') return;
    try {
      this.#run(this.#machine.handle(input, Date.now()));
    } catch (e) {
      // An effect half carried out leaves the machine ahead of the world: stop (fail-stop).
      this.#fail(e, 'txId' in input ? input.txId : '');
    }
  }

  #run(effects: readonly ParticipantEffect[]): void {
    for (const effect of effects) this.#execute(effect);
  }

  #execute(effect: ParticipantEffect): void {
    switch (effect.type) {
      case 'send':
        if (effect.message.type === 'ack') failpoint('participant.before-ack');
        return this.#queue(effect.message);
      case 'run-prepare':
        return void this.#runPrepare(effect.txId, effect.payload, effect.deadline, effect.onePhase);
      case 'run-apply':
        return void this.#runApply(effect.txId, effect.outcome);
      case 'persist': {
        const { record, token } = effect;
        // Writes staged by prepare go with PREPARED, or with a one-phase COMMITTED; those of a
        // prepare that did not end prepared are dropped. Writes staged by commit/abort always go.
        const withPrepare =
          record.state === ParticipantRecordState.PREPARED || (record.state === ParticipantRecordState.COMMITTED && record.onePhase);
        const ops = [...(withPrepare ? (this.#prepareOps.get(record.txId) ?? []) : []), ...(this.#applyOps.get(record.txId) ?? [])];
        this.#prepareOps.delete(record.txId);
        this.#applyOps.delete(record.txId);
        const prepared = record.state === ParticipantRecordState.PREPARED;
        if (prepared) failpoint('participant.before-prepared-record');
        this.#store.write(record, ops, effect.force).then(
          () => {
            if (prepared) failpoint('participant.after-prepared-record');
            this.#dispatch({ type: 'persisted', token });
          },
          (e: unknown) => this.#fail(e, record.txId),
        );
        return;
      }
      case 'lookup':
        // Answered after this turn's effects, as an asynchronous read would be.
        if (this.#lookups.push(effect) === 1) queueMicrotask(this.#readLookups);
        return;
      case 'set-timer':
        return this.#timers.set(effect.key, effect.at, effect.jitterMs);
      case 'cancel-timer':
        return this.#timers.cancel(effect.key);
      case 'finished':
        this.emit('finished', effect.txId, effect.outcome);
        return;
      case 'ignored':
        this.#log.debug({ txId: effect.txId, why: effect.why, what: effect.what }, 'ignored message');
        return;
    }
  }

  readonly #readLookups = (): void => {
    const lookups = this.#lookups;
    this.#lookups = [];
    for (const l of lookups) {
      let record: ParticipantRecord | undefined;
      try {
        record = this.#store.outcomeOf(l.txId);
      } catch (e) {
        return this.#fail(e, l.txId);
      }
      this.#dispatch({ type: 'lookup-result', txId: l.txId, record, pending: l.pending });
    }
  };

  async #runPrepare(txId: string, payload: Uint8Array, deadline: number, onePhase: boolean): Promise<void> {
    // The signal (and its deadline timer) is made only if the hook reads it: most hooks never
    // do, and an AbortController, AbortSignal.any and a timer per prepare show in profiles.
    let timer: NodeJS.Timeout | undefined;
    let signal: AbortSignal | undefined;
    const closeSignal = this.#closeController.signal;
    const lazySignal = (): AbortSignal => {
      if (!signal) {
        const controller = new AbortController();
        timer = setTimeout(() => controller.abort(new VerdictError(ErrorCode.OUTCOME_UNKNOWN, 'prepare deadline reached', { txId })), Math.max(0, deadline - Date.now()));
        timer.unref();
        signal = AbortSignal.any([controller.signal, closeSignal]);
      }
      return signal;
    };
    const ops: StagedOp[] = [];
    let vote: Vote;
    let reason: string;
    try {
      const ctx = {
        get signal(): AbortSignal {
          return lazySignal();
        },
        deadline,
        onePhase,
        batch: staging(ops),
      };
      const result = await this.#hooks.prepare(txId, payload, ctx);
      ({ vote, reason } = normalizeVote(result));
    } catch (e) {
      vote = Vote.NO;
      reason = `prepare hook failed: ${(e as Error)?.message ?? String(e)}`;
      this.#log.warn({ txId, err: e }, 'prepare hook threw; voting NO');
    } finally {
      if (timer) clearTimeout(timer);
    }
    if (vote === Vote.YES) this.#prepareOps.set(txId, ops);
    this.#dispatch({ type: 'prepare-done', txId, vote, reason });
  }

  async #runApply(txId: string, outcome: Outcome): Promise<void> {
    const ops: StagedOp[] = [];
    try {
      const ctx = { signal: this.#closeController.signal, deadline: Infinity, batch: staging(ops) };
      failpoint('participant.before-apply-hook');
      if (outcome === Outcome.COMMITTED) await this.#hooks.commit(txId, ctx);
      else await this.#hooks.abort(txId, ctx);
      failpoint('participant.after-apply-hook');
    } catch (e) {
      this.#log.error({ txId, outcome, err: e }, 'hook threw; it will be retried');
      this.#dispatch({ type: 'apply-failed', txId, message: (e as Error)?.message ?? String(e) });
      return;
    }
    this.#applyOps.set(txId, ops);
    this.#dispatch({ type: 'apply-done', txId });
  }

  /** A log write or read failed: stop rather than answer from a state that may not be durable. */
  #fail(e: unknown, txId: string): void {
    if (this.#state === 'closing' || this.#state === 'closed' || this.#state === 'failed') return;
    const error = new VerdictError(ErrorCode.INTERNAL, `participant ${this.#name} stopped: its log failed (${(e as Error)?.message ?? String(e)})`, {
      cause: e,
      txId,
      participant: this.#name,
    });
    this.#log.error({ err: e, txId }, 'participant log failed; stopping');
    this.#closing ??= this.#doClose('failed');
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }
}

function staging(ops: StagedOp[]): StagedWrites {
  return {
    put: (key, value) => void ops.push({ type: 'put', key, value }),
    del: (key) => void ops.push({ type: 'del', key }),
  };
}

function normalizeVote(result: PrepareResult): { vote: Vote; reason: string } {
  const vote = typeof result === 'string' ? result : result?.vote;
  const reason = typeof result === 'object' && result !== null ? (result.reason ?? '') : '';
  if (typeof vote !== 'string' || !VOTES.has(vote)) {
    return { vote: Vote.NO, reason: `prepare hook returned ${JSON.stringify(result)}, which is not a vote` };
  }
  return { vote: vote as Vote, reason };
}
