// Options and tunables of a process cluster: a coordinator and bank participants run as real OS
// processes on one machine, for crash tests and chaos runs.

/** How long a process may take from spawn to ready (tsx compiles on a cold cache; CI is noisy), in ms. */
export const PROCESS_START_TIMEOUT_MS = 30_000;
/** How long a process may take to close and exit after SIGTERM before it is SIGKILLed, in ms. */
export const PROCESS_STOP_TIMEOUT_MS = 10_000;
/** How long a SIGKILLed process may take to be reaped, in ms. */
export const PROCESS_KILL_TIMEOUT_MS = 5_000;
/** How long a bank child may take to answer a status request, in ms. */
export const STATUS_TIMEOUT_MS = 2_000;
/** How long every bank may take to (re)connect to the coordinator, in ms. */
export const CONNECT_TIMEOUT_MS = 20_000;
/** Interval of the bounded polls of the cluster's state, in ms. */
export const POLL_INTERVAL_MS = 50;
/** Banks a cluster runs by default. */
export const DEFAULT_BANK_COUNT = 3;
/** Accounts per bank by default: few, so that transfers contend and some must vote NO. */
export const DEFAULT_ACCOUNTS_PER_BANK = 4;
/** Opening balance of every account by default. */
export const DEFAULT_INITIAL_BALANCE = 100;
/**
 * How often banks ask the coordinator about transactions in doubt, in ms: short, so that a healed
 * cluster settles quickly (the SDK's default is 2 s).
 */
export const DEFAULT_INQUIRY_INTERVAL_MS = 300;
/** Lowest port tried for the coordinator's fixed address. */
export const MIN_FIXED_PORT = 10_000;

/** The name of the coordinator process in a cluster. */
export const COORDINATOR_PROCESS = 'coordinator';

/** Options of `ProcessCluster.create`. */
export interface ProcessClusterOptions {
  /** Directory of the run: the coordinator's log, every bank's data and every process's log file. */
  readonly dir: string;
  /**
   * What the banks dial instead of the cluster's own coordinator: a coordinator group's members,
   * comma-separated (the cluster's coordinator process is then never started).
   */
  readonly bankCoordinator?: string;
  /** Number of banks, named `bank-1` … `bank-N` (default 3). */
  readonly banks?: number;
  /** Accounts each bank opens on its first start (default 4). */
  readonly accountsPerBank?: number;
  /** Opening balance of every account (default 100). */
  readonly initialBalance?: number;
  /** In-doubt inquiry interval of the banks, in ms (default 300). */
  readonly inquiryIntervalMs?: number;
  /** Log level of every child on its stderr (its log file); default `info` for the coordinator, VERDICT_LOG_LEVEL or `warn` for banks. */
  readonly logLevel?: string;
}

/** Failpoint specifications (the VERDICT_FAILPOINTS syntax) by process name, for one start. */
export type FailpointPlan = Readonly<Record<string, string>>;
