/**
 * Fault-injection testing of your own participants (`verdict/testing`).
 *
 * ```ts
 * import { runChaos, assertNoViolations } from 'verdict/testing';
 *
 * const report = await runChaos({
 *   participants: [{ name: 'orders', createHooks: ({ store }) => ordersHooks(store) }, { name: 'stock', createHooks: ... }],
 *   invariant: async ({ stores, history }) => [],   // return what is wrong
 *   duration: 5_000,
 *   seed: 42,
 * });
 * assertNoViolations(report);
 *
 * // The same against a coordinator group on a throwaway etcd, its leader killed and paused:
 * await runChaos({ participants, group: true, faults: ['leader-kill', 'leader-pause', 'kill', 'delay'] });
 * // … with every member serving mutual TLS (report.group.tls says how each one served it):
 * await runChaos({ participants, group: true, tls: true });
 * ```
 *
 * @module
 */

export { assertNoViolations, runChaos } from './harness.js';
export {
  HARNESS_PARTICIPANT_FAILPOINTS,
  type ChaosParticipant,
  type ChaosRandom,
  type HistoryTx,
  type HookFactoryContext,
  type InvariantContext,
  type ParticipantStartContext,
  type StartedParticipant,
  type RunChaosOptions,
  type TransactionContext,
} from './harness-options.js';
export { ALL_FAULT_KINDS, FAULT_KINDS, GROUP_FAULT_KINDS, type FaultKind } from '../faults/chaos-schedule.js';
export { VIOLATION_KINDS, formatChaosReport, type ChaosGroupReport, type ChaosReport, type MemberTlsReport, type Violation, type ViolationKind } from '../faults/chaos-report.js';
export { FAILPOINTS, armFailpoint, disarmFailpoint, type FailpointAction, type FailpointName } from '../common/failpoints.js';
export { FaultProxy, type LinkMode, type ProxyDirection } from '../faults/fault-proxy.js';
