// Options of one member of a coordinator group on etcd.

import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { CoordinatorOptions } from '../coordinator/coordinator-options.js';
import type { CoordinatorSecurityOptions } from '../coordinator/security-options.js';
import type { EtcdCredentials, EtcdTlsFiles } from './etcd-connection.js';

/** Default cluster prefix of a group's keys in etcd. */
export const DEFAULT_ETCD_PREFIX = '/verdict/';
/** Default lease TTL, in s: how long a dead or paused leader can keep the group without one. */
export const DEFAULT_LEASE_TTL_S = 5;

const ETCD_ENDPOINT = /^(?:(https?):\/\/)?((?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):[0-9]{1,5})$/;

/**
 * An etcd endpoint (`host:port`, `http://host:port` or `https://host:port`) split into its scheme,
 * when given, and `host:port`; undefined when malformed. (Here, with no import, so that the CLI
 * can check `--etcd` without loading etcd or gRPC.)
 */
export function parseEtcdEndpoint(endpoint: string): { readonly scheme: 'http' | 'https' | undefined; readonly hostPort: string } | undefined {
  const m = ETCD_ENDPOINT.exec(endpoint);
  if (!m?.[2] || Number(m[2].slice(m[2].lastIndexOf(':') + 1)) > 65_535) return undefined;
  return { scheme: m[1] as 'http' | 'https' | undefined, hostPort: m[2] };
}

/**
 * Options of `CoordinatorGroupMember.start`. The security options (`tls`, `tokensFile`,
 * `insecure`) are a single coordinator's, and mean the same: the member serves them for its whole
 * life, leading or not, and `insecure` also allows plaintext etcd endpoints off loopback.
 */
export interface GroupMemberOptions extends CoordinatorSecurityOptions {
  /**
   * etcd client endpoints: `host:port` each (TLS when `etcdTls` is given, plaintext otherwise),
   * or `http://host:port` / `https://host:port`.
   */
  readonly etcd: readonly string[];
  /** TLS to etcd: its CA, and this member's client certificate when etcd requires one. */
  readonly etcdTls?: EtcdTlsFiles;
  /** etcd's user/password authentication, when etcd has it enabled. */
  readonly etcdAuth?: EtcdCredentials;
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
  readonly coordinator?: Omit<CoordinatorOptions, 'listen' | 'dataDir' | 'storage' | 'decisionStore' | 'transport' | 'logger' | 'clock' | 'security' | keyof CoordinatorSecurityOptions>;
  /** Logger; defaults to pino at VERDICT_LOG_LEVEL (warn). */
  readonly logger?: Logger;
  /** The clock seam. Default: the system clock. */
  readonly clock?: Clock;
}
