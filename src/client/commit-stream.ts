// The client side of CommitStream: Commit calls multiplexed on one stream, opened on first use and
// reopened after it breaks. Calls made in one event-loop turn leave as one frame. A call whose
// answer cannot come any more (deadline, broken stream) fails with OUTCOME_UNKNOWN: the commit
// may have been decided, exactly as when a unary call loses its connection.

import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { fromCallError, fromServiceError } from '../common/grpc-errors.js';
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
  #frame: StreamedCommit[] = [];
  #flushScheduled = false;
  #nextCallId = 0;
  readonly #waiting = new Map<number, Waiting>();
  #closed = false;

  constructor(client: TransactionServiceClient) {
    this.#client = client;
  }

  /** Sends one Commit; settles with its answer, or OUTCOME_UNKNOWN after `timeoutMs` without one. */
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
      this.#frame.push({ callId, request });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(this.#flush);
      }
    });
  }

  /** Ends the stream; calls still unanswered fail with OUTCOME_UNKNOWN. */
  close(): void {
    this.#closed = true;
    const stream = this.#stream;
    this.#stream = undefined;
    this.#frame = [];
    if (stream) {
      stream.cancel();
      this.#failAll(stream, new OutcomeUnknownError('the client was closed before the answer came; the outcome is unknown: ask again with get()'));
    }
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const commits = this.#frame;
    this.#frame = [];
    if (commits.length > 0) this.#stream?.write({ commits });
  };

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
        this.#frame = [];
      }
      this.#failAll(stream, e);
    };
    stream.on('error', (e: ServiceError) => broken(fromServiceError(e, { outcomeUnknown: true })));
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
