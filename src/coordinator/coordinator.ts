// The coordinator process: the gRPC services, the decision log and the timers around the pure
// protocol machine. Every input goes through `#dispatch`, which runs the machine and carries out
// its effects in order; nothing else touches protocol state.

import { EventEmitter } from 'node:events';
import { status as Status } from '@grpc/grpc-js';
import { systemClock, type Clock, type Timer } from '../common/clock.js';
import { KeyedTimers } from '../common/keyed-timers.js';
import { levelStorage } from '../common/level-errors.js';
import { mutant } from '../common/mutants.js';
import type { AdminHandlers, CallerContext, CoordinatorHandlers, ServerTransport, UnaryCall, UnaryCallback, UnaryHandler } from '../common/transport.js';
import { defaultLogger, type Logger } from '../common/logger.js';
import { toStatus } from '../common/grpc-errors.js';
import { outcomeToWire, viewToWire } from '../common/wire.js';
import { ErrorCode, VerdictError } from '../errors.js';
import {
  type AbortRequest,
  type AbortResponse,
  type BeginRequest,
  type BeginResponse,
  type CommitRequest,
  type CommitResponse,
  type GetTransactionRequest,
  type GetTransactionResponse,
  type ReserveTxIdsRequest,
  type ReserveTxIdsResponse,
} from '../gen/verdict/v1/transaction.js';
import type {
  CoordinatorEffect,
  CoordinatorInput,
  CoordinatorLogOp,
  CoordinatorReply,
  IgnoredReason,
  InitiatorRequest,
  PersistToken,
  TxView,
} from '../protocol/coordinator-events.js';
import { checkFailpointEnv, failpoint } from '../common/failpoints.js';
import { compareTxIds } from '../protocol/ids.js';
import { CoordinatorMachine, DEFAULT_COORDINATOR_MACHINE_CONFIG } from '../protocol/coordinator-machine.js';
import type { Outcome, ProtocolError } from '../protocol/types.js';
import {
  DEFAULT_CLOSE_GRACE_MS,
  DEFAULT_COORDINATOR_DATA_DIR,
  DEFAULT_GC_INTERVAL_MS,
  DEFAULT_RETENTION_MS,
  GC_BATCH_SIZE,
  DEFAULT_LISTEN,
  DEFAULT_MAX_CALL_MS,
  DEFAULT_MAX_LIVE_PER_CLIENT,
  DEFAULT_MAX_LOOKUPS_PER_SESSION,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_PENDING_PER_CLIENT,
  DEFAULT_MAX_PARTICIPANT_NAMES,
  DEFAULT_MAX_SESSIONS,
  coordinatorServerOptions,
  type CoordinatorObserver,
  type CoordinatorOptions,
} from './coordinator-options.js';
import { GrpcServerTransport } from './grpc-server-transport.js';
import { CommitStreams, type CommitStreamStats } from './commit-streams.js';
import { DecisionLog } from './decision-log.js';
import { ParticipantSessions, type SessionInfo, type SessionStats } from './participant-sessions.js';
import type { Authorizer, OwnerSource } from './authorization.js';
import { adminHandlers } from './admin-service.js';
import { coordinatorSecurity, type CoordinatorSecurity } from './security.js';

/** Lifecycle of a coordinator. */
export type CoordinatorState = 'running' | 'closing' | 'closed';

/** Counters a coordinator keeps. */
export interface CoordinatorStats {
  committed: number;
  aborted: number;
  ended: number;
  /** Inputs the protocol ignored (late, duplicate, unknown), by reason. */
  ignored: Record<IgnoredReason, number>;
  /** Inquiries dropped because their session was at its limit of log reads (it asks again). */
  lookupsDropped: number;
  /** Log writes (batches) and synced batches: group commit shows as synced < forced records. */
  log: { batches: number; syncedBatches: number; writes: number };
  sessions: SessionStats;
  /** Initiators' CommitStreams: streams opened, answer frames and answers written. */
  commitStreams: CommitStreamStats;
  /** Transactions not yet ended. */
  live: number;
}

/** Events: `decided` (txId, outcome, reason) when an outcome is final, `ended` (txId, outcome). */
export interface CoordinatorEvents {
  decided: [txId: string, outcome: Outcome, reason: string | undefined];
  ended: [txId: string, outcome: Outcome];
  /**
   * The coordinator stopped serving (fail-stop): its decision log failed, or an unexpected error
   * left it unsure of its state. Restart it: recovery decides from what the log holds.
   */
  error: [error: Error];
}

/** How many decision messages the `retry-gives-up` mutant sends per transaction. */
const RETRY_GIVES_UP_AFTER = 2;
const SHUTTING_DOWN: ProtocolError = Object.freeze({ code: ErrorCode.UNAVAILABLE, message: 'the coordinator is shutting down' });

interface Pending {
  readonly kind: InitiatorRequest['type'];
  readonly answer: (reply: CoordinatorReply) => void;
}

/**
 * A running coordinator.
 *
 * ```ts
 * const coordinator = await Coordinator.start({ listen: '127.0.0.1:0', dataDir: './data/coordinator' });
 * console.log(coordinator.address);
 * await coordinator.close();
 * ```
 */
export class Coordinator extends EventEmitter<CoordinatorEvents> {
  readonly #log: Logger;
  readonly #decisionLog: DecisionLog;
  readonly #machine: CoordinatorMachine;
  readonly #transport: ServerTransport;
  readonly #clock: Clock;
  readonly #observer: CoordinatorObserver | undefined;
  readonly #sessions: ParticipantSessions;
  readonly #commitStreams: CommitStreams;
  readonly #timers: KeyedTimers;
  readonly #pending = new Map<number, Pending>();
  readonly #maxCallMs: number;
  readonly #security: CoordinatorSecurity;
  #nextRequestId = 0;
  #state: CoordinatorState = 'running';
  #closing: Promise<void> | undefined;
  #address = '';
  #gcTimer: Timer | undefined;
  #gcRunning: Promise<unknown> | undefined;
  /** What each client connection holds: unanswered calls, and transactions it began that are live. */
  readonly #clients = new Map<string, { pending: number; readonly live: Set<string> }>();
  /** The client connection that began each live transaction. */
  readonly #beganBy = new Map<string, string>();
  /** Log reads in flight per participant session. */
  readonly #lookupsOf = new Map<string, number>();
  readonly #limits: { readonly pending: number; readonly live: number; readonly lookups: number };
  /** Decision messages sent per transaction, counted only while the `retry-gives-up` mutant is armed. */
  readonly #retries = new Map<string, number>();
  readonly #counters = {
    committed: 0,
    aborted: 0,
    ended: 0,
    /** Inquiries dropped because their session was at its limit of log reads (it asks again). */
    lookupsDropped: 0,
    ignored: { 'unknown-tx': 0, 'not-a-branch': 0, duplicate: 0, 'conflicting-vote': 0, late: 0, 'outcome-mismatch': 0, 'never-issued': 0 } as Record<IgnoredReason, number>,
  };

  private constructor(options: CoordinatorOptions, security: CoordinatorSecurity, decisionLog: DecisionLog, epoch: number, log: Logger, clock: Clock) {
    super();
    this.#security = security;
    const authz = security.authorizer;
    this.#log = log;
    this.#clock = clock;
    this.#observer = options.observer;
    this.#decisionLog = decisionLog;
    this.#maxCallMs = options.maxCallMs ?? DEFAULT_MAX_CALL_MS;
    this.#limits = {
      pending: options.limits?.maxPendingPerClient ?? DEFAULT_MAX_PENDING_PER_CLIENT,
      live: options.limits?.maxLivePerClient ?? DEFAULT_MAX_LIVE_PER_CLIENT,
      lookups: options.limits?.maxLookupsPerSession ?? DEFAULT_MAX_LOOKUPS_PER_SESSION,
    };
    this.#machine = new CoordinatorMachine({ ...DEFAULT_COORDINATOR_MACHINE_CONFIG, ...options.protocol, epoch });
    this.#timers = new KeyedTimers((key) => this.#dispatch({ type: 'timer', key }), clock);
    const maxFrameBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#sessions = new ParticipantSessions(epoch, (input) => this.#dispatch(input), log.child({ component: 'sessions' }), {
      batching: options.frameBatching ?? true,
      maxFrameBytes,
      clock,
      maxSessions: options.limits?.maxSessions ?? DEFAULT_MAX_SESSIONS,
      knownNames: this.#machine.registered,
      maxParticipantNames: options.limits?.maxParticipantNames ?? DEFAULT_MAX_PARTICIPANT_NAMES,
      helloProblem: (call, participant) => authz.helloProblem(call, participant),
      verifyCapability: (txId, capability) => authz.verifyCapability(txId, capability),
    });
    this.#commitStreams = new CommitStreams((request, answer, caller) => this.#startCommit(request, answer, caller), log.child({ component: 'commit-streams' }), maxFrameBytes, clock);
    this.#transport = options.transport ?? new GrpcServerTransport(options.listen ?? DEFAULT_LISTEN, coordinatorServerOptions(options), security.credentials);
  }

  /** What the transport serves. */
  #handlers(): CoordinatorHandlers {
    return {
      session: this.#sessions.handle,
      begin: this.#begin,
      commit: this.#commit,
      abort: this.#abort,
      getTransaction: this.#getTransaction,
      reserveTxIds: this.#reserveTxIds,
      commitStream: this.#commitStreams.handle,
      admin: this.#guardedAdmin(),
    };
  }

  /** AdminService: each handler guarded like the others. */
  #guardedAdmin(): AdminHandlers {
    const admin = adminHandlers({
      authorizer: this.#security.authorizer,
      transactions: () => this.transactions(),
      sessions: () => this.sessions(),
      getTransaction: this.#getTransaction,
    });
    return {
      inspectTransaction: this.#guarded('InspectTransaction', admin.inspectTransaction),
      listTransactions: this.#guarded('ListTransactions', admin.listTransactions),
      listParticipants: this.#guarded('ListParticipants', admin.listParticipants),
    };
  }

  /**
   * Binds the address (calls wait with UNAVAILABLE, health says NOT_SERVING), opens the decision
   * log (bumping the epoch), recovers every undelivered decision and starts serving. An address
   * in use fails the start (UNAVAILABLE) before the log is opened. Fails with DATA_DIR_LOCKED when another process holds the data directory, and with
   * LOG_CORRUPT when the log cannot be read.
   */
  static async start(options: CoordinatorOptions = {}): Promise<Coordinator> {
    checkFailpointEnv();
    // Before the log opens: a refused configuration changes nothing.
    const security = options.security ?? coordinatorSecurity(options.transport ? DEFAULT_LISTEN : (options.listen ?? DEFAULT_LISTEN), options);
    const clock = options.clock ?? systemClock;
    const log = (options.logger ?? defaultLogger('verdict')).child({ component: 'coordinator' });
    // The port first: an address in use must leave the log (and its epoch) untouched.
    const transport = options.transport ?? new GrpcServerTransport(options.listen ?? DEFAULT_LISTEN, coordinatorServerOptions(options), security.credentials);
    let decisionLog: DecisionLog;
    try {
      await transport.bind?.();
      decisionLog = options.decisionStore
        ? new DecisionLog(options.decisionStore, clock)
        : await DecisionLog.open(options.storage ?? levelStorage(options.dataDir ?? DEFAULT_COORDINATOR_DATA_DIR), clock, { groupCommit: options.groupCommit ?? true });
    } catch (e) {
      await transport.close(0);
      throw e;
    }
    let coordinator: Coordinator | undefined;
    try {
      // Read everything before writing anything: a log that cannot be read is left untouched.
      const open = await decisionLog.loadOpen();
      const horizon = await decisionLog.loadHorizon();
      const epoch = await decisionLog.bumpEpoch();
      coordinator = new Coordinator({ ...options, transport }, security, decisionLog, epoch, log, clock);
      const effects = coordinator.#machine.recover(open, clock.now(), horizon);
      coordinator.#observer?.recovered?.(open, coordinator.#machine.liveTxIds());
      coordinator.#observer?.step?.(undefined, effects, undefined);
      coordinator.#run(effects);
      coordinator.#startGc(options.retentionMs ?? DEFAULT_RETENTION_MS, options.gcIntervalMs ?? DEFAULT_GC_INTERVAL_MS);
      coordinator.#address = await coordinator.#transport.serve(coordinator.#handlers());
      const tls = security.certificates ? (security.certificates.requiresClientCertificates ? 'mutual' : 'server') : 'off';
      log.info({ epoch, recovered: open.length, address: coordinator.#address, storage: decisionLog.location, tls }, 'coordinator started');
      return coordinator;
    } catch (e) {
      if (coordinator) await coordinator.close();
      else {
        await transport.close(0);
        await decisionLog.close();
      }
      throw e;
    }
  }

  /** The `host:port` the coordinator listens on (with the real port when 0 was asked). */
  get address(): string {
    return this.#address;
  }

  /** This incarnation's epoch. */
  get epoch(): number {
    return this.#machine.epoch;
  }

  /** Lifecycle state. */
  get state(): CoordinatorState {
    return this.#state;
  }

  /** Counters for monitoring and benchmarks. */
  get stats(): CoordinatorStats {
    return {
      ...this.#counters,
      ignored: { ...this.#counters.ignored },
      log: { ...this.#decisionLog.stats },
      sessions: { ...this.#sessions.stats },
      commitStreams: { ...this.#commitStreams.stats },
      live: this.#machine.liveCount,
    };
  }

  /**
   * Reads the TLS certificate, key and CA files again: new connections get them, live sessions
   * keep theirs. Throws (INVALID_ARGUMENT) and keeps the old ones when the files are unusable.
   */
  reloadCertificates(): void {
    if (!this.#security.certificates) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, 'the coordinator does not serve TLS: there are no certificates to reload');
    this.#security.certificates.reload();
    this.#log.info({ reloads: this.#security.certificates.reloads }, 'TLS certificates reloaded');
  }

  /** Describes a live transaction without a gRPC round trip (for embedders and tests). */
  describe(txId: string): TxView | undefined {
    return this.#machine.view(txId);
  }

  /** Every live (not yet ended) transaction, oldest id first: for the admin service and metrics. */
  transactions(): TxView[] {
    const views: TxView[] = [];
    for (const txId of this.#machine.liveTxIds().sort(compareTxIds)) {
      const view = this.#machine.view(txId);
      if (view) views.push(view);
    }
    return views;
  }

  /** The live participant sessions, by name. */
  sessions(): SessionInfo[] {
    return this.#sessions.list();
  }

  /**
   * Stops serving: new calls are refused, sessions end, pending calls answer UNAVAILABLE, queued
   * log writes finish, the log closes. Idempotent; decisions already durable are re-driven by
   * the next start.
   */
  close(): Promise<void> {
    this.#closing ??= this.#doClose();
    return this.#closing;
  }

  async #doClose(): Promise<void> {
    this.#state = 'closing';
    if (this.#gcTimer) this.#clock.clearTimer(this.#gcTimer);
    await this.#gcRunning;
    this.#timers.clear();
    this.#sessions.closeAll();
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      // A Commit may already be decided: say "unknown", never imply it failed.
      const error =
        pending.kind === 'commit'
          ? { code: ErrorCode.OUTCOME_UNKNOWN, message: 'the coordinator shut down before answering; the outcome may be decided: ask with GetTransaction' }
          : SHUTTING_DOWN;
      this.#answer(pending, { type: 'error', error });
    }
    // After the answers above: each stream writes them, then ends.
    this.#commitStreams.closeAll();
    await this.#transport.close(DEFAULT_CLOSE_GRACE_MS);
    // Let in-flight log writes settle before closing the database under them.
    await this.#decisionLog.write([], false).catch(() => undefined);
    await this.#decisionLog.close();
    this.#state = 'closed';
    this.#log.info('coordinator closed');
  }

  /** Drops END summaries older than the retention, raising the forgotten horizon first. */
  #startGc(retentionMs: number, intervalMs: number): void {
    const tick = (): void => {
      if (this.#state !== 'running') return;
      this.#gcTimer = this.#clock.setTimer(tick, intervalMs);
      if (this.#gcRunning) return;
      this.#gcRunning = this.collectGarbage(this.#clock.now() - retentionMs)
        .catch((e: unknown) => this.#failStop(e, 'garbage collection failed'))
        .finally(() => {
          this.#gcRunning = undefined;
        });
    };
    this.#gcTimer = this.#clock.setTimer(tick, intervalMs);
  }

  /**
   * Drops the END summaries written before `cutoffMs` (runs by itself every GC interval; public
   * for operators and tests). Returns how many were dropped.
   */
  async collectGarbage(cutoffMs: number): Promise<number> {
    let dropped = 0;
    for (;;) {
      const expired = await this.#decisionLog.expired(cutoffMs, GC_BATCH_SIZE);
      if (expired.length === 0 || this.#state !== 'running') return dropped;
      let horizon = expired[0]?.txId ?? '';
      for (const e of expired) if (compareTxIds(e.txId, horizon) > 0) horizon = e.txId;
      // The machine must know the horizon before any summary disappears, or a lookup racing
      // with the delete would read "no record" as a presumed abort.
      this.#dispatch({ type: 'gc-horizon', txId: horizon });
      await this.#decisionLog.forget(expired, horizon);
      dropped += expired.length;
      if (expired.length < GC_BATCH_SIZE) return dropped;
    }
  }

  // ---- the protocol loop --------------------------------------------------------------------

  #dispatch(input: CoordinatorInput): void {
    if (this.#state !== 'running') return;
    try {
      const observer = this.#observer;
      if (observer?.step) {
        const txId = txIdOf(input);
        const before = txId === undefined ? undefined : this.#machine.view(txId)?.state;
        const effects = this.#machine.handle(input, this.#clock.now());
        observer.step(input, effects, before);
        observer.effects?.(input, effects);
        this.#run(effects);
      } else if (observer?.effects) {
        const effects = this.#machine.handle(input, this.#clock.now());
        observer.effects(input, effects);
        this.#run(effects);
      } else {
        this.#run(this.#machine.handle(input, this.#clock.now()));
      }
    } catch (e) {
      // An effect half carried out leaves the machine ahead of the world: stop serving
      // (fail-stop); the next start recovers from the log.
      this.#failStop(e, 'coordinator stopped after an unexpected error');
    }
  }

  /**
   * Stops serving (fail-stop): waiting callers hear OUTCOME_UNKNOWN, never an outcome this
   * incarnation cannot vouch for, and the next start decides from what the log holds.
   */
  #failStop(e: unknown, what: string): void {
    if (this.#state !== 'running') return;
    this.#log.fatal({ err: e }, what);
    void this.close();
    if (this.listenerCount('error') > 0) this.emit('error', e instanceof Error ? e : new Error(String(e)));
  }

  /**
   * A log write failed. LevelDB may have written the record all the same (a failed sync can leave
   * it in the log for the next open) and refuses every write after it: the outcome is unknown,
   * so the transaction's callers hear OUTCOME_UNKNOWN and the coordinator stops.
   */
  #writeFailed(e: unknown, token: PersistToken | undefined): void {
    const message = (e as Error)?.message ?? String(e);
    this.#log.error({ err: e, txId: token?.txId }, 'decision log write failed');
    if (token && mutant('abort-on-failed-commit-write')) return this.#dispatch({ type: 'persist-failed', token, message, assumeNotWritten: true });
    if (token) this.#dispatch({ type: 'persist-failed', token, message });
    this.#failStop(
      new VerdictError(ErrorCode.INTERNAL, `the decision log write failed (${message}); the coordinator stopped: restart it to recover from the log`, {
        cause: e,
        ...(token ? { txId: token.txId } : {}),
      }),
      'decision log write failed; stopping',
    );
  }

  #run(effects: readonly CoordinatorEffect[]): void {
    for (const effect of effects) this.#execute(effect);
  }

  #execute(effect: CoordinatorEffect): void {
    switch (effect.type) {
      case 'send':
        if (effect.message.type === 'decision' && mutant('retry-gives-up')) {
          const n = (this.#retries.get(effect.message.txId) ?? 0) + 1;
          this.#retries.set(effect.message.txId, n);
          if (n > RETRY_GIVES_UP_AFTER) return;
        }
        return this.#sessions.send(effect.to, effect.message);
      case 'persist': {
        const { token } = effect;
        const commit = token?.kind === 'commit';
        const early = commit && mutant('commit-before-durable');
        this.#write(effect.ops, effect.force && !(commit && mutant('commit-record-unforced')), token).then(
          () => {
            if (commit) failpoint('coordinator.after-commit-record');
            if (token && !early) this.#dispatch({ type: 'persisted', token });
          },
          (e: unknown) => this.#writeFailed(e, token),
        );
        if (early) this.#clock.defer(() => this.#dispatch({ type: 'persisted', token }));
        return;
      }
      case 'reply': {
        const pending = this.#pending.get(effect.requestId);
        if (pending) {
          this.#pending.delete(effect.requestId);
          this.#answer(pending, effect.reply);
        }
        return;
      }
      case 'set-timer':
        return this.#timers.set(effect.key, effect.at, effect.jitterMs);
      case 'cancel-timer':
        return this.#timers.cancel(effect.key);
      case 'lookup': {
        // A session's inquiries and YES votes for finished transactions each read the log: bound
        // them. One over the limit is dropped; the participant asks again.
        const from = effect.pending.type === 'message' ? effect.pending.from : undefined;
        if (from !== undefined) {
          const inFlight = this.#lookupsOf.get(from) ?? 0;
          if (inFlight >= this.#limits.lookups) {
            this.#counters.lookupsDropped++;
            this.#log.debug({ participant: from, txId: effect.txId, limit: this.#limits.lookups }, 'a session is at its limit of log reads; an inquiry was dropped');
            return;
          }
          this.#lookupsOf.set(from, inFlight + 1);
        }
        const done = (): void => {
          if (from === undefined) return;
          const n = (this.#lookupsOf.get(from) ?? 1) - 1;
          if (n > 0) this.#lookupsOf.set(from, n);
          else this.#lookupsOf.delete(from);
        };
        this.#decisionLog.lookupDone(effect.txId).then(
          (record) => {
            done();
            this.#dispatch({ type: 'lookup-result', txId: effect.txId, record, pending: effect.pending });
          },
          (e: unknown) => {
            done();
            this.#log.error({ err: e, txId: effect.txId }, 'decision log lookup failed');
            const p = effect.pending;
            if (p.type === 'begin' || p.type === 'commit' || p.type === 'abort' || p.type === 'get') {
              this.#execute({ type: 'reply', requestId: p.requestId, reply: { type: 'error', error: { code: ErrorCode.INTERNAL, message: `cannot read the decision log: ${(e as Error).message}` } } });
            }
          },
        );
        return;
      }
      case 'lookup-key':
        this.#decisionLog.lookupKey(effect.key).then(
          (txId) => this.#dispatch({ type: 'key-lookup-result', key: effect.key, txId, pending: effect.pending }),
          (e: unknown) => {
            this.#log.error({ err: e }, 'decision log lookup of an idempotency key failed');
            const p = effect.pending;
            if (p.type === 'commit') {
              this.#execute({ type: 'reply', requestId: p.requestId, reply: { type: 'error', error: { code: ErrorCode.INTERNAL, message: `cannot read the decision log: ${(e as Error).message}` } } });
            }
          },
        );
        return;
      case 'decided':
        if (effect.outcome === 'committed') this.#counters.committed++;
        else this.#counters.aborted++;
        this.#log.debug({ txId: effect.txId, outcome: effect.outcome, reason: effect.reason }, 'decided');
        if (effect.outcome === 'committed' && mutant('forget-commit-early')) {
          this.#write([{ op: 'del', space: 'open', txId: effect.txId }], false, undefined).catch((e: unknown) => this.#writeFailed(e, undefined));
        }
        this.emit('decided', effect.txId, effect.outcome, effect.reason);
        return;
      case 'ended': {
        const peer = this.#beganBy.get(effect.txId);
        if (peer !== undefined) {
          this.#beganBy.delete(effect.txId);
          const client = this.#clients.get(peer);
          if (client) {
            client.live.delete(effect.txId);
            this.#forgetIfIdle(peer, client);
          }
        }
        this.#counters.ended++;
        this.emit('ended', effect.txId, effect.outcome);
        return;
      }
      case 'ignored':
        this.#counters.ignored[effect.why]++;
        this.#log.debug({ txId: effect.txId, participant: effect.participant, why: effect.why, what: effect.what }, 'ignored message');
        return;
    }
  }

  /** Starts a log write, passing the failpoints that mark it; a failpoint error fails the write. */
  #write(ops: readonly CoordinatorLogOp[], force: boolean, token: PersistToken | undefined): Promise<void> {
    try {
      if (token?.kind === 'commit') {
        failpoint('coordinator.after-votes');
        failpoint('coordinator.before-commit-record');
      } else if (ops.some((op) => op.op === 'put' && op.record.kind === 'end')) {
        failpoint('coordinator.before-end-record');
      }
    } catch (e) {
      return Promise.reject(e);
    }
    const written = this.#decisionLog.write(ops, force);
    // The record is in the log; an error here is LevelDB failing a write that landed all the same.
    return token?.kind === 'commit' ? written.then(commitWritten) : written;
  }

  /** Drops the bookkeeping of a client connection that holds nothing any more. */
  #forgetIfIdle(peer: string, client: { readonly pending: number; readonly live: ReadonlySet<string> }): void {
    if (client.pending === 0 && client.live.size === 0) this.#clients.delete(peer);
  }

  /** Answers a request. Answering never stops the coordinator: a failure to answer fails that call alone (INTERNAL). */
  #answer(pending: Pending, reply: CoordinatorReply): void {
    try {
      pending.answer(reply);
    } catch (e) {
      this.#log.error({ err: e, kind: pending.kind }, 'answering a call failed; it gets INTERNAL');
      try {
        pending.answer({ type: 'error', error: { code: ErrorCode.INTERNAL, message: `internal error while answering the ${pending.kind} call` } });
      } catch {
        // The call is gone as well: nothing more to tell it.
      }
    }
  }

  /**
   * Registers a request: returns its id and what stops waiting for it. The reply (or a timeout,
   * or the cancel) settles it.
   */
  #request(kind: InitiatorRequest['type'], answer: (reply: CoordinatorReply) => void): { requestId: number; cancel: () => void } {
    const requestId = ++this.#nextRequestId;
    const timer = this.#clock.setTimer(() => {
      const pending = this.#pending.get(requestId);
      if (!pending) return;
      this.#pending.delete(requestId);
      this.#answer(pending, { type: 'error', error: { code: ErrorCode.OUTCOME_UNKNOWN, message: `no outcome within ${this.#maxCallMs} ms; ask again with GetTransaction` } });
    }, this.#maxCallMs);
    this.#pending.set(requestId, {
      kind,
      answer: (reply) => {
        this.#clock.clearTimer(timer);
        answer(reply);
      },
    });
    const cancel = (): void => {
      this.#clock.clearTimer(timer);
      this.#pending.delete(requestId);
    };
    return { requestId, cancel };
  }

  /** A unary call's request: cancelled with the call. */
  /**
   * A unary call's request, cancelled with the call; undefined when the client connection is at
   * its limit of unanswered calls (then it was answered LIMIT_EXCEEDED).
   */
  #unaryRequest(kind: InitiatorRequest['type'], call: UnaryCall<unknown>, answer: (reply: CoordinatorReply) => void): number | undefined {
    const peer = call.getPeer?.() ?? 'unknown';
    const client = this.#clients.get(peer) ?? { pending: 0, live: new Set<string>() };
    if (client.pending >= this.#limits.pending) {
      this.#log.warn({ peer, limit: this.#limits.pending }, 'a client passed its limit of unanswered calls');
      answer({ type: 'error', error: { code: ErrorCode.LIMIT_EXCEEDED, message: `this connection has ${client.pending} unanswered calls (limit ${this.#limits.pending}): wait for answers` } });
      return undefined;
    }
    if (kind === 'begin' && client.live.size >= this.#limits.live) {
      this.#log.warn({ peer, limit: this.#limits.live }, 'a client passed its limit of live transactions');
      answer({ type: 'error', error: { code: ErrorCode.LIMIT_EXCEEDED, message: `this connection has begun ${client.live.size} transactions that are not finished (limit ${this.#limits.live}): commit or abort some first` } });
      return undefined;
    }
    client.pending++;
    this.#clients.set(peer, client);
    let settled = false;
    const settle = (): void => {
      settled = true;
      client.pending--;
      this.#forgetIfIdle(peer, client);
    };
    const { requestId, cancel } = this.#request(kind, (reply) => {
      if (reply.type === 'begun') {
        client.live.add(reply.txId);
        this.#beganBy.set(reply.txId, peer);
      }
      settle();
      answer(reply);
    });
    call.on('cancelled', () => {
      if (settled) return;
      cancel();
      settle();
    });
    return requestId;
  }

  /** Starts a Commit for a CommitStream call (it bounds its calls itself), once the caller may. */
  #startCommit(req: CommitRequest, answer: (reply: CoordinatorReply) => void, caller: CallerContext): () => void {
    if (this.#state !== 'running') {
      answer({ type: 'error', error: SHUTTING_DOWN });
      return () => undefined;
    }
    let cancel: (() => void) | undefined;
    let cancelled = false;
    this.#authorized(caller, req.txId, (error, owner) => {
      if (cancelled) return;
      if (error) return answer({ type: 'error', error });
      const request = this.#request('commit', answer);
      cancel = request.cancel;
      this.#dispatchCommit(request.requestId, req, owner);
    });
    return () => {
      cancelled = true;
      cancel?.();
    };
  }

  #dispatchCommit(requestId: number, req: CommitRequest, owner: string | undefined): void {
    this.#dispatch({
      type: 'commit',
      requestId,
      txId: req.txId,
      branches: req.branches.map((b) => ({ participant: b.participant, payload: b.payload })),
      timeoutMs: req.timeoutMs,
      waitForCompletion: req.waitForCompletion,
      ...(owner ? { owner } : {}),
      ...(req.idempotencyKey ? { idempotencyKey: req.idempotencyKey } : {}),
    });
  }

  /**
   * Runs `then` once `caller` may act on `txId` (any transaction it owns; '' for a new one), or
   * answers the refusal through it; nothing reaches the protocol before. `owner` is the caller's
   * identity, recorded on the transactions it begins.
   */
  #authorized(caller: CallerContext, txId: string, then: (error: ProtocolError | undefined, owner?: string) => void): void {
    const authz: Authorizer = this.#security.authorizer;
    const who = authz.initiator(caller);
    if (who.error) return then(who.error);
    const owner = authz.ownerFor(who.identity);
    // Nobody to check (authentication off, or a new transaction): no callback on the hot path.
    if (who.identity === undefined || txId === '') return this.#checked(undefined, owner, then);
    authz.checkTransaction(who.identity, txId, this.#owners, (error) => this.#checked(error, owner, then));
  }

  /** Ends an authorization check: its refusal, else UNAVAILABLE once the coordinator is closing (a lookup may have outlasted it), else go. */
  #checked(error: ProtocolError | undefined, owner: string | undefined, then: (error: ProtocolError | undefined, owner?: string) => void): void {
    if (error || this.#state === 'running') then(error, owner);
    else then(SHUTTING_DOWN);
  }

  /** Where the authorizer finds a transaction's owner. */
  readonly #owners: OwnerSource = { view: (id) => this.#machine.view(id), lookup: (id) => this.#decisionLog.lookupDone(id) };

  // ---- TransactionService -------------------------------------------------------------------

  /** Runs a unary handler so that an exception in it fails that call (INTERNAL), never the process. */
  #guarded<Req, Res>(method: string, handler: UnaryHandler<Req, Res>): UnaryHandler<Req, Res> {
    return (call, callback) => {
      let answered = false;
      const once: UnaryCallback<Res> = (error, response) => {
        if (answered) return;
        answered = true;
        callback(error, response);
      };
      try {
        handler(call, once);
      } catch (e) {
        this.#log.error({ err: e, method }, 'a call handler failed; the call gets INTERNAL');
        if (!answered) once({ code: Status.INTERNAL, details: `internal error in ${method}` });
      }
    };
  }

  readonly #begin: UnaryHandler<BeginRequest, BeginResponse> = this.#guarded('Begin', (call, callback) => {
    this.#authorized(call, '', (error, owner) => {
      if (error) return callback(toStatus(error));
      const requestId = this.#unaryRequest('begin', call, (reply) => {
        if (reply.type === 'begun') callback(null, { txId: reply.txId, deadlineUnixMs: reply.deadline, capability: this.#security.authorizer.capability(reply.txId) });
        else fail(callback, reply);
      });
      if (requestId === undefined) return;
      this.#dispatch({ type: 'begin', requestId, timeoutMs: call.request.timeoutMs, ...(owner ? { owner } : {}) });
    });
  });

  readonly #commit: UnaryHandler<CommitRequest, CommitResponse> = this.#guarded('Commit', (call, callback) => {
    const answer = (reply: CoordinatorReply): void => {
      if (reply.type === 'committed') callback(null, { txId: reply.txId, outcome: outcomeToWire('committed') });
      else fail(callback, reply);
    };
    if (this.#state !== 'running') return answer({ type: 'error', error: SHUTTING_DOWN });
    this.#authorized(call, call.request.txId, (error, owner) => {
      if (error) return answer({ type: 'error', error });
      const requestId = this.#unaryRequest('commit', call, answer);
      if (requestId !== undefined) this.#dispatchCommit(requestId, call.request, owner);
    });
  });

  readonly #reserveTxIds: UnaryHandler<ReserveTxIdsRequest, ReserveTxIdsResponse> = this.#guarded('ReserveTxIds', (call, callback) => {
    this.#authorized(call, '', (error, owner) => {
      if (error) return callback(toStatus(error));
      const requestId = this.#unaryRequest('reserve', call, (reply) => {
        if (reply.type === 'reserved') {
          callback(null, { epoch: reply.epoch, firstSeq: reply.firstSeq, count: reply.count, ttlMs: Math.max(0, reply.expiresAt - this.#clock.now()) });
        } else fail(callback, reply);
      });
      if (requestId === undefined) return;
      this.#dispatch({ type: 'reserve', requestId, count: call.request.count, ...(owner ? { owner } : {}) });
    });
  });

  readonly #abort: UnaryHandler<AbortRequest, AbortResponse> = this.#guarded('Abort', (call, callback) => {
    this.#authorized(call, call.request.txId, (error, caller) => {
      if (error) return callback(toStatus(error));
      const requestId = this.#unaryRequest('abort', call, (reply) => {
        if (reply.type === 'aborted') callback(null, { txId: reply.txId, outcome: outcomeToWire('aborted') });
        else fail(callback, reply);
      });
      if (requestId === undefined) return;
      this.#dispatch({ type: 'abort', requestId, txId: call.request.txId, reason: call.request.reason.slice(0, 1024), ...(caller ? { caller } : {}) });
    });
  });

  readonly #getTransaction: UnaryHandler<GetTransactionRequest, GetTransactionResponse> = this.#guarded('GetTransaction', (call, callback) => {
    this.#authorized(call, call.request.txId, (error, caller) => {
      if (error) return callback(toStatus(error));
      const requestId = this.#unaryRequest('get', call, (reply) => {
        if (reply.type === 'transaction') callback(null, { transaction: viewToWire(reply.view) });
        else fail(callback, reply);
      });
      if (requestId === undefined) return;
      this.#dispatch({ type: 'get', requestId, txId: call.request.txId, ...(caller ? { caller } : {}) });
    });
  });
}

/** After a COMMIT record's write returned: the failpoint that fails it after it landed. */
function commitWritten(): void {
  failpoint('coordinator.commit-record-write-fails');
}

function fail(callback: UnaryCallback<never>, reply: CoordinatorReply): void {
  if (reply.type === 'error') callback(toStatus(reply.error));
  else callback({ code: Status.INTERNAL, details: `unexpected reply ${reply.type}` });
}

/** The transaction an input concerns, when it names one. */
function txIdOf(input: CoordinatorInput): string | undefined {
  switch (input.type) {
    case 'message':
      return input.message.txId;
    case 'persisted':
    case 'persist-failed':
      return input.token.txId;
    case 'lookup-result':
    case 'abort':
    case 'get':
    case 'gc-horizon':
      return input.txId;
    case 'commit':
      return input.txId || undefined;
    case 'timer':
      return input.key.slice(input.key.indexOf('/') + 1);
    default:
      return undefined;
  }
}
