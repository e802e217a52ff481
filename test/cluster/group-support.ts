// Real-process coordinator groups for the cluster tests: a 3-member etcd cluster, N `verdict
// coordinator --etcd` processes, bank participants and a transfer workload, checked at the end by
// the history checker like the crash tests. Banks and the workload are given every member's
// address and follow the leader through NOT_LEADER answers, as users' services do.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { serverTlsFilesIn } from '../../src/common/throwaway-tls.js';
import { checkHistory, type HistoryCheckResult } from '../../src/faults/history-check.js';
import { fixedPort, poll, ProcessCluster, waitAllEnded } from '../../src/faults/process-cluster.js';
import { TransferWorkload } from '../../src/faults/transfer-workload.js';
import type { TxView } from '../../src/protocol/coordinator-events.js';
import { EtcdCluster } from '../../src/faults/etcd-cluster.js';
import { leaderAmong, MemberProcess, waitLeaderServing } from '../../src/faults/group-member-process.js';

/** Accounts per bank and opening balance. */
const ACCOUNTS = 4;
const BALANCE = 100;

/** Options of a GroupRun. */
export interface GroupRunOptions {
  readonly dir: string;
  readonly etcd: EtcdCluster;
  /** The group's etcd prefix (unique per test). */
  readonly prefix: string;
  readonly members?: number;
  readonly leaseTtl?: string;
  readonly seed?: number;
  /**
   * Mutual TLS everywhere, with the banks' throwaway PKI (in `dir/tls`): the members serve it, the
   * banks and the workload present their certificates.
   */
  readonly tls?: boolean;
  /** More flags for every member (e.g. `--tokens FILE`). */
  readonly memberArgs?: readonly string[];
}

/** Coordinators, banks, a relay and a workload; `finish` checks the whole history. */
export class GroupRun {
  readonly etcd: EtcdCluster;
  readonly prefix: string;
  readonly members: MemberProcess[];
  readonly banks: ProcessCluster;
  /** Every member's advertised address: what banks and the workload are given. */
  readonly addresses: readonly string[];
  readonly workload: TransferWorkload;
  readonly #client: Etcd3;
  readonly #views = new Map<string, TxView>();

  private constructor(options: GroupRunOptions, members: MemberProcess[], banks: ProcessCluster, client: Etcd3) {
    this.etcd = options.etcd;
    this.prefix = options.prefix;
    this.members = members;
    this.banks = banks;
    this.addresses = members.map((m) => m.advertise);
    this.#client = client;
    const ids = Array.from({ length: ACCOUNTS }, (_, i) => String(i + 1));
    this.workload = new TransferWorkload({
      address: this.addresses,
      banks: banks.banks.map((b) => ({ name: b.name, accounts: ids })),
      seed: options.seed ?? 17,
      totalMoney: banks.banks.length * ACCOUNTS * BALANCE,
      concurrency: 4,
      txTimeoutMs: 2_000,
      callTimeoutMs: 5_000,
      security: banks.clientSecurity,
    });
  }

  /** Starts the members, waits for a leader, starts the banks behind the relay and waits until they are connected. */
  static async start(options: GroupRunOptions): Promise<GroupRun> {
    mkdirSync(options.dir, { recursive: true });
    const advertised: string[] = [];
    for (let i = 0; i < (options.members ?? 3); i++) advertised.push(`127.0.0.1:${await fixedPort()}`);
    const banks = await ProcessCluster.create({
      dir: options.dir,
      banks: 3,
      accountsPerBank: ACCOUNTS,
      initialBalance: BALANCE,
      inquiryIntervalMs: 200,
      bankCoordinator: advertised.join(','),
      ...(options.tls ? { tls: true } : {}),
    });
    const server = serverTlsFilesIn(join(options.dir, 'tls'));
    const args = [
      ...options.etcd.tlsArgs,
      ...(options.tls ? ['--tls-cert', server.certFile, '--tls-key', server.keyFile, '--tls-ca', server.caFile] : []),
      ...(options.memberArgs ?? []),
    ];
    const members = advertised.map((a, i) => new MemberProcess(options.dir, `c${i + 1}`, a, options.etcd.endpoints, options.prefix, options.leaseTtl ?? '1s', args));
    const client = new Etcd3(options.etcd.clientOptions());
    try {
      await Promise.all(members.map((m) => m.start()));
      const run = new GroupRun(options, members, banks, client);
      await run.waitServing();
      await Promise.all(banks.banks.map((b) => b.start()));
      await run.waitBanksAt(1);
      return run;
    } catch (e) {
      await Promise.all(members.map((m) => m.kill().catch(() => undefined)));
      await banks.destroy();
      client.close();
      throw e;
    }
  }

  /** The member holding the leader key, per etcd. */
  leader(): Promise<MemberProcess | undefined> {
    return leaderAmong(this.#client, this.prefix, this.members);
  }

  /** Waits until a member other than `not` leads per etcd and serves (answers a status query as leader); resolves with it. */
  waitServing(not?: MemberProcess, timeoutMs = 30_000): Promise<MemberProcess> {
    return waitLeaderServing(() => this.leader(), { ...(not ? { not: not.nodeId } : {}), timeoutMs, security: this.banks.clientSecurity });
  }

  /** Waits until every bank has a session with a coordinator of epoch ≥ `epoch`; returns the lowest epoch seen. */
  async waitBanksAt(epoch: number, timeoutMs = 30_000): Promise<number> {
    let lowest = 0;
    await poll(`every bank to connect to a coordinator of epoch ≥ ${epoch}`, timeoutMs, async () => {
      const statuses = await Promise.all(this.banks.banks.map((b) => b.status().catch(() => undefined)));
      if (statuses.some((s) => s === undefined)) return false;
      lowest = Math.min(...statuses.map((s) => s?.epoch ?? 0));
      return lowest >= epoch;
    });
    return lowest;
  }

  /** The highest epoch any bank's session reports now. */
  async bankEpoch(): Promise<number> {
    const statuses = await Promise.all(this.banks.banks.map((b) => b.status().catch(() => undefined)));
    return Math.max(0, ...statuses.map((s) => s?.epoch ?? 0));
  }

  /** Stops the workload, waits until everything ended and nothing is in doubt, stops the banks and checks the history. */
  async finish(settleTimeoutMs = 60_000): Promise<HistoryCheckResult> {
    await this.workload.stop();
    const txIds = this.workload.attempts.flatMap((a) => (a.txId ? [a.txId] : []));
    await waitAllEnded(
      this.addresses,
      txIds,
      this.#views,
      settleTimeoutMs,
      'every transaction to end at the leader and nothing to be in doubt at any bank',
      async () => {
        const statuses = await this.banks.statuses().catch(() => undefined);
        return statuses !== undefined && [...statuses.values()].every((s) => s.inDoubt === 0 && s.holds === 0 && s.unsettled === 0);
      },
      this.banks.clientSecurity,
    );
    await this.banks.stop();
    return checkHistory({
      attempts: this.workload.attempts,
      finalViews: this.#views,
      banks: await this.banks.readDurableState(),
      finished: new Map(this.banks.banks.map((b) => [b.name, b.finished])),
    });
  }

  /** SIGKILLs everything still running and closes the relay (for cleanup). */
  async destroy(): Promise<void> {
    await this.workload.stop().catch(() => undefined);
    await Promise.all(this.members.map((m) => (m.alive ? m.kill().catch(() => undefined) : undefined)));
    await this.banks.destroy();
    this.#client.close();
  }
}
