// The coordinator's production transport: one grpc-js server carrying the participant sessions,
// the initiators' TransactionService, the operators' AdminService, the standard gRPC health
// service and server reflection (so that grpcurl and health probes work).
//
// The port is bound first (`bind`), before the coordinator opens its log and bumps its epoch:
// an address in use changes nothing. Until `serve` installs the real handlers, every call is
// answered UNAVAILABLE and health reports NOT_SERVING; after it, SERVING; from close on,
// NOT_SERVING again.

import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as HEALTH_PROTO_PATH } from 'grpc-health-check';
import { toStatus } from '../common/grpc-errors.js';
import type { CoordinatorHandlers, ServerTransport } from '../common/transport.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { AdminServiceService } from '../gen/verdict/v1/admin.js';
import { ParticipantServiceService } from '../gen/verdict/v1/participant.js';
import { TransactionServiceService } from '../gen/verdict/v1/transaction.js';

/** The services health reports on, by full name ('' is the server as a whole). */
export const HEALTH_SERVICES = ['', 'verdict.v1.TransactionService', 'verdict.v1.ParticipantService', 'verdict.v1.AdminService'] as const;

/** Where the package's .proto files are (next to src/ and dist/ alike). */
const PROTO_ROOT = fileURLToPath(new URL('../../proto/', import.meta.url));
/** The protos reflection describes: the services served (the log's records are not served). */
const REFLECTED_PROTOS = ['verdict/v1/transaction.proto', 'verdict/v1/participant.proto', 'verdict/v1/admin.proto'];

/**
 * Adds the standard gRPC health service (every service NOT_SERVING until told otherwise) and
 * server reflection of Verdict's services to `server`; returns the health service to set.
 */
export function addHealthAndReflection(server: Server): HealthImplementation {
  const health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((s) => [s, 'NOT_SERVING' as const])));
  health.addToServer(server);
  new ReflectionService(loadSync([...REFLECTED_PROTOS, HEALTH_PROTO_PATH], { includeDirs: [PROTO_ROOT] })).addToServer(server);
  return health;
}

/** Sets every service of `health` to `status`. */
export function setHealth(health: HealthImplementation, status: 'SERVING' | 'NOT_SERVING'): void {
  for (const service of HEALTH_SERVICES) health.setStatus(service, status);
}

type Services = { readonly [name: string]: { readonly requestStream: boolean; readonly responseStream: boolean } };

/** Serves a coordinator over gRPC on `listen` (`host:port`; port 0 picks a free one). */
export class GrpcServerTransport implements ServerTransport {
  readonly #listen: string;
  readonly #server: Server;
  readonly #credentials: ServerCredentials;
  #health: HealthImplementation | undefined;
  #handlers: CoordinatorHandlers | undefined;
  #bound: Promise<string> | undefined;

  /** `credentials`: TLS (see src/common/tls.ts) or, by default, plaintext. */
  constructor(listen: string, serverOptions: Record<string, number>, credentials: ServerCredentials = ServerCredentials.createInsecure()) {
    this.#listen = listen;
    this.#credentials = credentials;
    this.#server = new Server(serverOptions);
  }

  bind(): Promise<string> {
    this.#bound ??= this.#bind();
    return this.#bound;
  }

  async serve(handlers: CoordinatorHandlers): Promise<string> {
    this.#handlers = handlers;
    const address = await this.bind();
    if (this.#health) setHealth(this.#health, 'SERVING');
    return address;
  }

  close(graceMs: number): Promise<void> {
    if (this.#health) setHealth(this.#health, 'NOT_SERVING');
    return new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      this.#server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  #bind(): Promise<string> {
    this.#server.addService(TransactionServiceService, this.#delegate(TransactionServiceService, (h) => h as unknown as Record<string, unknown>));
    this.#server.addService(ParticipantServiceService, this.#delegate(ParticipantServiceService, (h) => ({ session: h.session })));
    this.#server.addService(AdminServiceService, this.#delegate(AdminServiceService, (h) => (h.admin ?? {}) as Record<string, unknown>));
    this.#health = addHealthAndReflection(this.#server);
    const listen = this.#listen;
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(listen, this.#credentials, (e, port) => {
        if (e) return reject(new VerdictError(ErrorCode.UNAVAILABLE, `cannot listen on ${listen}: ${e.message}`, { cause: e }));
        const host = listen.slice(0, listen.lastIndexOf(':'));
        resolve(`${host}:${port}`);
      });
    });
  }

  /**
   * Handlers for `service` that pass each call to the one `pick` finds in the installed handlers,
   * or answer UNAVAILABLE while none are installed (the coordinator is recovering) or the
   * coordinator serves no such method.
   */
  #delegate(service: Services, pick: (handlers: CoordinatorHandlers) => Record<string, unknown>): UntypedServiceImplementation {
    const implementation: UntypedServiceImplementation = {};
    for (const [method, { requestStream }] of Object.entries(service)) {
      const target = (): ((...args: unknown[]) => void) | undefined => {
        const handlers = this.#handlers;
        const fn = handlers ? pick(handlers)[method] : undefined;
        return typeof fn === 'function' ? (fn as (...args: unknown[]) => void) : undefined;
      };
      const unavailable = () => toStatus({ code: ErrorCode.UNAVAILABLE, message: this.#handlers ? `${method} is not served here` : 'the coordinator is recovering its decision log: try again shortly' });
      implementation[method] = requestStream
        ? (call: ServerDuplexStream<unknown, unknown>) => {
            const fn = target();
            if (fn) fn(call);
            else call.emit('error', unavailable());
          }
        : (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
            const fn = target();
            if (fn) fn(call, callback);
            else callback(unavailable());
          };
    }
    return implementation;
  }
}
