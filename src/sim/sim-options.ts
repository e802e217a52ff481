// Tunables of the simulated world. Protocol timings are scaled down from production (milliseconds
// instead of seconds) so that one run covers many retries and recoveries in little simulated time;
// their ratios follow production (keepalive > retry, inquiry interval > network delay...).

import { DEFAULT_COORDINATOR_MACHINE_CONFIG, type CoordinatorMachineConfig } from '../protocol/coordinator-machine.js';
import type { ParticipantMachineConfig } from '../protocol/participant-machine.js';
import type { DiskTiming } from './sim-disk.js';

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
  /** How long a connection attempt across a cut link takes to fail, in ms. */
  readonly connectTimeoutMs: number;
  /** Longest an initiator call waits before "outcome unknown", in ms. */
  readonly maxCallMs: number;
  /** The message limit of every session frame, in bytes: small, so that frames must be split. */
  readonly maxMessageBytes: number;
  /** Coordinator garbage collection (when the scenario enables it). */
  readonly gcIntervalMs: number;
  readonly retentionMs: number;
  /** Termination bound: every transaction must be finished this long after faults stop, in ms. */
  readonly settleMs: number;
}

/** The default simulated world. */
export const DEFAULT_SIM_CONFIG: SimConfig = {
  coordinator: {
    ...DEFAULT_COORDINATOR_MACHINE_CONFIG,
    defaultTimeoutMs: 300,
    maxTimeoutMs: 10_000,
    maxLiveTransactions: 1_000,
    maxPayloadBytes: 1_024,
    retryInitialMs: 40,
    retryMaxMs: 400,
    attentionAfterAttempts: 10,
    unregisteredGraceMs: 150,
  },
  participant: { inquiryIntervalMs: 250, hookRetryInitialMs: 10, hookRetryMaxMs: 100 },
  disk: { writeMinMs: 0, writeMaxMs: 1, syncMinMs: 1, syncMaxMs: 3 },
  netMinDelayMs: 1,
  netMaxDelayMs: 4,
  keepaliveTimeoutMs: 150,
  connectTimeoutMs: 100,
  maxCallMs: 2_000,
  maxMessageBytes: 2_048,
  gcIntervalMs: 200,
  retentionMs: 400,
  settleMs: 20_000,
};
