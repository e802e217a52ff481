// `verdict chaos`: a coordinator and K demo banks as real processes, every bank's session routed
// through its own fault proxy, a transfer workload, and a seeded schedule of faults (kill -9 and
// restart, SIGSTOP/SIGCONT, partitions, delays, dropped bytes, resets, failpoints). Then it heals,
// waits for quiescence, stops everything politely and checks the history: atomicity, no loss,
// termination, hooks run once, and the bank's own invariant (money is conserved). With `group`, a
// coordinator group on a throwaway etcd replaces the coordinator: faults aimed at the coordinator
// hit the member that leads, links are the members' links, and leader kills and pauses join in.
// With `tls` too, every member serves mutual TLS from the run's throwaway PKI.

import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SEED_KEY, readLedger } from '../demo/bank.js';
import { systemClock } from '../common/clock.js';
import { levelStorage } from '../common/level-errors.js';
import { createThrowawayTls } from '../common/throwaway-tls.js';
import type { ClientSecurityOptions } from '../common/tls.js';
import { ParticipantLog } from '../participant/participant-log.js';
import type { TxView } from '../protocol/coordinator-events.js';
import { DEFAULT_CHAOS_DURATION_MS, DEFAULT_CHAOS_PARTICIPANTS } from './chaos-options.js';
import { FaultInjector, type FailpointResult, type FaultRecord, type FaultTarget } from './chaos-injector.js';
import {
  classifyHistoryViolation,
  formatProgress,
  writeChaosReport,
  type ChaosGroupReport,
  type MemberTlsReport,
  summarizeLeaders,
  tlsViolations,
  type ChaosReport,
  type HistoryLine,
  type Violation,
} from './chaos-report.js';
import { ALL_FAULT_KINDS, FAULT_KINDS, LEADER_FAULTS, LEADER_TARGET, buildSchedule, type FaultKind } from './chaos-schedule.js';
import type { CoordinatorGroup } from './coordinator-group.js';
import { FaultProxy } from './fault-proxy.js';
import { checkHistory } from './history-check.js';
import type { ManagedProcess } from './managed-process.js';
import { BankProcess, CLUSTER_INITIATOR, CoordinatorProcess, fixedPort, poll, waitAllEnded, type DurableBank } from './process-cluster.js';
import { CONNECT_TIMEOUT_MS, DEFAULT_INQUIRY_INTERVAL_MS } from './process-cluster-options.js';
import { TransferWorkload } from './transfer-workload.js';

export { DEFAULT_CHAOS_DURATION_MS, DEFAULT_CHAOS_PARTICIPANTS };
/** Accounts per bank. */
export const CHAOS_ACCOUNTS_PER_BANK = 4;
/** Opening balance of every account. */
export const CHAOS_INITIAL_BALANCE = 1_000;
/** Transfers in flight. */
export const CHAOS_CONCURRENCY = 6;
/** How often the progress line is refreshed, in ms. */
export const PROGRESS_INTERVAL_MS = 1_000;
/** How long a status request may take during the run (a paused bank does not answer), in ms. */
export const PROGRESS_STATUS_TIMEOUT_MS = 400;
/** How long the healed cluster may take to settle, in ms. */
export const DEFAULT_CHAOS_SETTLE_MS = 30_000;
/** Commits that must follow healing: the system is live again. */
export const COMMITS_AFTER_HEAL = 3;
/** How long they may take, in ms. */
export const COMMITS_AFTER_HEAL_TIMEOUT_MS = 30_000;

/** Failpoints armed (as crashes) on the coordinator by `failpoint` faults. */
export const COORDINATOR_CRASH_POINTS = [
  'coordinator.after-prepare-sent',
  'coordinator.after-votes',
  'coordinator.before-commit-record',
  'coordinator.after-commit-record',
  'coordinator.between-commit-sends',
  'coordinator.before-end-record',
] as const;
/** Failpoints armed (as crashes) on a bank process by `failpoint` faults. */
export const PARTICIPANT_CRASH_POINTS = [
  'participant.before-prepared-record',
  'participant.after-prepared-record',
  'participant.after-vote-sent',
  'participant.before-apply-hook',
  'participant.after-apply-hook',
  'participant.before-ack',
] as const;

/** Options of `runChaosCluster`. */
export interface ChaosOptions {
  readonly seed: number;
  /** Length of the fault phase, in ms. */
  readonly durationMs?: number;
  /** Number of banks (at least 2). */
  readonly participants?: number;
  readonly faults?: readonly FaultKind[];
  /** Where report.json and history.jsonl go (and the run's data, under `data/`); default a fresh temp directory. */
  readonly outDir?: string;
  /** Called with a progress line about once a second. */
  readonly onProgress?: (line: string) => void;
  readonly settleTimeoutMs?: number;
  readonly concurrency?: number;
  /**
   * Mutual TLS on every connection, with throwaway certificates made in the run's data directory
   * (`data/tls`): the coordinator requires client certificates, every bank and the workload present
   * their own. The fault proxies carry the encrypted bytes as they carry any others.
   */
  readonly tls?: boolean;
  /**
   * Run against a coordinator group of this many members (`verdict coordinator --etcd`, real
   * processes on a throwaway 3-member etcd) instead of one coordinator. With `tls`, every member
   * serves mutual TLS with the run's certificates, and the report says how each one served it.
   */
  readonly group?: number;
}

/**
 * Refuses options a run cannot honour, with one line: leader faults without a group, a group of
 * fewer than 2 members.
 */
export function checkGroupOptions(options: { readonly group?: number | undefined; readonly faults?: readonly FaultKind[] | undefined }): void {
  if (options.group === undefined) {
    const leaderKinds = (options.faults ?? []).filter((k) => LEADER_FAULTS.has(k));
    if (leaderKinds.length > 0) throw new RangeError(`fault kind ${leaderKinds.join(', ')} needs a coordinator group (--group)`);
    return;
  }
  if (!Number.isInteger(options.group) || options.group < 2) throw new RangeError(`a coordinator group needs at least 2 members (got ${options.group})`);
}

/** The schedule's targets in a group run: the leader in place of the coordinator, the members' links. */
export function groupScheduleTargets(participants: readonly string[]): {
  processes: string[];
  links: string[];
  hub: string;
  targetsByKind: Partial<Record<FaultKind, readonly string[]>>;
} {
  return {
    processes: [LEADER_TARGET, ...participants],
    links: [LEADER_TARGET],
    hub: LEADER_TARGET,
    // A member restarted with a failpoint armed comes back as a follower: only participants get them.
    targetsByKind: { 'leader-kill': [LEADER_TARGET], 'leader-pause': [LEADER_TARGET], failpoint: [...participants] },
  };
}

/** A managed child process as a fault target. */
export function processTarget(p: ManagedProcess): FaultTarget {
  return {
    name: p.name,
    get alive() {
      return p.alive;
    },
    get paused() {
      return p.state === 'paused';
    },
    kill: async () => void (await p.kill()),
    start: () => p.start(),
    pause: () => p.pause(),
    resume: () => p.resume(),
    async failpoint(spec: string, windowMs: number, signal: AbortSignal): Promise<FailpointResult> {
      // Failpoints are read at start-up: this incarnation ends and the next one starts armed.
      await p.kill();
      await p.start({ failpoints: spec }).catch(() => undefined);
      if (!p.alive) return 'fired';
      const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      const exited = p.waitExit(windowMs).then(
        () => true,
        () => false,
      );
      const fired = await Promise.race([exited, aborted.then(() => false)]);
      if (fired) return 'fired';
      // Not reached in time: disarm it (a restart is the only way) so it cannot fire after heal.
      if (p.alive) await p.kill();
      return 'not-reached';
    },
  };
}

/** Runs the chaos scenario on the bank demo and returns its report (files written to `outDir`). */
export async function runChaosCluster(options: ChaosOptions): Promise<ChaosReport> {
  const t0 = Date.now();
  checkGroupOptions(options);
  const durationMs = options.durationMs ?? DEFAULT_CHAOS_DURATION_MS;
  const kinds = options.faults ?? (options.group === undefined ? FAULT_KINDS : ALL_FAULT_KINDS);
  const outDir = options.outDir ?? mkdtempSync(join(tmpdir(), 'verdict-chaos-'));
  const dir = join(outDir, 'data');
  mkdirSync(dir, { recursive: true });
  const bankCount = Math.max(2, options.participants ?? DEFAULT_CHAOS_PARTICIPANTS);
  const address = `127.0.0.1:${await fixedPort()}`;
  const names = Array.from({ length: bankCount }, (_, i) => `bank-${i + 1}`);
  const tls = options.tls === true ? await createThrowawayTls(join(dir, 'tls')) : undefined;
  if (tls) await Promise.all(names.map((name) => tls.issue('participant', name)));
  const security = tls ? await tls.client('initiator', CLUSTER_INITIATOR) : {};
  const single = options.group === undefined;
  const coordinator = new CoordinatorProcess({ address, dataDir: join(dir, 'coordinator'), logFile: join(dir, 'coordinator.log'), ...(tls ? { tls: tls.serverFiles } : {}) });
  let group: CoordinatorGroup | undefined;
  const proxies = new Map<string, FaultProxy>();
  const banks: BankProcess[] = [];
  const history: HistoryLine[] = [];
  const violations: Violation[] = [];
  /** When each bank reported each tx finished. */
  const finishedAt = new Map<string, number>();
  const progress = options.onProgress;
  let ticker: NodeJS.Timeout | undefined;
  try {
    if (options.group !== undefined) {
      progress?.(`starting a 3-member etcd and a coordinator group of ${options.group} in ${dir}`);
      // etcd's client loads only for a group run.
      group = await (await import('./coordinator-group.js')).CoordinatorGroup.start({ dir, members: options.group, ...(tls ? { tls: { memberArgs: tls.coordinatorArgs, security } } : {}) });
    } else {
      for (const name of names) proxies.set(name, await FaultProxy.start({ target: address, name }));
    }
    // In a group, every bank is given every member's address (its proxy) and follows the leader.
    const bankCoordinator = (name: string): string => (group ? group.addresses.join(',') : (proxies.get(name) as FaultProxy).address);
    for (const name of names) {
      const bank = new BankProcess(name, dir, bankCoordinator(name), {
        accounts: CHAOS_ACCOUNTS_PER_BANK,
        initialBalance: CHAOS_INITIAL_BALANCE,
        inquiryIntervalMs: DEFAULT_INQUIRY_INTERVAL_MS,
        ...(tls ? { tlsDir: tls.dir } : {}),
      });
      bank.on('message', (m) => {
        const message = m as { type: string; txId?: string; outcome?: string };
        if (message.type !== 'finished' || !message.txId) return;
        const at = Date.now();
        finishedAt.set(message.txId, Math.max(finishedAt.get(message.txId) ?? 0, at));
        history.push({ type: 'finished', at, participant: name, txId: message.txId, outcome: message.outcome ?? 'read-only', incarnation: bank.incarnation });
      });
      banks.push(bank);
    }
    progress?.(`starting ${single ? 'a coordinator and ' : ''}${bankCount} banks in ${dir}`);
    if (single) await coordinator.start();
    await Promise.all(banks.map((b) => b.start()));
    await waitConnected(banks);
    const startMs = Date.now() - t0;

    const coordinatorAddress = group ? group.addresses : address;
    const workload = new TransferWorkload({
      address: coordinatorAddress,
      banks: names.map((name) => ({ name, accounts: Array.from({ length: CHAOS_ACCOUNTS_PER_BANK }, (_, i) => String(i + 1)) })),
      seed: options.seed,
      totalMoney: bankCount * CHAOS_ACCOUNTS_PER_BANK * CHAOS_INITIAL_BALANCE,
      concurrency: options.concurrency ?? CHAOS_CONCURRENCY,
      security,
    });
    const servers: ManagedProcess[] = group ? [...group.members] : [coordinator];
    const targets = new Map<string, FaultTarget>([...servers, ...banks].map((p) => [p.name, processTarget(p)]));
    const schedule = buildSchedule({
      seed: options.seed,
      durationMs,
      kinds,
      ...(group ? groupScheduleTargets(names) : { processes: [coordinator.name, ...names], links: names, hub: coordinator.name }),
      failpoints: Object.fromEntries([
        [coordinator.name, COORDINATOR_CRASH_POINTS.map((p) => `${p}=crash`)],
        ...names.map((n) => [n, PARTICIPANT_CRASH_POINTS.map((p) => `${p}=crash`)]),
      ]),
    });
    const injector = new FaultInjector({ events: schedule, processes: targets, links: group ? group.proxies : proxies, ...(group ? { leaders: group } : {}) });
    injector.on('fault', (r) => history.push({ type: 'fault', at: Date.now(), ...r }));

    let phase = 'faults';
    let inDoubt: number | undefined;
    const tick = async (): Promise<void> => {
      const statuses = await Promise.all(banks.map((b) => (b.state === 'running' ? b.status(PROGRESS_STATUS_TIMEOUT_MS).catch(() => undefined) : undefined)));
      const known = statuses.filter((s) => s !== undefined);
      if (known.length > 0) inDoubt = known.reduce((n, s) => n + s.inDoubt, 0);
      const attempts = workload.attempts;
      progress?.(
        formatProgress({
          elapsedMs: Date.now() - t0,
          txs: attempts.length,
          committed: attempts.filter((a) => a.observed === 'committed').length,
          faults: injector.records.filter((r) => r.status === 'injected').length,
          inDoubt,
          phase,
        }),
      );
    };
    if (progress) ticker = setInterval(() => void tick(), PROGRESS_INTERVAL_MS);

    group?.watch();
    workload.start();
    injector.start();
    await new Promise((resolve) => setTimeout(resolve, durationMs));
    const t1 = Date.now();
    phase = 'healing';
    await injector.heal();
    for (const p of injector.problems) violations.push({ kind: 'liveness', message: p });
    try {
      await waitConnected(banks);
      workload.start();
      await workload.whenMore(COMMITS_AFTER_HEAL, COMMITS_AFTER_HEAL_TIMEOUT_MS, (a) => a.observed === 'committed');
    } catch (e) {
      violations.push({ kind: 'liveness', message: `no progress after healing: ${(e as Error).message}` });
    }
    await workload.stop();
    phase = 'settling';
    const views = new Map<string, TxView>();
    try {
      await waitSettled(coordinatorAddress, banks, workload, views, options.settleTimeoutMs ?? DEFAULT_CHAOS_SETTLE_MS, security);
    } catch (e) {
      violations.push({ kind: 'termination', message: `the cluster did not settle: ${(e as Error).message}` });
    }
    // Healed: every member runs, and no proxy interferes.
    const memberTls = await group?.checkTls();
    if (memberTls) violations.push(...tlsViolations(memberTls));
    const t2 = Date.now();
    phase = 'checking';
    if (ticker) clearInterval(ticker);
    ticker = undefined;
    for (const b of banks) await b.stop();
    await group?.unwatch();
    if (group) await group.stop();
    else await coordinator.stop();
    for (const p of [...servers, ...banks]) {
      for (const exit of p.exits) {
        if (exit.cause === 'unexpected') violations.push({ kind: 'process', message: `${exit.process} incarnation ${exit.incarnation} exited unexpectedly (${exit.signal ?? `code ${exit.code}`}${exit.reason ? `: ${exit.reason}` : ''}); see ${p.logFile}` });
      }
    }
    const durable = await readDurable(banks);
    const checked = checkHistory({ attempts: workload.attempts, finalViews: views, banks: durable, finished: new Map(banks.map((b) => [b.name, b.finished])) });
    violations.push(...checked.violations.map(classifyHistoryViolation));

    let maxInDoubtMs = 0;
    for (const a of workload.attempts) {
      history.push({ type: 'tx', at: a.startedAt, ...a, final: a.txId ? views.get(a.txId)?.outcome : undefined });
      const last = a.txId ? finishedAt.get(a.txId) : undefined;
      if (last !== undefined) maxInDoubtMs = Math.max(maxInDoubtMs, last - a.startedAt);
    }
    const s = checked.summary;
    const counts = injector.counts;
    const report: ChaosReport = {
      mode: 'bank',
      tls: tls !== undefined,
      seed: options.seed,
      durationMs,
      participants: names,
      faultKinds: [...kinds],
      schedule,
      faults: injector.records,
      faultCounts: counts,
      missingKinds: kinds.filter((k) => counts[k] === 0),
      txs: {
        attempts: s.attempts,
        committed: s.observed.committed,
        aborted: s.observed.aborted,
        failedToInitiator: s.observed.unknown + s.observed['not-begun'],
        unknownResolved: { committed: s.unknownResolved.committed, aborted: s.unknownResolved.aborted, unresolved: s.unknownResolved.unresolved + s.observed['not-begun'] },
        finalCommitted: s.committed,
        finalAborted: s.aborted,
      },
      recoveries: injector.recoveries,
      maxInDoubtMs,
      violations,
      elapsedMs: Date.now() - t0,
      timings: { startMs, faultsMs: t1 - t0 - startMs, healMs: t2 - t1, checkMs: Date.now() - t2 },
      dir,
      ...(group ? { group: groupReport(group, injector.records, memberTls) } : {}),
    };
    writeChaosReport(outDir, report, history);
    return report;
  } finally {
    if (ticker) clearInterval(ticker);
    await Promise.all([coordinator, ...banks].map((p) => (p.alive ? p.kill().catch(() => undefined) : undefined)));
    await Promise.all([...proxies.values()].map((p) => p.close()));
    await group?.close();
  }
}

/**
 * What a group run's report says about the group: its members, the leaders etcd named in turn, the
 * leader faults carried out, and (in a TLS run) how every member served TLS.
 */
export function groupReport(group: CoordinatorGroup, records: readonly FaultRecord[], tls?: readonly MemberTlsReport[]): ChaosGroupReport {
  const leaders = summarizeLeaders(group.leaderChanges);
  const leaderFaults = records.filter((r) => LEADER_FAULTS.has(r.kind) && r.status === 'injected');
  return {
    members: group.members.map((m) => m.name),
    leaderChanges: group.leaderChanges,
    leaders: leaders.sequence,
    failovers: leaders.failovers,
    leaderKills: leaderFaults.filter((r) => r.kind === 'leader-kill').length,
    leaderPauses: leaderFaults.filter((r) => r.kind === 'leader-pause').length,
    exits: group.members
      .flatMap((m) => m.exits)
      .sort((a, b) => a.at - b.at)
      .map((e) => ({ member: e.process, incarnation: e.incarnation, signal: e.signal, cause: e.cause, at: e.at })),
    takeovers: leaderFaults.flatMap((r) => (r.failover && r.member ? [{ kind: r.kind, from: r.member, to: r.failover.to, withoutLeaderMs: r.failover.withoutLeaderMs }] : [])),
    ...(tls ? { tls } : {}),
  };
}

/** Waits until every bank reports a session, all to the same coordinator epoch. */
async function waitConnected(banks: readonly BankProcess[]): Promise<void> {
  await poll('every bank to connect to the coordinator', CONNECT_TIMEOUT_MS, async () => {
    const statuses = await Promise.all(banks.map((b) => b.status().catch(() => undefined)));
    const epochs = new Set(statuses.map((s) => s?.epoch ?? 0));
    return epochs.size === 1 && !epochs.has(0);
  });
}

/** Polls until every tx id of the workload ended at the coordinator and no bank holds anything. */
async function waitSettled(
  address: string | readonly string[],
  banks: readonly BankProcess[],
  workload: TransferWorkload,
  views: Map<string, TxView>,
  timeoutMs: number,
  security: ClientSecurityOptions,
): Promise<void> {
  const txIds = workload.attempts.flatMap((a) => (a.txId ? [a.txId] : []));
  const quiet = async (): Promise<boolean> => {
    const statuses = await Promise.all(banks.map((b) => b.status().catch(() => undefined)));
    return statuses.every((s) => s !== undefined && s.inDoubt === 0 && s.holds === 0 && s.unsettled === 0);
  };
  await waitAllEnded(address, txIds, views, timeoutMs, 'nothing in doubt at any bank and every transaction ended at the coordinator', quiet, security);
}

/** Every bank's durable state (ledger, seed, PREPARED records), read once it exited. */
async function readDurable(banks: readonly BankProcess[]): Promise<Map<string, DurableBank>> {
  const out = new Map<string, DurableBank>();
  for (const bank of banks) {
    const log = await ParticipantLog.open(levelStorage(bank.dataDir), systemClock, { groupCommit: false });
    try {
      const prepared = (await log.loadPrepared()).map((r) => r.txId);
      out.set(bank.name, { ledger: await readLedger(log.app), seed: (await log.app.get(SEED_KEY)) as DurableBank['seed'], prepared });
    } finally {
      await log.close();
    }
  }
  return out;
}
