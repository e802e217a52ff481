// The failover part of `verdict bench --group`: a coordinator group of three real
// `verdict coordinator --etcd` processes on the bench's throwaway etcd, whose leader is SIGKILLed
// again and again. Each time, the bench measures how long the group served no leader, as a client
// sees it: from the kill to the first status query that a member answers as leader. The killed
// member is started again before the next kill, so every kill hits a group of three. With `tls`,
// the members serve mutual TLS and every status query presents a client certificate.

import { performance } from 'node:perf_hooks';
import type { ClientSecurityOptions } from '../common/tls.js';
import type { CoordinatorGroupTls } from '../faults/coordinator-group-options.js';
import type { EtcdCluster } from '../faults/etcd-cluster.js';
import { answersAsLeader, leaderAmong, MemberProcess, waitLeaderServing } from '../faults/group-member-process.js';
import { fixedPort } from '../faults/process-cluster.js';

/** Members of the failover group. */
const GROUP_SIZE = 3;
/** Pause between two rounds of status queries, in ms: the resolution of a failover time. */
const PROBE_INTERVAL_MS = 10;
/** Deadline of one status query, in ms (a member that does not answer within it does not serve). */
const PROBE_TIMEOUT_MS = 500;
/** How long the group may go without a serving leader before the measurement gives up, in ms. */
const SERVING_WITHIN_MS = 60_000;

/** The failover time of a coordinator group, over repeated SIGKILLs of its leader. */
export interface BenchFailover {
  /** The members' lease, in s: a dead leader's group waits about this long before another leads. */
  readonly leaseTtlS: number;
  /** Members of the group (3). */
  readonly members: number;
  /** Time without a serving leader after each kill, in ms, in kill order. */
  readonly timesMs: readonly number[];
  /** The median of `timesMs` (the lower of the middle two for an even count), in ms (NaN without kills). */
  readonly p50Ms: number;
  /** The longest of `timesMs`, in ms (NaN without kills). */
  readonly worstMs: number;
}

/** What `measureFailover` needs besides the etcd cluster. */
export interface FailoverOptions {
  /** Leader SIGKILLs. */
  readonly kills: number;
  /** The members' lease, in whole seconds. */
  readonly leaseTtlS: number;
  /** A fresh directory for the members' homes and logs. */
  readonly dir: string;
  /** The group's key prefix in etcd (not shared with any other group). */
  readonly etcdPrefix: string;
  /** One line per kill. */
  readonly onProgress: (line: string) => void;
  /** Mutual TLS: the members' flags, and the credentials of the status queries. Plaintext without. */
  readonly tls?: CoordinatorGroupTls;
}

/**
 * Starts a group of three members on `etcd`, SIGKILLs its leader `kills` times (restarting the
 * killed member after each measurement) and returns the times without a serving leader. Every
 * member is killed at the end, whatever happened.
 */
export async function measureFailover(etcd: EtcdCluster, options: FailoverOptions): Promise<BenchFailover> {
  const members: MemberProcess[] = [];
  for (let i = 1; i <= GROUP_SIZE; i++) {
    members.push(new MemberProcess(options.dir, `bench-m${i}`, `127.0.0.1:${await fixedPort()}`, etcd.endpoints, options.etcdPrefix, `${options.leaseTtlS}s`, options.tls?.memberArgs));
  }
  const { Etcd3 } = await import('etcd3');
  const client = new Etcd3(etcd.clientOptions());
  const timesMs: number[] = [];
  const security = options.tls?.security ?? {};
  try {
    await Promise.all(members.map((m) => m.start()));
    const servingLeader = (): Promise<MemberProcess> => waitLeaderServing(() => leaderAmong(client, options.etcdPrefix, members), { timeoutMs: SERVING_WITHIN_MS, security });
    let leader = await servingLeader();
    for (let k = 1; k <= options.kills; k++) {
      const killedAt = performance.now();
      await leader.kill();
      await untilServed(members.filter((m) => m !== leader), security);
      const ms = performance.now() - killedAt;
      timesMs.push(ms);
      options.onProgress(`failover ${k}/${options.kills}: ${leader.nodeId} SIGKILLed, a leader served again after ${ms.toFixed(0)} ms`);
      await leader.start();
      leader = await servingLeader();
    }
  } finally {
    await Promise.all(members.map((m) => m.kill().catch(() => undefined)));
    client.close();
  }
  const sorted = [...timesMs].sort((a, b) => a - b);
  return {
    leaseTtlS: options.leaseTtlS,
    members: GROUP_SIZE,
    timesMs,
    p50Ms: sorted.length > 0 ? (sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN) : Number.NaN,
    worstMs: sorted.at(-1) ?? Number.NaN,
  };
}

/** Queries every live member of `candidates` in rounds until one answers as leader (bounded). */
async function untilServed(candidates: readonly MemberProcess[], security: ClientSecurityOptions): Promise<void> {
  const deadline = performance.now() + SERVING_WITHIN_MS;
  while (!(await anyServes(candidates.filter((m) => m.alive).map((m) => m.advertise), security))) {
    if (performance.now() > deadline) throw new Error(`no member served as leader within ${SERVING_WITHIN_MS} ms of the leader's SIGKILL`);
    await pause(PROBE_INTERVAL_MS);
  }
}

/** True as soon as one of `addresses` serves; false once none did. Slower queries finish on their own. */
function anyServes(addresses: readonly string[], security: ClientSecurityOptions): Promise<boolean> {
  return new Promise((resolve) => {
    let left = addresses.length;
    if (left === 0) resolve(false);
    for (const address of addresses) {
      void answersAsLeader(address, security, PROBE_TIMEOUT_MS).then((ok) => {
        left--;
        if (ok) resolve(true);
        else if (left === 0) resolve(false);
      });
    }
  });
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
