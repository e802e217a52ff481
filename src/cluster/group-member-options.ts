// Options of one member of a coordinator group on etcd.

import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { CoordinatorOptions } from '../coordinator/coordinator-options.js';

/** Default cluster prefix of a group's keys in etcd. */
export const DEFAULT_ETCD_PREFIX = '/verdict/';
/** Default lease TTL, in s: how long a dead or paused leader can keep the group without one. */
export const DEFAULT_LEASE_TTL_S = 5;

/** Options of `CoordinatorGroupMember.start`. */
export interface GroupMemberOptions {
  /** etcd client endpoints, `host:port` each (plain HTTP; loopback or a trusted network). */
  readonly etcd: readonly string[];
  /** This member's id, unique in the group (for logs and the leader key). */
  readonly nodeId: string;
  /** The `host:port` participants and initiators reach this member at (given to followers' callers). */
  readonly advertise: string;
  /** `host:port` to bind; default `advertise`. */
  readonly listen?: string;
  /** The group's prefix in etcd (default `/verdict/`); a trailing `/` is added when missing. */
  readonly etcdPrefix?: string;
  /** Lease TTL in whole seconds (default 5). */
  readonly leaseTtlS?: number;
  /** How often a follower tries to take the leader key, in ms (default 250). */
  readonly campaignIntervalMs?: number;
  /** Deadline of one decision-log call to etcd, in ms (default 5 s). */
  readonly etcdCallTimeoutMs?: number;
  /** etcd's `--max-txn-ops` (default 128): the most operations one decision-log transaction carries. */
  readonly maxOpsPerTxn?: number;
  /** The coordinator each term runs, less what the group decides (its store, listen address and transport). */
  readonly coordinator?: Omit<CoordinatorOptions, 'listen' | 'dataDir' | 'storage' | 'decisionStore' | 'transport' | 'logger' | 'clock'>;
  /** Logger; defaults to pino at VERDICT_LOG_LEVEL (warn). */
  readonly logger?: Logger;
  /** The clock seam. Default: the system clock. */
  readonly clock?: Clock;
}
