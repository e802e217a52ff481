// Options of the bank demo.

import type { Logger } from '../common/logger.js';

/** Transfers a demo runs by default. */
export const DEFAULT_TRANSFERS = 1_000;
/** Transfers in flight at once by default. */
export const DEFAULT_CONCURRENCY = 32;
/** Banks (participants) by default. */
export const DEFAULT_BANKS = 3;
/** Parent of the per-run data directories by default. */
export const DEFAULT_DEMO_DATA_DIR = './data/demo';
/** Largest amount of an ordinary transfer; amounts are 1 … this. */
export const MAX_AMOUNT = 100;
/** Share of transfers that ask for more than any account can hold, to force a NO vote. */
export const OVERDRAFT_RATIO = 0.1;
/** How long a transfer waits for an unreachable coordinator before it gives up, in ms. */
export const COORDINATOR_WAIT_MS = 60_000;
/** How long the banks may take to connect to the coordinator, in ms. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** How long in-flight commits and aborts may take to reach every bank after the last answer, in ms. */
export const SETTLE_TIMEOUT_MS = 30_000;
/** Poll interval while waiting for the banks to settle, in ms. */
export const SETTLE_POLL_MS = 20;
/** Deadline of each transfer's commit call, in ms. */
export const TRANSFER_CALL_TIMEOUT_MS = 30_000;

/** Options of `runDemo`. */
export interface DemoOptions {
  /** Transfers to run. */
  readonly transfers?: number;
  /** Transfers in flight at once. */
  readonly concurrency?: number;
  /** Number of banks (at least 2: every transfer goes between two different banks). */
  readonly banks?: number;
  /** Accounts per bank. */
  readonly accountsPerBank?: number;
  /** Opening balance of every account. */
  readonly initialBalance?: number;
  /** A running coordinator's `host:port`; without it the demo embeds one. */
  readonly coordinator?: string;
  /**
   * Parent directory of the run's data. Every run uses a fresh subdirectory `run-<time>-<tag>`
   * (banks, and the embedded coordinator's log), so runs never see each other's accounts.
   */
  readonly dataDir?: string;
  /**
   * Keep the run's directory afterwards. By default it is removed when every check passed and
   * kept for inspection when one failed.
   */
  readonly keepData?: boolean;
  /** Logger for the coordinator and the banks. */
  readonly logger?: Logger;
  /**
   * Mutual TLS end to end with throwaway certificates (made with `openssl` in the run's
   * directory): the embedded coordinator requires client certificates, every bank and the
   * initiator present their own. Only with an embedded coordinator (not with `coordinator`).
   */
  readonly tls?: boolean;
}
