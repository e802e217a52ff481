// Options of `verdict bench`: which configurations to run, for how long, and what to measure
// alongside them (the transport ceiling, the naive baseline, CPU profiles, samples over time).

/** Participant counts of the default matrix. */
export const DEFAULT_PARTICIPANT_COUNTS: readonly number[] = [1, 3, 5];
/** In-flight transaction counts of the default matrix. */
export const DEFAULT_INFLIGHT_COUNTS: readonly number[] = [1, 64, 256];
/** Measured duration of each configuration, in seconds. */
export const DEFAULT_DURATION_S = 10;
/** Warm-up before each measurement (JIT, connections, LevelDB caches), in seconds. */
export const DEFAULT_WARMUP_S = 2;
/** Bytes of payload per branch: what a small real prepare carries (an amount, an account). */
export const DEFAULT_PAYLOAD_BYTES = 64;
/** How long a child process may take to start and report ready, in ms. */
export const CHILD_START_TIMEOUT_MS = 30_000;
/** How long a child may take to answer a stats request, in ms. */
export const CHILD_REQUEST_TIMEOUT_MS = 10_000;
/** How long a child may take to close and exit (writing its CPU profile) before SIGKILL, in ms. */
export const CHILD_STOP_TIMEOUT_MS = 15_000;
/** How long in-flight transactions may take to finish after the measurement, in ms. */
export const DRAIN_TIMEOUT_MS = 15_000;
/** Per-call deadline of the load generator's commits, in ms. */
export const LOAD_CALL_TIMEOUT_MS = 10_000;
/**
 * The shortest sampling interval accepted, in seconds: every sample is an IPC round trip to each
 * child, and a shorter interval holds too few transactions for a meaningful p99.
 */
export const MIN_INTERVAL_S = 0.1;
/**
 * A remainder of the window shorter than this fraction of an interval is folded into the last
 * interval instead of being sampled on its own (a sliver would give a p99 of a handful of txs).
 */
export const MIN_FINAL_INTERVAL_FRACTION = 0.5;
/** The largest matrix axis value accepted (a sanity bound, not a protocol limit). */
export const MAX_PARTICIPANTS = 64;
/** The most concurrent workers accepted. */
export const MAX_INFLIGHT = 10_000;
/** The most rounds accepted (a sanity bound). */
export const MAX_ROUNDS = 100;
/** Leader SIGKILLs of a `group` run's failover measurement by default. */
export const DEFAULT_KILLS = 5;
/** The most leader kills accepted (each costs about a lease and a process start). */
export const MAX_KILLS = 100;
/**
 * The lease of the failover measurement's group, in whole seconds: short, so that a kill costs
 * about a second (production's default is 5 s; failover takes about one lease).
 */
export const DEFAULT_FAILOVER_LEASE_TTL_S = 1;
/** The longest failover lease accepted, in seconds (as `verdict coordinator --lease-ttl`). */
export const MAX_FAILOVER_LEASE_TTL_S = 600;

/** What runs the protocol in a measurement. */
export const BenchVariant = {
  /** The production path: group commit of forced writes and frame batching on sessions, at coordinator and participants. */
  OPTIMIZED: 'optimized',
  /** The naive path: every log write is its own (forced when required) batch, every session message its own frame. */
  BASELINE: 'baseline',
} as const;
export type BenchVariant = (typeof BenchVariant)[keyof typeof BenchVariant];

/**
 * Which keys the participants lock. Every bench participant locks one key per transaction,
 * exclusively, in prepare (as a real resource manager would): `uniform` is a key of its own per
 * transaction (never a conflict: what the lock bookkeeping costs), `hot` one of `hotKeys` keys
 * (conflicts, voted NO with `lock conflict`), `none` no lock at all (hooks as they were written
 * before the lock API: what the protocol alone costs, comparable with builds that predate it).
 */
/** How a hot-key payload starts: `hot/<n>;` names the key to lock. */
export const HOT_KEY_PREFIX = 'hot/';

/** Which keys the participants lock (see above). */
export const BenchKeys = { UNIFORM: 'uniform', HOT: 'hot', NONE: 'none' } as const;
/** Which keys the participants lock. */
export type BenchKeys = (typeof BenchKeys)[keyof typeof BenchKeys];

/** What the connections of a measurement run on. */
export const BenchTransport = {
  /** Plaintext gRPC (the loopback default). */
  PLAINTEXT: 'plaintext',
  /** Mutual TLS with throwaway certificates: the coordinator requires a client certificate of every participant and of the load generator. */
  TLS: 'tls',
} as const;
/** What the connections of a measurement run on. */
export type BenchTransport = (typeof BenchTransport)[keyof typeof BenchTransport];

/** Which transports `runBench` measures. */
export const BenchTls = {
  /** Plaintext only (the default). */
  OFF: 'off',
  /** Mutual TLS only. */
  ON: 'on',
  /** Every configuration plaintext, then with mutual TLS, in the same run. */
  COMPARE: 'compare',
} as const;
/** Which transports `runBench` measures. */
export type BenchTls = (typeof BenchTls)[keyof typeof BenchTls];

/** Where the coordinator of a measurement keeps its decision log. */
export const BenchLog = {
  /** A single coordinator with its LevelDB log on the local disk (the default deployment). */
  LEVELDB: 'leveldb',
  /**
   * A coordinator group whose decision log is in a throwaway 3-member etcd on 127.0.0.1: the
   * coordinator child is the group's one member, and leads.
   */
  ETCD: 'etcd',
} as const;
/** Where the coordinator of a measurement keeps its decision log. */
export type BenchLog = (typeof BenchLog)[keyof typeof BenchLog];

/** One measured configuration. */
export interface BenchConfiguration {
  readonly participants: number;
  readonly inflight: number;
  readonly variant: BenchVariant;
  readonly keys: BenchKeys;
  readonly transport: BenchTransport;
  readonly log: BenchLog;
}

/** How the load generator sends its commits. */
export const BenchInitiator = {
  /** Every commit over one shared CommitStream. */
  STREAM: 'stream',
  /** One unary Commit call per transaction. */
  UNARY: 'unary',
} as const;
export type BenchInitiator = (typeof BenchInitiator)[keyof typeof BenchInitiator];

/** Options of `runBench`. */
export interface BenchOptions {
  /** Participant counts to run (one axis of the matrix). Default 1, 3, 5. */
  readonly participants?: readonly number[];
  /** In-flight counts to run (the other axis). Default 1, 64, 256. */
  readonly inflight?: readonly number[];
  /** Measured seconds per configuration. Default 10. */
  readonly durationS?: number;
  /** Warm-up seconds per configuration, not measured. Default 2. */
  readonly warmupS?: number;
  /** Also run every configuration on the naive path and report the ratios. Default false. */
  readonly baseline?: boolean;
  /** Measure the transport ceiling (bare echo) for every configuration. Default true. */
  readonly ceiling?: boolean;
  /** Measured seconds of each ceiling run. Default: `durationS`. */
  readonly ceilingDurationS?: number;
  /** Payload bytes per branch. Default 64. */
  readonly payloadBytes?: number;
  /**
   * When set, every configuration also runs with all transactions locking one of this many
   * keys (`hot`), next to the default of a key per transaction (`uniform`). Default: uniform only.
   */
  readonly hotKeys?: number;
  /**
   * When true, every configuration also runs with participants whose hooks take no lock
   * (`none`), next to a key per transaction: the lock bookkeeping's cost is the difference.
   */
  readonly lockFree?: boolean;
  /**
   * How the load generator (and the ceiling's) sends its commits: over one CommitStream
   * (`VerdictClientOptions.streamCommits`, the default) or as one unary call each.
   */
  readonly initiator?: BenchInitiator;
  /** When set, every Verdict child runs with `--cpu-prof` and writes its profile here. */
  readonly cpuProfDir?: string;
  /**
   * When set, the measured window (not the warm-up, not the ceiling) is cut into intervals of
   * this many seconds and memory and latency are sampled at the end of each (see
   * `sampleTimesS`). At least `MIN_INTERVAL_S` and at most half of `durationS`, so that there
   * are two samples or more. Default: no sampling.
   */
  readonly intervalS?: number;
  /**
   * Plaintext (`off`, the default), mutual TLS with throwaway certificates (`on`), or both for
   * every configuration in the same run (`compare`), so that the cost of TLS is measured under
   * the same conditions. The transport ceiling (echo) stays plaintext.
   */
  readonly tls?: BenchTls;
  /**
   * How many times the whole list of configurations runs (default 1). Odd rounds run it in
   * order, even rounds in reverse (A B, B A, A B, …), so that a drift over the run or an
   * advantage of running second falls on every configuration alike. Results carry their round,
   * and comparisons (`vsBaseline`, `vsPlaintext`, `vsLockFree`) pair results of the same round.
   */
  readonly rounds?: number;
  /**
   * When true, every configuration runs on LevelDB and then on a coordinator group whose
   * decision log is in a throwaway 3-member etcd cluster on 127.0.0.1 (`etcd` must be on the
   * PATH, or installable from a checkout), in the same run; and the group's failover time is
   * measured over `kills` SIGKILLs of its leader. The optimized path only. With `tls`, the group's
   * member serves mutual TLS from the run's throwaway PKI as the LevelDB coordinator does (and
   * with `tls: 'on'` the failover group's members too). Default false.
   */
  readonly group?: boolean;
  /** With `group`: leader SIGKILLs of the failover measurement (0 skips it). Default 5. */
  readonly kills?: number;
  /** With `group`: the lease of the failover measurement's members, in whole seconds. Default 1. */
  readonly leaseTtlS?: number;
  /** Progress lines (one per phase), e.g. to stderr. */
  readonly onProgress?: (line: string) => void;
}

/** `BenchOptions` with every default filled in and checked. */
export interface ResolvedBenchOptions {
  readonly participants: readonly number[];
  readonly inflight: readonly number[];
  readonly durationS: number;
  readonly warmupS: number;
  readonly baseline: boolean;
  readonly ceiling: boolean;
  readonly ceilingDurationS: number;
  readonly payloadBytes: number;
  readonly hotKeys: number | undefined;
  readonly lockFree: boolean;
  readonly initiator: BenchInitiator;
  readonly cpuProfDir: string | undefined;
  readonly intervalS: number | undefined;
  /** The transports each configuration runs on, in order. */
  readonly transports: readonly BenchTransport[];
  readonly rounds: number;
  /** The decision logs each configuration runs on, in order (`etcd` only with `group`). */
  readonly logs: readonly BenchLog[];
  /** Leader SIGKILLs of the failover measurement (0 without `group`). */
  readonly kills: number;
  /** The failover group's lease, in whole seconds. */
  readonly leaseTtlS: number;
  readonly onProgress: (line: string) => void;
}

/** Fills in defaults; throws a RangeError naming the first bad option. */
export function resolveBenchOptions(options: BenchOptions = {}): ResolvedBenchOptions {
  const participants = checkAxis('participants', options.participants ?? DEFAULT_PARTICIPANT_COUNTS, MAX_PARTICIPANTS);
  const inflight = checkAxis('inflight', options.inflight ?? DEFAULT_INFLIGHT_COUNTS, MAX_INFLIGHT);
  const durationS = checkSeconds('durationS', options.durationS ?? DEFAULT_DURATION_S, false);
  const warmupS = checkSeconds('warmupS', options.warmupS ?? DEFAULT_WARMUP_S, true);
  const ceilingDurationS = checkSeconds('ceilingDurationS', options.ceilingDurationS ?? durationS, false);
  const payloadBytes = options.payloadBytes ?? DEFAULT_PAYLOAD_BYTES;
  if (!Number.isSafeInteger(payloadBytes) || payloadBytes < 0 || payloadBytes > 1024 * 1024) {
    throw new RangeError(`payloadBytes must be an integer from 0 to 1 MiB, got ${payloadBytes}`);
  }
  if (options.initiator !== undefined && !Object.values(BenchInitiator).includes(options.initiator)) {
    throw new RangeError(`initiator must be one of ${Object.values(BenchInitiator).join(', ')}, got ${String(options.initiator)}`);
  }
  const intervalS = options.intervalS === undefined ? undefined : checkInterval(options.intervalS, durationS);
  if (options.tls !== undefined && !Object.values(BenchTls).includes(options.tls)) {
    throw new RangeError(`tls must be one of ${Object.values(BenchTls).join(', ')}, got ${String(options.tls)}`);
  }
  const tls = options.tls ?? BenchTls.OFF;
  const transports =
    tls === BenchTls.COMPARE ? [BenchTransport.PLAINTEXT, BenchTransport.TLS] : tls === BenchTls.ON ? [BenchTransport.TLS] : [BenchTransport.PLAINTEXT];
  const hotKeys = options.hotKeys;
  if (hotKeys !== undefined && (!Number.isSafeInteger(hotKeys) || hotKeys < 1 || hotKeys > 1_000_000)) {
    throw new RangeError(`hotKeys must be an integer from 1 to 1000000, got ${hotKeys}`);
  }
  const rounds = options.rounds ?? 1;
  if (!Number.isSafeInteger(rounds) || rounds < 1 || rounds > MAX_ROUNDS) throw new RangeError(`rounds must be an integer from 1 to ${MAX_ROUNDS}, got ${rounds}`);
  const group = options.group ?? false;
  if (!group && (options.kills !== undefined || options.leaseTtlS !== undefined)) {
    throw new RangeError('kills and leaseTtlS measure the failover of a coordinator group: they need group');
  }
  if (group && options.baseline === true) {
    throw new RangeError('group cannot be combined with baseline: the etcd decision log always groups its writes, so its baseline would not be naive');
  }
  const kills = group ? (options.kills ?? DEFAULT_KILLS) : 0;
  if (!Number.isSafeInteger(kills) || kills < 0 || kills > MAX_KILLS) throw new RangeError(`kills must be an integer from 0 to ${MAX_KILLS}, got ${kills}`);
  const leaseTtlS = options.leaseTtlS ?? DEFAULT_FAILOVER_LEASE_TTL_S;
  if (!Number.isSafeInteger(leaseTtlS) || leaseTtlS < 1 || leaseTtlS > MAX_FAILOVER_LEASE_TTL_S) {
    throw new RangeError(`leaseTtlS must be a whole number of seconds from 1 to ${MAX_FAILOVER_LEASE_TTL_S}, got ${leaseTtlS}`);
  }
  return {
    participants,
    inflight,
    durationS,
    warmupS,
    baseline: options.baseline ?? false,
    ceiling: options.ceiling ?? true,
    ceilingDurationS,
    payloadBytes,
    hotKeys,
    lockFree: options.lockFree ?? false,
    initiator: options.initiator ?? BenchInitiator.STREAM,
    cpuProfDir: options.cpuProfDir,
    intervalS,
    transports,
    rounds,
    logs: group ? [BenchLog.LEVELDB, BenchLog.ETCD] : [BenchLog.LEVELDB],
    kills,
    leaseTtlS,
    onProgress: options.onProgress ?? (() => undefined),
  };
}

/**
 * The configurations of one round, in order: participants, then in-flight, then variant, keys,
 * transport and decision log (even rounds run them in reverse; see `BenchOptions.rounds`).
 */
export function benchConfigurations(options: ResolvedBenchOptions): BenchConfiguration[] {
  const variants: BenchVariant[] = options.baseline ? [BenchVariant.OPTIMIZED, BenchVariant.BASELINE] : [BenchVariant.OPTIMIZED];
  const keys: BenchKeys[] = [BenchKeys.UNIFORM];
  if (options.hotKeys !== undefined) keys.push(BenchKeys.HOT);
  if (options.lockFree) keys.push(BenchKeys.NONE);
  const out: BenchConfiguration[] = [];
  for (const participants of options.participants) {
    for (const inflight of options.inflight) {
      for (const variant of variants) {
        for (const k of keys) {
          for (const transport of options.transports) for (const log of options.logs) out.push({ participants, inflight, variant, keys: k, transport, log });
        }
      }
    }
  }
  return out;
}

/** Every measurement of a run, in order: the configurations of each round (see `BenchOptions.rounds`). */
export function benchSchedule(options: ResolvedBenchOptions): { readonly round: number; readonly config: BenchConfiguration }[] {
  const configurations = benchConfigurations(options);
  return Array.from({ length: options.rounds }, (_, i) => (i % 2 === 0 ? configurations : [...configurations].reverse()).map((config) => ({ round: i + 1, config }))).flat();
}

/**
 * When the samples of a window of `durationS` are taken, in seconds since it opened: at every
 * multiple of `intervalS`, and at the window's end. A remainder of at least
 * `MIN_FINAL_INTERVAL_FRACTION` of an interval is a shorter last interval of its own; a smaller
 * one is folded into the last interval, so the last sample always falls at the window's end.
 */
export function sampleTimesS(durationS: number, intervalS: number): number[] {
  // The epsilon keeps 0.3 / 0.1 (= 2.9999…) from losing an interval to rounding.
  const whole = Math.floor(durationS / intervalS + 1e-9);
  const times = Array.from({ length: whole }, (_, i) => (i + 1) * intervalS);
  const remainder = durationS - whole * intervalS;
  if (remainder >= MIN_FINAL_INTERVAL_FRACTION * intervalS || times.length === 0) times.push(durationS);
  else times[times.length - 1] = durationS;
  return times;
}

function checkInterval(value: number, durationS: number): number {
  if (!Number.isFinite(value) || value < MIN_INTERVAL_S) {
    throw new RangeError(`intervalS must be a number of seconds ≥ ${MIN_INTERVAL_S}, got ${value}`);
  }
  if (value > durationS / 2) {
    throw new RangeError(`intervalS must be at most half of durationS (${durationS / 2} s) so that there are at least two samples, got ${value}`);
  }
  return value;
}

function checkAxis(name: string, values: readonly number[], max: number): readonly number[] {
  if (values.length === 0) throw new RangeError(`${name} must list at least one value`);
  for (const v of values) {
    if (!Number.isSafeInteger(v) || v < 1 || v > max) throw new RangeError(`${name} must be integers from 1 to ${max}, got ${v}`);
  }
  return [...new Set(values)];
}

function checkSeconds(name: string, value: number, zeroAllowed: boolean): number {
  if (!Number.isFinite(value) || value < 0 || (!zeroAllowed && value === 0) || value > 24 * 3600) {
    throw new RangeError(`${name} must be a number of seconds ${zeroAllowed ? '≥ 0' : '> 0'}, got ${value}`);
  }
  return value;
}
