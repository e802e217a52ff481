// The only place where Verdict error codes meet gRPC status codes. Servers attach the code, tx id
// and reason as metadata, so clients rebuild the exact typed error rather than guess from a status.

import { Metadata, status as Status, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { ErrorCode, verdictError, VerdictError } from '../errors.js';
import type { CallError } from '../gen/verdict/v1/transaction.js';
import { txIdProblem } from '../protocol/ids.js';
import type { ProtocolError } from '../protocol/types.js';

const STATUS_FOR: Record<ErrorCode, Status> = {
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  TX_NOT_FOUND: Status.NOT_FOUND,
  TX_ABORTED: Status.ABORTED,
  WRONG_STATE: Status.FAILED_PRECONDITION,
  OUTCOME_UNKNOWN: Status.DEADLINE_EXCEEDED,
  LIMIT_EXCEEDED: Status.RESOURCE_EXHAUSTED,
  UNAVAILABLE: Status.UNAVAILABLE,
  ALREADY_CONNECTED: Status.ALREADY_EXISTS,
  LOCK_CONFLICT: Status.ABORTED,
  DATA_DIR_LOCKED: Status.FAILED_PRECONDITION,
  LOG_CORRUPT: Status.INTERNAL,
  INTERNAL: Status.INTERNAL,
  UNAUTHENTICATED: Status.UNAUTHENTICATED,
  PERMISSION_DENIED: Status.PERMISSION_DENIED,
  NOT_LEADER: Status.UNAVAILABLE,
};

const CODE_KEY = 'verdict-code';
const TX_KEY = 'verdict-tx-id';
const REASON_KEY = 'verdict-reason-bin';
/** Metadata key of a NOT_LEADER answer naming the leader (`host:port`); absent when none is known. */
export const LEADER_KEY = 'verdict-leader';
const HOST_PORT = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):[1-9][0-9]{0,4}$/;

/**
 * Whether a failed call is a NOT_LEADER refusal: `{ leader }` (the leader's `host:port` when the
 * member named a well-formed one), or undefined for any other failure.
 */
export function notLeader(e: { readonly code?: number; readonly metadata?: Metadata | undefined }): { readonly leader: string | undefined } | undefined {
  if (e.code !== Status.UNAVAILABLE || e.metadata?.get(CODE_KEY)[0] !== ErrorCode.NOT_LEADER) return undefined;
  const raw = e.metadata.get(LEADER_KEY)[0];
  const leader = typeof raw === 'string' && HOST_PORT.test(raw) && Number(raw.slice(raw.lastIndexOf(':') + 1)) <= 65_535 ? raw : undefined;
  return { leader };
}

/** The status a member that does not lead answers with (`leader`: the leader's `host:port`, if known). */
export function notLeaderStatus(leader?: string): Partial<StatusObject> {
  const metadata = new Metadata();
  metadata.set(CODE_KEY, ErrorCode.NOT_LEADER);
  if (leader !== undefined) metadata.set(LEADER_KEY, leader);
  return { code: Status.UNAVAILABLE, details: leader ? `this coordinator does not lead; the leader is ${leader}` : 'this coordinator does not lead, and knows no leader', metadata };
}

/** The gRPC status an error code is reported with. */
export function grpcStatusFor(code: ErrorCode): Status {
  return STATUS_FOR[code];
}

/**
 * Turns a protocol error into a status object for a gRPC callback or `call.emit('error')`. The tx
 * id goes into ASCII metadata only when it is well-formed: an id taken from hostile input (a NUL,
 * a newline) would make grpc-js throw while answering the call.
 */
export function toStatus(error: ProtocolError | VerdictError): Partial<StatusObject> {
  const metadata = new Metadata();
  metadata.set(CODE_KEY, error.code);
  if (error.txId && txIdProblem(error.txId) === undefined) metadata.set(TX_KEY, error.txId);
  if (error.reason) metadata.set(REASON_KEY, Buffer.from(error.reason, 'utf8'));
  return { code: STATUS_FOR[error.code], details: error.message, metadata };
}

/** Turns an error into the CallError that answers one call on a stream (what a unary status would carry). */
export function toCallError(error: ProtocolError | VerdictError): CallError {
  return { grpcStatus: STATUS_FOR[error.code], message: error.message, code: error.code, txId: error.txId ?? '', reason: error.reason ?? '' };
}

/** Rebuilds the typed error from a CallError; an unknown code becomes INTERNAL, never a guess. */
export function fromCallError(e: CallError, context: { txId?: string } = {}): VerdictError {
  const txId = e.txId || context.txId;
  const options = { ...(txId ? { txId } : {}), ...(e.reason ? { reason: e.reason } : {}) };
  if (e.code in STATUS_FOR) return verdictError(e.code as ErrorCode, e.message, options);
  return verdictError(ErrorCode.INTERNAL, `the coordinator answered with unknown error code ${JSON.stringify(e.code)}: ${e.message}`, options);
}

/** Rebuilds the typed error from a failed call; `outcomeUnknown` makes transport failures honest. */
export function fromServiceError(e: ServiceError, context: { txId?: string; outcomeUnknown?: boolean } = {}): VerdictError {
  const meta = e.metadata;
  const code = meta?.get(CODE_KEY)[0];
  const txId = meta?.get(TX_KEY)[0]?.toString() ?? context.txId;
  const reasonRaw = meta?.get(REASON_KEY)[0];
  const reason = reasonRaw === undefined ? undefined : Buffer.isBuffer(reasonRaw) ? reasonRaw.toString('utf8') : reasonRaw;
  const options = { cause: e, ...(txId ? { txId } : {}), ...(reason ? { reason } : {}) };
  if (typeof code === 'string' && code in STATUS_FOR) return verdictError(code as ErrorCode, e.details || e.message, options);
  switch (e.code) {
    case Status.UNAVAILABLE:
    case Status.DEADLINE_EXCEEDED:
    case Status.CANCELLED:
      if (context.outcomeUnknown) {
        return verdictError(ErrorCode.OUTCOME_UNKNOWN, `the outcome is unknown (${e.details || e.message}); ask again with get()`, options);
      }
      return verdictError(ErrorCode.UNAVAILABLE, `the coordinator is unavailable: ${e.details || e.message}`, options);
    case Status.INVALID_ARGUMENT:
      return verdictError(ErrorCode.INVALID_ARGUMENT, e.details, options);
    case Status.RESOURCE_EXHAUSTED:
      return verdictError(ErrorCode.LIMIT_EXCEEDED, e.details, options);
    case Status.UNAUTHENTICATED:
      return verdictError(ErrorCode.UNAUTHENTICATED, e.details, options);
    case Status.PERMISSION_DENIED:
      return verdictError(ErrorCode.PERMISSION_DENIED, e.details, options);
    default:
      return verdictError(ErrorCode.INTERNAL, e.details || e.message, options);
  }
}
