// CommitStream: many Commit calls multiplexed on one initiator stream. A unary call costs several
// times the CPU of a stream message, so initiators with many transactions in flight send their
// commits here. Each call is answered once, by its call id, with what the unary Commit would have
// answered; answers queued in one event-loop turn leave as one frame, as on participant sessions.

import type { Clock } from '../common/clock.js';
import type { CommitStreamServerStream } from '../common/transport.js';
import { FrameBuffer } from '../common/frame-buffer.js';
import { toCallError, toStatus } from '../common/grpc-errors.js';
import type { Logger } from '../common/logger.js';
import { Outcome as WireOutcome } from '../gen/verdict/v1/common.js';
import type { CommitRequest, CommitStreamRequest, StreamedCommitResult } from '../gen/verdict/v1/transaction.js';
import type { CoordinatorReply } from '../protocol/coordinator-events.js';
import { ErrorCode } from '../errors.js';

/** Most calls one stream may have unanswered; more are refused with LIMIT_EXCEEDED. */
export const MAX_CALLS_PER_STREAM = 10_000;

type CommitStreamCall = CommitStreamServerStream;

/** Starts one Commit; `answer` is called once with its reply. Returns what cancels the wait. */
export type StartCommit = (request: CommitRequest, answer: (reply: CoordinatorReply) => void) => () => void;

class OpenStream {
  /** Unanswered calls by id, with what stops waiting for each. */
  readonly inFlight = new Map<number, () => void>();
  /** Answers not yet written. */
  readonly results: FrameBuffer<StreamedCommitResult>;
  /** The client sent its last call: end once every call is answered. */
  halfClosed = false;
  closed = false;

  constructor(
    readonly call: CommitStreamCall,
    maxFrameBytes: number,
    stats: CommitStreamStats,
    clock: Clock,
  ) {
    this.results = new FrameBuffer(
      maxFrameBytes,
      (results) => {
        if (this.closed) return;
        stats.framesOut++;
        stats.resultsOut += results.length;
        call.write({ results });
      },
      clock,
    );
  }
}

/** Counters of the commit streams. */
export interface CommitStreamStats {
  /** Streams opened. */
  opened: number;
  /** Frames of answers written. */
  framesOut: number;
  /** Answers carried by those frames. */
  resultsOut: number;
}

/** The coordinator's CommitStream handler. */
export class CommitStreams {
  readonly #start: StartCommit;
  readonly #log: Logger;
  readonly #maxFrameBytes: number;
  readonly #clock: Clock;
  readonly #streams = new Set<OpenStream>();
  readonly stats: CommitStreamStats = { opened: 0, framesOut: 0, resultsOut: 0 };

  /**
   * `maxFrameBytes`: the largest message the server may send (its max_send_message_length); a
   * turn's answers are split over as many frames as that takes.
   */
  constructor(start: StartCommit, log: Logger, maxFrameBytes: number, clock: Clock) {
    this.#start = start;
    this.#log = log;
    this.#maxFrameBytes = maxFrameBytes;
    this.#clock = clock;
  }

  /** The gRPC handler for `TransactionService.CommitStream`. */
  readonly handle = (call: CommitStreamCall): void => {
    const stream = new OpenStream(call, this.#maxFrameBytes, this.stats, this.#clock);
    this.#streams.add(stream);
    this.stats.opened++;
    call.on('data', (frame: CommitStreamRequest) => this.#onFrame(stream, frame));
    call.on('end', () => {
      stream.halfClosed = true;
      this.#maybeEnd(stream);
    });
    const gone = (): void => this.#close(stream);
    call.on('error', gone);
    call.on('cancelled', gone);
    call.on('close', gone);
  };

  /** Answers what is queued and ends every stream (the coordinator is shutting down). */
  closeAll(): void {
    for (const stream of [...this.#streams]) {
      stream.results.flush();
      stream.call.end();
      this.#close(stream);
    }
  }

  #onFrame(stream: OpenStream, frame: CommitStreamRequest): void {
    if (stream.closed) return;
    for (const { callId, request } of frame.commits) {
      if (stream.inFlight.has(callId)) {
        // The answer could not say which of the two calls it is for: the stream is broken.
        return this.#refuse(stream, `call id ${callId} is already in flight on this stream`);
      }
      if (!request) {
        this.#queue(stream, { callId, error: missing(`call ${callId} carries no request`) });
        continue;
      }
      if (stream.inFlight.size >= MAX_CALLS_PER_STREAM) {
        this.#queue(stream, {
          callId,
          error: toCallError({ code: ErrorCode.LIMIT_EXCEEDED, message: `more than ${MAX_CALLS_PER_STREAM} calls in flight on one stream; wait for answers or open another client` }),
        });
        continue;
      }
      // Registered before the start: a reply given at once must find the call in flight.
      stream.inFlight.set(callId, noop);
      const cancel = this.#start(request, (reply) => {
        if (!stream.inFlight.delete(callId)) return;
        this.#queue(stream, resultOf(callId, reply));
        this.#maybeEnd(stream);
      });
      if (stream.inFlight.has(callId)) stream.inFlight.set(callId, cancel);
    }
  }

  #queue(stream: OpenStream, result: StreamedCommitResult): void {
    if (!stream.closed) stream.results.add(result, resultBytes(result));
  }

  #maybeEnd(stream: OpenStream): void {
    if (!stream.halfClosed || stream.inFlight.size > 0 || stream.closed) return;
    stream.results.flush();
    stream.call.end();
    this.#close(stream);
  }

  #refuse(stream: OpenStream, details: string): void {
    this.#log.warn({ details }, 'commit stream refused');
    stream.results.flush();
    stream.call.emit('error', toStatus({ code: ErrorCode.INVALID_ARGUMENT, message: details }));
    this.#close(stream);
  }

  #close(stream: OpenStream): void {
    if (stream.closed) return;
    stream.closed = true;
    this.#streams.delete(stream);
    for (const cancel of stream.inFlight.values()) cancel();
    stream.inFlight.clear();
    stream.results.clear();
  }
}

const noop = (): void => undefined;

function missing(message: string): StreamedCommitResult['error'] {
  return toCallError({ code: ErrorCode.INVALID_ARGUMENT, message });
}

function resultOf(callId: number, reply: CoordinatorReply): StreamedCommitResult {
  switch (reply.type) {
    case 'committed':
      return { callId, committed: { txId: reply.txId, outcome: WireOutcome.OUTCOME_COMMITTED } };
    case 'error':
      return { callId, error: toCallError(reply.error) };
    default:
      return { callId, error: toCallError({ code: ErrorCode.INTERNAL, message: `unexpected reply ${reply.type} to a commit` }) };
  }
}

/**
 * An upper bound of `result`'s encoded size: tags and varints take at most 11 bytes a field, and a
 * string at most 3 UTF-8 bytes a UTF-16 unit. Cheaper than encoding every answer twice.
 */
function resultBytes(r: StreamedCommitResult): number {
  const e = r.error;
  const strings = e ? e.message.length + e.code.length + e.txId.length + e.reason.length : (r.committed?.txId.length ?? 0);
  return 64 + 3 * strings;
}
