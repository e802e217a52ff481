// `verdict bench`: for every configuration (participants × in flight × variant) it starts a
// coordinator and P participants as separate processes, drives them from this process for a
// warm-up and a measured window, and collects throughput, latency, CPU, forced writes and peak
// RSS. The same configuration runs once more against the bare echo (the transport ceiling), so
// each result also says how much of the transport's capacity the protocol keeps. With an
// interval, the window is also sampled over time (memory, tail latency), to show a long run stays
// flat. With `group`, every configuration also runs on a coordinator group whose decision log is
// in a throwaway 3-member etcd (the coordinator child is its one member), and the group's failover
// time is measured over repeated SIGKILLs of the leader of three real member processes.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VerdictClient } from '../client/client.js';
import { ErrorCode, VerdictError } from '../errors.js';
import type { BranchInput } from '../client/client-options.js';
import { createThrowawayTls } from '../common/throwaway-tls.js';
import type { ClientSecurityOptions } from '../common/tls.js';
import { BenchChild } from './bench-child.js';
import { BenchRole, type BenchNodeReport, type BenchNodeSpec } from './bench-ipc.js';
import {
  BenchInitiator,
  BenchKeys,
  BenchLog,
  BenchTransport,
  BenchVariant,
  benchSchedule,
  HOT_KEY_PREFIX,
  CHILD_REQUEST_TIMEOUT_MS,
  CHILD_START_TIMEOUT_MS,
  CHILD_STOP_TIMEOUT_MS,
  DRAIN_TIMEOUT_MS,
  resolveBenchOptions,
  sampleTimesS,
  type BenchConfiguration,
  type BenchOptions,
  type ResolvedBenchOptions,
} from './bench-options.js';
import { formatSampleProgress, summarizeIntervals, takeSample, toInterval, type BenchInterval, type Sample } from './bench-intervals.js';
import type { BenchFailover } from './failover.js';
import { LoadGenerator, type LoadWindow } from './load.js';
import { processesCpuUs } from './process-cpu.js';
import { RssMeter } from './rss-meter.js';
import type { EtcdCluster } from '../faults/etcd-cluster.js';

/** Slack on top of a measurement's planned phases before its watchdog kills it, in ms. */
const WATCHDOG_SLACK_MS = 10_000;

/** Ratios of an optimized result to the naive baseline of the same configuration. */
export interface BaselineComparison {
  /** Committed tx/s, optimized ÷ baseline (> 1: the optimizations pay). */
  readonly committedPerSec: number;
  /** p50 latency, optimized ÷ baseline (< 1: faster). */
  readonly p50Ms: number;
  /** Coordinator forced writes per tx, optimized ÷ baseline. */
  readonly forcedWritesPerTx: number;
  /** Participants' forced writes per tx, optimized ÷ baseline. */
  readonly participantForcedWritesPerTx: number;
  /** Coordinator CPU per tx, optimized ÷ baseline. */
  readonly coordinatorCpuUsPerTx: number;
}

/** Ratios of a mutual-TLS result to the plaintext result of the same configuration, in the same run. */
export interface PlaintextComparison {
  /** Committed tx/s, TLS ÷ plaintext (< 1: what TLS costs). */
  readonly committedPerSec: number;
  /** p50 latency, TLS ÷ plaintext. */
  readonly p50Ms: number;
  /** p99 latency, TLS ÷ plaintext. */
  readonly p99Ms: number;
  /** CPU of every process per tx, TLS ÷ plaintext. */
  readonly totalCpuUsPerTx: number;
}

/** Ratios of a result whose participants lock to the `none` result of the same configuration and round. */
export interface LockFreeComparison {
  /** Committed tx/s, locking ÷ lock-free (< 1: what the lock bookkeeping costs). */
  readonly committedPerSec: number;
  /** p99 latency, locking ÷ lock-free. */
  readonly p99Ms: number;
  /** CPU of every process per tx, locking ÷ lock-free. */
  readonly totalCpuUsPerTx: number;
}

/** Ratios of a coordinator group's result (decision log in etcd) to LevelDB's, same configuration, same run. */
export interface LevelDbComparison {
  /** Committed tx/s, etcd ÷ LevelDB (< 1: what the replicated log costs). */
  readonly committedPerSec: number;
  /** p50 latency, etcd ÷ LevelDB. */
  readonly p50Ms: number;
  /** p99 latency, etcd ÷ LevelDB. */
  readonly p99Ms: number;
}

/** One configuration's measurement. */
export interface BenchResult {
  /** Which round of the run measured it, from 1 (see `BenchOptions.rounds`). */
  readonly round: number;
  readonly participants: number;
  readonly inflight: number;
  readonly variant: BenchVariant;
  /** Plaintext, or mutual TLS with throwaway certificates. */
  readonly transport: BenchTransport;
  /** Which keys the participants locked: `uniform` (one per transaction), `hot:<n>`, or `none`. */
  readonly keys: string;
  /** How the load generator sent its commits (the ceiling's too). */
  readonly initiator: BenchInitiator;
  /** Where the coordinator kept its decision log: LevelDB, or etcd (a one-member coordinator group). */
  readonly decisionLog: BenchLog;
  /** Length of the measured window, in s. */
  readonly durationS: number;
  readonly committedPerSec: number;
  readonly abortedPerSec: number;
  /** Calls that failed without an outcome (should be 0). */
  readonly errorsPerSec: number;
  readonly firstError?: string;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  /** Coordinator CPU (user + system) per committed tx, in µs. */
  readonly coordinatorCpuUsPerTx: number;
  /** CPU of all participants together per committed tx, in µs. */
  readonly participantCpuUsPerTx: number;
  /** CPU of the load generator (the initiator client) per committed tx, in µs. */
  readonly loadCpuUsPerTx: number;
  /**
   * CPU of every process (coordinator, participants, load generator, and for the `etcd` log the
   * three etcd members) per committed tx, in µs.
   * On a machine where they all share the cores, cores × 10⁶ ÷ this is the most the system can
   * commit per second; it varies less with other work on the machine than throughput does.
   */
  readonly totalCpuUsPerTx: number;
  /**
   * CPU of the three etcd members together per committed tx, in µs, read from /proc (10 ms
   * resolution; NaN where it cannot be read); null for the `leveldb` log.
   */
  readonly etcdCpuUsPerTx: number | null;
  /** Coordinator forced writes (synced batches) per committed tx. */
  readonly forcedWritesPerTx: number;
  /** Coordinator log batches (synced or not) per committed tx: etcd transactions for the `etcd` log. */
  readonly coordinatorBatchesPerTx: number;
  /** Forced writes of all participants together per committed tx (2 × P without group commit). */
  readonly participantForcedWritesPerTx: number;
  /** Session messages per frame written by the coordinator (frame batching). */
  readonly messagesPerFrame: number;
  /** Peak RSS of the coordinator, in MB. */
  readonly peakRssMb: number;
  /** Highest peak RSS among the participants, in MB. */
  readonly participantPeakRssMb: number;
  /**
   * The host's 1-minute load average at the end of the window. On a shared machine a high value
   * (above the core count) means other work competed with this measurement.
   */
  readonly hostLoad: number;
  /** The echo's throughput in the same configuration (null when the ceiling was not measured). */
  readonly ceilingPerSec: number | null;
  /** The echo's p50 latency, in ms. */
  readonly ceilingP50Ms: number | null;
  /** The echo coordinator's CPU per tx, in µs. */
  readonly ceilingCpuUsPerTx: number | null;
  /** The echo's CPU of every process per tx, in µs. */
  readonly ceilingTotalCpuUsPerTx: number | null;
  /** committedPerSec ÷ ceilingPerSec. */
  readonly ceilingRatio: number | null;
  /**
   * ceilingTotalCpuUsPerTx ÷ totalCpuUsPerTx: the ceiling ratio the system would reach if CPU
   * were the only limit (a steadier figure than ceilingRatio on a busy machine).
   */
  readonly cpuCeilingRatio: number | null;
  /** For optimized results when the baseline ran too. */
  readonly vsBaseline?: BaselineComparison;
  /** For TLS results when the same configuration also ran in plaintext (`tls: 'compare'`). */
  readonly vsPlaintext?: PlaintextComparison;
  /** For results whose participants lock, when the same configuration also ran lock-free (`lockFree`). */
  readonly vsLockFree?: LockFreeComparison;
  /** For `etcd` results: the ratios to the LevelDB result of the same configuration. */
  readonly vsLevelDb?: LevelDbComparison;
  /**
   * For `etcd` results when kills were asked for: the group's failover time. It is measured once
   * per run, without load, after every configuration, so every `etcd` result carries the same one.
   */
  readonly failover?: BenchFailover;
  /** The window's samples, in time order (only with `BenchOptions.intervalS`). */
  readonly intervals?: readonly BenchInterval[];
  /**
   * (coordinator RSS at the last sample − at the first) ÷ at the first; 0.05 is +5 %. Only with
   * intervals. The first sample is taken at the end of the first interval after the warm-up, not
   * when the window opens, so start-up allocation (JIT, connection buffers, caches filling) does
   * not count as growth.
   */
  readonly rssGrowth?: number;
  /** The same as `rssGrowth` for the highest participant RSS of each sample. */
  readonly participantRssGrowth?: number;
  /**
   * Highest interval p99 ÷ lowest interval p99 (intervals without commits are skipped): 1 is a
   * perfectly steady tail. Only with intervals.
   */
  readonly p99Spread?: number;
}

interface Measurement {
  readonly window: LoadWindow;
  readonly hostLoad: number;
  readonly coordinator: BenchNodeReport;
  readonly participants: readonly BenchNodeReport[];
  /** CPU of the etcd members in the window, in µs (only for the `etcd` log; NaN when unreadable). */
  readonly etcdCpuUs?: number;
  /** Only when the window was sampled. */
  readonly samples?: readonly Sample[];
}

type ClusterKind = 'verdict' | 'echo';

/** Runs the configured matrix and returns one result per configuration, in matrix order. */
export async function runBench(options: BenchOptions = {}): Promise<BenchResult[]> {
  const opts = resolveBenchOptions(options);
  if (opts.cpuProfDir) mkdirSync(opts.cpuProfDir, { recursive: true });
  const root = mkdtempSync(join(tmpdir(), 'verdict-bench-'));
  const results: BenchResult[] = [];
  let etcd: EtcdCluster | undefined;
  let failover: BenchFailover | undefined;
  try {
    if (opts.logs.includes(BenchLog.ETCD)) {
      opts.onProgress('starting a throwaway 3-member etcd cluster on 127.0.0.1');
      const { EtcdCluster } = await import('../faults/etcd-cluster.js');
      // A machine without etcd is the user's to fix, not a bug: one line, as the CLI prints a VerdictError.
      etcd = await EtcdCluster.start().catch((e: unknown) => {
        throw new VerdictError(ErrorCode.UNAVAILABLE, `the coordinator group of --group needs etcd: ${(e as Error)?.message ?? String(e)}`, { cause: e });
      });
    }
    const tls = opts.transports.includes(BenchTransport.TLS) ? await benchTls(join(root, 'tls'), Math.max(...opts.participants)) : undefined;
    const ceilings = new Map<string, Measurement>();
    let run = 0;
    for (const { round, config } of benchSchedule(opts)) {
      const key = `${config.participants}/${config.inflight}`;
      if (opts.ceiling && !ceilings.has(key)) {
        // The echo is plaintext whatever the configuration's transport.
        opts.onProgress(`${label({ ...config, transport: BenchTransport.PLAINTEXT })} ceiling: echo for ${opts.warmupS} s + ${opts.ceilingDurationS} s`);
        const echo = await measure('echo', config, opts, join(root, `run-${++run}`));
        ceilings.set(key, echo);
        opts.onProgress(`${label({ ...config, transport: BenchTransport.PLAINTEXT })} ceiling: ${perSec(echo.window.committed, echo.window).toFixed(0)} tx/s (host load ${echo.hostLoad.toFixed(1)})`);
      }
      opts.onProgress(`${label(config)} ${config.variant}${opts.rounds > 1 ? `, round ${round}` : ''}, ${opts.initiator} initiator: ${opts.warmupS} s + ${opts.durationS} s`);
      const runNo = ++run;
      const group = etcd && config.log === BenchLog.ETCD ? await groupSetup(etcd, runNo) : undefined;
      const m = await measure('verdict', config, opts, join(root, `run-${runNo}`), config.transport === BenchTransport.TLS ? tls : undefined, group);
      const result = toResult(config, round, opts.initiator, m, ceilings.get(key), opts.hotKeys);
      results.push(result);
      opts.onProgress(
        `${label(config)} ${config.variant}: ${result.committedPerSec.toFixed(0)} tx/s, p50 ${result.p50Ms.toFixed(2)} ms (host load ${result.hostLoad.toFixed(1)})` +
          (result.errorsPerSec > 0 ? `, ${result.errorsPerSec.toFixed(1)} errors/s (${result.firstError})` : ''),
      );
    }
    if (etcd && opts.kills > 0) {
      // Over TLS when every configuration ran over it; measured once, so plaintext when both did.
      const failoverTls = tls && !opts.transports.includes(BenchTransport.PLAINTEXT) ? { tls: { memberArgs: tls.memberArgs, security: tls.initiator } } : {};
      opts.onProgress(`failover: a 3-member group (lease ${opts.leaseTtlS} s${failoverTls.tls ? ', mutual TLS' : ''}), ${opts.kills} SIGKILLs of its leader`);
      const { measureFailover } = await import('./failover.js');
      failover = await measureFailover(etcd, { kills: opts.kills, leaseTtlS: opts.leaseTtlS, dir: join(root, 'failover'), etcdPrefix: '/bench-failover/', onProgress: opts.onProgress, ...failoverTls });
    }
  } finally {
    await etcd?.stop();
    rmSync(root, { recursive: true, force: true });
  }
  const compared = compare(results);
  return failover ? compared.map((r) => (r.decisionLog === BenchLog.ETCD ? { ...r, failover } : r)) : compared;
}

/** An `etcd` measurement's coordinator group: the spec of its one member, and the etcd it runs on. */
interface GroupSetup {
  readonly spec: Pick<BenchNodeSpec, 'etcd' | 'etcdPrefix' | 'advertise'>;
  /** Whose members' CPU counts in the measurement too. */
  readonly etcd: EtcdCluster;
}

/** The coordinator group of the `run`-th measurement: one member, a key prefix of its own. */
async function groupSetup(etcd: EtcdCluster, run: number): Promise<GroupSetup> {
  const { fixedPort } = await import('../faults/process-cluster.js');
  return { spec: { etcd: etcd.hosts, etcdPrefix: `/bench-run-${run}/`, advertise: `127.0.0.1:${await fixedPort()}` }, etcd };
}

function label(c: BenchConfiguration): string {
  const keys = c.keys === BenchKeys.HOT ? ' hot keys' : c.keys === BenchKeys.NONE ? ' no locks' : '';
  return `P=${c.participants} inflight=${c.inflight}${keys}${c.transport === BenchTransport.TLS ? ' TLS' : ''}${c.log === BenchLog.ETCD ? ' etcd' : ''}`;
}

/** The PKI of the TLS measurements, and what their load generator dials with. */
interface BenchTlsSetup {
  readonly dir: string;
  readonly initiator: ClientSecurityOptions;
  /** The `verdict coordinator` flags that serve the PKI (the failover group's members). */
  readonly memberArgs: readonly string[];
}

/** The name of the load generator's initiator certificate. */
const BENCH_INITIATOR = 'bench';

/** A throwaway PKI in `dir` with the certificates of participants `bench-p0` … and of the load generator. */
async function benchTls(dir: string, participants: number): Promise<BenchTlsSetup> {
  const tls = await createThrowawayTls(dir);
  await Promise.all(Array.from({ length: participants }, (_, i) => tls.issue('participant', participantName(i))));
  return { dir: tls.dir, initiator: await tls.client('initiator', BENCH_INITIATOR), memberArgs: tls.coordinatorArgs };
}

function participantName(i: number): string {
  return `bench-p${i}`;
}

/**
 * Starts a cluster of `kind` for `config`, loads it and measures it. Every child is stopped at
 * the end (killed on any failure); a watchdog kills everything if a phase hangs.
 */
async function measure(
  kind: ClusterKind,
  config: BenchConfiguration,
  opts: ResolvedBenchOptions,
  dir: string,
  tls?: BenchTlsSetup,
  group?: GroupSetup,
): Promise<Measurement> {
  const optimized = config.variant === BenchVariant.OPTIMIZED;
  const durationS = kind === 'echo' ? opts.ceilingDurationS : opts.durationS;
  // The measured window only: a whole-process --cpu-prof would be dominated, on a busy machine,
  // by the seconds tsx spends loading modules at start-up.
  const profile = (name: string): { cpuProfile?: string } =>
    kind === 'verdict' && opts.cpuProfDir
      ? { cpuProfile: join(opts.cpuProfDir, `P${config.participants}-N${config.inflight}-${config.variant}${group ? '-etcd' : ''}-${name}.cpuprofile`) }
      : {};
  const children: BenchChild[] = [];
  let expired = false;
  // Sampling needs no share of its own: samples are sent without waiting for their answers, so
  // the window ends on time however slowly children answer, and those still outstanding then are
  // awaited alongside the reports, each under its own CHILD_REQUEST_TIMEOUT_MS.
  const budgetMs =
    2 * CHILD_START_TIMEOUT_MS + (opts.warmupS + durationS) * 1000 + 2 * CHILD_REQUEST_TIMEOUT_MS + DRAIN_TIMEOUT_MS + CHILD_STOP_TIMEOUT_MS + WATCHDOG_SLACK_MS;
  const watchdog = setTimeout(() => {
    expired = true;
    for (const c of children) void c.kill();
  }, budgetMs);
  let client: VerdictClient | undefined;
  let load: LoadGenerator | undefined;
  let rss: RssMeter | undefined;
  let ok = false;
  try {
    const names = Array.from({ length: config.participants }, (_, i) => participantName(i));
    const tlsDir = tls ? { tlsDir: tls.dir } : {};
    const coordinator = BenchChild.fork(`${kind} coordinator`);
    const participants = names.map((name) => BenchChild.fork(`${kind} participant ${name}`));
    children.push(coordinator, ...participants);
    const address = await coordinator.start({
      role: kind === 'echo' ? BenchRole.ECHO_COORDINATOR : group ? BenchRole.GROUP_MEMBER : BenchRole.COORDINATOR,
      name: 'coordinator',
      dataDir: join(dir, 'coordinator'),
      ...group?.spec,
      optimized,
      ...profile('coordinator'),
      ...tlsDir,
    });
    await Promise.all(
      participants.map((p, i) =>
        p.start({
          role: kind === 'verdict' ? BenchRole.PARTICIPANT : BenchRole.ECHO_PARTICIPANT,
          name: names[i] ?? '',
          coordinator: address,
          dataDir: join(dir, names[i] ?? ''),
          optimized,
          locks: config.keys !== BenchKeys.NONE,
          ...profile(names[i] ?? ''),
          ...tlsDir,
        }),
      ),
    );

    client = new VerdictClient(address, { streamCommits: opts.initiator === BenchInitiator.STREAM, ...tls?.initiator });
    const payload = Buffer.alloc(opts.payloadBytes, 0x61);
    const hotKeys = opts.hotKeys ?? 1;
    let next = 0;
    // Hot: the payload names the key to lock (`hot/<n>;`, then the filler); uniform: it does not.
    const branches =
      config.keys === BenchKeys.HOT
        ? (): BranchInput[] => {
            const key = Buffer.from(`${HOT_KEY_PREFIX}${next++ % hotKeys};`);
            const p = Buffer.concat([key, payload.subarray(Math.min(key.length, payload.length))]);
            return names.map((participant) => ({ participant, payload: p }));
          }
        : names.map((participant) => ({ participant, payload }));
    load = new LoadGenerator(client, branches, config.inflight);
    load.start();
    if (opts.warmupS > 0) await sleep(opts.warmupS * 1000);
    await Promise.all(children.map((c) => c.mark()));
    const etcdCpuFrom = group ? processesCpuUs(group.etcd.pids) : 0;
    load.startRecording();
    const windowStart = performance.now();
    // The ceiling is a throughput reference; memory and tail over time are the protocol's.
    const sampling = kind === 'verdict' && opts.intervalS !== undefined;
    if (sampling) rss = new RssMeter();
    // Both schedules end at durationS, so the last sample and the window's end share one turn.
    const boundariesS = sampling && opts.intervalS !== undefined ? sampleTimesS(durationS, opts.intervalS) : [durationS];
    const pending: Promise<Sample>[] = [];
    let sampleFailure: Error | undefined;
    for (const atS of boundariesS) {
      // Absolute deadlines: a late wake-up does not shift the boundaries after it.
      await sleep(Math.max(0, windowStart + atS * 1000 - performance.now()));
      // A child that died mid-run ends a long run now, not at its end.
      if (sampleFailure) throw sampleFailure;
      if (!rss) continue;
      const sample = takeSample(load, rss, coordinator, participants);
      void sample.then(
        (x) => opts.onProgress(`${label(config)} ${config.variant}: ${formatSampleProgress(x)}`),
        (e: unknown) => (sampleFailure ??= e instanceof Error ? e : new Error(String(e))),
      );
      pending.push(sample);
    }
    const window = load.stopRecording();
    const etcdCpuUs = group ? processesCpuUs(group.etcd.pids) - etcdCpuFrom : undefined;
    const hostLoad = loadavg()[0] ?? Number.NaN;
    const [[coordinatorReport, ...participantReports], samples] = await Promise.all([Promise.all(children.map((c) => c.report())), Promise.all(pending)]);
    if (!(await load.stop(DRAIN_TIMEOUT_MS))) throw new Error(`transactions still in flight ${DRAIN_TIMEOUT_MS} ms after the measurement`);
    if (!coordinatorReport) throw new Error('the coordinator sent no report');
    client.close();
    client = undefined;
    await Promise.all(children.map((c) => c.stop()));
    ok = true;
    return {
      window,
      hostLoad,
      coordinator: coordinatorReport,
      participants: participantReports,
      ...(etcdCpuUs !== undefined ? { etcdCpuUs } : {}),
      ...(sampling ? { samples } : {}),
    };
  } catch (e) {
    if (expired) throw new Error(`${kind} ${label(config)} ${config.variant} exceeded its ${budgetMs} ms budget and was killed`, { cause: e });
    throw e;
  } finally {
    clearTimeout(watchdog);
    rss?.stop();
    load?.halt();
    client?.close();
    if (!ok) await Promise.all(children.map((c) => c.kill()));
  }
}

function perSec(count: number, window: LoadWindow): number {
  return window.elapsedMs > 0 ? (count * 1000) / window.elapsedMs : 0;
}

function perTx(value: number, committed: number): number {
  return committed > 0 ? value / committed : Number.NaN;
}

function totalCpuUs(m: Measurement): number {
  return m.window.cpuUs + m.coordinator.cpuUs + m.participants.reduce((acc, r) => acc + r.cpuUs, 0) + (m.etcdCpuUs ?? 0);
}

function toResult(config: BenchConfiguration, round: number, initiator: BenchInitiator, m: Measurement, ceiling: Measurement | undefined, hotKeys: number | undefined): BenchResult {
  const { window } = m;
  const committed = window.committed;
  const sum = (f: (r: BenchNodeReport) => number): number => m.participants.reduce((acc, r) => acc + f(r), 0);
  const committedPerSec = perSec(committed, window);
  const ceilingPerSec = ceiling ? perSec(ceiling.window.committed, ceiling.window) : null;
  const ceilingTotal = ceiling ? perTx(totalCpuUs(ceiling), ceiling.window.committed) : null;
  const intervals = m.samples?.map(toInterval);
  return {
    round,
    participants: config.participants,
    inflight: config.inflight,
    variant: config.variant,
    transport: config.transport,
    keys: config.keys === BenchKeys.HOT ? `hot:${hotKeys ?? 1}` : config.keys,
    initiator,
    decisionLog: config.log,
    durationS: window.elapsedMs / 1000,
    committedPerSec,
    abortedPerSec: perSec(window.aborted, window),
    errorsPerSec: perSec(window.errors, window),
    ...(window.firstError ? { firstError: window.firstError } : {}),
    p50Ms: window.latency.p50Ms,
    p95Ms: window.latency.p95Ms,
    p99Ms: window.latency.p99Ms,
    coordinatorCpuUsPerTx: perTx(m.coordinator.cpuUs, committed),
    participantCpuUsPerTx: perTx(sum((r) => r.cpuUs), committed),
    loadCpuUsPerTx: perTx(window.cpuUs, committed),
    totalCpuUsPerTx: perTx(totalCpuUs(m), committed),
    etcdCpuUsPerTx: m.etcdCpuUs !== undefined ? perTx(m.etcdCpuUs, committed) : null,
    forcedWritesPerTx: perTx(m.coordinator.log.syncedBatches, committed),
    coordinatorBatchesPerTx: perTx(m.coordinator.log.batches, committed),
    participantForcedWritesPerTx: perTx(sum((r) => r.log.syncedBatches), committed),
    messagesPerFrame: m.coordinator.framesOut > 0 ? m.coordinator.messagesOut / m.coordinator.framesOut : Number.NaN,
    peakRssMb: m.coordinator.maxRssKb / 1024,
    participantPeakRssMb: Math.max(0, ...m.participants.map((r) => r.maxRssKb / 1024)),
    hostLoad: m.hostLoad,
    ceilingPerSec,
    ceilingP50Ms: ceiling ? ceiling.window.latency.p50Ms : null,
    ceilingCpuUsPerTx: ceiling ? perTx(ceiling.coordinator.cpuUs, ceiling.window.committed) : null,
    ceilingTotalCpuUsPerTx: ceilingTotal,
    ceilingRatio: ceilingPerSec ? committedPerSec / ceilingPerSec : null,
    cpuCeilingRatio: ceilingTotal !== null && committed > 0 ? ceilingTotal / perTx(totalCpuUs(m), committed) : null,
    ...(intervals ? { intervals, ...summarizeIntervals(intervals) } : {}),
  };
}

/**
 * The result measured in the same round as `r` whose configuration differs from it only in what
 * `other` says.
 */
function counterpart(
  results: readonly BenchResult[],
  r: BenchResult,
  other: Partial<Pick<BenchResult, 'variant' | 'transport' | 'keys' | 'decisionLog'>>,
): BenchResult | undefined {
  const want = { variant: r.variant, transport: r.transport, keys: r.keys, decisionLog: r.decisionLog, ...other };
  return results.find(
    (b) =>
      b.round === r.round &&
      b.participants === r.participants &&
      b.inflight === r.inflight &&
      b.variant === want.variant &&
      b.transport === want.transport &&
      b.keys === want.keys &&
      b.decisionLog === want.decisionLog,
  );
}

/**
 * Adds the comparisons within a round: `vsBaseline` to every optimized result whose
 * configuration also ran as baseline, `vsPlaintext` to every TLS result that also ran in
 * plaintext, `vsLockFree` to every locking result that also ran without locks, and `vsLevelDb`
 * to every etcd result that also ran on LevelDB.
 */
function compare(results: readonly BenchResult[]): BenchResult[] {
  return results.map((r) => {
    const base = r.variant === BenchVariant.OPTIMIZED ? counterpart(results, r, { variant: BenchVariant.BASELINE }) : undefined;
    const plain = r.transport === BenchTransport.TLS ? counterpart(results, r, { transport: BenchTransport.PLAINTEXT }) : undefined;
    const free = r.keys !== BenchKeys.NONE ? counterpart(results, r, { keys: BenchKeys.NONE }) : undefined;
    const level = r.decisionLog === BenchLog.ETCD ? counterpart(results, r, { decisionLog: BenchLog.LEVELDB }) : undefined;
    return {
      ...r,
      ...(base && {
        vsBaseline: {
          committedPerSec: r.committedPerSec / base.committedPerSec,
          p50Ms: r.p50Ms / base.p50Ms,
          forcedWritesPerTx: r.forcedWritesPerTx / base.forcedWritesPerTx,
          participantForcedWritesPerTx: r.participantForcedWritesPerTx / base.participantForcedWritesPerTx,
          coordinatorCpuUsPerTx: r.coordinatorCpuUsPerTx / base.coordinatorCpuUsPerTx,
        },
      }),
      ...(plain && {
        vsPlaintext: {
          committedPerSec: r.committedPerSec / plain.committedPerSec,
          p50Ms: r.p50Ms / plain.p50Ms,
          p99Ms: r.p99Ms / plain.p99Ms,
          totalCpuUsPerTx: r.totalCpuUsPerTx / plain.totalCpuUsPerTx,
        },
      }),
      ...(free && {
        vsLockFree: {
          committedPerSec: r.committedPerSec / free.committedPerSec,
          p99Ms: r.p99Ms / free.p99Ms,
          totalCpuUsPerTx: r.totalCpuUsPerTx / free.totalCpuUsPerTx,
        },
      }),
      ...(level && { vsLevelDb: { committedPerSec: r.committedPerSec / level.committedPerSec, p50Ms: r.p50Ms / level.p50Ms, p99Ms: r.p99Ms / level.p99Ms } }),
    };
  });
}
