// The transport of a coordinator group member: one grpc-js server, bound for the member's whole
// life, that serves a coordinator only while this member leads. Every other call (every unary
// call, every new participant session or commit stream) is answered UNAVAILABLE with metadata
// `verdict-code: NOT_LEADER` and `verdict-leader: host:port` (the leader's advertised address,
// omitted when none is known), so clients move to the leader. The coordinator of each term plugs
// its handlers in with `serve` and takes them out with `close`; the port stays bound.

import { Metadata, Server, ServerCredentials, status as Status, type ServerDuplexStream, type StatusObject } from '@grpc/grpc-js';
import type { CoordinatorHandlers, ServerTransport } from '../common/transport.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { ParticipantServiceService } from '../gen/verdict/v1/participant.js';
import { TransactionServiceService } from '../gen/verdict/v1/transaction.js';

/** Metadata key naming the leader's `host:port` on a NOT_LEADER answer. */
export const LEADER_METADATA_KEY = 'verdict-leader';
const CODE_METADATA_KEY = 'verdict-code';

/** What the gate asks before letting a call through. */
export interface LeaderGate {
  /** Whether this member leads now. */
  isLeader(): boolean;
  /** The leader's `host:port`, when known. */
  leaderAddress(): string | undefined;
}

type UnaryCall = Parameters<CoordinatorHandlers['begin']>[0];
type UnaryCallback = Parameters<CoordinatorHandlers['begin']>[1];

/** A gRPC server that serves the current term's coordinator, and NOT_LEADER otherwise. */
export class LeaderGatedTransport implements ServerTransport {
  readonly #listen: string;
  readonly #server: Server;
  readonly #credentials: ServerCredentials;
  readonly #gate: LeaderGate;
  #handlers: CoordinatorHandlers | undefined;
  #address = '';
  /** Calls answered NOT_LEADER. */
  notLeaderAnswers = 0;

  /** `listen`: `host:port` to bind; `gate`: the member's leadership. */
  constructor(listen: string, gate: LeaderGate, serverOptions: Record<string, number> = {}, credentials: ServerCredentials = ServerCredentials.createInsecure()) {
    this.#listen = listen;
    this.#gate = gate;
    this.#credentials = credentials;
    this.#server = new Server(serverOptions);
    const unary = (pick: (h: CoordinatorHandlers) => (call: UnaryCall, callback: UnaryCallback) => void) => (call: UnaryCall, callback: UnaryCallback) => {
      const h = this.#current();
      if (h) pick(h)(call, callback);
      else callback(this.#notLeader());
    };
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the two stream methods carry different messages
    type AnyStream = ServerDuplexStream<any, any>;
    const stream = (pick: (h: CoordinatorHandlers) => (s: AnyStream) => void) => (s: AnyStream) => {
      const h = this.#current();
      if (h) pick(h)(s);
      else s.emit('error', this.#notLeader());
    };
    /* eslint-disable @typescript-eslint/no-explicit-any -- one wrapper shape for every method; the types are checked where handlers are made */
    this.#server.addService(TransactionServiceService, {
      begin: unary((h) => h.begin as any),
      commit: unary((h) => h.commit as any),
      abort: unary((h) => h.abort as any),
      getTransaction: unary((h) => h.getTransaction as any),
      commitStream: stream((h) => h.commitStream as any),
    });
    this.#server.addService(ParticipantServiceService, { session: stream((h) => h.session as any) });
    /* eslint-enable @typescript-eslint/no-explicit-any */
  }

  /** Binds the port (before any election: followers answer NOT_LEADER); resolves to `host:port`. */
  bind(): Promise<string> {
    const listen = this.#listen;
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(listen, this.#credentials, (e, port) => {
        if (e) return reject(new VerdictError(ErrorCode.UNAVAILABLE, `cannot listen on ${listen}: ${e.message}`, { cause: e }));
        this.#address = `${listen.slice(0, listen.lastIndexOf(':'))}:${port}`;
        resolve(this.#address);
      });
    });
  }

  #current(): CoordinatorHandlers | undefined {
    const h = this.#handlers;
    return h && this.#gate.isLeader() ? h : undefined;
  }

  #notLeader(): Partial<StatusObject> {
    this.notLeaderAnswers++;
    const metadata = new Metadata();
    metadata.set(CODE_METADATA_KEY, ErrorCode.NOT_LEADER);
    const leader = this.#gate.leaderAddress();
    if (leader) metadata.set(LEADER_METADATA_KEY, leader);
    return { code: Status.UNAVAILABLE, details: leader ? `this coordinator does not lead its group; the leader is ${leader}` : 'this coordinator does not lead its group, and no leader is known now', metadata };
  }

  /** The term's coordinator starts being served (the port is already bound). */
  async serve(handlers: CoordinatorHandlers): Promise<string> {
    this.#handlers = handlers;
    return this.#address;
  }

  /** The term's coordinator stops being served; the port stays bound, answering NOT_LEADER. */
  async close(_graceMs: number): Promise<void> {
    this.#handlers = undefined;
  }

  /** Unbinds the port: calls get up to `graceMs` to finish, then are cut. */
  shutdown(graceMs: number): Promise<void> {
    this.#handlers = undefined;
    return new Promise<void>((resolve) => {
      const server = this.#server;
      let done = false;
      const force = (): void => {
        if (done) return;
        done = true;
        server.forceShutdown();
        resolve();
      };
      const timer = setTimeout(force, graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        if (!done) {
          done = true;
          resolve();
        }
      });
    });
  }
}
