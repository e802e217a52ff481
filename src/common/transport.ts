// The transport seam: what the coordinator and participant shells need from the network, and
// nothing more. Production passes gRPC (the server in src/coordinator/grpc-server-transport.ts,
// the session client in src/participant/grpc-session-transport.ts); the simulator passes in-memory
// streams with the same frame limits and only the failures a gRPC stream can have (connection
// loss, reset, delay, a stalled peer; never reordering or duplication within a stream).

import type { StatusObject } from '@grpc/grpc-js';
import type { SessionRequest, SessionResponse } from '../gen/verdict/v1/participant.js';
import type {
  AbortRequest,
  AbortResponse,
  BeginRequest,
  BeginResponse,
  CommitRequest,
  CommitResponse,
  CommitStreamRequest,
  CommitStreamResponse,
  GetTransactionRequest,
  GetTransactionResponse,
  ReserveTxIdsRequest,
  ReserveTxIdsResponse,
} from '../gen/verdict/v1/transaction.js';

/** The status a call or stream ends with: a gRPC status code, its details and metadata. */
export type CallStatus = Partial<StatusObject>;

/** A bidirectional stream as one end sees it (the subset of a gRPC duplex stream the shells use). */
export interface DuplexStream<In, Out> {
  write(message: Out): unknown;
  on(event: 'data', listener: (message: In) => void): unknown;
  on(event: 'end' | 'close' | 'cancelled', listener: () => void): unknown;
  on(event: 'error', listener: (error: { code?: number; details?: string; message?: string }) => void): unknown;
}

/**
 * What a server-side call tells about its caller (grpc-js calls have both; a simulated transport
 * may have neither, and then there is no authenticated identity).
 */
export interface CallerContext {
  /** The TLS peer certificate, when the connection is TLS and the client presented a valid one. */
  getAuthContext?(): { readonly sslPeerCertificate?: { readonly subjectaltname?: string } | undefined };
  /** Request metadata (the bearer token rides in `authorization`). */
  readonly metadata?: { get(key: string): ReadonlyArray<string | Buffer> };
}

/** The coordinator's end of one participant session. */
export interface SessionServerStream extends CallerContext, DuplexStream<SessionRequest, SessionResponse> {
  /** Ends the stream normally. */
  end(): void;
  /** Ends the stream with `status` (how a gRPC server handler fails a stream). */
  emit(event: 'error', status: CallStatus): unknown;
  /** The peer's address, for logs. */
  getPeer(): string;
}

/** A participant's end of its session. */
export interface SessionClientStream extends DuplexStream<SessionResponse, SessionRequest> {
  /** Drops the stream (the coordinator sees it cancelled). */
  cancel(): void;
}

/** One unary call as its handler sees it. */
export interface UnaryCall<Req> extends CallerContext {
  readonly request: Req;
  on(event: 'cancelled', listener: () => void): unknown;
  /** The client connection's address: per-client limits count by it. */
  getPeer?(): string;
}

/** Answers a unary call: an error status, or the response. */
export type UnaryCallback<Res> = (error: CallStatus | null, response?: Res) => void;

/** A unary handler. */
export type UnaryHandler<Req, Res> = (call: UnaryCall<Req>, callback: UnaryCallback<Res>) => void;

/** The stream of a CommitStream call, as its handler sees it. */
export interface CommitStreamServerStream extends CallerContext, DuplexStream<CommitStreamRequest, CommitStreamResponse> {
  end(): void;
  emit(event: 'error', status: CallStatus): unknown;
}

/** Everything a coordinator serves. */
export interface CoordinatorHandlers {
  readonly session: (stream: SessionServerStream) => void;
  readonly begin: UnaryHandler<BeginRequest, BeginResponse>;
  readonly commit: UnaryHandler<CommitRequest, CommitResponse>;
  readonly abort: UnaryHandler<AbortRequest, AbortResponse>;
  readonly getTransaction: UnaryHandler<GetTransactionRequest, GetTransactionResponse>;
  readonly reserveTxIds: UnaryHandler<ReserveTxIdsRequest, ReserveTxIdsResponse>;
  readonly commitStream: (stream: CommitStreamServerStream) => void;
}

/** The coordinator's side of the transport. */
export interface ServerTransport {
  /** Starts serving `handlers`; resolves to the address served (`host:port`). */
  serve(handlers: CoordinatorHandlers): Promise<string>;
  /** Stops serving: calls get up to `graceMs` to finish, then are cut. */
  close(graceMs: number): Promise<void>;
}

/** A participant's side of the transport. */
export interface ClientTransport {
  /** Opens a new session stream to the coordinator. */
  openSession(): SessionClientStream;
  /** The address sessions open to now (for messages); absent when the transport has none. */
  readonly target?: string;
  /**
   * Sends the next sessions to `leader` (named by a member of a coordinator group that does not
   * lead) or, without one, to the next address. Optional: a transport with one peer has nowhere
   * else to go.
   */
  redirect?(leader: string | undefined): void;
  /** Releases the transport (open streams should be cancelled first). */
  close(): void;
}
