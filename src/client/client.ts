// The initiator SDK: a typed, promise-based client of the coordinator's TransactionService.
// Failures are VerdictErrors with stable codes; a commit whose outcome is unknown (deadline,
// lost connection) says so with OUTCOME_UNKNOWN instead of pretending it failed.

import { connectivityState as ConnectivityState, Metadata, status as Status, type ChannelCredentials, type ClientOptions, type ServiceError } from '@grpc/grpc-js';
import { clientChannel } from '../common/tls.js';
import { connectionChannelOptions, connectionOptionsProblem, connectTimeoutMs, DEFAULT_RECONNECT_INITIAL_MS, DEFAULT_RECONNECT_MAX_MS } from '../common/connection-options.js';
import { connectTimeoutError, isConnectTimeout, whenChannelReady } from '../common/channel-ready.js';
import { coordinatorAddresses, CoordinatorTargets } from '../common/coordinator-targets.js';
import { fromServiceError, notLeader } from '../common/grpc-errors.js';
import { viewFromWire } from '../common/wire.js';
import { ErrorCode, VerdictError } from '../errors.js';
import {
  TransactionServiceClient,
  type AbortResponse,
  type BeginResponse,
  type CommitRequest,
  type CommitResponse,
  type GetTransactionResponse,
  type ReserveTxIdsResponse,
} from '../gen/verdict/v1/transaction.js';
import { LeaderFollower, MAX_MOVES } from '../common/leader-following.js';
import { systemClock, type Clock, type Timer } from '../common/clock.js';
import type { TxView } from '../protocol/coordinator-events.js';
import { COMMON_CHANNEL_OPTIONS } from '../common/channel-options.js';
import { CommitStreamClient } from './commit-stream.js';
import { idempotencyKeyProblem } from '../protocol/ids.js';
import { TxIdPool } from './tx-id-pool.js';
import {
  DEFAULT_CALL_TIMEOUT_MS,
  DEFAULT_STREAM_FRAME_BYTES,
  type BeginOptions,
  type BranchInput,
  type CommitOptions,
  type TransactOptions,
  type VerdictClientOptions,
} from './client-options.js';

/** A transaction begun with `begin`. */
export interface BegunTransaction {
  readonly txId: string;
  /** Absolute deadline (Unix ms) for its decision. */
  readonly deadline: number;
  /** The capability to join it: hand it, with the id, to the services that should `enlist`. */
  readonly capability: string;
}

/** A committed transaction. */
export interface CommitResult {
  /**
   * The transaction. For `transact` with an idempotency key that an earlier call had used, the
   * earlier call's transaction (not the id this call reserved).
   */
  readonly txId: string;
  readonly outcome: 'committed';
}

/**
 * A client for initiators.
 *
 * ```ts
 * const client = new VerdictClient('127.0.0.1:7070');
 * const { txId } = await client.transact([{ participant: 'bank-a', payload: '{"debit":5}' }, { participant: 'bank-b' }]);
 * client.close();
 * ```
 */
export class VerdictClient {
  readonly #targets: CoordinatorTargets;
  readonly #follower: LeaderFollower;
  readonly #connections = new Map<string, Connection>();
  readonly #channel: { readonly credentials: ChannelCredentials; readonly options: ClientOptions };
  readonly #timeoutMs: number;
  readonly #streamFrameBytes: number | undefined;
  readonly #reconnect: { readonly initialMs: number; readonly maxMs: number; readonly connectTimeoutMs: number };
  readonly #ids: TxIdPool;
  #closed = false;

  /**
   * `address`: the coordinator's `host:port`, or the addresses of a coordinator group's members.
   * With a group, calls go to the leader: a member that does not lead answers NOT_LEADER (naming
   * the leader when it knows one), and the call goes there (or to the next address) after a
   * backoff delay; so does a call that provably never reached an address (nothing listening, or
   * no connection within `reconnect.connectTimeoutMs`: a frozen member). Keepalive pings (every
   * 2 s, 3 s to answer, with a group) drop the connection to a member that stopped answering.
   * A call broken after it was sent is never repeated: a commit then fails OUTCOME_UNKNOWN with
   * its tx id, and `get(txId)` tells the truth once a leader answers.
   */
  constructor(address: string | readonly string[], options: VerdictClientOptions = {}) {
    const problem = connectionOptionsProblem(options);
    if (problem) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, problem);
    this.#targets = new CoordinatorTargets(coordinatorAddresses(address));
    const channel = clientChannel(options);
    this.#channel = {
      credentials: channel.credentials,
      options: { ...COMMON_CHANNEL_OPTIONS, ...connectionChannelOptions(options.reconnect, options.keepalive, this.#targets.group), ...channel.options },
    };
    this.#reconnect = {
      initialMs: options.reconnect?.initialMs ?? DEFAULT_RECONNECT_INITIAL_MS,
      maxMs: options.reconnect?.maxMs ?? DEFAULT_RECONNECT_MAX_MS,
      connectTimeoutMs: connectTimeoutMs(options.reconnect),
    };
    this.#follower = new LeaderFollower(this.#targets, CLIENT_CLOCK, {
      ...this.#reconnect,
      neverSent: (e) => neverSent(e as ServiceError),
      onMove: (from) => {
        // A leader named from outside the configured list is dialled only while it is the target.
        if (!this.#targets.configured(from)) {
          const c = this.#connections.get(from);
          c?.stream?.close();
          c?.grpc.close();
          this.#connections.delete(from);
        }
        // Another member may be another incarnation: reserved ids of the last one are void there.
        this.#ids.connectionLost();
      },
    });
    this.#timeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const frameBytes = options.streamFrameBytes ?? DEFAULT_STREAM_FRAME_BYTES;
    if (!Number.isSafeInteger(frameBytes) || frameBytes < 1024) {
      throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `streamFrameBytes must be an integer of at least 1024, got ${frameBytes}`);
    }
    this.#streamFrameBytes = options.streamCommits ? frameBytes : undefined;
    this.#ids = new TxIdPool(
      (count, deadlineMs) => this.#send<ReserveTxIdsResponse>(deadlineMs, (grpc, deadline, done) => grpc.reserveTxIds({ count }, new Metadata(), { deadline }, done)),
      () => Date.now(),
    );
    this.#connection(this.#targets.current);
  }

  /** The coordinator address calls go to now (a group's leader, once one answered). */
  get target(): string {
    return this.#targets.current;
  }

  /** Begins an interactive transaction; participants may `enlist` in it until it is committed. */
  begin(options: BeginOptions = {}): Promise<BegunTransaction> {
    const request = { timeoutMs: options.timeoutMs ?? 0 };
    return this.#send<BeginResponse>(this.#deadline(), (grpc, deadline, done) => grpc.begin(request, new Metadata(), { deadline }, done)).then(
      (res) => ({ txId: res.txId, deadline: res.deadlineUnixMs, capability: res.capability }),
      (e: unknown) => Promise.reject(asVerdictError(e, {})),
    );
  }

  /**
   * Commits `txId` over `branches` plus every enlisted participant. Resolves once the commit is
   * durable; rejects with TransactionAbortedError (code TX_ABORTED, with `reason`) when it
   * aborted, and with OutcomeUnknownError when the call ended before the outcome was known.
   * Repeating the call is safe: a transaction never runs twice.
   */
  commit(txId: string, branches: readonly BranchInput[] = [], options: CommitOptions = {}): Promise<CommitResult> {
    if (txId === '') return Promise.reject(new VerdictError(ErrorCode.INVALID_ARGUMENT, 'tx id is empty (use transact() for a one-shot transaction)'));
    return this.#commit(txId, branches, options, '');
  }

  /**
   * Begins and commits a one-shot transaction over `branches` in one call. The client names the
   * transaction before it sends it (with an id reserved from the coordinator ahead of time), so
   * every error but a refused argument carries `txId`: after OUTCOME_UNKNOWN, `get(txId)` tells
   * what happened. With `idempotencyKey`, repeating the call (even from another process of the
   * same initiator identity, even after a coordinator restart) never commits the work twice.
   */
  transact(branches: readonly BranchInput[], options: TransactOptions = {}): Promise<CommitResult> {
    const key = options.idempotencyKey ?? '';
    if (options.idempotencyKey !== undefined) {
      const problem = idempotencyKeyProblem(options.idempotencyKey);
      if (problem) return Promise.reject(new VerdictError(ErrorCode.INVALID_ARGUMENT, problem));
    }
    if (branches.length === 0) return Promise.reject(new VerdictError(ErrorCode.INVALID_ARGUMENT, 'a one-shot commit needs at least one branch'));
    const generation = this.#ids.generation;
    const id = this.#ids.next();
    if (typeof id === 'string') return this.#commit(id, branches, options, key).catch((e: unknown) => this.#afterStaleId(e, id, generation, branches, options, key));
    return id.then((txId) => this.#commit(txId, branches, options, key).catch((e: unknown) => this.#afterStaleId(e, txId, generation, branches, options, key)));
  }

  /**
   * A one-shot commit refused as aborted because its reserved id belonged to a coordinator
   * incarnation that restarted (or lost the lead) meanwhile never ran: it is made again, once,
   * with a fresh id. Any other failure stands.
   */
  async #afterStaleId(e: unknown, txId: string, generation: number, branches: readonly BranchInput[], options: TransactOptions, key: string): Promise<CommitResult> {
    // Only this call's own id, refused as aborted, after a connection was lost since it was taken.
    if (!(e instanceof VerdictError) || e.code !== ErrorCode.TX_ABORTED || e.txId !== txId || generation === this.#ids.generation) throw e;
    if (!(await this.#ids.isStale(txId, generation).catch(() => false))) throw e;
    return this.#commit(await this.#ids.next(), branches, options, key);
  }

  #commit(txId: string, branches: readonly BranchInput[], options: CommitOptions, idempotencyKey: string): Promise<CommitResult> {
    let payloads: Buffer[];
    try {
      payloads = branches.map((b) => toBuffer(b.payload, b.participant));
    } catch (e) {
      return Promise.reject(e);
    }
    const request: CommitRequest = {
      txId,
      branches: branches.map((b, i) => ({ participant: b.participant, payload: payloads[i] as Buffer })),
      timeoutMs: options.timeoutMs ?? 0,
      waitForCompletion: options.waitForCompletion ?? false,
      idempotencyKey,
    };
    const timeoutMs = options.callTimeoutMs ?? this.#timeoutMs;
    const stream = this.#connection(this.#targets.current).stream;
    if (stream?.fits(request)) return this.#streamCommit(request, Date.now() + timeoutMs, 0);
    return this.#send<CommitResponse>(Date.now() + timeoutMs, (grpc, deadline, done) => grpc.commit(request, new Metadata(), { deadline }, done)).then(
      (res) => ({ txId: res.txId, outcome: 'committed' }),
      // A call that provably never left (no connection could be made) is UNAVAILABLE, not unknown.
      (e: unknown) => Promise.reject(asVerdictError(e, { txId, outcomeUnknown: true })),
    );
  }

  /** A commit on the CommitStream of the current target; a stream refused NOT_LEADER is sent again to the leader. */
  async #streamCommit(request: CommitRequest, deadlineMs: number, attempt: number): Promise<CommitResult> {
    const target = this.#targets.current;
    const connection = this.#connection(target);
    const stream = connection.stream as CommitStreamClient;
    const unsent = await new Promise<ServiceError | undefined>((resolve) => this.#whenConnected(connection, target, deadlineMs, resolve));
    if (unsent) {
      // Not sent: the commit goes to the next address, as after NOT_LEADER.
      this.#follower.moveFrom(target, undefined);
      const delay = this.#follower.delay(attempt);
      if (attempt >= MAX_MOVES || Date.now() + delay >= deadlineMs) throw asVerdictError(unsent, { txId: request.txId, outcomeUnknown: true });
      await new Promise((resolve) => setTimeout(resolve, delay));
      return this.#streamCommit(request, deadlineMs, attempt + 1);
    }
    return stream.commit(request, Math.max(1, deadlineMs - Date.now())).then(
      (res): CommitResult => ({ txId: res.txId, outcome: 'committed' }),
      async (e: unknown) => {
        if (!(e instanceof VerdictError) || e.code !== ErrorCode.NOT_LEADER) throw e;
        this.#follower.moveFrom(target, notLeader(e.cause as ServiceError)?.leader);
        const delay = this.#follower.delay(attempt);
        if (attempt >= MAX_MOVES || Date.now() + delay >= deadlineMs) throw e;
        await new Promise((resolve) => setTimeout(resolve, delay));
        return this.#streamCommit(request, deadlineMs, attempt + 1);
      },
    );
  }

  /** Aborts an undecided transaction. Fails with WRONG_STATE when it is committed. */
  abort(txId: string, reason = ''): Promise<void> {
    return this.#send<AbortResponse>(this.#deadline(), (grpc, deadline, done) => grpc.abort({ txId, reason }, new Metadata(), { deadline }, done)).then(
      () => undefined,
      (e: unknown) => Promise.reject(asVerdictError(e, { txId })),
    );
  }

  /** Describes a transaction: state, outcome, reason and per-branch progress. */
  get(txId: string): Promise<TxView> {
    return this.#send<GetTransactionResponse>(this.#deadline(), (grpc, deadline, done) => grpc.getTransaction({ txId }, new Metadata(), { deadline }, done)).then(
      (res) => {
        const view = res.transaction && viewFromWire(res.transaction);
        if (!view) throw new VerdictError(ErrorCode.INTERNAL, `the coordinator sent an unreadable description of ${txId}`, { txId });
        return view;
      },
      (e: unknown) => Promise.reject(asVerdictError(e, { txId })),
    );
  }

  /** Closes the connections; calls still waiting on a commit stream fail with OUTCOME_UNKNOWN. */
  close(): void {
    this.#closed = true;
    this.#ids.close();
    for (const c of this.#connections.values()) {
      c.stream?.close();
      c.grpc.close();
    }
    this.#connections.clear();
  }

  /**
   * Runs one unary call on the current target, following the leader (LeaderFollower): a
   * NOT_LEADER answer, or (with a group) a call that never reached its address, is made again on
   * the next target after a backoff delay, while the deadline allows. Rejects with the last
   * ServiceError.
   */
  #send<T>(deadlineMs: number, call: (grpc: TransactionServiceClient, deadline: Date, done: (e: ServiceError | null, res?: T) => void) => void): Promise<T> {
    if (this.#closed) return Promise.reject(new VerdictError(ErrorCode.UNAVAILABLE, 'the client is closed'));
    return new Promise<T>((resolve, reject) => {
      const deadline = new Date(deadlineMs);
      this.#follower.send<ServiceError, T>(
        deadlineMs,
        (target, answer) => {
          const connection = this.#connection(target);
          this.#whenConnected(connection, target, deadlineMs, (unsent) => (unsent ? answer(unsent) : call(connection.grpc, deadline, answer)));
        },
        (e, res) => (e ? reject(e) : resolve(res as T)),
        () => (this.#closed ? (new VerdictError(ErrorCode.UNAVAILABLE, 'the client is closed') as unknown as ServiceError) : undefined),
      );
    });
  }

  /**
   * With a group: waits (within the connect timeout and `deadlineMs`) until the connection to
   * `target` is open or has failed, then calls `done` with undefined (send), or with the never-sent
   * error of a connection still opening at the bound (a frozen or blackholed member). At once, and
   * synchronously, with one address or an open connection.
   */
  #whenConnected(connection: Connection, target: string, deadlineMs: number, done: (unsent: ServiceError | undefined) => void): void {
    if (!this.#targets.group) return done(undefined);
    const bound = Math.min(deadlineMs, Date.now() + this.#reconnect.connectTimeoutMs);
    whenChannelReady(connection.grpc.getChannel(), bound, (result) => done(result === 'timeout' ? connectTimeoutError(target, this.#reconnect.connectTimeoutMs) : undefined));
  }

  #connection(address: string): Connection {
    let c = this.#connections.get(address);
    if (c) return c;
    const grpc = new TransactionServiceClient(address, this.#channel.credentials, this.#channel.options);
    c = { grpc, stream: this.#streamFrameBytes === undefined ? undefined : new CommitStreamClient(grpc, this.#streamFrameBytes) };
    this.#connections.set(address, c);
    this.#watchConnection(grpc, ConnectivityState.IDLE);
    return c;
  }

  /** Tells the id pool whenever a connection to the coordinator is lost (it may have restarted). */
  #watchConnection(grpc: TransactionServiceClient, state: ConnectivityState): void {
    const channel = grpc.getChannel();
    try {
      // No deadline: grpc-js then sets no timer, and the watch ends with the channel.
      channel.watchConnectivityState(state, Infinity, () => {
        const now = channel.getConnectivityState(false);
        if (state === ConnectivityState.READY && now !== ConnectivityState.READY) this.#ids.connectionLost();
        if (now !== ConnectivityState.SHUTDOWN) this.#watchConnection(grpc, now);
      });
    } catch {
      // The channel is shut down: nothing more to watch.
    }
  }

  #deadline(timeoutMs?: number): number {
    return Date.now() + (timeoutMs ?? this.#timeoutMs);
  }
}

/** One coordinator address's client (and its CommitStream, with `streamCommits`). */
interface Connection {
  readonly grpc: TransactionServiceClient;
  readonly stream: CommitStreamClient | undefined;
}

/** The client's clock: the system's, with timers that keep the process alive while a call waits to move. */
const CLIENT_CLOCK: Clock = { ...systemClock, setTimer: (fn, ms) => setTimeout(fn, ms) as Timer };

/** The typed error for a failed call (a VerdictError passes as is). */
function asVerdictError(e: unknown, context: { txId?: string; outcomeUnknown?: boolean }): VerdictError {
  if (e instanceof VerdictError) return e;
  const se = e as ServiceError;
  return fromServiceError(se, { ...(context.txId ? { txId: context.txId } : {}), outcomeUnknown: context.outcomeUnknown === true && !neverSent(se) });
}

function toBuffer(payload: unknown, participant: string): Buffer {
  if (payload === undefined) return Buffer.alloc(0);
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  if (payload instanceof Uint8Array) return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const what = payload === null ? 'null' : Array.isArray(payload) ? 'an array' : typeof payload === 'object' ? 'an object' : `a ${typeof payload}`;
  throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `the payload of ${participant}'s branch is ${what}: pass a string or a Uint8Array (for an object, JSON.stringify it)`, {
    participant,
  });
}

/**
 * Whether a failed call provably never reached the coordinator: grpc-js fails a call with this
 * status when no connection could be made, before anything was sent.
 */
function neverSent(e: ServiceError): boolean {
  return isConnectTimeout(e) || (e.code === Status.UNAVAILABLE && /^No connection established/.test(e.details ?? ''));
}
