// The client side of CommitStream: Commit calls multiplexed on one stream, opened on first use and
// reopened after it breaks. Calls made in one event-loop turn leave together, in frames of at most
// `maxFrameBytes`. A call whose answer cannot come any more (deadline, broken stream) fails with
// OUTCOME_UNKNOWN: the commit may have been decided, exactly as when a unary call loses its
// connection.

import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { FrameBuffer } from '../common/frame-buffer.js';
import { fromCallError, notLeader } from '../common/grpc-errors.js';
import { ErrorCode, OutcomeUnknownError, verdictError, VerdictError } from '../errors.js';
import type {
  CommitRequest,
  CommitResponse,
  CommitStreamRequest,
  CommitStreamResponse,
  StreamedCommit,
  TransactionServiceClient,
} from '../gen/verdict/v1/transaction.js';

interface Waiting {
  readonly txId: string;
  readonly resolve: (res: CommitResponse) => void;
  readonly reject: (e: VerdictError) => void;
  readonly timer: NodeJS.Timeout;
  /** The stream the call was sent on: only its failure fails the call. */
  readonly stream: ClientDuplexStream<CommitStreamRequest, CommitStreamResponse>;
}

/** Commit calls over one CommitStream of `client`. */
export class CommitStreamClient {
  readonly #client: TransactionServiceClient;
  #stream: ClientDuplexStream<CommitStreamRequest, CommitStreamResponse> | undefined;
  /** Calls not yet written, bound for the current stream. */
  readonly #frame: FrameBuffer<StreamedCommit>;
  #nextCallId = 0;
  readonly #waiting = new Map<number, Waiting>();
  #closed = false;

  /** `maxFrameBytes`: the most one frame of calls may carry; keep it under the coordinator's maxMessageBytes. */
  constructor(client: TransactionServiceClient, maxFrameBytes: number) {
    this.#client = client;
    this.#frame = new FrameBuffer(maxFrameBytes, (commits) => this.#stream?.write({ commits }));
  }

  /** Whether `request` fits in a frame on its own (a larger one must go as a unary call). */
  fits(request: CommitRequest): boolean {
    return this.#frame.fits(commitBytes(request));
  }

  /**
   * Sends one Commit (which must `fit`); settles with its answer, or OUTCOME_UNKNOWN after
   * `timeoutMs` without one.
   */
  commit(request: CommitRequest, timeoutMs: number): Promise<CommitResponse> {
    if (this.#closed) return Promise.reject(new VerdictError(ErrorCode.UNAVAILABLE, 'the client is closed'));
    const stream = (this.#stream ??= this.#open());
    const callId = ++this.#nextCallId;
    const txId = request.txId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.#waiting.delete(callId)) return;
        reject(new OutcomeUnknownError(`no answer within ${timeoutMs} ms; the outcome is unknown: ask again with get()`, txId ? { txId } : {}));
      }, timeoutMs);
      this.#waiting.set(callId, { txId, resolve, reject, timer, stream });
      this.#frame.add({ callId, request }, commitBytes(request));
    });
  }

  /** Ends the stream; calls still unanswered fail with OUTCOME_UNKNOWN. */
  close(): void {
    this.#closed = true;
    const stream = this.#stream;
    this.#stream = undefined;
    this.#frame.clear();
    if (stream) {
      stream.cancel();
      this.#failAll(stream, new OutcomeUnknownError('the client was closed before the answer came; the outcome is unknown: ask again with get()'));
    }
  }

  #open(): ClientDuplexStream<CommitStreamRequest, CommitStreamResponse> {
    const stream = this.#client.commitStream();
    stream.on('data', (frame: CommitStreamResponse) => {
      for (const r of frame.results) {
        const waiting = this.#waiting.get(r.callId);
        if (!waiting || waiting.stream !== stream) continue;
        this.#waiting.delete(r.callId);
        clearTimeout(waiting.timer);
        if (r.committed) waiting.resolve(r.committed);
        else if (r.error) waiting.reject(fromCallError(r.error, waiting.txId ? { txId: waiting.txId } : {}));
        else waiting.reject(new VerdictError(ErrorCode.INTERNAL, `the coordinator answered call ${r.callId} with neither an outcome nor an error`));
      }
    });
    const broken = (e: VerdictError): void => {
      if (this.#stream === stream) {
        // The next call opens a new stream; calls queued for this one fail with it.
        this.#stream = undefined;
        this.#frame.clear();
      }
      this.#failAll(stream, e);
    };
    // Whatever broke the stream, a call sent on it may have been decided: never a plain failure.
    // Except NOT_LEADER: a member that does not lead promises it ran nothing of the stream.
    stream.on('error', (e: ServiceError) =>
      broken(
        notLeader(e)
          ? new VerdictError(ErrorCode.NOT_LEADER, `the coordinator does not lead (${e.details || e.message}); nothing was run`, { cause: e })
          : new OutcomeUnknownError(`the commit stream failed (${e.details || e.message}); the outcome is unknown: ask again with get()`, { cause: e }),
      ),
    );
    stream.on('end', () => broken(new OutcomeUnknownError('the coordinator ended the stream before answering; the outcome is unknown: ask again with get()')));
    return stream;
  }

  /** Fails every call sent on `stream` and still unanswered. */
  #failAll(stream: ClientDuplexStream<CommitStreamRequest, CommitStreamResponse>, e: VerdictError): void {
    for (const [callId, waiting] of this.#waiting) {
      if (waiting.stream !== stream) continue;
      this.#waiting.delete(callId);
      clearTimeout(waiting.timer);
      waiting.reject(waiting.txId && !e.txId ? verdictError(e.code, e.message, { txId: waiting.txId, cause: e.cause }) : e);
    }
  }
}

/**
 * An upper bound of `request`'s encoded size inside a frame: at most 11 bytes of tag and length a
 * field, 3 UTF-8 bytes a UTF-16 unit of a string. Cheaper than encoding every call twice.
 */
function commitBytes(request: CommitRequest): number {
  let bytes = 64 + 3 * request.txId.length;
  for (const b of request.branches) bytes += 24 + 3 * b.participant.length + b.payload.length;
  return bytes;
}
