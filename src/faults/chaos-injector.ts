// Carries out a chaos schedule: at each event's time it kills, pauses or arms a failpoint in a
// process, or faults a link through its proxy, and undoes the fault after its hold time. In a
// coordinator group run the target `leader` is resolved when the fault starts (the member etcd
// names), and leader faults wait until another member serves before they undo themselves. Processes are reached through a small interface, so that the same injector drives real
// child processes (`verdict chaos`) and participants running inside a user's test process (the
// testing harness). `heal()` cuts every fault short and brings everything back.

import { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { ChaosEvent, FaultKind } from './chaos-schedule.js';
import { ALL_FAULT_KINDS, LEADER_FAULTS, LEADER_TARGET, PROCESS_FAULTS, describeEvent } from './chaos-schedule.js';
import type { FaultProxy } from './fault-proxy.js';

/** Downtime of a process after a failpoint crashed it, in ms. */
export const FAILPOINT_DOWN_MS = 300;

/** What a failpoint armed on a target did within its window. */
export type FailpointResult = 'fired' | 'not-reached' | 'armed';

/** A process the injector can fault: a real child process, or a participant in this process. */
export interface FaultTarget {
  readonly name: string;
  /** Whether an incarnation is up (running or paused). */
  readonly alive: boolean;
  readonly paused: boolean;
  /** Ends the incarnation abruptly (SIGKILL, or its closest emulation). */
  kill(): Promise<void>;
  /** Starts a new incarnation on the same data. */
  start(): Promise<void>;
  pause(): void;
  resume(): void;
  /**
   * Arms `spec` (VERDICT_FAILPOINTS syntax) for at most `windowMs`. `fired` means the target
   * crashed by it and is down; `not-reached` that it was disarmed unfired (the target is down
   * too when that took a restart); `armed` that it was armed and disarmed without a crash.
   */
  failpoint(spec: string, windowMs: number, signal: AbortSignal): Promise<FailpointResult>;
}

/** Who leads a coordinator group, for faults aimed at its leader. */
export interface LeaderResolver {
  /** The name of the member that leads and runs now (undefined: none does). */
  current(): Promise<string | undefined>;
  /** Resolves with the name of a member other than `not` once it leads and serves; rejects when none does in time. */
  next(not: string): Promise<string>;
}

/** One fault as it was carried out. */
export interface FaultRecord {
  readonly seq: number;
  readonly kind: FaultKind;
  readonly target: string;
  /** The member a `leader` target stood for when the fault started. */
  member?: string;
  /** Leader faults: the member that led and served next, and when, in ms after the run's start. */
  failover?: { readonly to: string; readonly atMs: number; readonly withoutLeaderMs: number };
  /** Ms after the run's start when it was injected. */
  readonly atMs: number;
  /** When it was undone, ms after the start. */
  endedAtMs?: number;
  readonly detail: string;
  status: 'injected' | 'skipped' | 'failed';
  note?: string;
}

/** Events: `fault` when a fault is injected or skipped, `problem` when one could not be carried out. */
export interface FaultInjectorEvents {
  fault: [record: FaultRecord];
  problem: [message: string];
}

/** Options of a fault injector. */
export interface FaultInjectorOptions {
  readonly events: readonly ChaosEvent[];
  readonly processes: ReadonlyMap<string, FaultTarget>;
  /** Proxies by link name (a participant's, or in a group run a member's). */
  readonly links: ReadonlyMap<string, FaultProxy>;
  /** Resolves the `leader` target (a coordinator group run); without it, `leader` names nothing. */
  readonly leaders?: LeaderResolver;
}

/** Runs a schedule against processes and links. */
export class FaultInjector extends EventEmitter<FaultInjectorEvents> {
  readonly #options: FaultInjectorOptions;
  readonly #records: FaultRecord[] = [];
  readonly #episodes = new Set<Promise<void>>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #healing = new AbortController();
  readonly #problems: string[] = [];
  #startedAt = 0;
  #recoveries = 0;

  constructor(options: FaultInjectorOptions) {
    super();
    this.#options = options;
  }

  /** Every fault carried out or skipped so far. */
  get records(): readonly FaultRecord[] {
    return this.#records;
  }

  /** Faults that could not be carried out or undone (a restart that failed, …). */
  get problems(): readonly string[] {
    return this.#problems;
  }

  /** Restarts that brought a killed or crashed process back. */
  get recoveries(): number {
    return this.#recoveries;
  }

  /** Injected faults by kind. */
  get counts(): Record<FaultKind, number> {
    const counts = Object.fromEntries(ALL_FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
    for (const r of this.#records) if (r.status === 'injected') counts[r.kind]++;
    return counts;
  }

  /** Faults in progress. */
  get active(): number {
    return this.#episodes.size;
  }

  /** Starts the schedule; event times count from now. */
  start(): void {
    this.#startedAt = Date.now();
    for (const event of this.#options.events) {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        const episode = this.#run(event).finally(() => this.#episodes.delete(episode));
        this.#episodes.add(episode);
      }, event.atMs);
      this.#timers.add(timer);
    }
  }

  /**
   * Stops the schedule, cuts every fault in progress short (each undoes itself), then resumes
   * every paused process, starts every one that is down, and heals every link.
   */
  async heal(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#healing.abort();
    while (this.#episodes.size > 0) await Promise.all([...this.#episodes]);
    for (const proxy of this.#options.links.values()) proxy.heal();
    for (const target of this.#options.processes.values()) {
      try {
        if (target.paused) target.resume();
        if (!target.alive) {
          await target.start();
          this.#recoveries++;
        }
      } catch (e) {
        this.#problem(`${target.name} could not be brought back at heal: ${(e as Error).message}`);
      }
    }
  }

  #problem(message: string): void {
    this.#problems.push(message);
    this.emit('problem', message);
  }

  #now(): number {
    return Date.now() - this.#startedAt;
  }

  /** Waits `ms`, or less when healing starts. */
  async #hold(ms: number): Promise<void> {
    await delay(ms, undefined, { signal: this.#healing.signal }).catch(() => undefined);
  }

  async #run(event: ChaosEvent): Promise<void> {
    const record: FaultRecord = { seq: event.seq, kind: event.kind, target: event.target, atMs: this.#now(), detail: describeEvent(event), status: 'injected' };
    this.#records.push(record);
    const skip = (note: string): void => {
      record.status = 'skipped';
      record.note = note;
      this.emit('fault', record);
    };
    try {
      let name = event.target;
      if (name === LEADER_TARGET) {
        const leader = await this.#options.leaders?.current();
        if (leader === undefined) return skip('no member leads');
        name = record.member = leader;
      }
      if (PROCESS_FAULTS.has(event.kind)) {
        const target = this.#options.processes.get(name);
        if (!target) return skip('no such process');
        if (!target.alive || target.paused) return skip('target not running');
        await this.#processFault(event, target, record);
      } else {
        const proxy = this.#options.links.get(name);
        if (!proxy) return skip('no such link');
        this.emit('fault', record);
        const direction = event.direction ?? 'both';
        switch (event.kind) {
          case 'reset':
            record.note = `${proxy.resetAll()} connection(s) reset`;
            break;
          case 'partition':
            proxy.set({ kind: 'blackhole' }, direction);
            await this.#hold(event.holdMs);
            proxy.heal();
            break;
          case 'drop':
            proxy.set({ kind: 'drop' }, direction);
            await this.#hold(event.holdMs);
            proxy.heal();
            break;
          case 'delay':
            proxy.set({ kind: 'delay', ms: event.delayMs ?? 100 }, direction);
            await this.#hold(event.holdMs);
            proxy.heal();
            break;
        }
      }
    } catch (e) {
      record.status = 'failed';
      record.note = (e as Error).message;
      this.#problem(`fault ${record.detail} failed: ${(e as Error).message}`);
    } finally {
      record.endedAtMs = this.#now();
    }
  }

  async #processFault(event: ChaosEvent, target: FaultTarget, record: FaultRecord): Promise<void> {
    switch (event.kind) {
      case 'kill':
        await target.kill();
        this.emit('fault', record);
        await this.#hold(event.holdMs);
        await this.#restart(target);
        return;
      case 'pause':
        target.pause();
        this.emit('fault', record);
        await this.#hold(event.holdMs);
        target.resume();
        return;
      case 'leader-kill':
        await target.kill();
        this.emit('fault', record);
        await this.#failover(target.name, record);
        await this.#hold(event.holdMs);
        await this.#restart(target);
        return;
      case 'leader-pause':
        target.pause();
        this.emit('fault', record);
        await this.#failover(target.name, record);
        await this.#hold(event.holdMs);
        target.resume();
        return;
      case 'failpoint': {
        this.emit('fault', record);
        const result = await target.failpoint(event.failpoint ?? '', event.holdMs, this.#healing.signal);
        record.note = result;
        if (!target.alive) {
          if (result === 'fired') await this.#hold(FAILPOINT_DOWN_MS);
          await this.#restart(target);
        }
        return;
      }
      default:
        return;
    }
  }

  /**
   * Waits until a member other than `from` leads and serves, and records it. Healing does not cut
   * this short: the takeover is the fault's point, and heal() waits for it.
   */
  async #failover(from: string, record: FaultRecord): Promise<void> {
    const leaders = this.#options.leaders;
    if (!leaders || !LEADER_FAULTS.has(record.kind)) return;
    const startedAt = Date.now();
    try {
      const to = await leaders.next(from);
      record.failover = { to, atMs: this.#now(), withoutLeaderMs: Date.now() - startedAt };
      record.note = `${to} leads and serves after ${Date.now() - startedAt} ms`;
    } catch (e) {
      this.#problem(`no member took over from ${from}: ${(e as Error).message}`);
    }
  }

  async #restart(target: FaultTarget): Promise<void> {
    try {
      await target.start();
      this.#recoveries++;
    } catch (e) {
      // Left down: heal() tries again.
      this.#problem(`${target.name} did not restart: ${(e as Error).message}`);
    }
  }
}
