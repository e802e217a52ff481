// Options and tunables of a coordinator group run by chaos runs and the testing harness (kept apart
// from the group itself so that the CLI can name its defaults without loading etcd and gRPC).

import type { ClientSecurityOptions } from '../common/tls.js';

/** Members a group run starts by default. */
export const DEFAULT_GROUP_MEMBERS = 3;
/** The members' lease in chaos runs, as `--lease-ttl` takes it: short, so that failovers are quick. */
export const CHAOS_GROUP_LEASE_TTL = '1s';
/** How long a group may take to have a serving leader (at start, after a leader fault), in ms. */
export const GROUP_SERVING_TIMEOUT_MS = 30_000;
/** How often the leader key is read to record changes of leader, in ms. */
export const LEADER_WATCH_INTERVAL_MS = 100;

/** One change of the leader key, as the watch saw it. */
export interface LeaderChange {
  /** Ms after the watch started. */
  readonly atMs: number;
  /** The member now named leader (undefined: the key is gone, nobody leads). */
  readonly leader: string | undefined;
}

/** Options of `CoordinatorGroup.start`. */
export interface CoordinatorGroupOptions {
  /** Directory of the members' logs and working directories. */
  readonly dir: string;
  /** Members, named `c1` … `cN` (default 3). */
  readonly members?: number;
  /** The members' `--lease-ttl` (default 1s). */
  readonly leaseTtl?: string;
  /**
   * Mutual TLS: every member serves it and the group's own probes dial with a certificate. Without
   * it, the group runs in plaintext on loopback.
   */
  readonly tls?: CoordinatorGroupTls;
}

/** What a group serving mutual TLS needs: the members' flags and a client's credentials. */
export interface CoordinatorGroupTls {
  /**
   * `verdict coordinator` flags every member gets (`--tls-cert`, `--tls-key`, `--tls-ca`: a
   * throwaway PKI's `coordinatorArgs`). The certificate must name 127.0.0.1, the address of the
   * proxies the members advertise: clients dial a member through its proxy, and the TLS session
   * runs end to end across it.
   */
  readonly memberArgs: readonly string[];
  /** The credentials (a client certificate signed by the members' CA) of the leader probes and the TLS check. */
  readonly security: ClientSecurityOptions;
}
