// The initiator SDK: a typed, promise-based client of the coordinator's TransactionService.
// Failures are VerdictErrors with stable codes; a commit whose outcome is unknown (deadline,
// lost connection) says so with OUTCOME_UNKNOWN instead of pretending it failed.

import { credentials, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { fromServiceError } from '../common/grpc-errors.js';
import { viewFromWire } from '../common/wire.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { TransactionServiceClient } from '../gen/verdict/v1/transaction.js';
import type { TxView } from '../protocol/coordinator-events.js';
import { COMMON_CHANNEL_OPTIONS } from '../common/channel-options.js';
import { CommitStreamClient } from './commit-stream.js';
import { DEFAULT_CALL_TIMEOUT_MS, DEFAULT_STREAM_FRAME_BYTES, type BeginOptions, type BranchInput, type CommitOptions, type VerdictClientOptions } from './client-options.js';

/** A transaction begun with `begin`. */
export interface BegunTransaction {
  readonly txId: string;
  /** Absolute deadline (Unix ms) for its decision. */
  readonly deadline: number;
}

/** A committed transaction. */
export interface CommitResult {
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

  constructor(address: string, options: VerdictClientOptions = {}) {
    this.#client = new TransactionServiceClient(address, credentials.createInsecure(), COMMON_CHANNEL_OPTIONS);
    this.#timeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const frameBytes = options.streamFrameBytes ?? DEFAULT_STREAM_FRAME_BYTES;
    if (!Number.isSafeInteger(frameBytes) || frameBytes < 1024) {
      throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `streamFrameBytes must be an integer of at least 1024, got ${frameBytes}`);
    }
    this.#stream = options.streamCommits ? new CommitStreamClient(this.#client, frameBytes) : undefined;
  }

  /** Begins an interactive transaction; participants may `enlist` in it until it is committed. */
  begin(options: BeginOptions = {}): Promise<BegunTransaction> {
    return new Promise((resolve, reject) => {
      this.#client.begin({ timeoutMs: options.timeoutMs ?? 0 }, new Metadata(), { deadline: this.#deadline() }, (e, res) => {
        if (e) return reject(fromServiceError(e));
        resolve({ txId: res.txId, deadline: res.deadlineUnixMs });
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
    return this.#commit(txId, branches, options);
  }

  /** Begins and commits a one-shot transaction over `branches` in one call. */
  transact(branches: readonly BranchInput[], options: CommitOptions = {}): Promise<CommitResult> {
    return this.#commit('', branches, options);
  }

  #commit(txId: string, branches: readonly BranchInput[], options: CommitOptions): Promise<CommitResult> {
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
    };
    if (this.#stream?.fits(request)) {
      return this.#stream.commit(request, options.callTimeoutMs ?? this.#timeoutMs).then((res) => ({ txId: res.txId, outcome: 'committed' }));
    }
    return new Promise((resolve, reject) => {
      this.#client.commit(request, new Metadata(), { deadline: this.#deadline(options.callTimeoutMs) }, (e, res) => {
        // A call that provably never left (no connection could be made) is UNAVAILABLE, not unknown.
        if (e) return reject(fromServiceError(e, { ...(txId ? { txId } : {}), outcomeUnknown: !neverSent(e) }));
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
