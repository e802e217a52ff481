// The simulated world: one coordinator and N participants, each the very Coordinator and
// Participant that the CLI and the SDK run, built over the simulator's seams: its clock, its
// disks (memory-level under a fault layer) and its transport (in-memory gRPC-like streams). The
// world owns only the network, the disks, the clock, the scheduler, the workload and the checker.
// With a coordinator group (scenario.group), the coordinator is 1–3 production
// CoordinatorGroupMembers over a simulated etcd (sim-etcd.ts), each at an address of its own;
// participants and initiators follow the leader with the SDKs' own code (see "the coordinator
// group" below).
// Everything random comes from the scenario's seed, so a scenario always produces the same run.
// Between two events the world lets every promise the last one set off settle, so the shells run
// exactly as they would on a real event loop, only on virtual time.

import { pino } from 'pino';
import { CoordinatorGroupMember } from '../cluster/coordinator-group-member.js';
import { DEFAULT_ETCD_PREFIX } from '../cluster/group-member-options.js';
import type { MemberTransport } from '../cluster/group-member-seams.js';
import type { LeaderGate } from '../cluster/leader-gated-transport.js';
import type { Clock, Timer } from '../common/clock.js';
import type { CoordinatorHandlers } from '../common/transport.js';
import { armMutants, type MutantName } from '../common/mutants.js';
import { Coordinator } from '../coordinator/coordinator.js';
import type { CoordinatorObserver } from '../coordinator/coordinator-options.js';
import { Participant } from '../participant/participant.js';
import type { ParticipantObserver } from '../participant/participant-options.js';
import type { CoordinatorEffect, CoordinatorReply } from '../protocol/coordinator-events.js';
import type { ParticipantEffect } from '../protocol/participant-events.js';
import { Checker, PROPERTIES, type PropertyId, type Violation } from './checker.js';
import { Prng } from './prng.js';
import { DISK_FAULTS, participantNames, type FaultPlan, type Scenario, type TxPlan } from './scenario.js';
import { simHooks } from './sim-app.js';
import { SimClient } from './sim-client.js';
import { SimClock } from './sim-clock.js';
import { SimDisk, simStorage, type DiskFault, type SimStore, type StoreIo } from './sim-disk.js';
import { SimEtcd, type EtcdWorld, type SimEtcdStats } from './sim-etcd.js';
import { COORDINATOR, DEFAULT_SIM_CONFIG, type SimConfig } from './sim-options.js';
import { memberAddress, SimNet, type NetworkStats } from './sim-transport.js';
import { DEFAULT_RECONNECT_INITIAL_MS, DEFAULT_RECONNECT_MAX_MS } from '../common/connection-options.js';
import { Trace, type TraceLine } from './trace.js';

/** How to run a scenario. */
export interface RunOptions {
  /** Arm a mutant switch in the production code for this run. */
  readonly mutant?: MutantName;
  /** Keep the readable trace (slower); the trace hash is computed only then. */
  readonly trace?: boolean;
  readonly config?: SimConfig;
  /** A run taking more steps than this is a livelock (reported as P10). */
  readonly maxSteps?: number;
}

/** What a run did and found. */
export interface RunResult {
  readonly scenario: Scenario;
  readonly mutant: MutantName | undefined;
  readonly violations: readonly Violation[];
  readonly steps: number;
  readonly faultsInjected: number;
  readonly simulatedMs: number;
  readonly transactions: { readonly committed: number; readonly aborted: number; readonly undecided: number };
  readonly network: NetworkStats;
  /** The coordinator group's figures (group runs only): etcd's counters and the leaders elected. */
  readonly group?: SimEtcdStats & { readonly elections: number };
  /** How often each property was checked in this run. */
  readonly exercised: Readonly<Record<PropertyId, number>>;
  readonly trace: readonly TraceLine[];
  /** Hash of the trace (only when traced). */
  readonly traceHash: string;
}

const DEFAULT_MAX_STEPS = 400_000;
/** An operator (or supervisor) restarts a process that stopped on a log failure after this long. */
const FAIL_STOP_RESTART_MS = 50;
/** A timer interval so long that it never fires within a run (garbage collection off). */
const NEVER_MS = 1e12;
/** The shells' logger: silent, unless VERDICT_SIM_LOG names a level (for debugging a run). */
const SIM_LOGGER = pino({ level: process.env['VERDICT_SIM_LOG'] ?? 'silent' }, pino.destination({ fd: 2, sync: true }));

interface SimEvent {
  readonly node: string | undefined;
  /** The process incarnation the event belongs to (undefined: any, e.g. an arrival on the network). */
  readonly inc: number | undefined;
  readonly fn: () => void;
}

interface Slot {
  readonly name: string;
  readonly disk: SimDisk;
  readonly prng: Prng;
  inc: number;
  up: boolean;
  paused: boolean;
  pauseId: number;
  deferred: SimEvent[];
  coordinator: Coordinator | undefined;
  participant: Participant | undefined;
  store: SimStore | undefined;
  /** A coordinator group member's part (group runs only). */
  member: MemberState | undefined;
}

/** One incarnation of a coordinator group member, as its seams see it. */
interface MemberState {
  /** The production member, once started. */
  member: CoordinatorGroupMember | undefined;
  /** Its gate: whether it serves as leader now. */
  gate: LeaderGate | undefined;
  /** The handlers its current term's coordinator serves, while it serves. */
  handlers: CoordinatorHandlers | undefined;
}

/** The etcd key layout of the simulated group (the production default prefix). */
const GROUP_PREFIX = DEFAULT_ETCD_PREFIX;
/** How often a follower campaigns, in ms (production: 250 ms against a 5 s lease). */
const GROUP_CAMPAIGN_INTERVAL_MS = 100;
/** Deadline of one decision-log call to etcd, in ms. */
const GROUP_ETCD_CALL_TIMEOUT_MS = 300;

type Phase = 'faults' | 'settling' | 'querying' | 'done';

/** Runs `scenario` to the end (or to its first violation) and reports what happened. */
export function runScenario(scenario: Scenario, options: RunOptions = {}): Promise<RunResult> {
  return new Simulation(scenario, options).run();
}

/** Lets every promise the last event set off settle (a macrotask turn: microtasks all ran). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** One simulated world. Use `runScenario`. */
export class Simulation {
  readonly #scenario: Scenario;
  readonly #options: RunOptions;
  readonly #config: SimConfig;
  readonly #clock = new SimClock<SimEvent>();
  readonly #prng: Prng;
  readonly #faultPrng: Prng;
  readonly #trace: Trace;
  readonly #slots = new Map<string, Slot>();
  readonly #names: string[];
  readonly #net: SimNet;
  readonly #client: SimClient;
  readonly #checker: Checker;
  readonly #planOfTx = new Map<string, number>();
  readonly #count = { steps: 0, faults: 0, replaying: false };
  #phase: Phase = 'faults';
  #deadline = 0;
  /** The simulated etcd and the members' names (group runs only). */
  readonly #etcd: SimEtcd | undefined;
  readonly #members: readonly string[];
  /** The member that serves as leader now (its gate is open), as the checker sees the coordinator. */
  #routed: string | undefined;
  #elections = 0;

  constructor(scenario: Scenario, options: RunOptions = {}) {
    this.#scenario = scenario;
    this.#options = options;
    this.#config = options.config ?? DEFAULT_SIM_CONFIG;
    const root = new Prng(scenario.seed);
    this.#prng = root.fork();
    this.#faultPrng = root.fork();
    this.#trace = new Trace(options.trace === true);
    this.#names = participantNames(scenario);
    this.#checker = new Checker(this.#checkerWorld());
    const c = this.#config;
    const group = scenario.group;
    this.#members = group ? Array.from({ length: group.members }, (_, i) => `coordinator-${i + 1}`) : [];
    this.#net = new SimNet(this.#netWorld(), this.#netObserver(), {
      minDelayMs: c.netMinDelayMs,
      maxDelayMs: c.netMaxDelayMs,
      keepaliveMs: c.keepaliveTimeoutMs,
      connectTimeoutMs: c.connectTimeoutMs,
      maxMessageBytes: c.maxMessageBytes,
      members: this.#members,
    });
    this.#client = new SimClient(this.#clientWorld(), this.#net, scenario, this.#members);
    for (const name of [COORDINATOR, ...this.#names]) this.#slots.set(name, this.#newSlot(name, root.fork()));
    for (const name of this.#members) this.#slots.set(name, this.#newSlot(name, root.fork()));
    this.#etcd = group ? new SimEtcd(this.#etcdWorld(), { leaderKey: `${GROUP_PREFIX}leader`, logPrefix: `${GROUP_PREFIX}log/` }) : undefined;
  }

  /** Runs to the end of the scenario, or to the first violation. */
  async run(): Promise<RunResult> {
    const s = this.#scenario;
    const onRejection = (e: unknown): void => this.#checker.fail('CRASH', `${PROPERTIES.CRASH}: unhandled rejection: ${(e as Error)?.stack ?? String(e)}`);
    process.on('unhandledRejection', onRejection);
    armMutants(...(this.#options.mutant ? [this.#options.mutant] : []));
    try {
      await this.#inStep(() => {
        this.#traceLine(`world: ${this.#names.length} participant(s): ${this.#names.join(', ')}${this.#options.mutant ? `; MUTANT ${this.#options.mutant}` : ''}`, [], true);
        for (const name of [...(this.#etcd ? this.#members : [COORDINATOR]), ...this.#names]) this.#start(name);
      });
      this.#client.start();
      for (const f of [...s.faults].sort((a, b) => a.at - b.at)) {
        if (f.at < s.faultWindowMs) this.#schedule(f.at, undefined, undefined, () => this.#inject(f));
      }
      if (s.network.resetPerMille > 0 || s.network.maxDelayMs > this.#config.netMaxDelayMs) this.#net.turbulence = s.network;
      this.#schedule(s.faultWindowMs, undefined, undefined, () => this.#healAll());
      const maxSteps = this.#options.maxSteps ?? DEFAULT_MAX_STEPS;
      while (this.#phase !== 'done' && this.#checker.violations.length === 0) {
        const event = this.#clock.next();
        if (!event) {
          this.#checker.fail('P10', 'the simulation ran out of events before everything finished');
          break;
        }
        await this.#process(event);
        if (this.#count.steps > maxSteps) {
          this.#checker.fail('P10', `no quiescence after ${maxSteps} steps (livelock?)`);
          break;
        }
        this.#advancePhase();
      }
    } finally {
      armMutants();
      process.off('unhandledRejection', onRejection);
    }
    return {
      scenario: s,
      mutant: this.#options.mutant,
      violations: this.#checker.violations,
      steps: this.#count.steps,
      faultsInjected: this.#count.faults,
      simulatedMs: this.#clock.now,
      transactions: this.#checker.outcomes(),
      network: { ...this.#net.stats },
      ...(this.#etcd ? { group: { ...this.#etcd.stats, elections: this.#elections } } : {}),
      exercised: { ...this.#checker.exercised },
      trace: this.#trace.lines,
      traceHash: this.#trace.hash,
    };
  }

  // ---- the event loop -----------------------------------------------------------------------

  #schedule(at: number, node: string | undefined, inc: number | undefined, fn: () => void): void {
    this.#clock.schedule(at, { node, inc, fn });
  }

  async #process(event: SimEvent): Promise<void> {
    // The address follows the gate as time passes: an event for the coordinator finds the current route.
    if (this.#etcd) this.#reroute();
    if (event.node !== undefined) {
      const slot = this.#slot(event.node);
      if (event.inc !== undefined && (!slot.up || slot.inc !== event.inc)) return;
      const host = this.#host(slot);
      if (host.paused) {
        host.deferred.push(event);
        return;
      }
    }
    await this.#inStep(event.fn);
  }

  /** Runs one step: the event, everything it set off, then the per-step checks. */
  async #inStep(fn: () => void): Promise<void> {
    this.#count.steps++;
    try {
      fn();
    } catch (e) {
      this.#checker.fail('CRASH', `${PROPERTIES.CRASH}: ${(e as Error)?.stack ?? String(e)}`);
    }
    await settle();
    if (this.#etcd) {
      this.#reroute();
      this.#checkLeaders();
    }
    this.#checker.afterStep();
  }

  #advancePhase(): void {
    const now = this.#clock.now;
    if (this.#phase === 'settling') {
      if (this.#settled()) {
        this.#traceLine('world: everything settled; final checks and status read-back', [], true);
        this.#checker.finalChecks();
        this.#phase = 'querying';
        this.#deadline = now + this.#config.maxCallMs * 2;
        for (const txId of this.#checker.txIds()) this.#client.get(txId);
      } else if (now > this.#deadline) {
        this.#checker.fail('P10', `not finished ${this.#config.settleMs} ms after faults stopped: ${this.#unfinished()}`);
      }
    } else if (this.#phase === 'querying') {
      if (this.#client.idle) this.#phase = 'done';
      else if (now > this.#deadline) this.#checker.fail('P10', 'status queries went unanswered after faults stopped');
    }
  }

  #settled(): boolean {
    if (!this.#client.idle) return false;
    for (const slot of this.#slots.values()) {
      if (!slot.up || slot.paused) return false;
      if (this.#members.includes(slot.name)) continue;
      if (slot.store && slot.store.inFlight.length > 0) return false;
      if (slot.name === COORDINATOR ? !slot.coordinator || slot.coordinator.stats.live > 0 : !slot.participant || slot.participant.liveCount > 0) return false;
    }
    return true;
  }

  #unfinished(): string {
    const out: string[] = [];
    if (!this.#client.idle) out.push('initiator calls still pending');
    for (const slot of this.#slots.values()) {
      if (!slot.up) out.push(`${slot.name} is ${this.#etcd && slot.name === COORDINATOR ? 'not served by any leader' : 'down'}`);
      else if (!slot.coordinator && !slot.participant && !slot.member) out.push(`${slot.name} has not finished starting`);
      const c = slot.coordinator;
      if (c && c.stats.live > 0) out.push(`the coordinator has ${c.stats.live} live transaction(s)`);
      const p = slot.participant;
      if (p && p.liveCount > 0) {
        const doubt = p.inDoubt().map((t) => t.txId);
        out.push(`${slot.name} has ${p.liveCount} live tx(s)${doubt.length ? `, in doubt: ${doubt.join(', ')}` : ' (none in doubt: enlisted or in progress)'}`);
      }
    }
    return out.join('; ');
  }

  // ---- processes ----------------------------------------------------------------------------

  #slot(name: string): Slot {
    const slot = this.#slots.get(name);
    if (!slot) throw new Error(`no node ${name}`);
    return slot;
  }

  #newSlot(name: string, prng: Prng): Slot {
    const disk = new SimDisk(name);
    const slot: Slot = { name, disk, prng, inc: 0, up: false, paused: false, pauseId: 0, deferred: [], coordinator: undefined, participant: undefined, store: undefined, member: undefined };
    disk.onWriteFailed = (ops, landed) => {
      this.#traceLine(`✗ ${name}: a log write failed${landed ? ' after it reached the log' : ''}`, [], true);
      this.#checker.writeFailed(name, ops);
    };
    if (name === COORDINATOR) {
      disk.beforeAppend = (ops) => this.#checker.coordinatorWrite(ops);
      disk.onDurable = (ops) => this.#checker.coordinatorDurable(ops);
    } else {
      disk.onAppend = (ops) => this.#checker.participantAppended(name, ops);
      disk.onDurable = (ops) => this.#checker.participantDurable(name, ops);
    }
    return slot;
  }

  /** The clock of `slot`'s incarnation `inc`: its timers die with it. */
  #nodeClock(slot: Slot, inc: number): Clock {
    const clock = this.#clock;
    const alive = (): boolean => slot.up && slot.inc === inc;
    return {
      now: () => clock.now,
      setTimer: (fn, ms): Timer => {
        const timer = { live: alive() };
        // Whole milliseconds, as Date.now() reads them (a lease's keep-alive period is TTL/3).
        if (timer.live) this.#schedule(clock.now + Math.max(0, Math.ceil(ms)), slot.name, inc, () => timer.live && fn());
        return timer as Timer;
      },
      clearTimer: (timer) => {
        (timer as { live: boolean }).live = false;
      },
      defer: (fn) => {
        if (alive()) this.#schedule(clock.now, slot.name, inc, fn);
      },
      random: () => slot.prng.float(),
    };
  }

  #start(name: string): void {
    if (this.#members.includes(name)) return this.#startMember(name);
    const slot = this.#slot(name);
    slot.up = true;
    slot.inc++;
    slot.store = undefined;
    const inc = slot.inc;
    const clock = this.#nodeClock(slot, inc);
    const io: StoreIo = {
      get now() {
        return clock.now();
      },
      after: (delayMs, fn) => clock.setTimer(fn, delayMs),
      prng: slot.prng,
      timing: this.#config.disk,
    };
    const storage = simStorage(slot.disk, io, (store) => {
      if (slot.inc === inc) slot.store = store;
    });
    const alive = (): boolean => slot.up && slot.inc === inc;
    const failStop = (e: unknown): void => {
      if (!alive()) return;
      this.#traceLine(`✗ ${name} stopped: ${(e as Error)?.message ?? String(e)}`, [], true);
      this.#crash(name, false, FAIL_STOP_RESTART_MS, 'fail-stop (its log failed)', true);
    };
    const c = this.#config;
    if (name === COORDINATOR) {
      Coordinator.start({
        clock,
        storage,
        transport: this.#net.serverTransport(inc),
        observer: this.#coordinatorObserver(alive),
        logger: SIM_LOGGER,
        protocol: c.coordinator,
        maxCallMs: c.maxCallMs,
        maxMessageBytes: c.maxMessageBytes,
        retentionMs: c.retentionMs,
        gcIntervalMs: this.#scenario.gc ? c.gcIntervalMs : NEVER_MS,
      }).then((coordinator) => {
        if (!alive()) return;
        slot.coordinator = coordinator;
        coordinator.on('error', failStop);
        this.#traceLine(`coordinator: started, epoch ${coordinator.epoch}`, [], true);
      }, failStop);
    } else {
      const hooks = simHooks(name, this.#appWorld(name, clock));
      Participant.start({
        name,
        coordinator: 'sim:coordinator',
        dataDir: `(simulated disk ${name})`,
        hooks,
        clock,
        storage,
        transport: this.#net.clientTransport(name, inc),
        observer: this.#participantObserver(name, alive),
        logger: SIM_LOGGER,
        protocol: c.participant,
        maxFrameBytes: c.maxMessageBytes,
      }).then((p) => {
        if (!alive()) return;
        slot.participant = p;
        p.on('error', failStop);
        this.#traceLine(`${name}: started, ${p.inDoubt().length} transaction(s) in doubt`, p.inDoubt().map((t) => t.txId), true);
      }, failStop);
    }
  }

  #coordinatorObserver(alive: () => boolean): CoordinatorObserver {
    return {
      recovered: (open, live) => {
        if (alive()) this.#checker.coordinatorRecovered(open, live);
      },
      step: (input, effects, before) => {
        if (!alive()) return;
        this.#checker.coordinatorStep(input, effects, before);
        if (this.#options.trace) for (const e of effects) this.#traceCoordinatorEffect(e);
      },
    };
  }

  #participantObserver(name: string, alive: () => boolean): ParticipantObserver {
    return {
      step: (input, effects) => {
        if (!alive()) return;
        this.#checker.participantStep(name, input, effects);
        if (this.#options.trace) for (const e of effects) this.#traceParticipantEffect(name, e);
      },
    };
  }

  #traceCoordinatorEffect(e: CoordinatorEffect): void {
    switch (e.type) {
      case 'persist':
        return this.#traceLine(
          `coordinator: log write ${e.ops.map((o) => (o.op === 'del' ? `del open/${o.txId}` : `put ${o.space}/${o.record.txId} ${o.record.kind.toUpperCase()}${o.record.outcome ? ` ${o.record.outcome}` : ''}`)).join(', ')}${e.force ? ' (forced)' : ''}`,
          e.ops.map((o) => (o.op === 'del' ? o.txId : o.record.txId)),
        );
      case 'decided':
        return this.#traceLine(`coordinator: DECIDED ${e.outcome.toUpperCase()} tx=${e.txId}${e.reason ? ` (${e.reason})` : ''}`, [e.txId]);
      case 'ended':
        return this.#traceLine(`coordinator: ended tx=${e.txId} (${e.outcome})`, [e.txId]);
      case 'ignored':
        return this.#traceLine(`coordinator: ignored ${e.what} (${e.why})${e.participant ? ` from ${e.participant}` : ''}`, e.txId ? [e.txId] : []);
      default:
        return;
    }
  }

  #traceParticipantEffect(name: string, e: ParticipantEffect): void {
    switch (e.type) {
      case 'persist':
        return this.#traceLine(`${name}: log write ${e.record.state.toUpperCase()}${e.record.onePhase ? ' (one-phase)' : ''} tx=${e.record.txId}${e.force ? ' (forced)' : ''}`, [e.record.txId]);
      case 'finished':
        return this.#traceLine(`${name}: finished tx=${e.txId} (${e.outcome ?? 'read-only'})`, [e.txId]);
      case 'ignored':
        return this.#traceLine(`${name}: ignored ${e.what} (${e.why})`, [e.txId]);
      default:
        return;
    }
  }

  #branch(plan: number, participant: string): TxPlan['branches'][number] | undefined {
    const p = this.#scenario.txs[plan];
    return p?.branches.find((b) => this.#names[b.participant % this.#names.length] === participant);
  }

  #planned(txId: string, plan: number): void {
    const known = this.#planOfTx.get(txId);
    if (known === undefined) this.#planOfTx.set(txId, plan);
    else if (known !== plan) this.#checker.fail('P4', `transaction id ${txId} was issued twice (plans ${known} and ${plan})`, txId);
  }

  #planOf(txId: string): TxPlan | undefined {
    const index = this.#planOfTx.get(txId);
    return index === undefined ? undefined : this.#scenario.txs[index];
  }

  // ---- faults -------------------------------------------------------------------------------

  #nodeOf(index: number): string {
    const i = index % (this.#names.length + 1);
    return i === 0 ? COORDINATOR : (this.#names[i - 1] as string);
  }

  #inject(f: FaultPlan): void {
    if (this.#etcd) {
      const etcdFault = this.#injectGroupFault(f);
      if (etcdFault) return;
    }
    const node = this.#etcd && (f.kind === 'crash' || f.kind === 'power-loss' || f.kind === 'pause') && this.#nodeOf(f.node) === COORDINATOR ? this.#leaderOrAny() : this.#nodeOf(f.node);
    if (DISK_FAULTS.includes(f.kind)) {
      // The group's log is in etcd, whose members fsync and replicate: no disk faults there.
      if (this.#etcd && node === COORDINATOR) return;
      const slot = this.#slot(node);
      if (!slot.up) return;
      this.#count.faults++;
      this.#traceLine(`✗ ${f.kind} armed at ${node}'s disk`, [], true);
      slot.disk.faults.push(f.kind as DiskFault);
      return;
    }
    switch (f.kind) {
      case 'crash':
        return this.#crash(node, false, f.durationMs, 'process crash (SIGKILL)');
      case 'power-loss':
        return this.#crash(node, !this.#members.includes(node), f.durationMs, 'power loss');
      case 'partition':
        return this.#partition(node, f.direction, f.durationMs);
      case 'pause':
        return this.#pause(node, f.durationMs);
      case 'replay':
        this.#count.faults++;
        return this.#net.replay();
      default:
        return;
    }
  }

  #crash(node: string, powerLoss: boolean, downMs: number, what: string, alwaysRestart = false): void {
    const slot = this.#slot(node);
    if (!slot.up) return;
    this.#count.faults++;
    const inFlight = slot.store?.inFlight ?? [];
    const inc = slot.inc;
    slot.up = false;
    slot.inc++;
    slot.paused = false;
    // Events of the dead process die with it; arrivals on the network (no incarnation) do not:
    // a frame's delivery held while the node was paused must still run (it checks its session).
    const arrivals = slot.deferred.filter((e) => e.inc === undefined);
    slot.deferred = [];
    for (const e of arrivals) this.#clock.schedule(this.#clock.now, e);
    slot.coordinator = undefined;
    slot.participant = undefined;
    slot.store = undefined;
    slot.member = undefined;
    this.#traceLine(`✗ ${what} of ${node}`, [], true);
    if (this.#routed === node) this.#routeDown(`its leader ${node} died`);
    // A write the process had started may or may not have reached the OS.
    for (const write of inFlight) {
      if (!this.#faultPrng.chance(0.5)) break;
      slot.disk.append(write.ops, write.sync);
      this.#traceLine(`  (${node}'s write in flight reached the disk${write.sync ? ', synced' : ''})`, [], true);
    }
    if (powerLoss) {
      const unsynced = slot.disk.unsyncedBatches;
      const keep = this.#faultPrng.int(0, unsynced);
      slot.disk.powerLoss(keep);
      this.#traceLine(`  (${node} lost ${unsynced - keep} of ${unsynced} unsynced write(s))`, [], true);
    }
    slot.disk.faults.splice(0);
    this.#net.nodeDown(node, powerLoss);
    if (node === COORDINATOR) this.#client.coordinatorDown(inc);
    if (this.#members.includes(node)) this.#client.memberDown(node, inc);
    this.#checker.crashed(node, powerLoss);
    const restartAt = this.#clock.now + downMs;
    if (alwaysRestart || restartAt < this.#scenario.faultWindowMs) this.#schedule(restartAt, undefined, undefined, () => this.#restart(node));
  }

  #restart(node: string): void {
    const slot = this.#slot(node);
    if (slot.up) return;
    this.#traceLine(`↻ restart ${node}`, [], true);
    this.#start(node);
  }

  #partition(node: string, direction: FaultPlan['direction'], durationMs: number): void {
    const peers = node === COORDINATOR ? this.#names : [COORDINATOR];
    const links: [string, string][] = [];
    for (const peer of peers) {
      if (direction !== 'out') links.push([peer, node]);
      if (direction !== 'in') links.push([node, peer]);
    }
    this.#count.faults++;
    this.#traceLine(`✗ partition: ${links.map(([a, b]) => `${a}→${b}`).join(', ')} cut for ${durationMs}ms`, [], true);
    for (const [a, b] of links) this.#net.block(a, b);
    this.#schedule(this.#clock.now + durationMs, undefined, undefined, () => {
      if (this.#phase !== 'faults') return;
      this.#traceLine(`✓ partition healed: ${links.map(([a, b]) => `${a}→${b}`).join(', ')}`, [], true);
      for (const [a, b] of links) this.#net.unblock(a, b);
    });
  }

  #pause(node: string, durationMs: number): void {
    const slot = this.#slot(node);
    if (!slot.up || slot.paused) return;
    this.#count.faults++;
    slot.paused = true;
    const id = ++slot.pauseId;
    this.#traceLine(`✗ ${node} paused (SIGSTOP) for ${durationMs}ms`, [], true);
    this.#net.paused(node, () => slot.paused && slot.pauseId === id);
    this.#schedule(this.#clock.now + durationMs, undefined, undefined, () => {
      if (slot.paused && slot.pauseId === id) this.#resume(slot);
    });
  }

  #resume(slot: Slot): void {
    slot.paused = false;
    this.#traceLine(`✓ ${slot.name} resumed (SIGCONT)`, [], true);
    const deferred = slot.deferred;
    slot.deferred = [];
    for (const e of deferred) this.#clock.schedule(this.#clock.now, e);
  }

  #healAll(): void {
    this.#traceLine('✓ faults stop: network healed, every node resumed and restarted', [], true);
    this.#net.turbulence = undefined;
    this.#net.healAll();
    this.#etcd?.healAll();
    for (const slot of this.#slots.values()) {
      slot.disk.faults.splice(0);
      if (slot.paused) this.#resume(slot);
      // The group's coordinator (the checker's view) comes back when a member leads.
      if (!slot.up && !(this.#etcd && slot.name === COORDINATOR)) this.#start(slot.name);
    }
    this.#phase = 'settling';
    const lastTx = Math.max(0, ...this.#scenario.txs.map((t) => t.at + t.timeoutMs));
    this.#deadline = Math.max(this.#clock.now, lastTx) + this.#config.settleMs;
  }

  // ---- the coordinator group ----------------------------------------------------------------
  // Each member is the production CoordinatorGroupMember, built over its client of the simulated
  // etcd and a server transport of the simulated network (its seams): its leadership, its terms
  // (a Coordinator over the etcd decision store, fenced on the leader key's create revision), its
  // gate and its stepping down all run unchanged. Each member is an address of its own on the
  // simulated network, bound for its life: behind its gate it answers NOT_LEADER (naming the
  // leader it knows, which may be stale) and serves its term's handlers while it leads. The
  // participants' sessions and the initiators' calls go to the members and follow those answers
  // with the SDKs' own code (the Participant's session code with CoordinatorTargets, the client's
  // LeaderFollower); a paused member holds them until keepalive, and a new connection to it never
  // opens. The world only tracks which member serves as leader, for the checker (its disk view, its
  // failed writes), re-reading the gates before and after every step.

  #startMember(name: string): void {
    const etcd = this.#etcd;
    const group = this.#scenario.group;
    if (!etcd || !group) return;
    const slot = this.#slot(name);
    slot.up = true;
    slot.inc++;
    const inc = slot.inc;
    const alive = (): boolean => slot.up && slot.inc === inc;
    const m: MemberState = { member: undefined, gate: undefined, handlers: undefined };
    slot.member = m;
    // The member's address on the simulated network: bound for its life, behind its gate (a
    // member that does not lead answers NOT_LEADER naming the leader it knows), serving its term's
    // handlers while it has a term.
    const transport = (gate: LeaderGate): MemberTransport => {
      m.gate = gate;
      const serveOn = (handlers: CoordinatorHandlers | undefined): void => {
        m.handlers = handlers;
        if (alive()) this.#net.memberServe(name, inc, gate, handlers);
      };
      return {
        notLeaderAnswers: 0,
        bind: async () => {
          serveOn(undefined);
          return memberAddress(name);
        },
        shutdown: async () => serveOn(undefined),
        serve: async (handlers) => {
          serveOn(handlers);
          return memberAddress(name);
        },
        close: async () => serveOn(undefined),
      };
    };
    const client = Object.assign(etcd.client(name, inc), { close: () => undefined });
    const c = this.#config;
    this.#traceLine(`${name}: started, campaigning for the leader key`, [], true);
    CoordinatorGroupMember.start(
      {
        etcd: ['sim-etcd:2379'],
        nodeId: name,
        advertise: `${name}:7070`,
        etcdPrefix: GROUP_PREFIX,
        leaseTtlS: group.leaseTtlS,
        campaignIntervalMs: GROUP_CAMPAIGN_INTERVAL_MS,
        etcdCallTimeoutMs: GROUP_ETCD_CALL_TIMEOUT_MS,
        clock: this.#nodeClock(slot, inc),
        logger: SIM_LOGGER,
        coordinator: {
          observer: this.#coordinatorObserver(alive),
          protocol: c.coordinator,
          maxCallMs: c.maxCallMs,
          maxMessageBytes: c.maxMessageBytes,
          retentionMs: c.retentionMs,
          gcIntervalMs: this.#scenario.gc ? c.gcIntervalMs : NEVER_MS,
        },
      },
      // Each term's decision store writes through a client of that term (see SimEtcd.client).
      { client, transport, termClient: () => etcd.client(name, inc, etcd.termOf(name, inc)) },
    ).then(
      (member) => {
        if (!alive()) return;
        m.member = member;
        member.on('leading', (epoch) => {
          if (alive()) this.#traceLine(`✓ ${name} leads the group as epoch ${epoch}`, [], true);
        });
        member.on('following', (why) => {
          if (alive()) this.#traceLine(`✗ ${name} steps down: ${why}`, [], true);
        });
      },
      (e: unknown) => this.#checker.fail('CRASH', `${PROPERTIES.CRASH}: ${name} did not start: ${(e as Error)?.stack ?? String(e)}`),
    );
  }

  /**
   * Follows, for the checker, which member serves as leader now (the member whose gate is open):
   * the coordinator whose disk, failed writes and decisions the properties read. The network does
   * not route by it: participants and initiators dial the members and follow NOT_LEADER answers.
   */
  #reroute(): void {
    const open = this.#members.find((n) => {
      const slot = this.#slot(n);
      return slot.up && slot.member?.handlers !== undefined && slot.member.gate?.isLeader() === true;
    });
    const endpoint = this.#slot(COORDINATOR);
    if (open === this.#routed) {
      if (open) endpoint.coordinator = this.#slot(open).member?.member?.coordinator;
      return;
    }
    if (this.#routed) this.#routeDown(`${this.#routed} no longer serves as leader`);
    const handlers = open ? this.#slot(open).member?.handlers : undefined;
    if (!open || !handlers) return;
    this.#elections++;
    this.#routeTo(open);
    endpoint.coordinator = this.#slot(open).member?.member?.coordinator;
    this.#traceLine(`✓ ${open} serves as leader`, [], true);
  }

  /** `member` serves as leader now: a new incarnation of the checker's coordinator. */
  #routeTo(member: string): number {
    const endpoint = this.#slot(COORDINATOR);
    if (endpoint.up) this.#routeDown(`${member} was elected`);
    endpoint.up = true;
    endpoint.inc++;
    this.#routed = member;
    return endpoint.inc;
  }

  /** No member serves as leader now (for the checker: the coordinator's term ended). */
  #routeDown(why: string): void {
    this.#routed = undefined;
    const endpoint = this.#slot(COORDINATOR);
    if (!endpoint.up) return;
    endpoint.up = false;
    endpoint.inc++;
    endpoint.coordinator = undefined;
    this.#traceLine(`✗ no member serves as leader (${why})`, [], true);
    this.#checker.crashed(COORDINATOR, false);
  }

  /** The node whose pause holds `slot`'s events: the leader for the group's coordinator (the checker's view). */
  #host(slot: Slot): Slot {
    return this.#etcd && slot.name === COORDINATOR && this.#routed ? this.#slot(this.#routed) : slot;
  }

  #leaderOrAny(): string {
    return this.#routed ?? this.#faultPrng.pick(this.#members);
  }

  /** Faults of etcd itself; false for the others. */
  #injectGroupFault(f: FaultPlan): boolean {
    const etcd = this.#etcd;
    if (!etcd) return false;
    if (f.kind === 'quorum-loss') {
      if (!etcd.hasQuorum) return true;
      this.#count.faults++;
      this.#traceLine(`✗ etcd lost quorum for ${f.durationMs}ms`, [], true);
      etcd.loseQuorum();
      this.#schedule(this.#clock.now + f.durationMs, undefined, undefined, () => {
        if (this.#phase !== 'faults') return;
        this.#traceLine('✓ etcd has quorum again (every lease renewed)', [], true);
        etcd.regainQuorum();
      });
      return true;
    }
    if (f.kind === 'store-partition') {
      const i = f.node % (this.#members.length + 1);
      const member = i === 0 ? this.#leaderOrAny() : (this.#members[i - 1] as string);
      if (etcd.isCut(member)) return true;
      this.#count.faults++;
      this.#traceLine(`✗ ${member} cut from etcd for ${f.durationMs}ms`, [], true);
      etcd.cut(member);
      this.#schedule(this.#clock.now + f.durationMs, undefined, undefined, () => {
        if (this.#phase !== 'faults') return;
        this.#traceLine(`✓ ${member} reaches etcd again`, [], true);
        etcd.heal(member);
      });
      return true;
    }
    return false;
  }

  /** P24: at most one member's gate is open at any instant (paused ones included: their belief is a deadline). */
  #checkLeaders(): void {
    const leaders = this.#members.filter((n) => {
      const slot = this.#slot(n);
      return slot.up && slot.member?.gate?.isLeader() === true;
    });
    if (leaders.length === 0) return;
    this.#checker.exercised.P24++;
    if (leaders.length > 1) this.#checker.fail('P24', `${leaders.join(' and ')} all answer as leader at t=${this.#clock.now}ms`);
  }

  #etcdWorld(): EtcdWorld {
    const clock = this.#clock;
    return {
      get now() {
        return clock.now;
      },
      prng: this.#prng,
      tracing: this.#options.trace === true,
      atMember: (time, member, inc, fn) => this.#schedule(time, member, inc, fn),
      atStore: (time, fn) => this.#schedule(time, undefined, undefined, fn),
      trace: (text, fault) => this.#traceLine(text, [], fault),
      logLanded: (ops) => {
        this.#checker.exercised.P23++;
        this.#slot(COORDINATOR).disk.append(ops, true);
      },
      logWriteFailed: (member, ops) => {
        this.#traceLine(`✗ ${member}: a decision-log write to etcd failed or was refused (it may have landed)`, [], true);
        if (this.#routed === member) this.#checker.writeFailed(COORDINATOR, ops);
      },
      fencingViolated: (message) => this.#checker.fail('P23', message),
    };
  }

  // ---- views for the parts ------------------------------------------------------------------

  #traceLine(text: string, txIds: readonly string[], fault = false, noise = false): void {
    if (this.#options.trace) this.#trace.add(this.#clock.now, text, txIds, fault, noise);
  }

  #netWorld(): ConstructorParameters<typeof SimNet>[0] {
    const clock = this.#clock;
    return {
      get now() {
        return clock.now;
      },
      prng: this.#prng,
      tracing: this.#options.trace === true,
      at: (time, node, inc, fn) => this.#schedule(time, node, inc, fn),
      incarnation: (node) => {
        const slot = this.#slot(node);
        return slot.up ? slot.inc : undefined;
      },
      trace: (text, txIds, fault, noise) => this.#traceLine(text, txIds ?? [], fault, noise),
    };
  }

  #netObserver(): ConstructorParameters<typeof SimNet>[1] {
    return {
      coordinatorSent: (to, messages) => this.#checker.coordinatorSent(to, messages),
      participantSent: (from, messages) => this.#checker.participantSent(from, messages),
      participantReceived: (to, messages) => this.#checker.participantReceived(to, messages),
      frameOverLimit: (from, to, bytes, limit) => this.#checker.frameOverLimit(from, to, bytes, limit),
      replaying: (on) => {
        this.#count.replaying = on;
      },
    };
  }

  #appWorld(name: string, clock: Clock): Parameters<typeof simHooks>[1] {
    return {
      clock,
      tracing: this.#options.trace === true,
      branch: (plan, participant) => this.#branch(plan, participant),
      planned: (txId, plan) => this.#planned(txId, plan),
      hookVote: (txId, vote) => this.#checker.participantHookVote(name, txId, vote),
      trace: (text, txIds) => this.#traceLine(text, txIds),
    };
  }

  #checkerWorld(): ConstructorParameters<typeof Checker>[0] {
    const clock = this.#clock;
    const count = this.#count;
    return {
      get now() {
        return clock.now;
      },
      get steps() {
        return count.steps;
      },
      get replaying() {
        return count.replaying;
      },
      participantNames: this.#names,
      disk: (node) => this.#slot(node).disk,
      branchesOf: (txId) => {
        const plan = this.#planOf(txId);
        return plan?.branches.map((b) => this.#names[b.participant % this.#names.length] as string);
      },
    };
  }

  #clientWorld(): ConstructorParameters<typeof SimClient>[0] {
    const clock = this.#clock;
    return {
      get now() {
        return clock.now;
      },
      tracing: this.#options.trace === true,
      maxCallMs: this.#config.maxCallMs,
      atCoordinator: (time, inc, fn) => this.#schedule(time, COORDINATOR, inc, fn),
      atMember: (time, member, inc, fn) => this.#schedule(time, member, inc, fn),
      paused: (node) => this.#slot(node).paused,
      random: () => this.#prng.float(),
      keepaliveMs: this.#config.keepaliveTimeoutMs,
      connectTimeoutMs: this.#config.connectTimeoutMs,
      reconnect: { initialMs: DEFAULT_RECONNECT_INITIAL_MS, maxMs: DEFAULT_RECONNECT_MAX_MS },
      at: (time, fn) => this.#schedule(time, undefined, undefined, fn),
      enlist: (participant, invitation, payload) => {
        this.#slots
          .get(participant)
          ?.participant?.enlist(invitation, payload)
          .catch(() => undefined);
      },
      trace: (text, txIds) => this.#traceLine(text, txIds ?? []),
      planned: (txId, plan) => this.#planned(txId, plan),
      reply: (reply: CoordinatorReply) => this.#checker.reply(reply),
    };
  }
}
