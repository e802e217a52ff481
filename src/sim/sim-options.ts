// Tunables of the simulated world. Protocol timings are scaled down from production (milliseconds
// instead of seconds) so that one run covers many retries and recoveries in little simulated time;
// their ratios follow production (keepalive > retry, inquiry interval > network delay...).

import { DEFAULT_COORDINATOR_MACHINE_CONFIG, type CoordinatorMachineConfig } from '../protocol/coordinator-machine.js';
import type { ParticipantMachineConfig } from '../protocol/participant-machine.js';
import type { DiskTiming } from './sim-storage.js';

/** The participants' names, in node order (node 0 is the coordinator). */
export const PARTICIPANT_NAMES = ['bank-a', 'bank-b', 'bank-c', 'bank-d', 'bank-e'] as const;
/** The coordinator's node name. */
export const COORDINATOR = 'coordinator';

/** Everything about the simulated world that is not drawn per scenario. */
export interface SimConfig {
  readonly coordinator: Omit<CoordinatorMachineConfig, 'epoch'>;
  readonly participant: ParticipantMachineConfig;
  readonly disk: DiskTiming;
  /** Network delay outside fault windows, in ms. */
  readonly netMinDelayMs: number;
  readonly netMaxDelayMs: number;
  /** How long a silent peer keeps a session open (keepalive interval + timeout), in ms. */
  readonly keepaliveTimeoutMs: number;
  /** How long a participant waits for the welcome before it retries, in ms. */
  readonly connectTimeoutMs: number;
  /** Participant reconnect backoff, in ms. */
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
  /** Longest an initiator call waits before "outcome unknown", in ms. */
  readonly maxCallMs: number;
  /** Time a log lookup takes, at most, in ms. */
  readonly lookupMaxMs: number;
  /** Coordinator garbage collection (when the scenario enables it). */
  readonly gcIntervalMs: number;
  readonly retentionMs: number;
  /** Termination bound: every transaction must be finished this long after faults stop, in ms. */
  readonly settleMs: number;
  /**
   * Keep Enlist / EnlistResult frames in order, never duplicated or replayed, even in the fault
   * window. The participant machine turns a late EnlistResult for a transaction it already
   * finished into a live `enlisted` one, which can later overwrite its COMMITTED record with
   * ABORTED (see the simulator's report); a gRPC stream never reorders, so this stays on until
   * that is fixed. Set it to false to reproduce.
   */
  readonly enlistInOrder: boolean;
  /**
   * A read-only branch's prepare hook that runs again for the same transaction (a duplicated or
   * replayed Prepare after the participant forgot it) answers READ_ONLY again at once. The SDK
   * keeps no record of a read-only vote, so it runs the hook again, and a hook that now answers
   * NO (or misses the deadline) logs ABORTED for a transaction that committed (see the report).
   * Set it to false to reproduce.
   */
  readonly stableReadOnlyHooks: boolean;
  /**
   * Accept that a transaction in which every branch voted READ_ONLY, reported COMMITTED, later
   * reads as presumed ABORTED: nothing forced records it and its END summary may die in a power
   * loss (see the report). No participant changed anything either way. Set it to false to check
   * strictly.
   */
  readonly lenientAllReadOnly: boolean;
}

/** The default simulated world. */
export const DEFAULT_SIM_CONFIG: SimConfig = {
  coordinator: {
    ...DEFAULT_COORDINATOR_MACHINE_CONFIG,
    defaultTimeoutMs: 300,
    maxTimeoutMs: 10_000,
    maxLiveTransactions: 1_000,
    retryInitialMs: 40,
    retryMaxMs: 400,
    attentionAfterAttempts: 10,
  },
  participant: { inquiryIntervalMs: 250, hookRetryInitialMs: 10, hookRetryMaxMs: 100 },
  disk: { writeMinMs: 0, writeMaxMs: 1, syncMinMs: 1, syncMaxMs: 3 },
  netMinDelayMs: 1,
  netMaxDelayMs: 4,
  keepaliveTimeoutMs: 150,
  connectTimeoutMs: 100,
  reconnectInitialMs: 10,
  reconnectMaxMs: 200,
  maxCallMs: 2_000,
  lookupMaxMs: 1,
  gcIntervalMs: 200,
  retentionMs: 400,
  settleMs: 20_000,
  enlistInOrder: true,
  stableReadOnlyHooks: true,
  lenientAllReadOnly: true,
};
