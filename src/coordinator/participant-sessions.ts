// Participant sessions: one long-lived bidirectional stream per participant name. Incoming frames
// are validated and turned into protocol inputs; outgoing messages are queued per session and
// flushed as one frame per event-loop turn, so a burst of prepares costs one stream write (unless
// frame batching is off, the benchmark's naive baseline).

import { status as Status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { Logger } from '../common/logger.js';
import { outcomeFromWire, outcomeToWire, voteFromWire } from '../common/wire.js';
import { grpcStatusFor } from '../common/grpc-errors.js';
import type { SessionRequest, SessionResponse } from '../gen/verdict/v1/participant.js';
import type { CoordinatorInput, CoordinatorMessage, ParticipantMessage } from '../protocol/coordinator-events.js';
import { participantNameProblem, txIdProblem } from '../protocol/ids.js';
import { failpoint } from '../faults/failpoints.js';
import { Outcome as WireOutcome } from '../gen/verdict/v1/common.js';

const isCommit = (d: { outcome: WireOutcome }): boolean => d.outcome === WireOutcome.OUTCOME_COMMITTED;

type SessionCall = ServerDuplexStream<SessionRequest, SessionResponse>;

class Session {
  frame: SessionResponse | undefined;
  closed = false;

  constructor(
    readonly name: string,
    readonly call: SessionCall,
  ) {}
}

/** Counters of the session hub. */
export interface SessionStats {
  /** Frames written to participants. */
  framesOut: number;
  /** Messages carried by those frames. */
  messagesOut: number;
  /** Messages dropped because the participant had no live session. */
  droppedNotConnected: number;
  /** Sessions refused (bad hello, name taken). */
  refused: number;
}

/** Holds the live participant sessions of a coordinator. */
export class ParticipantSessions {
  readonly #sessions = new Map<string, Session>();
  readonly #dispatch: (input: CoordinatorInput) => void;
  readonly #log: Logger;
  readonly #epoch: number;
  readonly #batching: boolean;
  #flushScheduled = false;
  readonly #dirty = new Set<Session>();
  readonly stats: SessionStats = { framesOut: 0, messagesOut: 0, droppedNotConnected: 0, refused: 0 };

  /** With `batching` false every message is written as its own frame at once (the naive baseline). */
  constructor(epoch: number, dispatch: (input: CoordinatorInput) => void, log: Logger, options: { batching?: boolean } = {}) {
    this.#epoch = epoch;
    this.#batching = options.batching ?? true;
    this.#dispatch = dispatch;
    this.#log = log;
  }

  /** The gRPC handler for `ParticipantService.Session`. */
  readonly handle = (call: SessionCall): void => {
    let session: Session | undefined;
    call.on('data', (frame: SessionRequest) => {
      if (session?.closed) return;
      if (!session) {
        session = this.#register(call, frame);
        if (!session) return;
      } else if (frame.hello) {
        return this.#refuse(call, session, Status.INVALID_ARGUMENT, 'hello may only be sent in the first frame');
      }
      const problem = this.#onFrame(session, frame);
      if (problem) this.#refuse(call, session, Status.INVALID_ARGUMENT, problem);
    });
    const gone = (): void => {
      if (session) this.#close(session);
    };
    call.on('end', () => {
      gone();
      call.end();
    });
    call.on('error', gone);
    call.on('cancelled', gone);
    call.on('close', gone);
  };

  /** Queues `message` for `to`; it leaves with the next flush. Dropped if `to` has no session. */
  send(to: string, message: CoordinatorMessage): void {
    const session = this.#sessions.get(to);
    if (!session || session.closed) {
      this.stats.droppedNotConnected++;
      return;
    }
    const frame = (session.frame ??= { prepares: [], decisions: [], enlistResults: [] });
    switch (message.type) {
      case 'prepare':
        frame.prepares.push({
          txId: message.txId,
          payload: Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength),
          deadlineUnixMs: message.deadline,
          onePhase: message.onePhase,
        });
        break;
      case 'decision':
        frame.decisions.push({ txId: message.txId, outcome: outcomeToWire(message.outcome) });
        break;
      case 'enlist-result':
        frame.enlistResults.push({
          requestId: message.requestId,
          code: message.error ? grpcStatusFor(message.error.code) : 0,
          message: message.error?.message ?? '',
        });
        break;
    }
    this.#dirty.add(session);
    if (!this.#batching) return this.#flush();
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
  }

  /** Whether `name` has a live session. */
  isConnected(name: string): boolean {
    return this.#sessions.has(name);
  }

  /** Ends every session (the coordinator is shutting down). */
  closeAll(): void {
    for (const s of [...this.#sessions.values()]) {
      s.call.emit('error', { code: Status.UNAVAILABLE, details: 'the coordinator is shutting down' });
      this.#close(s);
    }
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    let commitFramesLeft = 0;
    for (const s of this.#dirty) if (s.frame?.decisions.some(isCommit)) commitFramesLeft++;
    for (const s of this.#dirty) {
      const frame = s.frame;
      s.frame = undefined;
      if (!frame || s.closed) continue;
      this.stats.framesOut++;
      this.stats.messagesOut += frame.prepares.length + frame.decisions.length + frame.enlistResults.length;
      s.call.write(frame);
      if (frame.prepares.length > 0) failpoint('coordinator.after-prepare-sent');
      if (frame.decisions.some(isCommit) && --commitFramesLeft > 0) failpoint('coordinator.between-commit-sends');
    }
    this.#dirty.clear();
  };

  #register(call: SessionCall, frame: SessionRequest): Session | undefined {
    const name = frame.hello?.participant;
    if (name === undefined) {
      this.#refuse(call, undefined, Status.INVALID_ARGUMENT, 'the first frame of a session must carry hello');
      return undefined;
    }
    const problem = participantNameProblem(name);
    if (problem) {
      this.#refuse(call, undefined, Status.INVALID_ARGUMENT, problem);
      return undefined;
    }
    if (this.#sessions.has(name)) {
      this.#refuse(call, undefined, Status.ALREADY_EXISTS, `participant ${name} already has a live session`);
      return undefined;
    }
    const session = new Session(name, call);
    this.#sessions.set(name, session);
    call.write({ welcome: { epoch: this.#epoch }, prepares: [], decisions: [], enlistResults: [] });
    this.#log.info({ participant: name, peer: call.getPeer() }, 'participant connected');
    this.#dispatch({ type: 'connected', participant: name });
    return session;
  }

  /** Validates a frame and dispatches its messages; returns a problem for a malformed frame. */
  #onFrame(session: Session, frame: SessionRequest): string | undefined {
    const messages: ParticipantMessage[] = [];
    for (const v of frame.votes) {
      const vote = voteFromWire(v.vote);
      if (!vote) return `vote ${v.vote} for ${v.txId} is not a valid vote`;
      messages.push({ type: 'vote', txId: v.txId, vote, reason: v.reason.slice(0, 1024) });
    }
    for (const a of frame.acks) {
      const outcome = outcomeFromWire(a.outcome);
      if (!outcome) return `ack outcome ${a.outcome} for ${a.txId} is not a valid outcome`;
      messages.push({ type: 'ack', txId: a.txId, outcome });
    }
    for (const q of frame.inquiries) messages.push({ type: 'inquiry', txId: q.txId });
    for (const e of frame.enlists) messages.push({ type: 'enlist', requestId: e.requestId, txId: e.txId, payload: e.payload });
    for (const m of messages) {
      // An enlist answers its own bad id; everything else must carry a well-formed one.
      const problem = m.type === 'enlist' ? undefined : txIdProblem(m.txId);
      if (problem) return `${m.type}: ${problem}`;
    }
    for (const message of messages) this.#dispatch({ type: 'message', from: session.name, message });
    return undefined;
  }

  #refuse(call: SessionCall, session: Session | undefined, code: Status, details: string): void {
    this.stats.refused++;
    this.#log.warn({ participant: session?.name, code, details }, 'participant session refused');
    call.emit('error', { code, details });
    if (session) this.#close(session);
  }

  #close(session: Session): void {
    if (session.closed) return;
    session.closed = true;
    this.#dirty.delete(session);
    if (this.#sessions.get(session.name) === session) {
      this.#sessions.delete(session.name);
      this.#log.info({ participant: session.name }, 'participant disconnected');
      this.#dispatch({ type: 'disconnected', participant: session.name });
    }
  }
}
