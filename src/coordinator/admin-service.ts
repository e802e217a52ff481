// The coordinator's AdminService: read-only views for operators (one transaction, the live ones,
// the participant sessions). Admin identities only once callers authenticate; every refusal and
// every malformed request is answered before anything is read.

import type { AdminHandlers, UnaryCall, UnaryHandler } from '../common/transport.js';
import { toStatus } from '../common/grpc-errors.js';
import { viewToWire } from '../common/wire.js';
import { ErrorCode } from '../errors.js';
import { TransactionFilter } from '../gen/verdict/v1/admin.js';
import type { GetTransactionRequest, GetTransactionResponse } from '../gen/verdict/v1/transaction.js';
import type { TxView } from '../protocol/coordinator-events.js';
import { participantNameProblem } from '../protocol/ids.js';
import type { Authorizer } from './authorization.js';
import { isInDoubt } from './tx-filters.js';
import type { SessionInfo } from './participant-sessions.js';

/** The most transactions one ListTransactions answers. */
export const MAX_LIST_LIMIT = 10_000;
/** What a limit of 0 means. */
export const DEFAULT_LIST_LIMIT = 100;

/** What the admin service reads from the coordinator. */
export interface AdminSource {
  readonly authorizer: Authorizer;
  /** Live transactions, oldest id first. */
  transactions(): TxView[];
  sessions(): SessionInfo[];
  /** TransactionService.GetTransaction (it reads ended and presumed transactions through the protocol). */
  readonly getTransaction: UnaryHandler<GetTransactionRequest, GetTransactionResponse>;
}

/** Whether a live transaction still waits on `participant`: it has a branch there not acknowledged. */
function inFlightAt(view: TxView, participant: string): boolean {
  return view.branches.some((b) => b.participant === participant && !b.acknowledged);
}

/** Builds the AdminService handlers over `source`. */
export function adminHandlers(source: AdminSource): AdminHandlers {
  /** The refusal of a caller that is not an admin (none while authentication is off). */
  const refusal = (call: Parameters<UnaryHandler<unknown, unknown>>[0]): ReturnType<typeof toStatus> | undefined => {
    const problem = source.authorizer.adminProblem(call);
    return problem && toStatus(problem);
  };
  return {
    inspectTransaction: (call, callback) => {
      const refused = refusal(call);
      if (refused) return callback(refused);
      // The same call under GetTransaction's request type: cancellation, peer and identity carry over.
      const asGet: UnaryCall<GetTransactionRequest> = {
        request: { txId: call.request.txId },
        on: (event, listener) => call.on(event, listener),
        getPeer: () => call.getPeer?.() ?? 'unknown',
        getAuthContext: () => call.getAuthContext?.() ?? {},
        ...(call.metadata ? { metadata: call.metadata } : {}),
      };
      source.getTransaction(asGet, (error, response) => (error ? callback(error) : callback(null, { transaction: response?.transaction })));
    },
    listTransactions: (call, callback) => {
      const refused = refusal(call);
      if (refused) return callback(refused);
      const { filter, participant, limit } = call.request;
      const bad = (message: string): void => callback(toStatus({ code: ErrorCode.INVALID_ARGUMENT, message }));
      if (limit > MAX_LIST_LIMIT) return bad(`limit ${limit} is over ${MAX_LIST_LIMIT}`);
      if (participant !== '') {
        const problem = participantNameProblem(participant);
        if (problem) return bad(problem);
      }
      let keep: (view: TxView) => boolean;
      switch (filter) {
        case TransactionFilter.TRANSACTION_FILTER_UNSPECIFIED:
        case TransactionFilter.TRANSACTION_FILTER_OPEN:
          keep = () => true;
          break;
        case TransactionFilter.TRANSACTION_FILTER_IN_DOUBT:
          keep = isInDoubt;
          break;
        case TransactionFilter.TRANSACTION_FILTER_NEEDS_ATTENTION:
          keep = (v) => v.needsAttention;
          break;
        default:
          return bad(`filter ${String(filter)} is not a known TransactionFilter`);
      }
      const matched = source.transactions().filter((v) => keep(v) && (participant === '' || v.branches.some((b) => b.participant === participant)));
      callback(null, { transactions: matched.slice(0, limit || DEFAULT_LIST_LIMIT).map(viewToWire), matched: matched.length });
    },
    listParticipants: (call, callback) => {
      const refused = refusal(call);
      if (refused) return callback(refused);
      const live = source.transactions();
      callback(null, {
        participants: source.sessions().map((s) => ({
          participant: s.participant,
          peer: s.peer,
          connectedSinceUnixMs: s.connectedAt,
          transactionsInFlight: live.filter((v) => inFlightAt(v, s.participant)).length,
        })),
      });
    },
  };
}
