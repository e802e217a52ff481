// Crash runs: a process cluster under a transfer workload, faulted with real signals, then healed
// (every process restarted or resumed, nothing left in doubt, every transaction ended), stopped
// politely and checked against the history. A run can crash processes at one named protocol step
// after another (`CrashRun.crashAt`, each restart armed for the next), then `recover` and `finish`;
// `runFailpointCrash` does one such crash on a fresh cluster; `runRandomFaults` SIGKILLs and
// SIGSTOPs random processes at seeded random times.

import { setTimeout as delay } from 'node:timers/promises';
import type { TxView } from '../protocol/coordinator-events.js';
import type { FailpointName } from '../common/failpoints.js';
import { Prng } from '../sim/prng.js';
import {
  COMMITS_AFTER_RESTART_TIMEOUT_MS,
  DEFAULT_COMMITS_AFTER_RESTART,
  DEFAULT_DOWN_MS,
  DEFAULT_FAULT_PHASE_MS,
  DEFAULT_GAP_MS,
  DEFAULT_KILL_RATIO,
  DEFAULT_SETTLE_TIMEOUT_MS,
  FAILPOINT_REACH_TIMEOUT_MS,
  PAUSE_PAST_DEADLINE_MS,
  type CrashRunOptions,
  type FailpointCrashOptions,
  type RandomFaultsOptions,
} from './crash-run-options.js';
import { checkHistory, type HistorySummary } from './history-check.js';
import { describeExit, type ExitRecord, type ManagedProcess } from './managed-process.js';
import { ProcessCluster, waitAllEnded } from './process-cluster.js';
import { DEFAULT_ACCOUNTS_PER_BANK, DEFAULT_INITIAL_BALANCE, type FailpointPlan } from './process-cluster-options.js';
import { DEFAULT_CALL_TIMEOUT_MS, DEFAULT_TX_TIMEOUT_MS, TransferWorkload } from './transfer-workload.js';

/** A fault the run injected (or saw), for the report. */
export interface FaultEvent {
  /** Ms since the cluster was up. */
  readonly atMs: number;
  readonly process: string;
  readonly what: string;
}

/** What a crash run did and found. */
export interface CrashRunReport {
  readonly scenario: string;
  readonly seed: number;
  /** The run's directory: every data directory and every process's log. */
  readonly dir: string;
  /** Every invariant that failed; empty when the run is correct. */
  readonly violations: readonly string[];
  readonly summary: HistorySummary | undefined;
  readonly faults: readonly FaultEvent[];
  readonly exits: readonly ExitRecord[];
  /** Wall time of the whole run, in ms. */
  readonly elapsedMs: number;
  /** Wall time of each phase, in ms: starting the cluster, the workload and faults, healing, stopping, checking. */
  readonly timings: { readonly startMs: number; readonly runMs: number; readonly healMs: number; readonly stopMs: number; readonly checkMs: number };
}

/** One run: a cluster, its workload and what went wrong so far. */
export class CrashRun {
  readonly cluster: ProcessCluster;
  readonly workload: TransferWorkload;
  readonly options: CrashRunOptions;
  readonly #violations: string[] = [];
  readonly #faults: FaultEvent[] = [];
  /** The coordinator's last view of every tx id; an ended one is final. */
  readonly #views = new Map<string, TxView>();
  readonly #startedAt: number;
  readonly #startMs: number;
  /** When healing first began (the end of the fault phase). */
  #healingSince: number | undefined;

  private constructor(cluster: ProcessCluster, options: CrashRunOptions, startedAt: number) {
    this.cluster = cluster;
    this.options = options;
    this.#startedAt = startedAt;
    this.#startMs = Date.now() - startedAt;
    const accounts = options.accountsPerBank ?? DEFAULT_ACCOUNTS_PER_BANK;
    const ids = Array.from({ length: accounts }, (_, i) => String(i + 1));
    this.workload = new TransferWorkload({
      address: cluster.address,
      banks: cluster.banks.map((b) => ({ name: b.name, accounts: ids })),
      seed: options.seed,
      totalMoney: cluster.banks.length * accounts * (options.initialBalance ?? DEFAULT_INITIAL_BALANCE),
      security: cluster.clientSecurity,
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
      ...(options.txTimeoutMs !== undefined ? { txTimeoutMs: options.txTimeoutMs } : {}),
      ...(options.callTimeoutMs !== undefined ? { callTimeoutMs: options.callTimeoutMs } : {}),
    });
  }

  /**
   * Creates the cluster in `options.dir` and starts every process, with `failpoints` armed (by
   * process name) for their first incarnation: a first `crashAt` with the same specification then
   * needs no restart.
   */
  static async start(options: CrashRunOptions, failpoints: FailpointPlan = {}): Promise<CrashRun> {
    const startedAt = Date.now();
    const cluster = await ProcessCluster.create(options);
    try {
      await cluster.start(failpoints);
    } catch (e) {
      await cluster.destroy();
      throw e;
    }
    return new CrashRun(cluster, options, startedAt);
  }

  /** Records a violation found by the scenario itself. */
  violation(message: string): void {
    this.#violations.push(message);
  }

  /** Records a fault for the report. */
  fault(process: ManagedProcess, what: string): void {
    this.#faults.push({ atMs: Date.now() - this.#startedAt - this.#startMs, process: process.name, what });
  }

  /** Freezes `target` for `ms` (SIGSTOP, then SIGCONT), noting both. */
  async freeze(target: ManagedProcess, ms: number): Promise<void> {
    target.pause();
    this.fault(target, `SIGSTOP for ${ms} ms`);
    await delay(ms);
    target.resume();
    this.fault(target, 'SIGCONT');
  }

  /** Every violation found so far. */
  get violations(): readonly string[] {
    return this.#violations;
  }

  /**
   * One crash: starts `target` with `spec` armed (`name=crash@N`; after stopping it politely if
   * it runs), restarts every other process that is down (clean), runs the workload and waits until
   * the target dies by its failpoint. Steps chain: the incarnation armed for the next step is the
   * restart after this crash, so it starts by recovering what this one left. Returns the
   * violations this step found: a failpoint never reached, a death by anything else.
   */
  async crashAt(target: ManagedProcess, spec: string): Promise<string[]> {
    const before = this.#violations.length;
    // Started armed with exactly this (see `start`): nothing to restart.
    const armedAlready = target.alive && target.failpoints === spec;
    if (target.alive && !armedAlready) {
      const stopped = await target.stop();
      if (stopped.cause !== 'stopped') this.violation(`${target.name} did not stop cleanly before ${spec} was armed: ${describeExit(stopped)}`);
    }
    const others = this.cluster.processes.filter((p) => p !== target && !p.alive);
    await Promise.all([
      ...others.map((p) =>
        p.start().then(
          () => this.fault(p, 'restarted'),
          (e: unknown) => this.violation(`${p.name} did not restart: ${(e as Error).message}`),
        ),
      ),
      armedAlready
        ? undefined
        : target.start({ failpoints: spec }).then(
            () => this.fault(target, `restarted with ${spec}`),
            (e: unknown) => {
              // A bank may reach its failpoint while it recovers, before it even reports ready.
              if (target.exits.at(-1)?.cause !== 'failpoint') this.violation(`${target.name} did not start with ${spec}: ${(e as Error).message}`);
            },
          ),
    ]);
    this.workload.start();
    const exit = await target.waitExit(FAILPOINT_REACH_TIMEOUT_MS).catch(() => undefined);
    if (!exit) this.violation(`${spec} on ${target.name} was never reached in ${FAILPOINT_REACH_TIMEOUT_MS} ms of workload`);
    else if (exit.cause !== 'failpoint') this.violation(`${target.name} armed with ${spec} died otherwise: ${describeExit(exit)}; see ${target.logFile}`);
    else this.fault(target, `crashed at ${spec}`);
    return this.#violations.slice(before);
  }

  /**
   * After the faults: restarts (clean) or resumes every process, waits until transfers commit
   * again, then settles. Returns the violations found: no progress, a cluster that does not settle.
   */
  async recover(commits = DEFAULT_COMMITS_AFTER_RESTART): Promise<string[]> {
    const before = this.#violations.length;
    this.#healingSince ??= Date.now();
    try {
      for (const [p, how] of await this.cluster.heal()) this.fault(p, how);
      this.workload.start();
      await this.workload.whenMore(commits, COMMITS_AFTER_RESTART_TIMEOUT_MS, (a) => a.observed === 'committed');
    } catch (e) {
      this.violation(`no progress after healing: ${(e as Error).message}`);
    }
    await this.settle();
    return this.#violations.slice(before);
  }

  /**
   * Stops the workload, restarts or resumes every process and waits until the cluster settled:
   * no bank holds anything prepared or unsettled, and the coordinator reports every transaction
   * of the workload ended. A cluster that does not settle in time is a violation.
   */
  async settle(): Promise<void> {
    this.#healingSince ??= Date.now();
    await this.workload.stop();
    try {
      for (const [p, how] of await this.cluster.heal()) this.fault(p, how);
      await this.#waitSettled();
    } catch (e) {
      this.violation(`the cluster did not settle: ${(e as Error).message}`);
    }
  }

  /**
   * Settles the cluster, stops it politely, reads every bank's durable state and checks the whole
   * history. Never throws for a failed invariant: the report lists them.
   */
  async finish(scenario: string): Promise<CrashRunReport> {
    await this.settle();
    const t0 = this.#healingSince ?? Date.now();
    const t1 = Date.now();
    await this.cluster.stop();
    const t2 = Date.now();
    for (const exit of this.cluster.exits) {
      if (exit.cause === 'unexpected') {
        const process = this.cluster.process(exit.process);
        this.violation(`${exit.process} (incarnation ${exit.incarnation}, pid ${exit.pid}) exited unexpectedly: ${describeExit(exit)}; see ${process.logFile}`);
      }
    }
    let summary: HistorySummary | undefined;
    try {
      const result = checkHistory({
        attempts: this.workload.attempts,
        finalViews: this.#views,
        banks: await this.cluster.readDurableState(),
        finished: new Map(this.cluster.banks.map((b) => [b.name, b.finished])),
      });
      this.#violations.push(...result.violations);
      summary = result.summary;
    } catch (e) {
      this.violation(`the durable state could not be checked: ${(e as Error).message}`);
    }
    return {
      scenario,
      seed: this.options.seed,
      dir: this.cluster.dir,
      violations: [...this.#violations],
      summary,
      faults: [...this.#faults],
      exits: this.cluster.exits,
      elapsedMs: Date.now() - this.#startedAt,
      timings: {
        startMs: this.#startMs,
        runMs: t0 - this.#startedAt - this.#startMs,
        healMs: t1 - t0,
        stopMs: t2 - t1,
        checkMs: Date.now() - t2,
      },
    };
  }

  /** SIGKILLs whatever still runs (for cleanup). */
  destroy(): Promise<void> {
    return this.cluster.destroy();
  }

  /** Polls until every bank is idle and every tx id of the workload ended at the coordinator. */
  async #waitSettled(): Promise<void> {
    const open = this.workload.attempts.flatMap((a) => (a.txId && this.#views.get(a.txId)?.state !== 'ended' ? [a.txId] : []));
    // waitAllEnded dials with a fresh client: the workers' channels may be in reconnect backoff after the faults.
    await waitAllEnded(
      this.cluster.address,
      open,
      this.#views,
      this.options.settleTimeoutMs ?? DEFAULT_SETTLE_TIMEOUT_MS,
      'nothing in doubt at any bank and every transaction ended at the coordinator',
      async () => [...(await this.cluster.statuses()).values()].every((s) => s.inDoubt === 0 && s.holds === 0 && s.unsettled === 0),
      { callTimeoutMs: this.options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS, ...this.cluster.clientSecurity },
    );
  }
}

/**
 * On a fresh cluster, crashes one process at `failpoint` (see `CrashRun.crashAt`), and again at
 * `onRestart` while it recovers if asked, then heals, stops and checks everything.
 */
export async function runFailpointCrash(options: FailpointCrashOptions): Promise<CrashRunReport> {
  const spec = failpointCrashSpec(options.failpoint, options.fromHit);
  const run = await CrashRun.start(options, { [options.process]: spec });
  try {
    const target = run.cluster.process(options.process);
    const problems = await run.crashAt(target, spec);
    if (options.onRestart && problems.length === 0) await run.crashAt(target, options.onRestart);
    await run.recover(options.commitsAfterRestart);
    return await run.finish(`${spec} on ${options.process}${options.onRestart ? `, then ${options.onRestart} while recovering` : ''}`);
  } finally {
    await run.destroy();
  }
}

/** `name=crash`, or `name=crash@N` from the N-th hit. */
export function failpointCrashSpec(failpoint: FailpointName, fromHit = 1): string {
  return `${failpoint}=crash${fromHit > 1 ? `@${fromHit}` : ''}`;
}

/**
 * Runs the workload while SIGKILLing (then restarting, after a random downtime) and pausing
 * (SIGSTOP, then SIGCONT after longer than the tx timeout) random processes at random times, all
 * drawn from the seed; faults on different processes may overlap. Then heals and checks.
 */
export async function runRandomFaults(options: RandomFaultsOptions): Promise<CrashRunReport> {
  const txTimeoutMs = options.txTimeoutMs ?? DEFAULT_TX_TIMEOUT_MS;
  const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const gapMs = options.gapMs ?? DEFAULT_GAP_MS;
  const downMs = options.downMs ?? DEFAULT_DOWN_MS;
  // Past the tx timeout always, and past a client call's deadline sometimes.
  const pauseMs = options.pauseMs ?? [txTimeoutMs + PAUSE_PAST_DEADLINE_MS, callTimeoutMs + PAUSE_PAST_DEADLINE_MS * 5];
  const killRatio = options.killRatio ?? DEFAULT_KILL_RATIO;
  // Its own stream: the fault schedule does not shift when the workload's plan changes.
  const rng = new Prng((options.seed ^ 0x5eed_fa17) >>> 0);
  const run = await CrashRun.start(options);
  try {
    const busy = new Set<ManagedProcess>();
    const episodes: Promise<void>[] = [];
    const episode = async (target: ManagedProcess, kill: boolean, ms: number): Promise<void> => {
      busy.add(target);
      try {
        if (kill) {
          await target.kill();
          run.fault(target, `SIGKILL, down for ${ms} ms`);
          await delay(ms);
          await target.start();
          run.fault(target, 'restarted');
        } else {
          await run.freeze(target, ms);
        }
      } catch (e) {
        run.violation(`fault on ${target.name} failed: ${(e as Error).message}`);
      } finally {
        busy.delete(target);
      }
    };
    run.workload.start();
    const end = Date.now() + (options.faultPhaseMs ?? DEFAULT_FAULT_PHASE_MS);
    while (Date.now() < end) {
      await delay(rng.int(...gapMs));
      const target = rng.pick(run.cluster.processes);
      const kill = rng.chance(killRatio);
      const ms = rng.int(...(kill ? downMs : pauseMs));
      // A process already being faulted, or down for another reason, sits this one out.
      if (busy.has(target) || target.state !== 'running') continue;
      episodes.push(episode(target, kill, ms));
    }
    await Promise.all(episodes);
    await run.recover();
    return await run.finish(`random faults for ${options.faultPhaseMs ?? DEFAULT_FAULT_PHASE_MS} ms`);
  } finally {
    await run.destroy();
  }
}

/** A report as text: the seed and directory first, then every violation. */
export function formatReport(report: CrashRunReport): string {
  const lines = [
    `${report.scenario}: ${report.violations.length === 0 ? 'OK' : `${report.violations.length} violation(s)`} (seed ${report.seed}, ${secs(report.elapsedMs)})`,
    `  data and logs: ${report.dir}`,
    `  phases: start ${secs(report.timings.startMs)}, run ${secs(report.timings.runMs)}, heal ${secs(report.timings.healMs)}, stop ${secs(report.timings.stopMs)}, check ${secs(report.timings.checkMs)}`,
  ];
  const s = report.summary;
  if (s) {
    lines.push(
      `  ${s.attempts} attempts: ${s.observed.committed} committed, ${s.observed.aborted} aborted, ${s.observed.unknown} unknown ` +
        `(resolved: ${s.unknownResolved.committed} committed, ${s.unknownResolved.aborted} aborted, ${s.unknownResolved.unresolved} unresolved), ` +
        `${s.observed['not-begun']} not begun; final: ${s.committed} committed, ${s.aborted} aborted`,
    );
  }
  if (report.faults.length > 0) lines.push(`  faults: ${report.faults.map((f) => `${secs(f.atMs)} ${f.process} ${f.what}`).join('; ')}`);
  for (const v of report.violations) lines.push(`  violation: ${v}`);
  return lines.join('\n');
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
