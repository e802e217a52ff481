// Options and tunables of crash runs: a process cluster under a transfer workload, faulted, healed
// and checked.

import type { FailpointName } from '../common/failpoints.js';
import type { ProcessClusterOptions } from './process-cluster-options.js';

/** How long a healed cluster may take to settle (nothing in doubt, every tx ended), in ms. */
export const DEFAULT_SETTLE_TIMEOUT_MS = 30_000;
/** How long the workload may run before an armed failpoint must have fired, in ms. */
export const FAILPOINT_REACH_TIMEOUT_MS = 30_000;
/** Transfers that must commit after the cluster healed: it is live again. */
export const DEFAULT_COMMITS_AFTER_RESTART = 3;
/** How long those commits may take, in ms. */
export const COMMITS_AFTER_RESTART_TIMEOUT_MS = 30_000;
/** Default length of the fault phase of a random-faults run, in ms. */
export const DEFAULT_FAULT_PHASE_MS = 8_000;
/** Default delay between the starts of two random faults, in ms. */
export const DEFAULT_GAP_MS: MsRange = [200, 1_200];
/** Default downtime of a randomly killed process before its restart, in ms. */
export const DEFAULT_DOWN_MS: MsRange = [0, 1_500];
/** Default share of random faults that are SIGKILLs (the rest are pauses). */
export const DEFAULT_KILL_RATIO = 0.6;
/** How far past the tx timeout a random pause lasts at least, in ms (at most 5× that past a call's deadline). */
export const PAUSE_PAST_DEADLINE_MS = 200;

/** Options of every crash run. */
export interface CrashRunOptions extends ProcessClusterOptions {
  /** Seeds the transfer plan and every random choice of the run. */
  readonly seed: number;
  /** Transfers in flight at once. */
  readonly concurrency?: number;
  /** Transaction timeout given to Begin, in ms. */
  readonly txTimeoutMs?: number;
  /** Deadline of every client call, in ms. */
  readonly callTimeoutMs?: number;
  /** How long the healed cluster may take to settle, in ms. */
  readonly settleTimeoutMs?: number;
}

/** Options of `runFailpointCrash`. */
export interface FailpointCrashOptions extends CrashRunOptions {
  /** The process the failpoint is armed on: `coordinator` or a bank (`bank-1` …). */
  readonly process: string;
  readonly failpoint: FailpointName;
  /** Fire from the N-th time the failpoint is reached (default 1). */
  readonly fromHit?: number;
  /**
   * A failpoint (`name=crash@N` syntax) to arm on the restart after the first crash, for a second
   * crash while recovering; that incarnation must die by it as well before the clean restart.
   */
  readonly onRestart?: string;
  /** Transfers that must commit after the clean restart (default 3). */
  readonly commitsAfterRestart?: number;
}

/** An inclusive range of milliseconds. */
export type MsRange = readonly [min: number, max: number];

/** Options of `runRandomFaults`. */
export interface RandomFaultsOptions extends CrashRunOptions {
  /** How long faults are injected, in ms. */
  readonly faultPhaseMs?: number;
  /** Delay between the starts of two faults. */
  readonly gapMs?: MsRange;
  /** Share of faults that are SIGKILLs (the rest are SIGSTOP/SIGCONT pauses). */
  readonly killRatio?: number;
  /** How long a killed process stays down before it is restarted. */
  readonly downMs?: MsRange;
  /** How long a paused process stays stopped: longer than the tx timeout, some longer than a call's deadline. */
  readonly pauseMs?: MsRange;
}
