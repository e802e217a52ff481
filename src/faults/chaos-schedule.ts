// The fault schedule of a chaos run: a list of timed fault events drawn from a seed, so that one
// seed always gives the same schedule (the timing of a real machine never replays exactly, the
// schedule does). Every requested kind is placed at least once when the run is long enough; one
// target carries at most one process fault and one link fault at a time, with room after each to
// recover.

import { Prng } from '../sim/prng.js';
import type { ProxyDirection } from './fault-proxy.js';

/** The kinds of fault a chaos run injects (`all` with a single coordinator). */
export const FAULT_KINDS = ['kill', 'pause', 'partition', 'delay', 'drop', 'reset', 'failpoint'] as const;
/**
 * Kinds that only a run against a coordinator group injects: `leader-kill` SIGKILLs the member
 * etcd names leader and restarts it once another member serves; `leader-pause` SIGSTOPs it until
 * another member serves (past its lease), then SIGCONTs it.
 */
export const GROUP_FAULT_KINDS = ['leader-kill', 'leader-pause'] as const;
/** Every kind, those of a group run included. */
export const ALL_FAULT_KINDS = [...FAULT_KINDS, ...GROUP_FAULT_KINDS] as const;
/** A kind of fault. */
export type FaultKind = (typeof ALL_FAULT_KINDS)[number];

/** Kinds that act on a process; the others act on a link. */
export const PROCESS_FAULTS: ReadonlySet<FaultKind> = new Set(['kill', 'pause', 'failpoint', 'leader-kill', 'leader-pause']);
/** Kinds that need a coordinator group. */
export const LEADER_FAULTS: ReadonlySet<FaultKind> = new Set(GROUP_FAULT_KINDS);
/**
 * The target name that stands for "the member etcd names leader at the fault's start" in a group
 * run: the injector resolves it when the fault begins.
 */
export const LEADER_TARGET = 'leader';

/** When the first fault may come, in ms after the workload started. */
export const FIRST_FAULT_MS = 500;
/** Default gap between two fault starts, in ms. */
export const DEFAULT_GAP_MS: Range = [300, 1_200];
/** Time a target is left alone after a fault that ends in a restart (a tsx child starts in ~1–2 s), in ms. */
export const RESTART_ALLOWANCE_MS = 2_500;
/**
 * Extra time a leader is left alone after a leader fault: the group needs about one lease (1 s in
 * chaos runs) plus a campaign and the new term's recovery before another member serves (1.0–1.5 s
 * measured), in ms.
 */
export const FAILOVER_ALLOWANCE_MS = 2_000;
/** Time a target is left alone after any other fault, in ms. */
export const SETTLE_ALLOWANCE_MS = 300;
/** Most faults in progress at once. */
export const DEFAULT_MAX_CONCURRENT = 2;

/** An inclusive range, in ms. */
export type Range = readonly [min: number, max: number];

/** How long each kind holds, in ms. */
export const HOLD_MS: Readonly<Record<FaultKind, Range>> = {
  kill: [100, 1_500],
  pause: [500, 3_000],
  partition: [500, 3_000],
  delay: [1_000, 3_000],
  drop: [300, 2_000],
  reset: [0, 0],
  failpoint: [1_500, 4_000],
  // After another member serves: how long the old leader stays down, or stays stopped.
  'leader-kill': [200, 1_500],
  'leader-pause': [0, 500],
};
/** Extra latency of a delayed link, in ms. */
export const DELAY_MS: Range = [20, 400];
/** Share of process faults that go to the hub (the coordinator) when it is free. */
export const HUB_SHARE = 0.35;
/** A failpoint fires from one of its first hits. */
export const MAX_FROM_HIT = 3;

/** One fault of the schedule. */
export interface ChaosEvent {
  /** Position in the schedule. */
  readonly seq: number;
  /** Ms after the workload started. */
  readonly atMs: number;
  readonly kind: FaultKind;
  /** A process name (kill, pause, failpoint) or the participant whose link is faulted. */
  readonly target: string;
  /** How long the fault holds before it is undone (kill: downtime; failpoint: how long it may take to fire). */
  readonly holdMs: number;
  /** Link faults: which way. */
  readonly direction?: ProxyDirection;
  /** `delay`: the added latency. */
  readonly delayMs?: number;
  /** `failpoint`: the VERDICT_FAILPOINTS specification armed (e.g. `coordinator.after-votes=crash@2`). */
  readonly failpoint?: string;
}

/** What the schedule may use. */
export interface ScheduleOptions {
  readonly seed: number;
  /** Length of the fault phase, in ms: every fault starts before it ends. */
  readonly durationMs: number;
  readonly kinds: readonly FaultKind[];
  /** Processes that may be killed or paused (the coordinator and the participants). */
  readonly processes: readonly string[];
  /** Participants whose link may be faulted. */
  readonly links: readonly string[];
  /** Failpoints (`name=action`, without `@N`) that may be armed, by process. */
  readonly failpoints: Readonly<Record<string, readonly string[]>>;
  readonly gapMs?: Range;
  readonly maxConcurrent?: number;
  /** A process that gets HUB_SHARE of the process faults (the coordinator: one of it, many participants). */
  readonly hub?: string;
  /** Targets of a kind, instead of `processes` or `links` (e.g. a group's `leader` for leader faults). */
  readonly targetsByKind?: Readonly<Partial<Record<FaultKind, readonly string[]>>>;
}

/** Builds the schedule of `options.seed`: the same options always give the same events. */
export function buildSchedule(options: ScheduleOptions): ChaosEvent[] {
  // Its own stream: the schedule does not shift when the workload draws differently.
  const rng = new Prng((options.seed ^ 0xc4a0_5eed) >>> 0);
  const kinds = [...new Set(options.kinds)].filter((k) => candidates(k, options).length > 0);
  const gap = options.gapMs ?? DEFAULT_GAP_MS;
  const maxConcurrent = options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT;
  // Every kind once first, in a seeded order; then any kind.
  const owed = shuffle(rng, kinds);
  const busyUntil = new Map<string, number>();
  const ends: number[] = [];
  const events: ChaosEvent[] = [];
  for (let t = FIRST_FAULT_MS; t < options.durationMs && kinds.length > 0; t += rng.int(gap[0], gap[1])) {
    const inProgress = ends.filter((end) => end > t).length;
    if (inProgress >= maxConcurrent) continue;
    const kind = owed[0] ?? rng.pick(kinds);
    // A process fault and a link fault may overlap on one participant (a crash while its link is
    // slow is a case worth having); two of the same family may not.
    const family = PROCESS_FAULTS.has(kind) ? 'process' : 'link';
    const free = candidates(kind, options).filter((target) => (busyUntil.get(`${family}:${target}`) ?? 0) <= t);
    if (free.length === 0) continue;
    if (owed[0] === kind) owed.shift();
    const hub = options.hub !== undefined && family === 'process' && free.includes(options.hub) ? options.hub : undefined;
    const target = hub !== undefined && rng.chance(HUB_SHARE) ? hub : rng.pick(free);
    const [min, max] = HOLD_MS[kind];
    const holdMs = Math.min(rng.int(min, max), Math.max(0, options.durationMs - t));
    const event: { -readonly [K in keyof ChaosEvent]: ChaosEvent[K] } = { seq: events.length, atMs: t, kind, target, holdMs };
    if (!PROCESS_FAULTS.has(kind) && kind !== 'reset') event.direction = rng.pick(['up', 'down', 'both', 'both'] as const);
    if (kind === 'delay') event.delayMs = rng.int(DELAY_MS[0], DELAY_MS[1]);
    if (kind === 'failpoint') {
      const spec = rng.pick(options.failpoints[target] ?? []);
      const fromHit = rng.int(1, MAX_FROM_HIT);
      event.failpoint = fromHit > 1 ? `${spec}@${fromHit}` : spec;
    }
    const restarts = kind === 'kill' || kind === 'leader-kill' || (kind === 'failpoint' && /=crash/.test(event.failpoint ?? ''));
    const end = t + holdMs + (restarts ? RESTART_ALLOWANCE_MS : SETTLE_ALLOWANCE_MS) + (LEADER_FAULTS.has(kind) ? FAILOVER_ALLOWANCE_MS : 0);
    busyUntil.set(`${family}:${target}`, end);
    ends.push(end);
    events.push(event);
  }
  return events;
}

/** One line per event, for reports and for comparing two schedules. */
export function describeEvent(e: ChaosEvent): string {
  const extra = [
    e.direction ? `dir=${e.direction}` : '',
    e.delayMs !== undefined ? `+${e.delayMs}ms` : '',
    e.failpoint ? e.failpoint : '',
    e.kind === 'reset' ? '' : `for ${e.holdMs}ms`,
  ].filter(Boolean);
  return `${(e.atMs / 1000).toFixed(2)}s ${e.kind} ${e.target} ${extra.join(' ')}`.trimEnd();
}

/**
 * Parses a comma-separated list of fault kinds (`all`: every kind the run can inject; with
 * `group`, the leader faults too); throws RangeError naming an unknown kind, or a leader fault
 * without `group`.
 */
export function parseFaultKinds(list: string, options: { readonly group?: boolean } = {}): FaultKind[] {
  const out: FaultKind[] = [];
  for (const raw of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (raw === 'all') return options.group === true ? [...ALL_FAULT_KINDS] : [...FAULT_KINDS];
    if (!(ALL_FAULT_KINDS as readonly string[]).includes(raw)) throw new RangeError(`unknown fault kind ${JSON.stringify(raw)} (expected ${ALL_FAULT_KINDS.join(', ')})`);
    if (options.group !== true && LEADER_FAULTS.has(raw as FaultKind)) throw new RangeError(`fault kind ${raw} needs a coordinator group (--group)`);
    if (!out.includes(raw as FaultKind)) out.push(raw as FaultKind);
  }
  if (out.length === 0) throw new RangeError('no fault kind given');
  return out;
}

function candidates(kind: FaultKind, options: ScheduleOptions): readonly string[] {
  const chosen = options.targetsByKind?.[kind];
  if (kind === 'failpoint') return (chosen ?? options.processes).filter((p) => (options.failpoints[p]?.length ?? 0) > 0);
  if (chosen) return chosen;
  if (LEADER_FAULTS.has(kind)) return [];
  return PROCESS_FAULTS.has(kind) ? options.processes : options.links;
}

function shuffle<T>(rng: Prng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
