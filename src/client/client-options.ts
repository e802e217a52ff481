// Options of the initiator client.

/** Default deadline of a call that gives none, in ms. */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;
/** Default most bytes one CommitStream frame carries: a quarter of the coordinator's default maxMessageBytes. */
export const DEFAULT_STREAM_FRAME_BYTES = 1024 * 1024;

import type { KeepaliveOptions, ReconnectOptions } from '../common/connection-options.js';
import type { ClientSecurityOptions } from '../common/tls.js';

export type { KeepaliveOptions, ReconnectOptions } from '../common/connection-options.js';

/** Options of `VerdictClient` (`tls` and `token`: how it proves its initiator identity). */
export interface VerdictClientOptions extends ClientSecurityOptions {
  /** Default per-call deadline in ms (each call may pass its own; default 30,000). */
  readonly callTimeoutMs?: number;
  /**
   * Reconnect backoff after a lost connection (default 100 ms doubling to 5 s, jittered); also
   * the delays between moves to another member of a coordinator group.
   */
  readonly reconnect?: ReconnectOptions;
  /** Keepalive pings (default every 10 s, 5 s to answer): how a dead or paused coordinator is noticed during a long call. */
  readonly keepalive?: KeepaliveOptions;
  /**
   * Send `commit` and `transact` calls over one shared CommitStream instead of one unary call
   * each (default false). For initiators with many transactions in flight: a stream message
   * costs a fraction of a unary call's CPU at both ends, and calls made together leave together.
   * Answers, errors and OUTCOME_UNKNOWN are the same as with unary calls; if the stream breaks,
   * every call on it fails with OUTCOME_UNKNOWN and the next call opens a new one.
   */
  readonly streamCommits?: boolean;
  /**
   * With `streamCommits`: the most bytes one frame of calls carries (default 1 MiB). Keep it under
   * the coordinator's `maxMessageBytes` (default 4 MiB). A call too large for a frame of its own
   * goes as a unary call, so that it fails alone if the coordinator refuses its size.
   */
  readonly streamFrameBytes?: number;
}

/** A branch of a transaction: a participant and the payload its prepare hook receives. */
export interface BranchInput {
  readonly participant: string;
  readonly payload?: Uint8Array | string;
}

/** Options of `begin`. */
export interface BeginOptions {
  /** How long the transaction may take until its decision, in ms (default: the coordinator's). */
  readonly timeoutMs?: number;
}

/** Options of `commit` and `transact`. */
export interface CommitOptions {
  /** For a one-shot transaction: its timeout in ms. */
  readonly timeoutMs?: number;
  /** Resolve only once every participant acknowledged, not as soon as the outcome is durable. */
  readonly waitForCompletion?: boolean;
  /** This call's deadline in ms (default: the client's). */
  readonly callTimeoutMs?: number;
}

/** Options of `transact`. */
export interface TransactOptions extends CommitOptions {
  /**
   * Makes a retried `transact` safe: 1 to 128 characters of `[A-Za-z0-9._:-]`, chosen by the
   * caller for one unit of business work (an order id, a request id). A call whose key already
   * names a transaction of this initiator identity answers for that transaction (its id, its
   * outcome, waiting for it if undecided) and starts nothing: the work commits at most once, however
   * often the call is repeated, across coordinator restarts too. Kept for as long as the
   * coordinator keeps the transaction's END summary (its retention). Keys are per initiator
   * identity: another identity's key of the same text is another key.
   */
  readonly idempotencyKey?: string;
}
