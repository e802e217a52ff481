// Options of the fault-injection harness for users' own participants.

import type { BranchInput } from '../client/client-options.js';
import type { ChaosTx } from '../faults/chaos-check.js';
import type { FaultKind } from '../faults/chaos-schedule.js';
import type { FailpointName } from '../common/failpoints.js';
import type { AppStore } from '../participant/participant-log.js';
import type { ParticipantHooks } from '../participant/participant-options.js';
import type { Participant } from '../participant/participant.js';
import type { Logger } from '../common/logger.js';
import type { ClientSecurityOptions } from '../common/tls.js';
import type { Outcome } from '../protocol/types.js';

/** Default length of the fault phase of `runChaos`, in ms. */
export const DEFAULT_HARNESS_DURATION_MS = 8_000;
/** Default transactions in flight. */
export const DEFAULT_HARNESS_CONCURRENCY = 4;
/** Default transaction timeout given to Begin, in ms. */
export const DEFAULT_HARNESS_TX_TIMEOUT_MS = 1_500;
/** Deadline of the workload's client calls, in ms. */
export const DEFAULT_HARNESS_CALL_TIMEOUT_MS = 4_000;
/** Default time the healed system may take to settle, in ms. */
export const DEFAULT_HARNESS_SETTLE_MS = 20_000;
/** In-doubt inquiry interval of the participants, in ms (short: a healed run settles fast). */
export const HARNESS_INQUIRY_INTERVAL_MS = 300;
/**
 * Failpoints a `failpoint` fault arms in the harness's participants. They run in the caller's
 * process, so only `error` actions are used (a `crash` would kill the test runner): the SDK must
 * run the hook again, and a hook that writes outside its batch shows it.
 */
export const HARNESS_PARTICIPANT_FAILPOINTS = ['participant.before-apply-hook=error', 'participant.after-apply-hook=error'] as const;

/** What `createHooks` receives at every (re)start of a participant. */
export interface HookFactoryContext {
  readonly name: string;
  /** The participant's data directory (the SDK's LevelDB lives here; use a subdirectory for files of your own). */
  readonly dataDir: string;
  /** 1 at the first start, then one more at every restart after a (emulated) crash. */
  readonly incarnation: number;
  /** The participant's application store; usable from the hooks (it opens before any hook runs). */
  readonly store: AppStore;
}

/** What `ChaosParticipant.start` receives at every (re)start: where and how to run the participant. */
export interface ParticipantStartContext {
  readonly name: string;
  /**
   * What to dial: the participant's own fault proxy in front of the coordinator, or with `group`
   * every member's address (pass it on as the SDK's `coordinator`).
   */
  readonly coordinator: string | readonly string[];
  /** The participant's data directory (the SDK's log). */
  readonly dataDir: string;
  /** 1 at the first start, then one more at every restart after a (emulated) crash. */
  readonly incarnation: number;
  /** The SDK's protocol tunables the harness needs (a short in-doubt inquiry interval): pass them on. */
  readonly protocol: { readonly inquiryIntervalMs: number };
  /** The participant's TLS options with `tls: true` (pass them on); empty otherwise. */
  readonly security: ClientSecurityOptions;
  /** A logger for the participant (silent unless VERDICT_LOG_LEVEL says otherwise). */
  readonly logger: Logger;
}

/** A participant started by `ChaosParticipant.start`: the SDK participant it runs on, and how to stop it. */
export interface StartedParticipant {
  /** The participant SDK underneath (e.g. `PostgresParticipant.participant`). */
  readonly participant: Participant;
  /** Stops it like a crash would leave it (a PostgreSQL participant leaves its prepared transactions prepared). */
  close(): Promise<void>;
}

/** One of the user's participants. */
export interface ChaosParticipant {
  /** The participant's name (lowercase letters, digits, '.', '_', '-'). */
  readonly name: string;
  /**
   * Builds the hooks at every start, as your service would after a restart: memory it keeps is
   * lost at each crash. Prefer this over `hooks`.
   */
  readonly createHooks?: (ctx: HookFactoryContext) => ParticipantHooks | Promise<ParticipantHooks>;
  /** Fixed hooks, kept across restarts (their memory survives the emulated crashes). */
  readonly hooks?: ParticipantHooks;
  /**
   * Starts the participant yourself, at every start, instead of from hooks: for participants that
   * build their own hooks, like `PostgresParticipant` from `verdict/postgres`. Use the address,
   * directory, protocol tunables and security given. The harness cannot see such hooks run, so
   * `duplicate-hook-call` is not checked for them: give `effects` to catch an effect applied twice.
   */
  readonly start?: (ctx: ParticipantStartContext) => Promise<StartedParticipant>;
  /**
   * How many times each transaction took effect here, read from the store after the run: lets the
   * checker find duplicate effects (`duplicate-apply`) and committed work that never landed
   * (`lost-commit`). Optional.
   */
  readonly effects?: (ctx: { readonly name: string; readonly store: AppStore }) => Promise<ReadonlyMap<string, number>> | ReadonlyMap<string, number>;
}

/** A seeded random source for the workload (the same seed gives the same transactions). */
export interface ChaosRandom {
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
}

/** What the workload function receives for each transaction. */
export interface TransactionContext {
  readonly seq: number;
  readonly rng: ChaosRandom;
  /** The participants' names. */
  readonly participants: readonly string[];
}

/** One transaction of the history, with its final outcome. */
export interface HistoryTx extends ChaosTx {
  readonly branches: readonly BranchInput[];
  /** The coordinator's final outcome (undefined when never begun or never resolved). */
  readonly outcome: Outcome | undefined;
}

/** What the invariant callback receives, once the run settled (participants still open). */
export interface InvariantContext {
  /** Each participant's store, by name. */
  readonly stores: ReadonlyMap<string, AppStore>;
  readonly history: readonly HistoryTx[];
}

/** Options of `runChaos`. */
export interface RunChaosOptions {
  readonly participants: readonly ChaosParticipant[];
  /**
   * The branches of the `seq`-th transaction. Default: every participant, with the payload
   * `{"seq":N}`.
   */
  readonly transaction?: (ctx: TransactionContext) => readonly BranchInput[];
  /** Your invariant, checked once the run settled: return (or throw) what is wrong. */
  readonly invariant?: (ctx: InvariantContext) => void | readonly string[] | Promise<void | readonly string[]>;
  /** Length of the fault phase, in ms (default 8 s). */
  readonly duration?: number;
  /** Seeds the fault schedule and the workload (default: random; it is in the report). */
  readonly seed?: number;
  /** Fault kinds (default: every kind; `leader-kill` and `leader-pause` only with `group`). */
  readonly faults?: readonly FaultKind[];
  /**
   * What may be faulted: `coordinator` and participant names (a participant's process faults and
   * its link; with `group`, `coordinator` or `leader` stands for the member that leads and its
   * link). Default: everything.
   */
  readonly targets?: readonly string[];
  /**
   * Failpoints `failpoint` faults may arm, by name (see FAILPOINTS): `coordinator.*` ones crash the
   * coordinator process there, `participant.*` ones make that step fail with an error in your
   * participants. Default: every coordinator failpoint and HARNESS_PARTICIPANT_FAILPOINTS.
   */
  readonly failpoints?: readonly FailpointName[];
  /** Directory for the run's data, logs and report (default: a fresh temp directory). */
  readonly dir?: string;
  readonly concurrency?: number;
  readonly txTimeoutMs?: number;
  readonly settleTimeoutMs?: number;
  /** Called with a progress line about once a second. */
  readonly onProgress?: (line: string) => void;
  /**
   * Mutual TLS on every connection (default false), with throwaway certificates made with the
   * `openssl` command in `dir/tls`: the coordinator requires client certificates, each of your
   * participants presents `verdict://participant/<name>` and the workload
   * `verdict://initiator/workload`.
   */
  readonly tls?: boolean;
  /**
   * Run against a coordinator group instead of one coordinator: `true` for 3 members, or a number
   * (at least 2). A throwaway 3-member etcd is started on 127.0.0.1 (etcd must be installed), the
   * members (`verdict coordinator --etcd`, 1 s lease) run as real processes each behind a fault
   * proxy it advertises, and your participants and the workload get every member's address. Faults
   * aimed at the coordinator hit the member that leads; `leader-kill` and `leader-pause` (in the
   * default kinds) SIGKILL or SIGSTOP the leader until another member serves; link faults act on
   * the leader's link; a participant is never paused on its own, and failpoints arm only in your
   * participants. With `tls`, every member serves mutual TLS and the report's `group.tls` says how
   * each one served it (a member that did not is a `tls` violation). The report's `group` says who
   * led in turn.
   */
  readonly group?: true | number;
}
