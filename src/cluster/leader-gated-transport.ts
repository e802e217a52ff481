// The transport of a coordinator group member: one grpc-js server, bound for the member's whole
// life, that serves a coordinator only while this member leads. Every other call (every unary
// call, every new participant session or commit stream) is answered UNAVAILABLE with metadata
// `verdict-code: NOT_LEADER` and `verdict-leader: host:port` (the leader's advertised address,
// omitted when none is known), so clients move to the leader. The coordinator of each term plugs
// its handlers in with `serve` and takes them out with `close`; the port stays bound. The gRPC
// health service says SERVING only while a term's coordinator is served (a probe finds the
// leader), and reflection describes the services as on a single coordinator.
//
// A follower authenticates before it names the leader: it serves the same TLS credentials as the
// leader and, once callers must authenticate, applies every check a single coordinator makes
// without a transaction's state (the caller's identity; initiators and admins only on
// TransactionService; admins only on AdminService; a session's hello under the identity's own
// name) and answers a refusal instead of NOT_LEADER. Nobody learns the leader's address without a
// credential the leader would accept. Ownership and capabilities need the transaction, so the
// leader checks them. (Health and reflection stay open, as on a single coordinator: a probe may
// see NOT_SERVING here, never where the leader is.)

import { Server, ServerCredentials, status as Status, type ServerDuplexStream, type ServiceDefinition, type StatusObject, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { HealthImplementation } from 'grpc-health-check';
import { notLeaderStatus, toStatus } from '../common/grpc-errors.js';
import { addHealthAndReflection, setHealth } from '../coordinator/grpc-server-transport.js';
import type { CallerContext, CoordinatorHandlers, ServerTransport, SessionServerStream } from '../common/transport.js';
import type { Authorizer } from '../coordinator/authorization.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { AdminServiceService } from '../gen/verdict/v1/admin.js';
import { ParticipantServiceService, type SessionRequest } from '../gen/verdict/v1/participant.js';
import { TransactionServiceService } from '../gen/verdict/v1/transaction.js';
import type { ProtocolError } from '../protocol/types.js';

/** What the gate asks before letting a call through. */
export interface LeaderGate {
  /** Whether this member leads now. */
  isLeader(): boolean;
  /** The leader's `host:port`, when known. */
  leaderAddress(): string | undefined;
}

/** How a member's server is secured: what it serves, and who a follower lets learn the leader. */
export interface MemberServerSecurity {
  /** The server credentials (TLS, reloadable) or plaintext. */
  readonly credentials: ServerCredentials;
  /** The member's authorizer: a follower's checks before NOT_LEADER (none while authentication is off). */
  readonly authorizer?: Authorizer;
}

/** A check a follower makes before it answers NOT_LEADER: the refusal, or nothing. */
type FollowerCheck = (call: CallerContext) => ProtocolError | undefined;

function unimplemented(method: string): Partial<StatusObject> {
  return { code: Status.UNIMPLEMENTED, details: `the coordinator does not serve ${method}` };
}

/** A gRPC server that serves the current term's coordinator, and NOT_LEADER otherwise. */
export class LeaderGatedTransport implements ServerTransport {
  readonly #listen: string;
  readonly #server: Server;
  readonly #credentials: ServerCredentials;
  readonly #authorizer: Authorizer | undefined;
  readonly #gate: LeaderGate;
  readonly #health: HealthImplementation;
  #handlers: CoordinatorHandlers | undefined;
  #bound: Promise<string> | undefined;
  #address = '';
  /** Calls answered NOT_LEADER. */
  notLeaderAnswers = 0;

  /** `listen`: `host:port` to bind; `gate`: the member's leadership; `security`: default plaintext, no checks. */
  constructor(listen: string, gate: LeaderGate, serverOptions: Record<string, number> = {}, security: MemberServerSecurity = { credentials: ServerCredentials.createInsecure() }) {
    this.#listen = listen;
    this.#gate = gate;
    this.#credentials = security.credentials;
    this.#authorizer = security.authorizer?.required ? security.authorizer : undefined;
    this.#server = new Server(serverOptions);
    const authz = this.#authorizer;
    // Every method of the three services, taken from the service definitions: a method added to
    // the wire contract is gated here without anyone remembering to.
    this.#server.addService(TransactionServiceService, this.#gated(TransactionServiceService, (h) => h, authz && ((call) => authz.initiator(call).error)));
    this.#server.addService(ParticipantServiceService, this.#gated(ParticipantServiceService));
    this.#server.addService(AdminServiceService, this.#gated(AdminServiceService, (h) => h.admin, authz && ((call) => authz.adminProblem(call))));
    this.#health = addHealthAndReflection(this.#server);
  }

  /** Binds the port (before any election: followers answer NOT_LEADER); resolves to `host:port`. Idempotent. */
  bind(): Promise<string> {
    this.#bound ??= this.#bind();
    return this.#bound;
  }

  #bind(): Promise<string> {
    const listen = this.#listen;
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(listen, this.#credentials, (e, port) => {
        if (e) return reject(new VerdictError(ErrorCode.UNAVAILABLE, `cannot listen on ${listen}: ${e.message}`, { cause: e }));
        this.#address = `${listen.slice(0, listen.lastIndexOf(':'))}:${port}`;
        resolve(this.#address);
      });
    });
  }

  /**
   * For each method of `service`: the current term's handler of that name while leading, else
   * NOT_LEADER, after `check` (a follower's refusal comes first). A session stream is checked by
   * its hello (`#followerSession`).
   */
  #gated(service: ServiceDefinition, pick: (h: CoordinatorHandlers) => unknown = (h) => h, check?: FollowerCheck): UntypedServiceImplementation {
    const out: UntypedServiceImplementation = {};
    for (const [name, method] of Object.entries(service)) {
      const handler = (h: CoordinatorHandlers): ((...args: unknown[]) => void) | undefined => (pick(h) as Record<string, ((...args: unknown[]) => void) | undefined> | undefined)?.[name];
      const follower = (call: CallerContext): Partial<StatusObject> => {
        const refused = check?.(call);
        return refused ? toStatus(refused) : this.#notLeader();
      };
      out[name] = method.requestStream
        ? (stream: ServerDuplexStream<unknown, unknown>) => {
            const h = this.#current();
            const serve = h && handler(h);
            if (serve) serve(stream);
            else if (h) stream.emit('error', unimplemented(name));
            else if (service === ParticipantServiceService) this.#followerSession(stream as unknown as SessionServerStream);
            else stream.emit('error', follower(stream));
          }
        : (call: CallerContext, callback: (e: Partial<StatusObject>) => void) => {
            const h = this.#current();
            const serve = h && handler(h);
            if (serve) serve(call, callback);
            else callback(h ? unimplemented(name) : follower(call));
          };
    }
    return out;
  }

  /**
   * A session opened with a follower. Without authentication: NOT_LEADER at once. With it: an
   * unauthenticated caller is refused at once; an authenticated one is answered after its first
   * frame, refused when its hello names a participant its identity may not be (as the leader
   * would refuse it), NOT_LEADER otherwise.
   */
  #followerSession(stream: SessionServerStream): void {
    const authz = this.#authorizer;
    if (!authz) return void stream.emit('error', this.#notLeader());
    const who = authz.identify(stream);
    if (who.error) return void stream.emit('error', toStatus(who.error));
    let answered = false;
    const answer = (refused: ProtocolError | undefined): void => {
      if (answered) return;
      answered = true;
      stream.emit('error', refused ? toStatus(refused) : this.#notLeader());
    };
    stream.on('data', (frame: SessionRequest) => {
      const name = frame.hello?.participant;
      answer(name === undefined ? undefined : authz.helloProblem(stream, name));
    });
    stream.on('end', () => answer(undefined));
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
    setHealth(this.#health, 'SERVING');
    return this.#address;
  }

  /** The term's coordinator stops being served; the port stays bound, answering NOT_LEADER. */
  async close(_graceMs: number): Promise<void> {
    this.#handlers = undefined;
    setHealth(this.#health, 'NOT_SERVING');
  }

  /** Unbinds the port: calls get up to `graceMs` to finish, then are cut. */
  shutdown(graceMs: number): Promise<void> {
    this.#handlers = undefined;
    setHealth(this.#health, 'NOT_SERVING');
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
