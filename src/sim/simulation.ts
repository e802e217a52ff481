// The simulated world: one coordinator and N participants running the real protocol machines in
// simulated processes, over the simulated network and disks, on one simulated clock, driven by
// one scenario. Everything random comes from the scenario's seed, so a scenario always produces
// the same run. The checker watches every step.

import type { CoordinatorReply, InitiatorRequest } from '../protocol/coordinator-events.js';
import { Checker, PROPERTIES, type PropertyId, type Violation } from './checker.js';
import type { MutantName } from './mutants.js';
import { Prng } from './prng.js';
import { participantNames, type FaultPlan, type Scenario, type TxPlan } from './scenario.js';
import { SimClient, type ClientWorld } from './sim-client.js';
import { SimClock } from './sim-clock.js';
import { SimCoordinator } from './sim-coordinator.js';
import type { NodeHost } from './sim-host.js';
import { SimNetwork, type NetworkStats, type WorldClock } from './sim-network.js';
import { COORDINATOR, DEFAULT_SIM_CONFIG, type SimConfig } from './sim-options.js';
import { SimParticipant } from './sim-participant.js';
import { SimSessions } from './sim-sessions.js';
import { SimDisk } from './sim-storage.js';
import { Trace, type TraceLine } from './trace.js';

/** How to run a scenario. */
export interface RunOptions {
  /** Run a deliberately wrong variant of the protocol. */
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
  /** How often each property was checked in this run. */
  readonly exercised: Readonly<Record<PropertyId, number>>;
  readonly trace: readonly TraceLine[];
  /** Hash of the trace (only when traced). */
  readonly traceHash: string;
}

const DEFAULT_MAX_STEPS = 400_000;
/** An operator (or supervisor) restarts a participant that stopped on a log failure after this long. */
const FAIL_STOP_RESTART_MS = 50;

interface SimEvent {
  readonly node: string | undefined;
  /** The process incarnation the event belongs to (undefined: any, e.g. a network arrival). */
  readonly inc: number | undefined;
  readonly fn: () => void;
}

interface Slot {
  readonly name: string;
  readonly disk: SimDisk;
  readonly prng: Prng;
  readonly host: NodeHost;
  readonly readOnlyAnswered: Set<string>;
  inc: number;
  up: boolean;
  paused: boolean;
  pauseId: number;
  deferred: SimEvent[];
  coordinator: SimCoordinator | undefined;
  participant: SimParticipant | undefined;
}

type Phase = 'faults' | 'settling' | 'querying' | 'done';

/** Runs `scenario` to the end (or to its first violation) and reports what happened. */
export function runScenario(scenario: Scenario, options: RunOptions = {}): RunResult {
  return new Simulation(scenario, options).run();
}

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
  readonly #network: SimNetwork;
  readonly #sessions: SimSessions;
  readonly #client: SimClient;
  readonly #checker: Checker;
  readonly #planOfRequest = new Map<number, number>();
  readonly #planOfTx = new Map<string, number>();
  /** Counters the views read (kept in an object so that getters need no `this`). */
  readonly #count = { steps: 0, faults: 0, replaying: false };
  #phase: Phase = 'faults';
  #deadline = 0;

  constructor(scenario: Scenario, options: RunOptions = {}) {
    this.#scenario = scenario;
    this.#options = options;
    this.#config = options.config ?? DEFAULT_SIM_CONFIG;
    const root = new Prng(scenario.seed);
    this.#prng = root.fork();
    this.#faultPrng = root.fork();
    this.#trace = new Trace(options.trace === true);
    this.#names = participantNames(scenario);
    const world = this.#worldClock();
    this.#network = new SimNetwork(world, this.#config.netMinDelayMs, this.#config.netMaxDelayMs);
    this.#sessions = new SimSessions(
      world,
      this.#network,
      {
        coordinator: () => this.#slot(COORDINATOR).coordinator,
        participant: (name) => this.#slots.get(name)?.participant,
        isPaused: (node) => this.#slot(node).paused,
        replaying: (fn) => {
          this.#count.replaying = true;
          try {
            fn();
          } finally {
            this.#count.replaying = false;
          }
        },
      },
      this.#config.keepaliveTimeoutMs,
      this.#config.enlistInOrder,
    );
    this.#checker = new Checker(this.#checkerWorld());
    this.#client = new SimClient(this.#clientWorld(), scenario);
    for (const name of [COORDINATOR, ...this.#names]) this.#slots.set(name, this.#newSlot(name, root.fork()));
  }

  /** Runs to the end of the scenario, or to the first violation. */
  run(): RunResult {
    const s = this.#scenario;
    this.#inStep(() => {
      this.#traceLine(`world: ${this.#names.length} participant(s): ${this.#names.join(', ')}${this.#options.mutant ? `; MUTANT ${this.#options.mutant}` : ''}`, [], true);
      for (const name of [COORDINATOR, ...this.#names]) this.#start(name);
    });
    this.#client.start();
    for (const f of [...s.faults].sort((a, b) => a.at - b.at)) {
      if (f.at < s.faultWindowMs) this.#schedule(f.at, undefined, undefined, () => this.#inject(f));
    }
    if (s.network.dropPerMille > 0 || s.network.duplicatePerMille > 0 || s.network.maxDelayMs > this.#config.netMaxDelayMs) this.#network.flaky = s.network;
    this.#schedule(s.faultWindowMs, undefined, undefined, () => this.#healAll());
    const maxSteps = this.#options.maxSteps ?? DEFAULT_MAX_STEPS;
    while (this.#phase !== 'done' && this.#checker.violations.length === 0) {
      const event = this.#clock.next();
      if (!event) {
        this.#checker.fail('P10', 'the simulation ran out of events before everything finished');
        break;
      }
      this.#process(event);
      if (this.#count.steps > maxSteps) {
        this.#checker.fail('P10', `no quiescence after ${maxSteps} steps (livelock?)`);
        break;
      }
      this.#advancePhase();
    }
    return {
      scenario: s,
      mutant: this.#options.mutant,
      violations: this.#checker.violations,
      steps: this.#count.steps,
      faultsInjected: this.#count.faults,
      simulatedMs: this.#clock.now,
      transactions: this.#checker.outcomes(),
      network: { ...this.#network.stats },
      exercised: { ...this.#checker.exercised },
      trace: this.#trace.lines,
      traceHash: this.#trace.hash,
    };
  }

  // ---- the event loop -----------------------------------------------------------------------

  #schedule(at: number, node: string | undefined, inc: number | undefined, fn: () => void): void {
    this.#clock.schedule(at, { node, inc, fn });
  }

  #process(event: SimEvent): void {
    if (event.node !== undefined) {
      const slot = this.#slot(event.node);
      if (event.inc !== undefined && (!slot.up || slot.inc !== event.inc)) return;
      if (slot.paused) {
        slot.deferred.push(event);
        return;
      }
    }
    this.#inStep(event.fn);
  }

  /** Runs one step: the event, then the frames it queued leave, then the per-step checks. */
  #inStep(fn: () => void): void {
    this.#count.steps++;
    try {
      fn();
      for (const slot of this.#slots.values()) {
        slot.coordinator?.flush();
        slot.participant?.flush();
      }
      this.#checker.afterStep();
    } catch (e) {
      const error = e as Error;
      this.#checker.fail('CRASH', `${PROPERTIES.CRASH}: ${error?.stack ?? String(e)}`);
    }
  }

  #advancePhase(): void {
    const now = this.#clock.now;
    if (this.#phase === 'settling') {
      if (this.#settled()) {
        this.#traceLine('world: everything settled; final checks and status read-back', [], true);
        this.#checker.finalChecks();
        this.#phase = 'querying';
        this.#deadline = now + this.#config.maxCallMs * 2;
        for (const txId of this.#checker.txIds()) this.#client.request({ type: 'get', txId }, () => undefined);
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
      const c = slot.coordinator;
      if (c && (c.machine.liveCount > 0 || c.committer.busy)) return false;
      const p = slot.participant;
      if (p && (p.machine.liveCount > 0 || p.committer.busy)) return false;
    }
    return true;
  }

  #unfinished(): string {
    const out: string[] = [];
    if (!this.#client.idle) out.push('initiator calls still pending');
    for (const slot of this.#slots.values()) {
      if (!slot.up) out.push(`${slot.name} is down`);
      const c = slot.coordinator;
      if (c && c.machine.liveCount > 0) {
        out.push(`coordinator has live ${c.machine.liveTxIds().map((t) => `${t} (${c.machine.view(t)?.state})`).join(', ')}`);
      }
      const p = slot.participant;
      if (p && p.machine.liveCount > 0) {
        const doubt = p.machine.inDoubt();
        out.push(`${slot.name} has ${p.machine.liveCount} live tx(s)${doubt.length ? `, in doubt: ${doubt.join(', ')}` : ' (none in doubt: enlisted or in progress)'}`);
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
    const disk = new SimDisk();
    const clock = this.#clock;
    const tracing = this.#options.trace === true;
    const slot: Slot = {
      name,
      disk,
      prng,
      inc: 0,
      up: false,
      paused: false,
      pauseId: 0,
      deferred: [],
      coordinator: undefined,
      participant: undefined,
      readOnlyAnswered: new Set(),
      host: {
        name,
        prng,
        config: this.#config,
        observer: this.#checker,
        get now() {
          return clock.now;
        },
        tracing,
        has: (mutant) => this.#options.mutant === mutant,
        after: (delayMs, fn) => this.#schedule(this.#clock.now + delayMs, name, slot.inc, fn),
        trace: (text, txIds) => this.#traceLine(text, txIds ?? []),
      },
    };
    if (name === COORDINATOR) {
      disk.onDurable = (ops) => this.#checker.coordinatorDurable(ops);
    } else {
      disk.onAppend = (ops) => this.#checker.participantAppended(name, ops);
      disk.onDurable = (ops) => this.#checker.participantDurable(name, ops);
    }
    return slot;
  }

  #start(name: string): void {
    const slot = this.#slot(name);
    slot.up = true;
    slot.inc++;
    if (name === COORDINATOR) {
      slot.coordinator = new SimCoordinator(slot.host, slot.disk, {
        sessions: this.#sessions,
        gc: this.#scenario.gc,
        reply: (requestId, reply) => this.#client.onReply(requestId, reply),
        created: (requestId, txId) => {
          const plan = this.#planOfRequest.get(requestId);
          if (plan !== undefined) this.#planOfTx.set(txId, plan);
        },
      });
    } else {
      slot.participant = new SimParticipant(slot.host, slot.disk, {
        sessions: this.#sessions,
        behaviour: (txId) => this.#behaviour(txId, name),
        failStop: (reason) => this.#crash(name, false, FAIL_STOP_RESTART_MS, `fail-stop: ${reason}`, true),
        readOnlyAnswered: slot.readOnlyAnswered,
      });
    }
  }

  #behaviour(txId: string, participant: string): TxPlan['branches'][number] | undefined {
    const plan = this.#planOf(txId);
    return plan?.branches.find((b) => this.#names[b.participant % this.#names.length] === participant);
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
    const node = this.#nodeOf(f.node);
    switch (f.kind) {
      case 'crash':
        return this.#crash(node, false, f.durationMs, 'process crash (SIGKILL)');
      case 'power-loss':
        return this.#crash(node, true, f.durationMs, 'power loss');
      case 'partition':
        return this.#partition(node, f.direction, f.durationMs);
      case 'pause':
        return this.#pause(node, f.durationMs);
      case 'replay':
        this.#count.faults++;
        return this.#sessions.replay();
      case 'disk-error': {
        const slot = this.#slot(node);
        const proc = slot.coordinator ?? slot.participant;
        if (!slot.up || !proc) return;
        this.#count.faults++;
        this.#traceLine(`✗ disk error armed at ${node}: its next log write fails`, [], true);
        proc.committer.failNext = true;
        return;
      }
    }
  }

  #crash(node: string, powerLoss: boolean, downMs: number, what: string, alwaysRestart = false): void {
    const slot = this.#slot(node);
    if (!slot.up) return;
    this.#count.faults++;
    const proc = slot.coordinator ?? slot.participant;
    const inFlight = proc?.committer.inFlight;
    slot.up = false;
    slot.inc++;
    slot.paused = false;
    slot.deferred = [];
    slot.coordinator = undefined;
    slot.participant = undefined;
    this.#traceLine(`✗ ${what} of ${node}`, [], true);
    // A batch the process was writing may or may not have reached the OS.
    if (inFlight && this.#faultPrng.chance(0.5)) {
      slot.disk.append(inFlight.ops, inFlight.sync);
      this.#traceLine(`  (${node}'s write in flight reached the disk${inFlight.sync ? ', synced' : ''})`, [], true);
    }
    if (powerLoss) {
      const unsynced = slot.disk.unsyncedBatches;
      const keep = this.#faultPrng.int(0, unsynced);
      slot.disk.powerLoss(keep);
      this.#traceLine(`  (${node} lost ${unsynced - keep} of ${unsynced} unsynced write(s))`, [], true);
    }
    this.#sessions.nodeDown(node, powerLoss);
    if (node === COORDINATOR) this.#client.coordinatorDown();
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
    for (const [a, b] of links) this.#network.block(a, b);
    this.#sessions.partitioned();
    this.#schedule(this.#clock.now + durationMs, undefined, undefined, () => {
      if (this.#phase !== 'faults') return;
      this.#traceLine(`✓ partition healed: ${links.map(([a, b]) => `${a}→${b}`).join(', ')}`, [], true);
      for (const [a, b] of links) this.#network.unblock(a, b);
    });
  }

  #pause(node: string, durationMs: number): void {
    const slot = this.#slot(node);
    if (!slot.up || slot.paused) return;
    this.#count.faults++;
    slot.paused = true;
    const id = ++slot.pauseId;
    this.#traceLine(`✗ ${node} paused (SIGSTOP) for ${durationMs}ms`, [], true);
    this.#sessions.paused(node, () => slot.paused && slot.pauseId === id);
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
    this.#network.flaky = undefined;
    this.#network.healAll();
    for (const slot of this.#slots.values()) {
      if (slot.paused) this.#resume(slot);
      if (!slot.up) this.#start(slot.name);
      const proc = slot.coordinator ?? slot.participant;
      if (proc) proc.committer.failNext = false;
    }
    this.#phase = 'settling';
    const lastTx = Math.max(0, ...this.#scenario.txs.map((t) => t.at + t.timeoutMs));
    this.#deadline = Math.max(this.#clock.now, lastTx) + this.#config.settleMs;
  }

  // ---- views for the parts ------------------------------------------------------------------

  #traceLine(text: string, txIds: readonly string[], fault = false, noise = false): void {
    if (this.#options.trace) this.#trace.add(this.#clock.now, text, txIds, fault, noise);
  }

  #worldClock(): WorldClock {
    const clock = this.#clock;
    return {
      get now() {
        return clock.now;
      },
      prng: this.#prng,
      tracing: this.#options.trace === true,
      at: (time, node, fn) => this.#schedule(time, node, undefined, fn),
      trace: (text, txIds, fault, noise) => this.#traceLine(text, txIds ?? [], fault, noise),
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
      lenientAllReadOnly: this.#config.lenientAllReadOnly,
      disk: (node) => this.#slot(node).disk,
      branchesOf: (txId) => {
        const plan = this.#planOf(txId);
        return plan?.branches.map((b) => this.#names[b.participant % this.#names.length] as string);
      },
    };
  }

  #clientWorld(): ClientWorld {
    const clock = this.#clock;
    return {
      get now() {
        return clock.now;
      },
      tracing: this.#options.trace === true,
      maxCallMs: this.#config.maxCallMs,
      atCoordinator: (time, fn) => this.#schedule(time, COORDINATOR, undefined, fn),
      at: (time, fn) => this.#schedule(time, undefined, undefined, fn),
      dispatch: (request: InitiatorRequest) => {
        const c = this.#slot(COORDINATOR).coordinator;
        if (!c) return false;
        c.dispatch(request);
        return true;
      },
      enlist: (participant, txId) => {
        const name = this.#names[participant % this.#names.length] as string;
        const p = this.#slots.get(name)?.participant;
        return p ? p.enlist(txId, new TextEncoder().encode(name)) : false;
      },
      trace: (text, txIds) => this.#traceLine(text, txIds ?? []),
      requestFor: (requestId, plan) => this.#planOfRequest.set(requestId, plan),
      reply: (requestId: number, reply: CoordinatorReply) => {
        this.#checker.reply(requestId, reply);
      },
    };
  }
}
