// The fault-injection harness for users' own participants: `runChaos` runs the user's hooks in
// real Participants inside the caller's process (a test runner can't hand closures to a child
// process), each behind its own fault proxy, against a coordinator that is a real child process;
// a seeded schedule kills, pauses, partitions, delays, drops and resets, arms failpoints; then
// it heals, settles and checks the history with the same checker as `verdict chaos`.
//
// Differences from `verdict chaos`, where every participant is a process: a participant "kill"
// resets its connections and closes the Participant at once (hooks in progress are aborted, its
// session and LevelDB handle closed; nothing is drained or decided) and a new one starts on the same data directory, with hooks from
// `createHooks`; it cannot lose writes the way SIGKILL can. A "pause" holds the participant's
// traffic both ways (a frozen process looks like that to the network). Failpoint faults on
// participants arm `error` actions (the SDK must run the hook again), and they hold for every
// participant in this process at once. The coordinator is really SIGKILLed, SIGSTOPped and
// crashed at failpoints.
//
// With `group`, a coordinator group on a throwaway etcd replaces the coordinator (as in `verdict
// chaos --group`): the participants and the workload get every member's address and follow the
// leader; faults aimed at the coordinator hit the member that leads, links are the members'
// links, leader kills and pauses join in, and a participant cannot be paused on its own.

import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import { VerdictClient } from '../client/client.js';
import type { BranchInput } from '../client/client-options.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { checkChaosHistory, type ChaosTx, type FinishedRecord, type InitiatorView } from '../faults/chaos-check.js';
import { FaultInjector, type FailpointResult, type FaultTarget } from '../faults/chaos-injector.js';
import { formatProgress, tlsViolations, writeChaosReport, type ChaosReport, type HistoryLine, type Violation } from '../faults/chaos-report.js';
import { COORDINATOR_CRASH_POINTS, checkGroupOptions, groupReport, processTarget } from '../faults/chaos.js';
import { ALL_FAULT_KINDS, FAULT_KINDS, LEADER_TARGET, buildSchedule, type FaultKind } from '../faults/chaos-schedule.js';
import type { CoordinatorGroup } from '../faults/coordinator-group.js';
import { DEFAULT_GROUP_MEMBERS } from '../faults/coordinator-group-options.js';
import type { ManagedProcess } from '../faults/managed-process.js';
import { armFailpointsFrom, disarmFailpoint, parseFailpointSpec } from '../common/failpoints.js';
import { FaultProxy } from '../faults/fault-proxy.js';
import { CLUSTER_INITIATOR, CoordinatorProcess, fixedPort, poll, waitAllEnded } from '../faults/process-cluster.js';
import { createThrowawayTls } from '../common/throwaway-tls.js';
import type { ClientSecurityOptions } from '../common/tls.js';
import { Participant } from '../participant/participant.js';
import { systemClock } from '../common/clock.js';
import { levelStorage } from '../common/level-errors.js';
import { ParticipantLog, type AppStore } from '../participant/participant-log.js';
import type { ParticipantHooks } from '../participant/participant-options.js';
import type { TxView } from '../protocol/coordinator-events.js';
import { Prng } from '../sim/prng.js';
import {
  DEFAULT_HARNESS_CALL_TIMEOUT_MS,
  DEFAULT_HARNESS_CONCURRENCY,
  DEFAULT_HARNESS_DURATION_MS,
  DEFAULT_HARNESS_SETTLE_MS,
  DEFAULT_HARNESS_TX_TIMEOUT_MS,
  HARNESS_INQUIRY_INTERVAL_MS,
  HARNESS_PARTICIPANT_FAILPOINTS,
  type ChaosParticipant,
  type HistoryTx,
  type RunChaosOptions,
} from './harness-options.js';

/** How long participants may take to connect, in ms. */
const CONNECT_TIMEOUT_MS = 20_000;
/** Commits that must follow healing. */
const COMMITS_AFTER_HEAL = 2;
/**
 * Participant failpoints whose error would escape the SDK as an uncaught exception (they sit in a
 * callback): armed in this process they would end the test run, so the harness never arms them.
 */
const UNSAFE_IN_PROCESS: ReadonlySet<string> = new Set(['participant.after-prepared-record', 'participant.after-vote-sent']);
/** Pause of a workload worker after a call that failed without an answer, in ms. */
const UNREACHABLE_PAUSE_MS = 100;

/** A user's participant, run in this process and restartable on its data directory. */
class HostedParticipant implements FaultTarget {
  readonly name: string;
  readonly dataDir: string;
  readonly #spec: ChaosParticipant;
  /** The participant's own proxy; none in a group run (the members' proxies carry its traffic). */
  readonly #proxy: FaultProxy | undefined;
  /** What it dials: its proxy, or every member of the group. */
  readonly #coordinator: string | readonly string[];
  readonly #recorder: Recorder;
  #participant: Participant | undefined;
  /** Stops the current incarnation (the participant, or what `start` returned). */
  #stop: (() => Promise<void>) | undefined;
  #incarnation = 0;
  #paused = false;

  readonly #security: ClientSecurityOptions;

  constructor(spec: ChaosParticipant, dir: string, link: FaultProxy | readonly string[], recorder: Recorder, security: ClientSecurityOptions) {
    this.name = spec.name;
    this.dataDir = join(dir, spec.name);
    this.#spec = spec;
    this.#proxy = link instanceof FaultProxy ? link : undefined;
    this.#coordinator = link instanceof FaultProxy ? link.address : link;
    this.#recorder = recorder;
    this.#security = security;
  }

  get participant(): Participant | undefined {
    return this.#participant;
  }

  get alive(): boolean {
    const state = this.#participant?.state;
    return state === 'connecting' || state === 'connected';
  }

  get paused(): boolean {
    return this.#paused;
  }

  async start(): Promise<void> {
    if (this.alive) throw new Error(`${this.name} is already running`);
    // A participant that stopped by itself (its log failed) still holds its LevelDB: release it.
    await this.#stop?.().catch(() => undefined);
    const incarnation = ++this.#incarnation;
    mkdirSync(this.dataDir, { recursive: true });
    this.#participant = undefined;
    // The store opens with the participant, after the hooks are built: hand out a stand-in that
    // forwards to the store of this incarnation (destructuring it in createHooks is fine).
    const current = (): AppStore => {
      if (!this.#participant) throw new VerdictError(ErrorCode.WRONG_STATE, `participant ${this.name} is not started yet`);
      return this.#participant.store;
    };
    const store = new Proxy({} as AppStore, {
      get: (_, prop) => {
        const target = current();
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const logger = pino({ name: this.name, level: process.env['VERDICT_LOG_LEVEL'] ?? 'silent' });
    const protocol = { inquiryIntervalMs: HARNESS_INQUIRY_INTERVAL_MS };
    let participant: Participant;
    if (this.#spec.start) {
      const started = await this.#spec.start({ name: this.name, coordinator: this.#coordinator, dataDir: this.dataDir, incarnation, protocol, security: this.#security, logger });
      participant = started.participant;
      this.#stop = () => started.close();
    } else {
      const ctx = { name: this.name, dataDir: this.dataDir, incarnation, store };
      const hooks = this.#spec.hooks ?? (await this.#spec.createHooks?.(ctx));
      if (!hooks) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `participant ${this.name} has neither hooks, createHooks nor start`);
      participant = await Participant.start({
        name: this.name,
        coordinator: this.#coordinator,
        dataDir: this.dataDir,
        hooks: this.#recorder.wrap(this.name, hooks),
        protocol,
        logger,
        ...this.#security,
      });
      this.#stop = () => participant.close();
    }
    this.#participant = participant;
    participant.on('finished', (txId, outcome) => this.#recorder.finished(this.name, txId, outcome ?? 'read-only', incarnation));
    participant.on('error', (e) => this.#recorder.note(`${this.name} stopped by itself: ${e.message}`));
  }

  /** The emulated crash: connections reset, the Participant dropped without waiting on anything. */
  async kill(): Promise<void> {
    this.#proxy?.resetAll();
    await this.#stop?.();
  }

  pause(): void {
    // A group run never schedules it: the participant's traffic shares the members' proxies.
    if (!this.#proxy) throw new Error(`${this.name} has no link of its own to hold in a group run`);
    this.#paused = true;
    this.#proxy.set({ kind: 'blackhole' }, 'both');
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#proxy?.heal();
  }

  async failpoint(spec: string, windowMs: number, signal: AbortSignal): Promise<FailpointResult> {
    const parsed = parseFailpointSpec(spec);
    if (parsed.some((f) => f.action.kind !== 'error')) throw new Error(`only error failpoints can be armed in this process (got ${spec})`);
    armFailpointsFrom(spec);
    try {
      await delay(windowMs, undefined, { signal }).catch(() => undefined);
    } finally {
      for (const f of parsed) disarmFailpoint(f.name);
    }
    return 'armed';
  }

  /** Closes for good (after the run). */
  async close(): Promise<void> {
    await this.#stop?.();
  }
}

/** What the participants did, as seen from inside them. */
class Recorder {
  readonly finishedBy = new Map<string, Map<string, FinishedRecord[]>>();
  readonly preparedAt = new Map<string, number>();
  readonly violations: Violation[] = [];
  readonly history: HistoryLine[] = [];
  readonly notes: string[] = [];
  maxInDoubtMs = 0;

  wrap(name: string, hooks: ParticipantHooks): ParticipantHooks {
    const guard = (txId: string, hook: string): void => {
      const done = this.finishedBy.get(name)?.get(txId);
      if (done && done.length > 0) {
        this.violations.push({ kind: 'duplicate-hook-call', message: `${name}: ${hook} ran for ${txId}, which had already finished ${done[0]?.outcome}` });
      }
    };
    return {
      prepare: async (txId, payload, ctx) => {
        const result = await hooks.prepare(txId, payload, ctx);
        const vote = typeof result === 'string' ? result : result.vote;
        const key = `${name}/${txId}`;
        if (vote === 'yes' && !this.preparedAt.has(key)) this.preparedAt.set(key, Date.now());
        return result;
      },
      commit: async (txId, ctx) => {
        guard(txId, 'commit');
        await hooks.commit(txId, ctx);
      },
      abort: async (txId, ctx) => {
        guard(txId, 'abort');
        await hooks.abort(txId, ctx);
      },
    };
  }

  finished(name: string, txId: string, outcome: string, incarnation: number): void {
    const at = Date.now();
    let byTx = this.finishedBy.get(name);
    if (!byTx) this.finishedBy.set(name, (byTx = new Map()));
    const list = byTx.get(txId) ?? [];
    list.push({ outcome, incarnation, at });
    byTx.set(txId, list);
    const preparedAt = this.preparedAt.get(`${name}/${txId}`);
    if (preparedAt !== undefined) this.maxInDoubtMs = Math.max(this.maxInDoubtMs, at - preparedAt);
    this.history.push({ type: 'finished', at, participant: name, txId, outcome, incarnation });
  }

  note(message: string): void {
    this.notes.push(message);
    this.history.push({ type: 'note', at: Date.now(), message });
  }
}

/** The workload: transactions from the user's function, each `begin` then `commit`. */
class Workload {
  readonly txs: (ChaosTx & { branches: readonly BranchInput[] })[] = [];
  #seq = 0;
  #stopped = false;
  #running: Promise<void> | undefined;
  readonly #commitWaiters = new Set<() => void>();

  constructor(
    private readonly address: string | readonly string[],
    private readonly seed: number,
    private readonly names: readonly string[],
    private readonly options: RunChaosOptions,
    private readonly security: ClientSecurityOptions,
  ) {}

  start(): void {
    this.#stopped = false;
    const n = this.options.concurrency ?? DEFAULT_HARNESS_CONCURRENCY;
    this.#running = Promise.all([this.#running, ...Array.from({ length: n }, () => this.#worker())]).then(() => undefined);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }

  /** Resolves after `n` more transactions the initiator saw commit; rejects after `timeoutMs`. */
  async commits(n: number, timeoutMs: number): Promise<void> {
    let seen = 0;
    await new Promise<void>((resolve, reject) => {
      const onCommit = (): void => {
        if (++seen < n) return;
        clearTimeout(timer);
        this.#commitWaiters.delete(onCommit);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#commitWaiters.delete(onCommit);
        reject(new Error(`only ${seen} of ${n} transactions committed within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#commitWaiters.add(onCommit);
    });
  }

  branchesOf(seq: number): readonly BranchInput[] {
    const rng = new Prng((this.seed ^ Math.imul(seq + 1, 0x9e3779b1)) >>> 0);
    const make = this.options.transaction;
    if (make) return make({ seq, rng, participants: this.names });
    return this.names.map((participant) => ({ participant, payload: JSON.stringify({ seq }) }));
  }

  async #worker(): Promise<void> {
    const callTimeoutMs = DEFAULT_HARNESS_CALL_TIMEOUT_MS;
    let client = new VerdictClient(this.address, { callTimeoutMs, ...this.security });
    try {
      while (!this.#stopped) {
        const seq = this.#seq++;
        const branches = this.branchesOf(seq);
        const startedAt = Date.now();
        let txId: string | undefined;
        let observed: InitiatorView;
        let error: string | undefined;
        try {
          ({ txId } = await client.begin({ timeoutMs: this.options.txTimeoutMs ?? DEFAULT_HARNESS_TX_TIMEOUT_MS }));
          await client.commit(txId, branches);
          observed = 'committed';
        } catch (e) {
          error = e instanceof VerdictError ? `${e.code}: ${e.message}` : String(e);
          observed = txId === undefined ? 'not-begun' : e instanceof VerdictError && e.code === ErrorCode.TX_ABORTED ? 'aborted' : 'unknown';
        }
        this.txs.push({ seq, txId, participants: branches.map((b) => b.participant), branches, observed, error, startedAt, endedAt: Date.now() });
        if (observed === 'committed') for (const w of [...this.#commitWaiters]) w();
        if (observed === 'unknown' || observed === 'not-begun') {
          // A fresh channel connects at once instead of waiting out grpc's reconnect backoff.
          client.close();
          client = new VerdictClient(this.address, { callTimeoutMs, ...this.security });
          if (!this.#stopped) await delay(UNREACHABLE_PAUSE_MS);
        }
      }
    } finally {
      client.close();
    }
  }
}

/**
 * Runs the user's participants under faults and checks the history. Never throws for a violation:
 * they are in the report (see `assertNoViolations`).
 */
export async function runChaos(options: RunChaosOptions): Promise<ChaosReport> {
  const t0 = Date.now();
  if (options.participants.length === 0) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, 'runChaos needs at least one participant');
  const names = options.participants.map((p) => p.name);
  if (new Set(names).size !== names.length) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, 'participant names must be distinct');
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const durationMs = options.duration ?? DEFAULT_HARNESS_DURATION_MS;
  const members = options.group === undefined ? undefined : options.group === true ? DEFAULT_GROUP_MEMBERS : options.group;
  checkGroupOptions({ group: members, faults: options.faults });
  const kinds = options.faults ?? (members === undefined ? FAULT_KINDS : ALL_FAULT_KINDS);
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'verdict-chaos-harness-'));
  mkdirSync(dir, { recursive: true });
  const address = `127.0.0.1:${await fixedPort()}`;
  const tls = options.tls === true ? await createThrowawayTls(join(dir, 'tls')) : undefined;
  const initiator = tls ? await tls.client('initiator', CLUSTER_INITIATOR) : {};
  const coordinator = new CoordinatorProcess({ address, dataDir: join(dir, 'coordinator'), logFile: join(dir, 'coordinator.log'), ...(tls ? { tls: tls.serverFiles } : {}) });
  const recorder = new Recorder();
  const proxies = new Map<string, FaultProxy>();
  const hosted: HostedParticipant[] = [];
  const violations: Violation[] = [];
  let group: CoordinatorGroup | undefined;
  let ticker: NodeJS.Timeout | undefined;
  try {
    // etcd's client loads only for a group run.
    if (members !== undefined) {
      group = await (await import('../faults/coordinator-group.js')).CoordinatorGroup.start({ dir, members, ...(tls ? { tls: { memberArgs: tls.coordinatorArgs, security: initiator } } : {}) });
    }
    else await coordinator.start();
    for (const spec of options.participants) {
      if (group) {
        hosted.push(new HostedParticipant(spec, dir, group.addresses, recorder, tls ? await tls.client('participant', spec.name) : {}));
        continue;
      }
      const proxy = await FaultProxy.start({ target: address, name: spec.name });
      proxies.set(spec.name, proxy);
      hosted.push(new HostedParticipant(spec, dir, proxy, recorder, tls ? await tls.client('participant', spec.name) : {}));
    }
    for (const h of hosted) await h.start();
    await waitConnected(hosted);
    const startMs = Date.now() - t0;

    const faultable = (name: string): boolean => options.targets === undefined || options.targets.includes(name);
    const chosen = options.failpoints;
    const coordinatorPoints = (chosen ?? COORDINATOR_CRASH_POINTS).filter((p) => p.startsWith('coordinator.')).map((p) => `${p}=crash`);
    const participantPoints = chosen
      ? chosen.filter((p) => p.startsWith('participant.') && !UNSAFE_IN_PROCESS.has(p)).map((p) => `${p}=error`)
      : [...HARNESS_PARTICIPANT_FAILPOINTS];
    const failpoints = Object.fromEntries([
      [coordinator.name, coordinatorPoints],
      ...names.map((n) => [n, participantPoints]),
    ]);
    const schedule = buildSchedule({
      seed,
      durationMs,
      kinds,
      failpoints,
      ...(group
        ? groupTargets(names.filter(faultable), faultable(coordinator.name) || faultable(LEADER_TARGET))
        : { processes: [coordinator.name, ...names].filter(faultable), links: names.filter(faultable), hub: coordinator.name }),
    });
    const servers: ManagedProcess[] = group ? [...group.members] : [coordinator];
    const targets = new Map<string, FaultTarget>([...servers.map((p) => [p.name, processTarget(p)] as const), ...hosted.map((h) => [h.name, h] as const)]);
    const injector = new FaultInjector({ events: schedule, processes: targets, links: group ? group.proxies : proxies, ...(group ? { leaders: group } : {}) });
    injector.on('fault', (r) => recorder.history.push({ type: 'fault', at: Date.now(), ...r }));
    const coordinatorAddress = group ? group.addresses : address;
    const workload = new Workload(coordinatorAddress, seed, names, options, initiator);

    let phase = 'faults';
    if (options.onProgress) {
      const onProgress = options.onProgress;
      ticker = setInterval(() => {
        onProgress(
          formatProgress({
            elapsedMs: Date.now() - t0,
            txs: workload.txs.length,
            committed: workload.txs.filter((t) => t.observed === 'committed').length,
            faults: injector.records.filter((r) => r.status === 'injected').length,
            inDoubt: hosted.reduce((n, h) => n + (h.alive ? (h.participant?.inDoubt().length ?? 0) : 0), 0),
            phase,
          }),
        );
      }, 1_000);
    }

    group?.watch();
    workload.start();
    injector.start();
    await delay(durationMs);
    const t1 = Date.now();
    phase = 'healing';
    await injector.heal();
    for (const p of injector.problems) violations.push({ kind: 'liveness', message: p });
    try {
      await waitConnected(hosted);
      await workload.commits(COMMITS_AFTER_HEAL, 20_000);
    } catch (e) {
      violations.push({ kind: 'liveness', message: `no progress after healing: ${(e as Error).message}` });
    }
    await workload.stop();
    phase = 'settling';
    const views = new Map<string, TxView>();
    try {
      await waitSettled(coordinatorAddress, hosted, workload.txs, views, options.settleTimeoutMs ?? DEFAULT_HARNESS_SETTLE_MS, initiator);
    } catch (e) {
      violations.push({ kind: 'termination', message: `the run did not settle: ${(e as Error).message}` });
    }
    // Healed: every member runs, and no proxy interferes.
    const memberTls = await group?.checkTls();
    if (memberTls) violations.push(...tlsViolations(memberTls));
    const t2 = Date.now();
    if (ticker) clearInterval(ticker);
    ticker = undefined;

    // The user's view, participants still open.
    const history: HistoryTx[] = workload.txs.map((t) => ({ ...t, outcome: t.txId ? views.get(t.txId)?.outcome : undefined }));
    const stores = new Map(hosted.flatMap((h) => (h.participant && h.alive ? [[h.name, h.participant.store] as const] : [])));
    if (options.invariant) {
      try {
        const found = await options.invariant({ stores, history });
        for (const message of found ?? []) violations.push({ kind: 'invariant', message });
      } catch (e) {
        violations.push({ kind: 'invariant', message: (e as Error)?.message ?? String(e) });
      }
    }
    const effects = new Map<string, ReadonlyMap<string, number>>();
    for (const spec of options.participants) {
      const store = stores.get(spec.name);
      if (spec.effects && store) effects.set(spec.name, await spec.effects({ name: spec.name, store }));
    }
    for (const h of hosted) await h.close();
    await group?.unwatch();
    if (group) await group.stop();
    else await coordinator.stop();
    for (const server of servers) {
      for (const exit of server.exits) {
        if (exit.cause === 'unexpected') violations.push({ kind: 'process', message: `${group ? `member ${server.name}` : 'the coordinator'} (incarnation ${exit.incarnation}) exited unexpectedly; see ${server.logFile}` });
      }
    }

    // What every participant durably holds.
    const records = new Map<string, Map<string, string>>();
    const prepared = new Map<string, string[]>();
    for (const h of hosted) {
      const log = await ParticipantLog.open(levelStorage(h.dataDir), systemClock, { groupCommit: false });
      try {
        const inDoubt = await log.loadPrepared();
        prepared.set(h.name, inDoubt.map((r) => r.txId));
        const mine = workload.txs.filter((t) => t.txId && t.participants.includes(h.name)).map((t) => t.txId ?? '');
        const states = new Map<string, string>();
        for (const txId of mine) {
          const record = log.outcomeOf(txId);
          if (record) states.set(txId, record.state);
        }
        const wanted = new Set(mine);
        for (const r of inDoubt) if (wanted.has(r.txId)) states.set(r.txId, r.state);
        records.set(h.name, states);
      } finally {
        await log.close();
      }
    }
    violations.push(...recorder.violations);
    violations.push(...checkChaosHistory({ txs: workload.txs, views, records, prepared, finished: recorder.finishedBy, effects }));

    const counts = injector.counts;
    const observed = (v: InitiatorView): number => history.filter((t) => t.observed === v).length;
    const failed = history.filter((t) => t.observed === 'unknown' || t.observed === 'not-begun');
    const report: ChaosReport = {
      mode: 'harness',
      tls: tls !== undefined,
      seed,
      durationMs,
      participants: names,
      faultKinds: [...kinds],
      schedule,
      faults: injector.records,
      faultCounts: counts,
      missingKinds: kinds.filter((k) => counts[k] === 0),
      txs: {
        attempts: history.length,
        committed: observed('committed'),
        aborted: observed('aborted'),
        failedToInitiator: failed.length,
        unknownResolved: {
          committed: failed.filter((t) => t.outcome === 'committed').length,
          aborted: failed.filter((t) => t.outcome === 'aborted').length,
          unresolved: failed.filter((t) => t.outcome === undefined).length,
        },
        finalCommitted: history.filter((t) => t.outcome === 'committed').length,
        finalAborted: history.filter((t) => t.outcome === 'aborted').length,
      },
      recoveries: injector.recoveries,
      maxInDoubtMs: recorder.maxInDoubtMs,
      violations,
      elapsedMs: Date.now() - t0,
      timings: { startMs, faultsMs: t1 - t0 - startMs, healMs: t2 - t1, checkMs: Date.now() - t2 },
      dir,
      ...(group ? { group: groupReport(group, injector.records, memberTls) } : {}),
    };
    const lines: HistoryLine[] = [...recorder.history, ...history.map((t) => ({ type: 'tx', at: t.startedAt, ...t }))];
    writeChaosReport(dir, report, lines);
    return report;
  } finally {
    if (ticker) clearInterval(ticker);
    disarmFailpoint();
    await Promise.all(hosted.map((h) => h.close().catch(() => undefined)));
    if (coordinator.alive) await coordinator.kill().catch(() => undefined);
    await Promise.all([...proxies.values()].map((p) => p.close()));
    await group?.close();
  }
}

/**
 * The schedule's targets in a group run: the leader in place of the coordinator (when it may be
 * faulted), the members' links, and no pause of a participant (its traffic has no link of its own).
 */
function groupTargets(participants: readonly string[], leader: boolean): {
  processes: string[];
  links: string[];
  hub?: string;
  targetsByKind: Partial<Record<FaultKind, readonly string[]>>;
} {
  const leaders = leader ? [LEADER_TARGET] : [];
  return {
    processes: [...leaders, ...participants],
    links: leaders,
    ...(leader ? { hub: LEADER_TARGET } : {}),
    targetsByKind: { pause: leaders, 'leader-kill': leaders, 'leader-pause': leaders, failpoint: [...participants] },
  };
}

/** Waits until every participant holds a session, all to the same coordinator epoch. */
async function waitConnected(hosted: readonly HostedParticipant[]): Promise<void> {
  await poll('every participant to connect to the coordinator', CONNECT_TIMEOUT_MS, () => {
    const epochs = new Set(hosted.map((h) => (h.participant?.state === 'connected' ? h.participant.coordinatorEpoch : 0)));
    return epochs.size === 1 && !epochs.has(0);
  });
}

/** Polls until every transaction ended at the coordinator and nothing is in doubt anywhere. */
async function waitSettled(
  address: string | readonly string[],
  hosted: readonly HostedParticipant[],
  txs: readonly ChaosTx[],
  views: Map<string, TxView>,
  timeoutMs: number,
  security: ClientSecurityOptions,
): Promise<void> {
  const txIds = txs.flatMap((t) => (t.txId ? [t.txId] : []));
  const quiet = (): boolean => hosted.every((h) => (h.participant?.inDoubt().length ?? 0) === 0);
  await waitAllEnded(address, txIds, views, timeoutMs, 'every transaction to end at the coordinator and nothing in doubt', quiet, security);
}

/** Throws an AssertionError listing every violation of `report` (for test runners). */
export function assertNoViolations(report: ChaosReport): void {
  if (report.violations.length === 0) return;
  const lines = report.violations.slice(0, 20).map((v) => `  [${v.kind}] ${v.message}`);
  const error = new Error(`chaos run (seed ${report.seed}) found ${report.violations.length} violation(s):\n${lines.join('\n')}\n  data and logs: ${report.dir}`);
  error.name = 'AssertionError';
  throw error;
}
