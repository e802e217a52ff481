// The participant SDK: embeds a resource manager in a service. It holds one session to the
// coordinator (reconnecting with backoff), keeps its own durable log, runs the application's
// hooks, and resolves in-doubt transactions with the coordinator after any restart.

import { EventEmitter, setMaxListeners } from 'node:events';
import { status as Status } from '@grpc/grpc-js';
import { Backoff } from '../common/backoff.js';
import { systemClock, type Clock, type Timer } from '../common/clock.js';
import { connectionOptionsProblem } from '../common/connection-options.js';
import { coordinatorAddresses } from '../common/coordinator-targets.js';
import { FrameBuffer } from '../common/frame-buffer.js';
import { notLeader } from '../common/grpc-errors.js';
import { KeyedTimers } from '../common/keyed-timers.js';
import { levelStorage } from '../common/level-errors.js';
import { mutant } from '../common/mutants.js';
import type { ClientTransport, SessionClientStream } from '../common/transport.js';
import { defaultLogger, type Logger } from '../common/logger.js';
import { outcomeFromWire, outcomeToWire, voteToWire } from '../common/wire.js';
import { ErrorCode, VerdictError, verdictError } from '../errors.js';
import { checkFailpointEnv, failpoint } from '../common/failpoints.js';
import type { SessionRequest, SessionResponse } from '../gen/verdict/v1/participant.js';
import type { ParticipantMessage } from '../protocol/coordinator-events.js';
import { participantNameProblem, txIdProblem } from '../protocol/ids.js';
import { ParticipantRecordState, type ParticipantEffect, type ParticipantInput, type ParticipantRecord } from '../protocol/participant-events.js';
import { DEFAULT_PARTICIPANT_MACHINE_CONFIG, ParticipantMachine } from '../protocol/participant-machine.js';
import { Outcome, Vote } from '../protocol/types.js';
import { GrpcSessionTransport } from './grpc-session-transport.js';
import { ApplyContext, PrepareHookContext, type HookHost } from './hook-context.js';
import { LOCK_CONFLICT_REASON, LockConflictError, LockManager, type HeldLock, type KeyHolders } from './lock-manager.js';
import { ParticipantLog, type AppStore, type StagedOp } from './participant-log.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_PARTICIPANT_RETENTION_MS,
  ENLIST_TIMEOUT_MS,
  PARTICIPANT_GC_INTERVAL_MS,
  RECONNECT_INITIAL_MS,
  RECONNECT_MAX_MS,
  type EnlistInvitation,
  type ParticipantHooks,
  type ParticipantObserver,
  type ParticipantOptions,
  type PrepareResult,
  type ReadyOptions,
  type StagedWrites,
} from './participant-options.js';

/** How many failed connection attempts in a row share one warning in the log. */
const FAILURES_PER_WARNING = 20;

/** Statuses that refuse the hello itself: `ready()` rejects with them at once. */
const REFUSALS: Partial<Record<number, ErrorCode>> = {
  [Status.ALREADY_EXISTS]: ErrorCode.ALREADY_CONNECTED,
  [Status.UNAUTHENTICATED]: ErrorCode.UNAUTHENTICATED,
  [Status.PERMISSION_DENIED]: ErrorCode.PERMISSION_DENIED,
  [Status.RESOURCE_EXHAUSTED]: ErrorCode.LIMIT_EXCEEDED,
};

interface ReadyWaiter {
  readonly resolve: () => void;
  readonly reject: (e: VerdictError) => void;
  timer: Timer | undefined;
}

/** Explains which reconnect, keepalive or enlist option is out of range, if one is. */
function sessionOptionsProblem(options: ParticipantOptions): string | undefined {
  const t = options.enlistTimeoutMs;
  if (t !== undefined && (!Number.isSafeInteger(t) || t < 1)) return `enlistTimeoutMs must be a positive integer (ms), got ${t}`;
  return connectionOptionsProblem(options);
}

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
const NO_HELD_LOCKS: readonly HeldLock[] = [];
/** Encoded bytes a session message carries besides its id, payload and text (tags, lengths, numbers). */
const MESSAGE_OVERHEAD_BYTES = 32;
const GRPC_TO_CODE: Partial<Record<number, ErrorCode>> = {
  [Status.INVALID_ARGUMENT]: ErrorCode.INVALID_ARGUMENT,
  [Status.NOT_FOUND]: ErrorCode.TX_NOT_FOUND,
  [Status.FAILED_PRECONDITION]: ErrorCode.WRONG_STATE,
  [Status.RESOURCE_EXHAUSTED]: ErrorCode.LIMIT_EXCEEDED,
  [Status.PERMISSION_DENIED]: ErrorCode.PERMISSION_DENIED,
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
  readonly #backoff: Backoff;
  readonly #transport: ClientTransport;
  readonly #clock: Clock;
  #observer: ParticipantObserver | undefined;
  readonly #maxFrameBytes: number;
  readonly #closeController = new AbortController();
  readonly #prepareOps = new Map<string, StagedOp[]>();
  readonly #applyOps = new Map<string, StagedOp[]>();
  /** Locks taken by prepare hooks, held until the transaction is finished here. */
  readonly #locks = new LockManager();
  /** Transactions whose outcome is decided here and being applied: their locks go once it is written. */
  readonly #applying = new Set<string>();
  /** What the hooks' contexts reach of this participant. */
  readonly #hookHost: HookHost;
  /** Who waits for a transaction's locks to go, by tx id. */
  readonly #releaseWaiters = new Map<string, (() => void)[]>();
  /** Lookups asked for in this turn, read from the log once its effects are carried out. */
  #lookups: Extract<ParticipantEffect, { type: 'lookup' }>[] = [];
  readonly #enlists = new Map<number, { resolve: () => void; reject: (e: VerdictError) => void; timer: Timer; txId: string }>();
  #nextEnlistId = 0;
  #call: SessionClientStream | undefined;
  /** What the current session sends next, in frames under the size limit. */
  #out: FrameBuffer<ParticipantMessage> | undefined;
  readonly #frameBatching: boolean;
  #reconnectTimer: Timer | undefined;
  #state: ParticipantState = 'connecting';
  #closing: Promise<void> | undefined;
  #epoch = 0;
  #gcTimer: Timer | undefined;
  #gcRunning: Promise<unknown> | undefined;
  readonly #connectedWaiters: ReadyWaiter[] = [];
  readonly #enlistTimeoutMs: number;
  /** The coordinator's last refusal of this participant's hello (a duplicate name, a refused identity), until a session is up. */
  #refusal: VerdictError | undefined;
  /** Why the last attempt to connect failed, for messages. */
  #lastFailure = 'no attempt yet';
  #failedAttempts = 0;
  /** Lets the process exit (with `keepProcessAlive`). */
  #releaseProcess: (() => void) | undefined;

  private constructor(options: ParticipantOptions, store: ParticipantLog, log: Logger, clock: Clock) {
    super();
    this.#name = options.name;
    this.#hooks = options.hooks;
    this.#frameBatching = options.frameBatching ?? true;
    this.#maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#log = log;
    this.#store = store;
    this.#clock = clock;
    this.#observer = options.observer;
    this.#backoff = new Backoff({ initialMs: options.reconnect?.initialMs ?? RECONNECT_INITIAL_MS, maxMs: options.reconnect?.maxMs ?? RECONNECT_MAX_MS }, clock);
    this.#enlistTimeoutMs = options.enlistTimeoutMs ?? ENLIST_TIMEOUT_MS;
    this.#machine = new ParticipantMachine({ ...DEFAULT_PARTICIPANT_MACHINE_CONFIG, ...options.protocol });
    this.#timers = new KeyedTimers((key) => this.#onTimer(key), clock);
    this.#transport = options.transport ?? new GrpcSessionTransport(coordinatorAddresses(options.coordinator), options);
    if (options.keepProcessAlive ?? true) this.#releaseProcess = clock.keepAlive?.();
    // Every prepare that reads its signal, and every wait for a lock, listens here: many at once is normal.
    setMaxListeners(0, this.#closeController.signal);
    this.#hookHost = {
      clock,
      locks: this.#locks,
      closeSignal: this.#closeController.signal,
      isApplying: (txId) => this.#applying.has(txId),
      untilReleased: (txId, deadline) => this.#untilReleased(txId, deadline),
      staging: (ops, apply) => this.#staging(ops, apply),
      read: (key, ops, prepared) => this.#read(key, ops, prepared),
      checkKey: checkStagedKey,
      maxKeyLength: MAX_STAGED_KEY_LENGTH,
    };
  }

  /**
   * Opens the participant's log, recovers its in-doubt transactions and starts the session. It
   * resolves once the log is open; the session connects in the background (see `ready()`).
   */
  static async start(options: ParticipantOptions): Promise<Participant> {
    checkFailpointEnv();
    const problem = participantNameProblem(options.name) ?? sessionOptionsProblem(options);
    if (problem) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, problem);
    if (!options.transport) coordinatorAddresses(options.coordinator);
    const clock = options.clock ?? systemClock;
    const log = (options.logger ?? defaultLogger('verdict')).child({ component: 'participant', participant: options.name });
    const store = await ParticipantLog.open(options.storage ?? levelStorage(options.dataDir), clock, { groupCommit: options.groupCommit ?? true });
    let participant: Participant | undefined;
    try {
      const prepared = await store.loadPrepared();
      participant = new Participant(options, store, log, clock);
      if (options.metrics) {
        const { participantMetrics } = await import('./participant-metrics.js');
        const p = participant;
        p.#observer = await participantMetrics(options.metrics, { name: options.name, inDoubtCount: () => p.#machine.inDoubt().length, connected: () => p.#state === 'connected' }, options.observer);
      }
      // Before anything is served: an in-doubt transaction's keys stay locked across the restart.
      for (const r of prepared) participant.#locks.restore(r.txId, r.locks ?? []);
      const effects = participant.#machine.recover(prepared, clock.now());
      participant.#observer?.step?.(undefined, effects);
      participant.#run(effects);
      if (prepared.length > 0) log.info({ inDoubt: prepared.length }, 'recovered in-doubt transactions');
      participant.#connect();
      participant.#startGc(options.retentionMs ?? DEFAULT_PARTICIPANT_RETENTION_MS);
      return participant;
    } catch (e) {
      // A participant that never started holds nothing: not its transport, not the process.
      if (participant) {
        participant.#transport.close();
        participant.#releaseProcess?.();
      }
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

  /** How many transactions this participant holds unfinished (preparing, in doubt, applying). */
  get liveCount(): number {
    return this.#machine.liveCount;
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

  /**
   * Who holds a lock on `key` now (undefined: nobody). A reader outside any transaction (an HTTP
   * endpoint reading `store`) can use it to tell that a value may be about to change: the store
   * holds committed values only, and a locked key's next value depends on an outcome not yet
   * applied (or, while in doubt, not yet known).
   */
  lockHolders(key: string): KeyHolders | undefined {
    return this.#locks.holdersOf(key);
  }

  /** The locks `txId` holds here, in the order its prepare hook took them. */
  locksOf(txId: string): readonly HeldLock[] {
    return [...this.#locks.locksOf(txId)];
  }

  /**
   * Resolves when the session is connected (now, or at the next connect). Rejects at once when
   * the coordinator refused the last hello (ALREADY_CONNECTED: another session holds the name;
   * UNAUTHENTICATED or PERMISSION_DENIED: the identity; LIMIT_EXCEEDED), and with UNAVAILABLE
   * when `timeoutMs` passes without a session. The participant keeps trying in the background.
   */
  ready(options: ReadyOptions = {}): Promise<void> {
    if (this.#state === 'connected') return Promise.resolve();
    if (this.#state !== 'connecting') return Promise.reject(new VerdictError(ErrorCode.UNAVAILABLE, `participant ${this.#name} is ${this.#state}`));
    if (this.#refusal) return Promise.reject(this.#refusal);
    const timeoutMs = options.timeoutMs;
    if (timeoutMs !== undefined && (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0)) {
      return Promise.reject(new VerdictError(ErrorCode.INVALID_ARGUMENT, `ready timeoutMs must be a non-negative integer, got ${timeoutMs}`));
    }
    return new Promise((resolve, reject) => {
      const waiter: ReadyWaiter = { resolve, reject, timer: undefined };
      if (timeoutMs !== undefined) {
        waiter.timer = this.#clock.setTimer(() => {
          const i = this.#connectedWaiters.indexOf(waiter);
          if (i < 0) return;
          this.#connectedWaiters.splice(i, 1);
          reject(
            new VerdictError(
              ErrorCode.UNAVAILABLE,
              `participant ${this.#name} could not connect to the coordinator at ${this.#transport.target ?? 'its address'} within ${timeoutMs} ms (${this.#failedAttempts} attempts; last: ${this.#lastFailure}); it keeps trying`,
            ),
          );
        }, timeoutMs);
      }
      this.#connectedWaiters.push(waiter);
    });
  }

  /** Settles every `ready()` waiting: resolved with no error, else rejected with it. */
  #settleReady(error?: VerdictError): void {
    for (const w of this.#connectedWaiters.splice(0)) {
      if (w.timer) this.#clock.clearTimer(w.timer);
      if (error) w.reject(error);
      else w.resolve();
    }
  }

  /**
   * Joins a transaction begun with `Begin` as one of its branches; `payload` is handed back to
   * the prepare hook. `invitation` is the id and the capability `begin()` returned (pass the
   * BegunTransaction itself): without the right capability the coordinator refuses with
   * PERMISSION_DENIED. Fails with WRONG_STATE once the transaction is no longer active.
   */
  enlist(invitation: EnlistInvitation, payload: Uint8Array = new Uint8Array()): Promise<void> {
    const { txId, capability } = invitation;
    const problem = txIdProblem(txId);
    if (problem) return Promise.reject(new VerdictError(ErrorCode.INVALID_ARGUMENT, problem));
    if (this.#state !== 'connected') {
      return Promise.reject(new VerdictError(ErrorCode.UNAVAILABLE, `participant ${this.#name} is not connected to the coordinator`, { txId }));
    }
    const requestId = ++this.#nextEnlistId;
    return new Promise<void>((resolve, reject) => {
      const timer = this.#clock.setTimer(() => {
        this.#enlists.delete(requestId);
        reject(new VerdictError(ErrorCode.UNAVAILABLE, `no answer to enlist in ${txId} within ${this.#enlistTimeoutMs} ms`, { txId }));
      }, this.#enlistTimeoutMs);
      this.#enlists.set(requestId, { resolve, reject, timer, txId });
      this.#queue({ type: 'enlist', requestId, txId, payload, capability });
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
    if (this.#gcTimer) this.#clock.clearTimer(this.#gcTimer);
    await this.#gcRunning;
    this.#closeController.abort();
    this.#settleReady(new VerdictError(ErrorCode.UNAVAILABLE, `participant ${this.#name} closed before it connected`));
    this.#timers.clear();
    if (this.#reconnectTimer) this.#clock.clearTimer(this.#reconnectTimer);
    for (const [id, e] of this.#enlists) {
      this.#clock.clearTimer(e.timer);
      this.#enlists.delete(id);
      e.reject(new VerdictError(ErrorCode.UNAVAILABLE, `participant ${this.#name} is closing`, { txId: e.txId }));
    }
    this.#call?.cancel();
    this.#call = undefined;
    this.#out?.clear();
    this.#transport.close();
    await this.#store.close();
    this.#state = final;
    this.#releaseProcess?.();
    this.#releaseProcess = undefined;
  }

  /** Drops records of transactions finished longer than `retentionMs` ago, periodically. */
  #startGc(retentionMs: number): void {
    const tick = (): void => {
      if (this.#state === 'closing' || this.#state === 'closed' || this.#state === 'failed') return;
      this.#gcTimer = this.#clock.setTimer(tick, PARTICIPANT_GC_INTERVAL_MS);
      if (this.#gcRunning) return;
      this.#gcRunning = this.#store
        .collectGarbage(this.#clock.now() - retentionMs)
        .catch((e: unknown) => this.#log.error({ err: e }, 'garbage collection failed'))
        .finally(() => {
          this.#gcRunning = undefined;
        });
    };
    this.#gcTimer = this.#clock.setTimer(tick, PARTICIPANT_GC_INTERVAL_MS);
  }

  /** Drops records of transactions finished before `cutoffMs` now (also runs by itself). */
  collectGarbage(cutoffMs: number): Promise<number> {
    return this.#store.collectGarbage(cutoffMs);
  }

  // ---- session ------------------------------------------------------------------------------

  #connect(): void {
    if (this.#state === 'closing' || this.#state === 'closed' || this.#state === 'failed') return;
    const call = this.#transport.openSession();
    this.#call = call;
    this.#out = new FrameBuffer<ParticipantMessage>(this.#maxFrameBytes, (messages) => this.#writeFrame(call, messages), this.#clock);
    let welcomed = false;
    call.write({ hello: { participant: this.#name }, votes: [], acks: [], inquiries: [], enlists: [] });
    call.on('data', (frame: SessionResponse) => {
      if (this.#call !== call) return;
      if (frame.welcome && !welcomed) {
        welcomed = true;
        this.#epoch = frame.welcome.epoch;
        this.#state = 'connected';
        this.#backoff.reset();
        this.#refusal = undefined;
        this.#failedAttempts = 0;
        this.#log.info({ epoch: this.#epoch, coordinator: this.#transport.target }, 'connected to the coordinator');
        this.#dispatch({ type: 'connected' });
        this.emit('connected');
        this.#settleReady();
      }
      this.#onFrame(frame);
    });
    const lost = (reason: string): void => {
      if (this.#call !== call) return;
      this.#call = undefined;
      this.#out?.clear();
      this.#out = undefined;
      if (this.#state === 'closing' || this.#state === 'closed' || this.#state === 'failed') return;
      this.#state = 'connecting';
      this.#dispatch({ type: 'disconnected' });
      for (const [id, e] of this.#enlists) {
        this.#clock.clearTimer(e.timer);
        this.#enlists.delete(id);
        e.reject(new VerdictError(ErrorCode.UNAVAILABLE, `the session dropped before enlisting in ${e.txId}`, { txId: e.txId }));
      }
      const delay = this.#backoff.next();
      if (welcomed) {
        this.#log.info({ reason, retryInMs: delay }, 'session lost; reconnecting');
        this.emit('disconnected', reason);
      } else {
        this.#lastFailure = reason;
        // Loud on the first failure and then now and then, never silent for long, never a flood.
        if (this.#failedAttempts++ % FAILURES_PER_WARNING === 0) {
          this.#log.warn({ coordinator: this.#transport.target, reason, attempts: this.#failedAttempts, retryInMs: delay }, 'cannot open a session with the coordinator; retrying');
        }
      }
      this.#reconnectTimer = this.#clock.setTimer(() => this.#connect(), delay);
    };
    call.on('error', (e) => {
      if (this.#call !== call) return;
      const redirected = notLeader(e);
      if (redirected) {
        // Not the leader: go where it points (or to the next address), after the backoff.
        this.#transport.redirect?.(redirected.leader);
        this.#log.info({ leader: redirected.leader, next: this.#transport.target }, 'the coordinator does not lead; moving');
      } else if (!welcomed && e.code === Status.UNAVAILABLE) {
        // Could not reach it: with a group, the next address may lead.
        this.#transport.redirect?.(undefined);
      }
      if (e.code === Status.ALREADY_EXISTS) this.#log.warn('another session holds this participant name; retrying');
      // A refused identity is an operator's problem (wrong certificate or token): say it loudly, keep retrying.
      if (e.code === Status.PERMISSION_DENIED || e.code === Status.UNAUTHENTICATED) this.#log.error({ details: e.details }, 'the coordinator refused this participant\'s identity; retrying');
      const refusal = e.code === undefined ? undefined : REFUSALS[e.code];
      if (!welcomed && refusal) {
        this.#refusal = new VerdictError(refusal, `the coordinator refused participant ${this.#name}: ${e.details || e.message}`, { participant: this.#name, cause: e });
        this.#settleReady(this.#refusal);
      }
      lost(e.details || e.message || 'session error');
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
      if (outcome === Outcome.COMMITTED && mutant('duplicate-commit-applied-twice')) this.#applyAgain(d.txId);
      this.#dispatch({ type: 'message', message: { type: 'decision', txId: d.txId, outcome } });
    }
    for (const q of frame.outcomeQueries) this.#dispatch({ type: 'message', message: { type: 'outcome-query', txId: q.txId } });
    for (const r of frame.enlistResults) {
      const pending = this.#enlists.get(r.requestId);
      if (!pending) continue;
      this.#enlists.delete(r.requestId);
      this.#clock.clearTimer(pending.timer);
      if (r.code === 0) {
        this.#dispatch({ type: 'enlisted', txId: pending.txId });
        pending.resolve();
      } else {
        pending.reject(verdictError(GRPC_TO_CODE[r.code] ?? ErrorCode.INTERNAL, r.message, { txId: pending.txId }));
      }
    }
  }

  #queue(message: ParticipantMessage): void {
    const out = this.#out;
    if (!out) return; // Lost with the session; the protocol repeats what matters.
    let bytes = MESSAGE_OVERHEAD_BYTES + message.txId.length;
    if (message.type === 'vote') bytes += Buffer.byteLength(message.reason);
    else if (message.type === 'enlist') bytes += message.payload.byteLength;
    out.add(message, bytes);
    if (!this.#frameBatching) out.flush();
  }

  /** Writes one frame of `messages` on `call`. */
  #writeFrame(call: SessionClientStream, messages: readonly ParticipantMessage[]): void {
    if (this.#call !== call) return;
    const frame: SessionRequest = { votes: [], acks: [], inquiries: [], enlists: [] };
    for (const m of messages) {
      switch (m.type) {
        case 'vote':
          frame.votes.push({ txId: m.txId, vote: voteToWire(m.vote), reason: m.reason });
          break;
        case 'ack':
          frame.acks.push({ txId: m.txId, outcome: outcomeToWire(m.outcome) });
          break;
        case 'inquiry':
          frame.inquiries.push({ txId: m.txId });
          break;
        case 'enlist':
          frame.enlists.push({
            requestId: m.requestId,
            txId: m.txId,
            payload: Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength),
            capability: m.capability ?? '',
          });
          break;
      }
    }
    call.write(frame);
    if (frame.votes.length > 0) failpoint('participant.after-vote-sent');
  }

  // ---- the protocol loop --------------------------------------------------------------------

  #dispatch(input: ParticipantInput): void {
    if (this.#state === 'closing' || this.#state === 'closed' || this.#state === 'failed') return;
    try {
      const effects = this.#machine.handle(input, this.#clock.now());
      this.#observer?.step?.(input, effects);
      this.#run(effects);
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
        this.#applying.add(effect.txId);
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
        // The locks go in the same atomic batch as PREPARED: whatever survives a crash, the
        // record and its locks survive together.
        const locks = prepared ? this.#locks.locksOf(record.txId) : NO_HELD_LOCKS;
        const force = effect.force && !(prepared ? mutant('yes-before-prepared-synced') : mutant('ack-before-outcome-synced'));
        const early = prepared && effect.force && mutant('yes-before-prepared-durable');
        if (prepared) failpoint('participant.before-prepared-record');
        this.#store.write(record, ops, force, locks).then(
          () => {
            if (prepared) failpoint('participant.after-prepared-record');
            else if (record.onePhase && record.state === ParticipantRecordState.COMMITTED) failpoint('participant.after-one-phase-commit-record');
            if (!early) this.#dispatch({ type: 'persisted', token });
          },
          (e: unknown) => this.#fail(e, record.txId),
        );
        if (early) this.#clock.defer(() => this.#dispatch({ type: 'persisted', token }));
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
        // The outcome (and the hook's writes) are written: the next transaction on these keys
        // reads what this one left.
        this.#locks.release(effect.txId);
        this.#applying.delete(effect.txId);
        this.#wakeWaiters(effect.txId);
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
    const ops: StagedOp[] = [];
    const ctx = new PrepareHookContext(this.#hookHost, txId, ops, deadline, onePhase);
    let vote: Vote;
    let reason: string;
    try {
      const result = await this.#hooks.prepare(txId, payload, ctx);
      ({ vote, reason } = normalizeVote(result));
    } catch (e) {
      vote = Vote.NO;
      reason = `prepare hook failed: ${(e as Error)?.message ?? String(e)}`;
      if (!(e instanceof LockConflictError)) this.#log.warn({ txId, err: e }, 'prepare hook threw; voting NO');
    }
    const conflict = ctx.finish();
    if (conflict) {
      // A conflict is a NO even when the hook caught it: the lock it wanted is not held.
      vote = Vote.NO;
      reason = LOCK_CONFLICT_REASON;
      this.#log.debug({ txId, key: conflict.key, holders: conflict.holders }, 'lock conflict; voting NO');
    }
    if (vote === Vote.YES) this.#prepareOps.set(txId, ops);
    this.#dispatch({ type: 'prepare-done', txId, vote, reason });
  }

  async #runApply(txId: string, outcome: Outcome): Promise<void> {
    const ops: StagedOp[] = [];
    try {
      const ctx = new ApplyContext(this.#hookHost, ops, this.#prepareOps.get(txId));
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

  /** Resolves once `txId` released its locks, at `deadline`, or when the participant closes. */
  #untilReleased(txId: string, deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#clock.setTimer(done, Math.max(0, deadline - this.#clock.now()));
      const closeSignal = this.#closeController.signal;
      closeSignal.addEventListener('abort', done, { once: true });
      let waiters = this.#releaseWaiters.get(txId);
      if (!waiters) this.#releaseWaiters.set(txId, (waiters = []));
      waiters.push(done);
      const clock = this.#clock;
      function done(): void {
        clock.clearTimer(timer);
        closeSignal.removeEventListener('abort', done);
        resolve();
      }
    });
  }

  #wakeWaiters(txId: string): void {
    const waiters = this.#releaseWaiters.get(txId);
    if (!waiters) return;
    this.#releaseWaiters.delete(txId);
    for (const wake of waiters) wake();
  }

  /**
   * A hook's read of `key`: its own staged writes first (newest wins), then what its prepare
   * staged and is not written yet (a one-phase commit), then the store's committed value.
   */
  async #read(key: string, ops: readonly StagedOp[], prepared: readonly StagedOp[] | undefined): Promise<unknown> {
    for (const staged of [ops, prepared ?? []]) {
      for (let i = staged.length - 1; i >= 0; i--) {
        const op = staged[i]!;
        if (op.key === key) return op.type === 'put' ? op.value : undefined;
      }
    }
    return this.#store.app.get(key);
  }

  /** What a hook stages into (`apply`: a commit or abort hook). */
  #staging(ops: StagedOp[], apply: boolean): StagedWrites {
    if (apply && mutant('unstaged-commit-effects')) {
      // The mutant: the writes go to the store at once, not with the outcome record.
      return {
        put: (key, value) => void this.#store.app.put(key, value).catch(() => undefined),
        del: (key) => void this.#store.app.del(key).catch(() => undefined),
      };
    }
    return {
      put: (key, value) => {
        checkStagedValue(checkStagedKey(key), value);
        ops.push({ type: 'put', key, value });
      },
      del: (key) => {
        checkStagedKey(key);
        ops.push({ type: 'del', key });
      },
    };
  }

  /** The `duplicate-commit-applied-twice` mutant: a Commit for a committed transaction runs its hook again. */
  #applyAgain(txId: string): void {
    let record: ParticipantRecord | undefined;
    try {
      record = this.#store.outcomeOf(txId);
    } catch {
      return;
    }
    if (record?.state !== ParticipantRecordState.COMMITTED) return;
    const ops: StagedOp[] = [];
    void (async () => {
      const ctx = new ApplyContext(this.#hookHost, ops, undefined, false);
      await this.#hooks.commit(txId, ctx);
      const batch = this.#store.app.batch();
      for (const op of ops) {
        if (op.type === 'put') batch.put(op.key, op.value);
        else batch.del(op.key);
      }
      await batch.write();
    })().catch(() => undefined);
  }

  /** A timer of the machine fired. */
  #onTimer(key: string): void {
    if (key === 'inquire' && this.#state !== 'connected' && mutant('participant-unilateral-abort')) {
      for (const txId of this.#machine.inDoubt()) this.#dispatch({ type: 'message', message: { type: 'decision', txId, outcome: Outcome.ABORTED } });
    }
    this.#dispatch({ type: 'timer', key });
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



/** The longest key a hook may stage, in UTF-16 units. */
const MAX_STAGED_KEY_LENGTH = 1_024;

/**
 * Staged writes are checked at once, so that a key or value the store cannot take fails the hook
 * that staged it (a NO vote in prepare; a retried commit or abort, reported with the key), never
 * the log write it would share with other transactions.
 */
function checkStagedKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_STAGED_KEY_LENGTH) {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `cannot stage key ${JSON.stringify(String(key)).slice(0, 80)}: keys are non-empty strings of at most ${MAX_STAGED_KEY_LENGTH} characters`);
  }
  return key;
}

function checkStagedValue(key: string, value: unknown): void {
  if (value === null || value === undefined) {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `cannot stage key ${key}: a ${String(value)} value cannot be stored (stage a JSON value, or del the key)`);
  }
  let encoded: string | undefined;
  try {
    encoded = JSON.stringify(value);
  } catch (e) {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `cannot stage key ${key}: its value cannot be stored as JSON (${(e as Error).message})`, { cause: e });
  }
  if (encoded === undefined) {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `cannot stage key ${key}: a ${typeof value} cannot be stored as JSON (stage a JSON value, or del the key)`);
  }
}

function normalizeVote(result: PrepareResult): { vote: Vote; reason: string } {
  const vote = typeof result === 'string' ? result : result?.vote;
  const reason = typeof result === 'object' && result !== null ? (result.reason ?? '') : '';
  if (typeof vote !== 'string' || !VOTES.has(vote)) {
    return { vote: Vote.NO, reason: `prepare hook returned ${JSON.stringify(result)}, which is not a vote` };
  }
  return { vote: vote as Vote, reason };
}
