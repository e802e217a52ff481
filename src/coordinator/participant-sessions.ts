// Participant sessions: one long-lived bidirectional stream per participant name. Incoming frames
// are validated and turned into protocol inputs; outgoing messages are queued per session and
// leave together at the end of the event-loop turn, split into frames under the message limit
// (one FrameBuffer per session), so a burst of prepares costs few stream writes. With frame
// batching off (the benchmark's naive baseline) every message is its own frame.

import { status as Status } from '@grpc/grpc-js';
import type { Clock } from '../common/clock.js';
import { failpoint } from '../common/failpoints.js';
import { FrameBuffer } from '../common/frame-buffer.js';
import { grpcStatusFor, toStatus } from '../common/grpc-errors.js';
import { ErrorCode } from '../errors.js';
import type { Logger } from '../common/logger.js';
import { mutant } from '../common/mutants.js';
import type { SessionServerStream } from '../common/transport.js';
import { outcomeFromWire, outcomeToWire, voteFromWire } from '../common/wire.js';
import { Outcome as WireOutcome } from '../gen/verdict/v1/common.js';
import type { Decision, EnlistResult, OutcomeQuery, Prepare, SessionRequest, SessionResponse } from '../gen/verdict/v1/participant.js';
import type { CoordinatorInput, CoordinatorMessage, ParticipantMessage } from '../protocol/coordinator-events.js';
import { participantNameProblem, txIdProblem } from '../protocol/ids.js';
import { Vote, type ProtocolError } from '../protocol/types.js';

/** Encoded bytes a session message carries besides its id, payload and text (tags, lengths, numbers). */
const MESSAGE_OVERHEAD_BYTES = 32;

/** A message queued for a participant: the wire message itself (told apart by its fields). */
type Outgoing = Prepare | Decision | EnlistResult | OutcomeQuery;

const isPrepare = (item: Outgoing): item is Prepare => 'deadlineUnixMs' in item;
const isDecision = (item: Outgoing): item is Decision => 'outcome' in item;
const isEnlistResult = (item: Outgoing): item is EnlistResult => 'requestId' in item;
const isCommit = (item: Outgoing): boolean => isDecision(item) && item.outcome === WireOutcome.OUTCOME_COMMITTED;

class Session {
  readonly out: FrameBuffer<Outgoing>;
  closed = false;

  constructor(
    readonly name: string,
    readonly call: SessionServerStream,
    maxFrameBytes: number,
    clock: Clock,
    write: (session: Session, items: Outgoing[]) => void,
  ) {
    this.out = new FrameBuffer(maxFrameBytes, (items) => write(this, items), clock);
  }
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

/** Options of the session hub. */
export interface SessionHubOptions {
  /** Off: every message is written as its own frame at once (the naive baseline). Default on. */
  readonly batching?: boolean;
  /** The largest frame the hub may write (the peer's message limit). */
  readonly maxFrameBytes: number;
  readonly clock: Clock;
  /** Refuses a hello the session's identity may not say (checked before anything is registered). */
  readonly helloProblem?: (call: SessionServerStream, participant: string) => ProtocolError | undefined;
  /** Whether an enlist's capability is the one Begin gave; without this check every enlist is refused. */
  readonly verifyCapability?: (txId: string, capability: string) => boolean;
  /** The most live sessions; a hello beyond it is refused RESOURCE_EXHAUSTED. */
  readonly maxSessions: number;
  /** The participant names this coordinator incarnation has known a session of. */
  readonly knownNames?: ReadonlySet<string>;
  /** The most distinct names in `knownNames`; a hello under a new name beyond it is refused RESOURCE_EXHAUSTED. */
  readonly maxParticipantNames?: number;
}

/** Holds the live participant sessions of a coordinator. */
export class ParticipantSessions {
  readonly #sessions = new Map<string, Session>();
  readonly #dispatch: (input: CoordinatorInput) => void;
  readonly #log: Logger;
  readonly #epoch: number;
  readonly #batching: boolean;
  readonly #maxFrameBytes: number;
  readonly #clock: Clock;
  readonly #helloProblem: NonNullable<SessionHubOptions['helloProblem']>;
  readonly #verifyCapability: NonNullable<SessionHubOptions['verifyCapability']>;
  readonly #maxSessions: number;
  readonly #knownNames: ReadonlySet<string>;
  readonly #maxNames: number;
  readonly stats: SessionStats = { framesOut: 0, messagesOut: 0, droppedNotConnected: 0, refused: 0 };

  constructor(epoch: number, dispatch: (input: CoordinatorInput) => void, log: Logger, options: SessionHubOptions) {
    this.#epoch = epoch;
    this.#batching = options.batching ?? true;
    this.#maxFrameBytes = options.maxFrameBytes;
    this.#clock = options.clock;
    this.#helloProblem = options.helloProblem ?? (() => undefined);
    this.#verifyCapability = options.verifyCapability ?? (() => false);
    this.#maxSessions = options.maxSessions;
    this.#knownNames = options.knownNames ?? new Set();
    this.#maxNames = options.maxParticipantNames ?? Infinity;
    this.#dispatch = dispatch;
    this.#log = log;
  }

  /** The handler of `ParticipantService.Session`. */
  readonly handle = (call: SessionServerStream): void => {
    let session: Session | undefined;
    call.on('data', (frame: SessionRequest) => {
      if (session?.closed) return;
      try {
        if (!session) {
          session = this.#register(call, frame);
          if (!session) return;
        } else if (frame.hello) {
          return this.#refuse(call, session, ErrorCode.INVALID_ARGUMENT, 'hello may only be sent in the first frame');
        }
        const problem = this.#onFrame(session, frame);
        if (problem) this.#refuse(call, session, ErrorCode.INVALID_ARGUMENT, problem);
      } catch (e) {
        // A failure while handling one frame ends that session alone, never the coordinator.
        this.#log.error({ err: e, participant: session?.name }, 'handling a session frame failed; the session ends with INTERNAL');
        this.#refuse(call, session, ErrorCode.INTERNAL, 'internal error while handling the frame');
      }
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

  /** Queues `message` for `to`; it leaves with the session's next frame. Dropped if `to` has no session. */
  send(to: string, message: CoordinatorMessage): void {
    const session = this.#sessions.get(to);
    if (!session || session.closed) {
      this.stats.droppedNotConnected++;
      return;
    }
    let item: Outgoing;
    let bytes = MESSAGE_OVERHEAD_BYTES;
    switch (message.type) {
      case 'prepare':
        item = {
          txId: message.txId,
          payload: Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength),
          deadlineUnixMs: message.deadline,
          onePhase: message.onePhase,
        };
        bytes += message.txId.length + message.payload.byteLength;
        break;
      case 'decision':
        item = { txId: message.txId, outcome: outcomeToWire(message.outcome) };
        bytes += message.txId.length;
        break;
      case 'outcome-query':
        item = { txId: message.txId };
        bytes += message.txId.length;
        break;
      case 'enlist-result': {
        const text = message.error?.message ?? '';
        item = { requestId: message.requestId, code: message.error ? grpcStatusFor(message.error.code) : 0, message: text };
        bytes += Buffer.byteLength(text);
        break;
      }
    }
    session.out.add(item, bytes);
    if (!this.#batching) session.out.flush();
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

  readonly #write = (s: Session, items: Outgoing[]): void => {
    if (s.closed) return;
    const frame: SessionResponse = { prepares: [], decisions: [], enlistResults: [], outcomeQueries: [] };
    for (const item of items) {
      if (isPrepare(item)) frame.prepares.push(item);
      else if (isDecision(item)) frame.decisions.push(item);
      else if (isEnlistResult(item)) frame.enlistResults.push(item);
      else frame.outcomeQueries.push(item);
    }
    this.stats.framesOut++;
    this.stats.messagesOut += items.length;
    s.call.write(frame);
    if (frame.prepares.length > 0) failpoint('coordinator.after-prepare-sent');
    if (items.some(isCommit)) {
      for (const other of this.#sessions.values()) {
        if (other !== s && other.out.pending.some(isCommit)) return failpoint('coordinator.between-commit-sends');
      }
    }
  };

  #register(call: SessionServerStream, frame: SessionRequest): Session | undefined {
    const name = frame.hello?.participant;
    if (name === undefined) {
      this.#refuse(call, undefined, ErrorCode.INVALID_ARGUMENT, 'the first frame of a session must carry hello');
      return undefined;
    }
    const problem = participantNameProblem(name);
    if (problem) {
      this.#refuse(call, undefined, ErrorCode.INVALID_ARGUMENT, problem);
      return undefined;
    }
    const refused = this.#helloProblem(call, name);
    if (refused) {
      this.#refuse(call, undefined, refused.code, refused.message);
      return undefined;
    }
    if (this.#sessions.has(name)) {
      this.#refuse(call, undefined, ErrorCode.ALREADY_CONNECTED, `participant ${name} already has a live session`);
      return undefined;
    }
    if (this.#sessions.size >= this.#maxSessions) {
      this.#refuse(call, undefined, ErrorCode.LIMIT_EXCEEDED, `the coordinator has ${this.#sessions.size} live sessions (limit ${this.#maxSessions})`);
      return undefined;
    }
    if (this.#knownNames.size >= this.#maxNames && !this.#knownNames.has(name)) {
      this.#refuse(
        call,
        undefined,
        ErrorCode.LIMIT_EXCEEDED,
        `the coordinator knows ${this.#knownNames.size} participant names (limit ${this.#maxNames}); a new name is refused until it restarts`,
      );
      return undefined;
    }
    const session = new Session(name, call, this.#maxFrameBytes, this.#clock, this.#write);
    this.#sessions.set(name, session);
    call.write({ welcome: { epoch: this.#epoch }, prepares: [], decisions: [], enlistResults: [], outcomeQueries: [] });
    this.#log.info({ participant: name, peer: call.getPeer() }, 'participant connected');
    this.#dispatch({ type: 'connected', participant: name });
    return session;
  }

  /** Validates a frame and dispatches its messages; returns a problem for a malformed frame. */
  #onFrame(session: Session, frame: SessionRequest): string | undefined {
    const messages: ParticipantMessage[] = [];
    for (const v of frame.votes) {
      let vote = voteFromWire(v.vote);
      if (!vote) return `vote ${v.vote} for ${v.txId} is not a valid vote`;
      if (vote === Vote.NO && mutant('no-vote-read-as-yes')) vote = Vote.YES;
      messages.push({ type: 'vote', txId: v.txId, vote, reason: v.reason.slice(0, 1024) });
    }
    for (const a of frame.acks) {
      const outcome = outcomeFromWire(a.outcome);
      if (!outcome) return `ack outcome ${a.outcome} for ${a.txId} is not a valid outcome`;
      messages.push({ type: 'ack', txId: a.txId, outcome });
    }
    for (const q of frame.inquiries) messages.push({ type: 'inquiry', txId: q.txId });
    for (const e of frame.enlists) {
      // No capability, no enlist: refused here, before the protocol sees it.
      if (!this.#verifyCapability(e.txId, e.capability)) {
        this.send(session.name, {
          type: 'enlist-result',
          requestId: e.requestId,
          error: { code: ErrorCode.PERMISSION_DENIED, message: `enlisting in ${e.txId} takes the capability Begin returned for it`, txId: e.txId },
        });
        continue;
      }
      messages.push({ type: 'enlist', requestId: e.requestId, txId: e.txId, payload: e.payload });
    }
    for (const m of messages) {
      // An enlist answers its own bad id; everything else must carry a well-formed one.
      const problem = m.type === 'enlist' ? undefined : txIdProblem(m.txId);
      if (problem) return `${m.type}: ${problem}`;
    }
    for (const message of messages) this.#dispatch({ type: 'message', from: session.name, message });
    return undefined;
  }

  /** Ends a session with the status of `code` and `verdict-code` metadata (see the proto). */
  #refuse(call: SessionServerStream, session: Session | undefined, code: ErrorCode, details: string): void {
    this.stats.refused++;
    this.#log.warn({ participant: session?.name, code, details }, 'participant session refused');
    call.emit('error', toStatus({ code, message: details }));
    if (session) this.#close(session);
  }

  #close(session: Session): void {
    if (session.closed) return;
    session.closed = true;
    session.out.clear();
    if (this.#sessions.get(session.name) === session) {
      this.#sessions.delete(session.name);
      this.#log.info({ participant: session.name }, 'participant disconnected');
      this.#dispatch({ type: 'disconnected', participant: session.name });
    }
  }
}
