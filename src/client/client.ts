// The initiator SDK: a typed, promise-based client of the coordinator's TransactionService.
// Failures are VerdictErrors with stable codes; a commit whose outcome is unknown (deadline,
// lost connection) says so with OUTCOME_UNKNOWN instead of pretending it failed.

import { connectivityState as ConnectivityState, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { clientChannel } from '../common/tls.js';
import { fromServiceError } from '../common/grpc-errors.js';
import { viewFromWire } from '../common/wire.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { TransactionServiceClient } from '../gen/verdict/v1/transaction.js';
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
  readonly #client: TransactionServiceClient;
  readonly #timeoutMs: number;
  readonly #stream: CommitStreamClient | undefined;
  readonly #ids: TxIdPool;

  constructor(address: string, options: VerdictClientOptions = {}) {
    const channel = clientChannel(options);
    this.#client = new TransactionServiceClient(address, channel.credentials, { ...COMMON_CHANNEL_OPTIONS, ...channel.options });
    this.#timeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const frameBytes = options.streamFrameBytes ?? DEFAULT_STREAM_FRAME_BYTES;
    if (!Number.isSafeInteger(frameBytes) || frameBytes < 1024) {
      throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `streamFrameBytes must be an integer of at least 1024, got ${frameBytes}`);
    }
    this.#stream = options.streamCommits ? new CommitStreamClient(this.#client, frameBytes) : undefined;
    this.#ids = new TxIdPool(this.#client, () => Date.now());
    this.#watchConnection(ConnectivityState.IDLE);
  }

  /** Tells the id pool whenever a connection to the coordinator is lost (it may have restarted). */
  #watchConnection(state: ConnectivityState): void {
    const channel = this.#client.getChannel();
    try {
      // No deadline: grpc-js then sets no timer, and the watch ends with the channel.
      channel.watchConnectivityState(state, Infinity, () => {
        const now = channel.getConnectivityState(false);
        if (state === ConnectivityState.READY && now !== ConnectivityState.READY) this.#ids.connectionLost();
        if (now !== ConnectivityState.SHUTDOWN) this.#watchConnection(now);
      });
    } catch {
      // The channel is shut down: nothing more to watch.
    }
  }

  /** Begins an interactive transaction; participants may `enlist` in it until it is committed. */
  begin(options: BeginOptions = {}): Promise<BegunTransaction> {
    return new Promise((resolve, reject) => {
      this.#client.begin({ timeoutMs: options.timeoutMs ?? 0 }, new Metadata(), { deadline: this.#deadline() }, (e, res) => {
        if (e) return reject(fromServiceError(e));
        resolve({ txId: res.txId, deadline: res.deadlineUnixMs, capability: res.capability });
      });
    });
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
   * incarnation that restarted meanwhile never ran: it is made again, once, with a fresh id.
   * Any other failure stands.
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
    const request = {
      txId,
      branches: branches.map((b, i) => ({ participant: b.participant, payload: payloads[i] as Buffer })),
      timeoutMs: options.timeoutMs ?? 0,
      waitForCompletion: options.waitForCompletion ?? false,
      idempotencyKey,
    };
    if (this.#stream?.fits(request)) {
      return this.#stream.commit(request, options.callTimeoutMs ?? this.#timeoutMs).then((res) => ({ txId: res.txId, outcome: 'committed' }));
    }
    return new Promise((resolve, reject) => {
      this.#client.commit(request, new Metadata(), { deadline: this.#deadline(options.callTimeoutMs) }, (e, res) => {
        // A call that provably never left (no connection could be made) is UNAVAILABLE, not unknown.
        if (e) return reject(fromServiceError(e, { txId, outcomeUnknown: !neverSent(e) }));
        resolve({ txId: res.txId, outcome: 'committed' });
      });
    });
  }

  /** Aborts an undecided transaction. Fails with WRONG_STATE when it is committed. */
  abort(txId: string, reason = ''): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#client.abort({ txId, reason }, new Metadata(), { deadline: this.#deadline() }, (e) => {
        if (e) return reject(fromServiceError(e, { txId }));
        resolve();
      });
    });
  }

  /** Describes a transaction: state, outcome, reason and per-branch progress. */
  get(txId: string): Promise<TxView> {
    return new Promise((resolve, reject) => {
      this.#client.getTransaction({ txId }, new Metadata(), { deadline: this.#deadline() }, (e: ServiceError | null, res) => {
        if (e) return reject(fromServiceError(e, { txId }));
        const view = res.transaction && viewFromWire(res.transaction);
        if (!view) return reject(new VerdictError(ErrorCode.INTERNAL, `the coordinator sent an unreadable description of ${txId}`, { txId }));
        resolve(view);
      });
    });
  }

  /** Closes the connection; calls still waiting on the commit stream fail with OUTCOME_UNKNOWN. */
  close(): void {
    this.#ids.close();
    this.#stream?.close();
    this.#client.close();
  }

  #deadline(timeoutMs?: number): Date {
    return new Date(Date.now() + (timeoutMs ?? this.#timeoutMs));
  }
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
  return e.code === Status.UNAVAILABLE && /^No connection established/.test(e.details ?? '');
}
