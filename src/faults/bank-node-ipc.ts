// The messages between a process cluster and a bank child (`bank-node.ts`) over the fork IPC
// channel. The child reports its life (started, connected, finished transactions); the parent asks
// for its status. Stopping is a signal (SIGTERM), not a message: it must work on a child whose
// event loop is busy, and a crash is a SIGKILL that no message could announce.

import type { Outcome } from '../protocol/types.js';

/** What a bank child reports when asked for its status. */
export interface BankNodeStatus {
  /** Transactions held prepared whose outcome the bank does not know yet. */
  readonly inDoubt: number;
  /** Prepared legs not yet committed or aborted (in doubt or not). */
  readonly holds: number;
  /** Commits applied in memory whose outcome record is not durable yet. */
  readonly unsettled: number;
  /** The coordinator epoch of the current session, 0 while disconnected. */
  readonly epoch: number;
}

/** Parent → child. */
export type BankNodeRequest = { readonly type: 'status'; readonly requestId: number };

/** Child → parent. */
export type BankNodeMessage =
  /** The bank's log is open and its accounts are loaded; the session connects in the background. */
  | { readonly type: 'started' }
  /** The session to the coordinator is up (after every reconnect). */
  | { readonly type: 'connected'; readonly epoch: number }
  /** The session dropped; the SDK reconnects by itself. */
  | { readonly type: 'disconnected' }
  /** A transaction finished here: its outcome record is durable. Once per transaction, ever. */
  | { readonly type: 'finished'; readonly txId: string; readonly outcome: Outcome | undefined }
  | ({ readonly type: 'status'; readonly requestId: number } & BankNodeStatus)
  /** The bank could not start, or stopped on its own (its log failed); it exits with code 1. */
  | { readonly type: 'failed'; readonly message: string };
