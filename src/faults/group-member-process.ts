// One member of a coordinator group as a real process: `verdict coordinator --etcd` with its own
// working directory (all the local disk it could use), and a reader of the leader key that says
// which member etcd names as leader. Used by the cluster tests, chaos runs and benchmarks.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { ManagedProcess, siblingEntry } from './managed-process.js';
import { untilListening } from './process-cluster.js';

const CLI_ENTRY = siblingEntry('../cli/main.js');

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
