// The transport of a coordinator group member: one grpc-js server, bound for the member's whole
// life, that serves a coordinator only while this member leads. Every other call (every unary
// call, every new participant session or commit stream) is answered UNAVAILABLE with metadata
// `verdict-code: NOT_LEADER` and `verdict-leader: host:port` (the leader's advertised address,
// omitted when none is known), so clients move to the leader. The coordinator of each term plugs
// its handlers in with `serve` and takes them out with `close`; the port stays bound.

import { Server, ServerCredentials, status as Status, type ServerDuplexStream, type ServiceDefinition, type StatusObject, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { notLeaderStatus } from '../common/grpc-errors.js';
import type { CoordinatorHandlers, ServerTransport } from '../common/transport.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { ParticipantServiceService } from '../gen/verdict/v1/participant.js';
import { TransactionServiceService } from '../gen/verdict/v1/transaction.js';


/** What the gate asks before letting a call through. */
export interface LeaderGate {
  /** Whether this member leads now. */
  isLeader(): boolean;
  /** The leader's `host:port`, when known. */
  leaderAddress(): string | undefined;
}

function unimplemented(method: string): Partial<StatusObject> {
  return { code: Status.UNIMPLEMENTED, details: `the coordinator does not serve ${method}` };
}

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
    // Every method of both services, taken from the service definitions: a method added to the
    // wire contract is gated here without anyone remembering to.
    this.#server.addService(TransactionServiceService, this.#gated(TransactionServiceService));
    this.#server.addService(ParticipantServiceService, this.#gated(ParticipantServiceService));
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

  /** For each method of `service`: the current term's handler of that name while leading, else NOT_LEADER. */
  #gated(service: ServiceDefinition): UntypedServiceImplementation {
    const out: UntypedServiceImplementation = {};
    for (const [name, method] of Object.entries(service)) {
      const handler = (h: CoordinatorHandlers): ((...args: unknown[]) => void) | undefined => (h as unknown as Record<string, ((...args: unknown[]) => void) | undefined>)[name];
      out[name] = method.requestStream
        ? (stream: ServerDuplexStream<unknown, unknown>) => {
            const h = this.#current();
            const serve = h && handler(h);
            if (serve) serve(stream);
            else stream.emit('error', h ? unimplemented(name) : this.#notLeader());
          }
        : (call: unknown, callback: (e: Partial<StatusObject>) => void) => {
            const h = this.#current();
            const serve = h && handler(h);
            if (serve) serve(call, callback);
            else callback(h ? unimplemented(name) : this.#notLeader());
          };
    }
    return out;
  }

  #current(): CoordinatorHandlers | undefined {
    const h = this.#handlers;
    return h && this.#gate.isLeader() ? h : undefined;
  }

  #notLeader(): Partial<StatusObject> {
    this.notLeaderAnswers++;
    return notLeaderStatus(this.#gate.leaderAddress());
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
