// One member of a coordinator group as a real process: `verdict coordinator --etcd` with its own
// working directory (all the local disk it could use), a reader of the leader key that says which
// member etcd names as leader, and the probe that tells whether a member answers as leader. Used
// by the cluster tests, chaos runs and benchmarks.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { VerdictClient } from '../client/client.js';
import type { ClientSecurityOptions } from '../common/tls.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { GROUP_SERVING_TIMEOUT_MS } from './coordinator-group-options.js';
import { ManagedProcess, siblingEntry } from './managed-process.js';
import { untilListening } from './process-cluster.js';
import { POLL_INTERVAL_MS } from './process-cluster-options.js';

const CLI_ENTRY = siblingEntry('../cli/main.js');
/** Default deadline of the probe that asks a member whether it serves as leader, in ms. */
const SERVING_PROBE_TIMEOUT_MS = 1_000;
/** A well-formed id of epoch 1 that is never issued: a serving leader answers TX_NOT_FOUND or ABORTED, never NOT_LEADER. */
const PROBE_TX_ID = 'tx-1-999999999';
/** Answers that mean "no leader served this query". */
const NOT_SERVING: ReadonlySet<string> = new Set([ErrorCode.UNAVAILABLE, ErrorCode.NOT_LEADER, ErrorCode.OUTCOME_UNKNOWN]);

/**
 * Whether a client dialing `address` gets an answer from a leader: a status query answered with
 * anything but UNAVAILABLE, NOT_LEADER or OUTCOME_UNKNOWN within `timeoutMs`. A fresh client each
 * time, so that no reconnect backoff of an earlier failure delays the answer.
 */
export async function answersAsLeader(address: string, security: ClientSecurityOptions = {}, timeoutMs = SERVING_PROBE_TIMEOUT_MS): Promise<boolean> {
  const client = new VerdictClient(address, { callTimeoutMs: timeoutMs, ...security });
  try {
    await client.get(PROBE_TX_ID);
    return true;
  } catch (e) {
    return e instanceof VerdictError && !NOT_SERVING.has(e.code);
  } finally {
    client.close();
  }
}

/**
 * Waits until a member other than `not` leads per `leader()` (etcd's word), runs and answers as
 * leader on the address it binds; resolves with it.
 */
export async function waitLeaderServing(
  leader: () => Promise<MemberProcess | undefined>,
  options: { readonly not?: string; readonly timeoutMs?: number; readonly signal?: AbortSignal; readonly security?: ClientSecurityOptions } = {},
): Promise<MemberProcess> {
  const timeoutMs = options.timeoutMs ?? GROUP_SERVING_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    options.signal?.throwIfAborted();
    const member = await leader();
    if (member && member.nodeId !== options.not && member.state === 'running' && (await answersAsLeader(member.listen, options.security))) return member;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for a member${options.not ? ` other than ${options.not}` : ''} to lead and serve`);
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

/** The leader key's value, as the members write it. */
interface LeaderValue {
  readonly nodeId: string;
  readonly advertise: string;
}

/** Reads who holds the leader key of `prefix` (undefined: nobody, or etcd did not answer). */
export async function readLeader(client: Etcd3, prefix: string): Promise<LeaderValue | undefined> {
  try {
    const raw = await client.get(`${prefix}leader`).options({ deadline: new Date(Date.now() + 1_000) }).string();
    return raw ? (JSON.parse(raw) as LeaderValue) : undefined;
  } catch {
    return undefined;
  }
}

/** The member of `members` that holds the leader key of `prefix` (undefined: none of them, or etcd did not answer). */
export async function leaderAmong<T extends { readonly nodeId: string }>(client: Etcd3, prefix: string, members: readonly T[]): Promise<T | undefined> {
  const value = await readLeader(client, prefix);
  return members.find((m) => m.nodeId === value?.nodeId);
}

/** One `verdict coordinator --etcd` member as a real process. */
export class MemberProcess extends ManagedProcess {
  readonly nodeId: string;
  readonly advertise: string;

  /** The address it binds: `advertise`, unless a proxy in front of it is what it advertises. */
  readonly listen: string;

  /** The member's own directory, its working directory: all the local disk it could use. */
  readonly home: string;

  /**
   * `extraArgs` go after the member's own flags: its security (`--tls-*`, `--tokens`) and the etcd
   * connection's (`--etcd-ca`, `--etcd-cert`, `--etcd-key`: `EtcdCluster.tlsArgs`). `listen`, when
   * given, is the address it binds (default: `advertise`).
   */
  constructor(dir: string, nodeId: string, advertise: string, etcd: string, prefix: string, leaseTtl: string, extraArgs: readonly string[] = [], listen?: string) {
    const home = join(dir, `${nodeId}-home`);
    mkdirSync(home, { recursive: true });
    super({
      cwd: home,
      name: nodeId,
      entry: CLI_ENTRY,
      args: [
        'coordinator', '--etcd', etcd, '--node-id', nodeId, '--advertise', advertise, '--etcd-prefix', prefix, '--lease-ttl', leaseTtl, '--log-level', 'info',
        ...(listen !== undefined ? ['--listen', listen] : []),
        ...extraArgs,
      ],
      logFile: join(dir, `${nodeId}.log`),
      ready: untilListening,
    });
    this.nodeId = nodeId;
    this.advertise = advertise;
    this.listen = listen ?? advertise;
    this.home = home;
  }
}
