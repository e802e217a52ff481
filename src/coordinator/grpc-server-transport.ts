// The coordinator's production transport: one grpc-js server carrying the participant sessions
// and the initiators' TransactionService.

import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { CoordinatorHandlers, ServerTransport } from '../common/transport.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { ParticipantServiceService } from '../gen/verdict/v1/participant.js';
import { TransactionServiceService } from '../gen/verdict/v1/transaction.js';

/** Serves a coordinator over gRPC on `listen` (`host:port`; port 0 picks a free one). */
export class GrpcServerTransport implements ServerTransport {
  readonly #listen: string;
  readonly #server: Server;
  readonly #credentials: ServerCredentials;

  /** `credentials`: TLS (see src/common/tls.ts) or, by default, plaintext. */
  constructor(listen: string, serverOptions: Record<string, number>, credentials: ServerCredentials = ServerCredentials.createInsecure()) {
    this.#listen = listen;
    this.#credentials = credentials;
    this.#server = new Server(serverOptions);
  }

  serve(handlers: CoordinatorHandlers): Promise<string> {
    this.#server.addService(TransactionServiceService, {
      begin: handlers.begin,
      commit: handlers.commit,
      abort: handlers.abort,
      getTransaction: handlers.getTransaction,
      reserveTxIds: handlers.reserveTxIds,
      commitStream: handlers.commitStream,
    });
    this.#server.addService(ParticipantServiceService, { session: handlers.session });
    const listen = this.#listen;
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(listen, this.#credentials, (e, port) => {
        if (e) return reject(new VerdictError(ErrorCode.UNAVAILABLE, `cannot listen on ${listen}: ${e.message}`, { cause: e }));
        const host = listen.slice(0, listen.lastIndexOf(':'));
        resolve(`${host}:${port}`);
      });
    });
  }

  close(graceMs: number): Promise<void> {
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
}
