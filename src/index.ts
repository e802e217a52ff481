/**
 * Verdict: a distributed transaction coordinator for Node.js.
 *
 * ```ts
 * import { Coordinator, Participant, VerdictClient } from 'verdict';
 *
 * const coordinator = await Coordinator.start({ listen: '127.0.0.1:7070', dataDir: './data/coordinator' });
 * const bank = await Participant.start({
 *   name: 'bank-a',
 *   coordinator: coordinator.address,
 *   dataDir: './data/bank-a',
 *   hooks: {
 *     prepare: (txId, payload, { batch }) => { batch.put(`hold/${txId}`, 5); return 'yes'; },
 *     commit: (txId, { batch }) => { batch.del(`hold/${txId}`); },
 *     abort: (txId, { batch }) => { batch.del(`hold/${txId}`); },
 *   },
 * });
 * const client = new VerdictClient(coordinator.address);
 * await client.transact([{ participant: 'bank-a', payload: '{"debit":5}' }]);
 * ```
 *
 * @module
 */

export { VerdictClient, type BegunTransaction, type CommitResult } from './client/client.js';
export type { BeginOptions, BranchInput, CommitOptions, TransactOptions, VerdictClientOptions } from './client/client-options.js';
export type { KeepaliveOptions, ReconnectOptions } from './common/connection-options.js';
export { Coordinator, type CoordinatorEvents, type CoordinatorState, type CoordinatorStats } from './coordinator/coordinator.js';
export { DEFAULT_COORDINATOR_DATA_DIR, DEFAULT_LISTEN, type CoordinatorOptions } from './coordinator/coordinator-options.js';
export type { DecisionStore, DecisionStoreStats, StoreOp, StoreRange } from './coordinator/decision-store.js';
export { CoordinatorGroupMember, type GroupMemberEvents, type GroupMemberState } from './cluster/coordinator-group-member.js';
export { DEFAULT_ETCD_PREFIX, DEFAULT_LEASE_TTL_S, type GroupMemberOptions } from './cluster/group-member-options.js';
export type { EtcdCredentials, EtcdTlsFiles } from './cluster/etcd-connection.js';
export { LEADER_KEY as LEADER_METADATA_KEY } from './common/grpc-errors.js';
export { ErrorCode, OutcomeUnknownError, TransactionAbortedError, VerdictError, type VerdictErrorOptions } from './errors.js';
export { Participant, type InDoubtTransaction, type ParticipantEvents, type ParticipantState } from './participant/participant.js';
export type {
  EnlistInvitation,
  HookContext,
  ParticipantHooks,
  ParticipantOptions,
  PrepareContext,
  PrepareResult,
  ReadyOptions,
  StagedWrites,
} from './participant/participant-options.js';
export type { ParticipantMetricsOptions } from './participant/participant-metrics.js';
export type { AppStore } from './participant/participant-log.js';
export {
  LOCK_CONFLICT_REASON,
  LockConflictError,
  LockMode,
  isLockConflictAbort,
  type HeldLock,
  type KeyHolders,
} from './participant/lock-manager.js';
export { TxState, type BranchView, type TxView } from './protocol/coordinator-events.js';
export { Outcome, Vote } from './protocol/types.js';
export type { ClientSecurityOptions, ClientTlsOptions, Pem, ServerTlsFiles } from './common/tls.js';
export type { CoordinatorSecurityOptions } from './coordinator/security-options.js';
export { IdentityRole, formatIdentity, parseIdentity, type Identity } from './common/identity.js';
