// The transport's own ceiling: an echo "coordinator" and echo participants speaking the real wire
// contract (same generated services and messages, same server options, same per-turn frame
// batching) with no state machine and no log. Commit sends one prepare per branch over the
// branch's session, waits for every vote, sends every decision, waits for every ack, then
// answers. A single branch is one-phase, as in the protocol: prepare and vote only. Whatever
// Verdict does beyond this is the price of its protocol, logging and bookkeeping.

import {
  credentials,
  Server,
  ServerCredentials,
  status as Status,
  type ClientDuplexStream,
  type sendUnaryData,
  type ServerDuplexStream,
  type ServerUnaryCall,
} from '@grpc/grpc-js';
import { COMMON_CHANNEL_OPTIONS } from '../common/channel-options.js';
import { systemClock } from '../common/clock.js';
import { coordinatorServerOptions, DEFAULT_MAX_MESSAGE_BYTES } from '../coordinator/coordinator-options.js';
import { Outcome as WireOutcome, Vote as WireVote } from '../gen/verdict/v1/common.js';
import {
  ParticipantServiceClient,
  ParticipantServiceService,
  type SessionRequest,
  type SessionResponse,
} from '../gen/verdict/v1/participant.js';
import {
  TransactionServiceService,
  type CommitRequest,
  type CommitResponse,
  type ReserveTxIdsRequest,
  type ReserveTxIdsResponse,
} from '../gen/verdict/v1/transaction.js';
import { CommitStreams } from '../coordinator/commit-streams.js';
import { ErrorCode } from '../errors.js';
import type { CoordinatorReply } from '../protocol/coordinator-events.js';
import { pino } from 'pino';

/** Deadline an echo prepare carries (the participant ignores it; it only fills the field). */
const ECHO_TX_TIMEOUT_MS = 10_000;
/** The echo coordinator's tx ids look like real ones (epoch 1), so frames have the same size. */
const ECHO_EPOCH = 1;
/** How long reserved ids stay usable, as the coordinator's default. */
const ECHO_RESERVATION_TTL_MS = 60_000;

type SessionCall = ServerDuplexStream<SessionRequest, SessionResponse>;

const noop = (): void => undefined;

interface EchoSession {
  readonly name: string;
  readonly call: SessionCall;
  frame: SessionResponse | undefined;
}

interface EchoTx {
  readonly id: string;
  readonly sessions: readonly EchoSession[];
  /** Votes (then acks) still awaited. */
  remaining: number;
  phase: 'prepare' | 'decide';
  readonly answer: (reply: CoordinatorReply) => void;
}

/** Counters of the echo coordinator. */
export interface EchoStats {
  committed: number;
  framesOut: number;
  messagesOut: number;
}

/** The echo coordinator: a gRPC server with Commit and Session, and nothing behind them. */
export class EchoCoordinator {
  readonly #server: Server;
  readonly #sessions = new Map<string, EchoSession>();
  /** The coordinator's own CommitStream handler, in front of the echo. */
  readonly #commitStreams = new CommitStreams((request, answer) => this.#start(request, answer), pino({ level: 'silent' }), DEFAULT_MAX_MESSAGE_BYTES, systemClock);
  readonly #txs = new Map<string, EchoTx>();
  readonly #dirty = new Set<EchoSession>();
  #flushScheduled = false;
  #seq = 0;
  #address = '';
  readonly stats: EchoStats = { committed: 0, framesOut: 0, messagesOut: 0 };

  private constructor() {
    // The real coordinator's server options, so that HTTP/2 behaves the same.
    this.#server = new Server(coordinatorServerOptions());
    const unimplemented = (_call: unknown, callback: sendUnaryData<never>): void => {
      callback({ code: Status.UNIMPLEMENTED, details: 'the echo coordinator only implements Commit' });
    };
    this.#server.addService(TransactionServiceService, {
      begin: unimplemented,
      commit: this.#commit,
      abort: unimplemented,
      getTransaction: unimplemented,
      commitStream: this.#commitStreams.handle,
      reserveTxIds: this.#reserveTxIds,
    });
    this.#server.addService(ParticipantServiceService, { session: this.#session });
  }

  /** Starts serving on `listen` (port 0 picks a free one). */
  static async start(listen = '127.0.0.1:0'): Promise<EchoCoordinator> {
    const echo = new EchoCoordinator();
    echo.#address = await new Promise<string>((resolve, reject) => {
      echo.#server.bindAsync(listen, ServerCredentials.createInsecure(), (e, port) => {
        if (e) return reject(e);
        resolve(`${listen.slice(0, listen.lastIndexOf(':'))}:${port}`);
      });
    });
    return echo;
  }

  /** The bound `host:port`. */
  get address(): string {
    return this.#address;
  }

  /** Stops serving. */
  close(): Promise<void> {
    for (const s of this.#sessions.values()) s.call.end();
    this.#sessions.clear();
    return new Promise((resolve) => this.#server.tryShutdown(() => resolve()));
  }

  /** Hands out ids as the coordinator does (the client names one-shot transactions with them). */
  readonly #reserveTxIds = (call: ServerUnaryCall<ReserveTxIdsRequest, ReserveTxIdsResponse>, callback: sendUnaryData<ReserveTxIdsResponse>): void => {
    const count = Math.min(Math.max(call.request.count, 1), 1024);
    const firstSeq = this.#seq + 1;
    this.#seq += count;
    callback(null, { epoch: ECHO_EPOCH, firstSeq, count, ttlMs: ECHO_RESERVATION_TTL_MS });
  };

  readonly #commit = (call: ServerUnaryCall<CommitRequest, CommitResponse>, callback: sendUnaryData<CommitResponse>): void => {
    this.#start(call.request, (reply) => {
      if (reply.type === 'committed') callback(null, { txId: reply.txId, outcome: WireOutcome.OUTCOME_COMMITTED });
      else callback({ code: Status.NOT_FOUND, details: reply.type === 'error' ? reply.error.message : reply.type });
    });
  };

  /** One echo commit, for the unary call and for CommitStream alike. */
  #start(request: CommitRequest, answer: (reply: CoordinatorReply) => void): () => void {
    const branches = request.branches;
    const sessions: EchoSession[] = [];
    for (const b of branches) {
      const s = this.#sessions.get(b.participant);
      if (!s) {
        answer({ type: 'error', error: { code: ErrorCode.UNAVAILABLE, message: `participant ${b.participant} is not connected` } });
        return noop;
      }
      sessions.push(s);
    }
    if (sessions.length === 0) {
      answer({ type: 'error', error: { code: ErrorCode.INVALID_ARGUMENT, message: 'no branches' } });
      return noop;
    }
    const tx: EchoTx = { id: request.txId || `tx-${ECHO_EPOCH}-${++this.#seq}`, sessions, remaining: sessions.length, phase: 'prepare', answer };
    this.#txs.set(tx.id, tx);
    const deadlineUnixMs = Date.now() + ECHO_TX_TIMEOUT_MS;
    const onePhase = sessions.length === 1;
    for (const [i, s] of sessions.entries()) {
      this.#frameOf(s).prepares.push({ txId: tx.id, payload: branches[i]?.payload ?? Buffer.alloc(0), deadlineUnixMs, onePhase });
    }
    return noop;
  }

  readonly #session = (call: SessionCall): void => {
    let session: EchoSession | undefined;
    call.on('data', (frame: SessionRequest) => {
      if (!session) {
        const name = frame.hello?.participant ?? '';
        session = { name, call, frame: undefined };
        this.#sessions.set(name, session);
        call.write({ welcome: { epoch: ECHO_EPOCH }, prepares: [], decisions: [], enlistResults: [], outcomeQueries: [] });
      }
      for (const v of frame.votes) this.#onAnswer(v.txId, 'prepare');
      for (const a of frame.acks) this.#onAnswer(a.txId, 'decide');
    });
    const gone = (): void => {
      if (session && this.#sessions.get(session.name) === session) this.#sessions.delete(session.name);
    };
    call.on('end', () => {
      gone();
      call.end();
    });
    call.on('error', gone);
    call.on('cancelled', gone);
  };

  #onAnswer(txId: string, phase: EchoTx['phase']): void {
    const tx = this.#txs.get(txId);
    if (!tx || tx.phase !== phase || --tx.remaining > 0) return;
    if (phase === 'prepare' && tx.sessions.length > 1) {
      tx.phase = 'decide';
      tx.remaining = tx.sessions.length;
      for (const s of tx.sessions) this.#frameOf(s).decisions.push({ txId, outcome: WireOutcome.OUTCOME_COMMITTED });
      return;
    }
    this.#txs.delete(txId);
    this.stats.committed++;
    tx.answer({ type: 'committed', txId });
  }

  /** The frame queued for `s`, flushed with every other one at the end of this turn. */
  #frameOf(s: EchoSession): SessionResponse {
    this.#dirty.add(s);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
    return (s.frame ??= { prepares: [], decisions: [], enlistResults: [], outcomeQueries: [] });
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    for (const s of this.#dirty) {
      const frame = s.frame;
      s.frame = undefined;
      if (!frame) continue;
      this.stats.framesOut++;
      this.stats.messagesOut += frame.prepares.length + frame.decisions.length;
      s.call.write(frame);
    }
    this.#dirty.clear();
  };
}

/** An echo participant: votes YES to every prepare and acks every decision, batched per turn. */
export class EchoParticipant {
  readonly #client: ParticipantServiceClient;
  readonly #call: ClientDuplexStream<SessionRequest, SessionResponse>;
  readonly #welcomed: Promise<void>;
  #frame: SessionRequest | undefined;

  private constructor(name: string, coordinator: string) {
    this.#client = new ParticipantServiceClient(coordinator, credentials.createInsecure(), COMMON_CHANNEL_OPTIONS);
    this.#call = this.#client.session();
    this.#welcomed = new Promise((resolve, reject) => {
      // Also the listener of the CANCELLED error that close() causes: a rejection after the
      // welcome changes nothing.
      this.#call.on('error', reject);
      this.#call.on('data', (frame: SessionResponse) => {
        if (frame.welcome) resolve();
        for (const p of frame.prepares) this.#queue().votes.push({ txId: p.txId, vote: WireVote.VOTE_YES, reason: '' });
        for (const d of frame.decisions) this.#queue().acks.push({ txId: d.txId, outcome: d.outcome });
      });
    });
    this.#call.write({ hello: { participant: name }, votes: [], acks: [], inquiries: [], enlists: [] });
  }

  /** Connects to `coordinator` as `name`; resolves once welcomed. */
  static async start(name: string, coordinator: string): Promise<EchoParticipant> {
    const p = new EchoParticipant(name, coordinator);
    await p.#welcomed;
    return p;
  }

  /** Ends the session. */
  close(): void {
    this.#call.cancel();
    this.#client.close();
  }

  #queue(): SessionRequest {
    if (!this.#frame) {
      this.#frame = { votes: [], acks: [], inquiries: [], enlists: [] };
      setImmediate(this.#flush);
    }
    return this.#frame;
  }

  readonly #flush = (): void => {
    const frame = this.#frame;
    this.#frame = undefined;
    if (frame) this.#call.write(frame);
  };
}
