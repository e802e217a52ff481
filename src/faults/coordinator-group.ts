// A coordinator group for chaos runs and the testing harness: a throwaway 3-member etcd cluster on
// 127.0.0.1, N `verdict coordinator --etcd` members as real processes, each behind a fault proxy
// that it advertises (so a NOT_LEADER hint names the proxy, and every SDK connection to a member
// crosses it), a reader of who leads as etcd says, a record of every change of leader, and a
// close() that kills every process and removes etcd's data, whatever state the run ended in. With
// `tls`, every member serves mutual TLS and `checkTls` says how each one served it.

import { mkdirSync, readFileSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import type { LeaderResolver } from './chaos-injector.js';
import type { MemberTlsReport } from './chaos-report.js';
import { EtcdCluster } from './etcd-cluster.js';
import { FaultProxy } from './fault-proxy.js';
import { leaderAmong, MemberProcess, readLeader, waitLeaderServing } from './group-member-process.js';
import type { ExitRecord } from './managed-process.js';
import { fixedPort } from './process-cluster.js';
import { probeTlsServing, TlsServing } from './tls-serving-probe.js';
import {
  CHAOS_GROUP_LEASE_TTL,
  DEFAULT_GROUP_MEMBERS,
  LEADER_WATCH_INTERVAL_MS,
  type CoordinatorGroupOptions,
  type CoordinatorGroupTls,
  type LeaderChange,
} from './coordinator-group-options.js';

/** A running coordinator group on its own etcd, each member behind its own fault proxy. */
export class CoordinatorGroup implements LeaderResolver {
  readonly etcd: EtcdCluster;
  /** The group's key prefix in etcd. */
  readonly prefix: string;
  readonly members: readonly MemberProcess[];
  /** Each member's proxy, by member name: a member's link. */
  readonly proxies: ReadonlyMap<string, FaultProxy>;
  readonly #client: Etcd3;
  readonly #tls: CoordinatorGroupTls | undefined;
  readonly #changes: LeaderChange[] = [];
  #watching: Promise<void> | undefined;
  #watchStop = false;

  private constructor(etcd: EtcdCluster, prefix: string, members: MemberProcess[], proxies: Map<string, FaultProxy>, tls: CoordinatorGroupTls | undefined) {
    this.etcd = etcd;
    this.prefix = prefix;
    this.members = members;
    this.proxies = proxies;
    this.#tls = tls;
    this.#client = new Etcd3(etcd.clientOptions());
  }

  /**
   * Starts etcd, a proxy per member and the members, and waits until one leads and serves. On
   * failure everything started is stopped again before it throws.
   */
  static async start(options: CoordinatorGroupOptions): Promise<CoordinatorGroup> {
    mkdirSync(options.dir, { recursive: true });
    const etcd = await EtcdCluster.start();
    const proxies = new Map<string, FaultProxy>();
    let group: CoordinatorGroup | undefined;
    try {
      const members: MemberProcess[] = [];
      for (let i = 1; i <= (options.members ?? DEFAULT_GROUP_MEMBERS); i++) {
        const nodeId = `c${i}`;
        // A fixed port: the member rebinds it after every restart, behind the same proxy.
        const listen = `127.0.0.1:${await fixedPort()}`;
        const proxy = await FaultProxy.start({ target: listen, name: nodeId });
        proxies.set(nodeId, proxy);
        members.push(new MemberProcess(options.dir, nodeId, proxy.address, etcd.endpoints, '/verdict-chaos/', options.leaseTtl ?? CHAOS_GROUP_LEASE_TTL, options.tls?.memberArgs ?? [], listen));
      }
      group = new CoordinatorGroup(etcd, '/verdict-chaos/', members, proxies, options.tls);
      await Promise.all(members.map((m) => m.start()));
      await group.waitServing();
      return group;
    } catch (e) {
      if (group) await group.close();
      else {
        await Promise.all([...proxies.values()].map((p) => p.close()));
        await etcd.stop();
      }
      throw e;
    }
  }

  /** Every member's advertised address (its proxy): what participants and initiators are given. */
  get addresses(): string[] {
    return this.members.map((m) => m.advertise);
  }

  /** Every change of leader the watch saw, oldest first. */
  get leaderChanges(): readonly LeaderChange[] {
    return this.#changes;
  }

  /** The member holding the leader key, per etcd (undefined: none, or etcd did not answer). */
  leader(): Promise<MemberProcess | undefined> {
    return leaderAmong(this.#client, this.prefix, this.members);
  }

  /** Waits until a member other than `not` leads and serves; resolves with it. */
  waitServing(not?: string, signal?: AbortSignal): Promise<MemberProcess> {
    return waitLeaderServing(() => this.leader(), { ...(not !== undefined ? { not } : {}), ...(signal ? { signal } : {}), ...(this.#tls ? { security: this.#tls.security } : {}) });
  }

  /**
   * How every member served TLS (undefined for a plaintext group): the terms it led as its log
   * tells them (a leader logs how it serves as each term starts), and a probe now, through its
   * proxy as clients dial it, of whether it requires a client certificate. Ask it while every
   * member runs and no fault is active (after healing).
   */
  async checkTls(): Promise<MemberTlsReport[] | undefined> {
    const tls = this.#tls?.security.tls;
    if (!tls) return undefined;
    return Promise.all(
      this.members.map(async (m): Promise<MemberTlsReport> => {
        const terms = termsServed(m.logFile);
        const probe = m.state === 'running' ? await probeTlsServing(m.advertise, tls) : { serving: TlsServing.FAILED, detail: `not running (${m.state})` };
        return { member: m.name, terms: terms.length, mutualTerms: terms.filter((t) => t === 'mutual').length, probe: probe.serving, ...(probe.detail ? { detail: probe.detail } : {}) };
      }),
    );
  }

  /** `LeaderResolver`: the member that leads and runs now. */
  async current(): Promise<string | undefined> {
    const leader = await this.leader();
    return leader?.state === 'running' ? leader.nodeId : undefined;
  }

  /** `LeaderResolver`: the next member to lead and serve, other than `not`. */
  async next(not: string): Promise<string> {
    return (await this.waitServing(not)).nodeId;
  }

  /** Starts recording every change of the leader key (read every LEADER_WATCH_INTERVAL_MS). */
  watch(): void {
    if (this.#watching) return;
    const t0 = Date.now();
    let last: string | undefined | null = null;
    this.#watching = (async () => {
      while (!this.#watchStop) {
        const value = await readLeader(this.#client, this.prefix);
        const leader = value?.nodeId;
        if (leader !== last) {
          this.#changes.push({ atMs: Date.now() - t0, leader });
          last = leader;
        }
        await new Promise((resolve) => setTimeout(resolve, LEADER_WATCH_INTERVAL_MS));
      }
    })();
  }

  /** Stops the watch (its record stays). */
  async unwatch(): Promise<void> {
    this.#watchStop = true;
    await this.#watching;
  }

  /** Resumes paused members and stops every member politely; resolves with their exit records. */
  async stop(): Promise<ExitRecord[]> {
    for (const m of this.members) if (m.state === 'paused') m.resume();
    return Promise.all(this.members.filter((m) => m.alive).map((m) => m.stop()));
  }

  /** SIGKILLs what still runs, closes the proxies and the etcd client, and stops etcd (idempotent; never throws). */
  async close(): Promise<void> {
    await this.unwatch().catch(() => undefined);
    await Promise.all(this.members.map((m) => (m.alive ? m.kill().catch(() => undefined) : undefined)));
    await Promise.all([...this.proxies.values()].map((p) => p.close().catch(() => undefined)));
    this.#client.close();
    await this.etcd.stop().catch(() => undefined);
  }
}

/** How each term a member led served TLS, as its log says ('coordinator started' lines; none if it never led). */
function termsServed(logFile: string): string[] {
  let text: string;
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"coordinator started"')) continue;
    try {
      out.push(String((JSON.parse(line) as { tls?: unknown }).tls));
    } catch {
      out.push('unreadable');
    }
  }
  return out;
}
