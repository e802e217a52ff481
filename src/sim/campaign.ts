// Campaigns: many runs, one scenario per seed, with totals; and the shrinking of a failure to a
// smaller scenario that fails the same way (fast-check does the shrinking). No I/O here: the CLI
// and the tests print what they need.

import fc from 'fast-check';
import type { PropertyId } from './checker.js';
import type { MutantName } from './mutants.js';
import { scenarioArbitrary, scenarioForSeed, type Scenario, type ScenarioProfile } from './scenario.js';
import type { SimConfig } from './sim-options.js';
import { runScenario, type RunResult } from './simulation.js';

/** What a campaign runs. */
export interface CampaignOptions {
  readonly runs: number;
  /** The first run's seed; run i uses `startSeed + i`. */
  readonly startSeed: number;
  readonly profile: ScenarioProfile;
  readonly mutant?: MutantName;
  readonly config?: SimConfig;
  /** Stop at the first run with a violation (default true). */
  readonly stopOnFirst?: boolean;
  /** Called every `progressEvery` runs. */
  readonly onProgress?: (totals: CampaignTotals) => void;
  readonly progressEvery?: number;
}

/** Totals of a campaign so far. */
export interface CampaignTotals {
  runs: number;
  steps: number;
  faults: number;
  violations: number;
  committed: number;
  aborted: number;
  simulatedMs: number;
  byProperty: Partial<Record<PropertyId, number>>;
  /** Coordinator group runs only: leaders elected, decision-log writes fenced out, hung etcd calls applied late. */
  group?: { elections: number; logRefused: number; lateApplied: number };
}

/** A campaign's outcome. */
export interface CampaignResult {
  readonly totals: CampaignTotals;
  /** The first failing run, if any. */
  readonly failure?: { readonly seed: number; readonly result: RunResult };
}

/** Runs `runs` scenarios, one per seed. */
export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const totals: CampaignTotals = { runs: 0, steps: 0, faults: 0, violations: 0, committed: 0, aborted: 0, simulatedMs: 0, byProperty: {} };
  const every = options.progressEvery ?? 1_000;
  let failure: CampaignResult['failure'];
  for (let i = 0; i < options.runs; i++) {
    const seed = (options.startSeed + i) | 0;
    const result = await runScenario(scenarioForSeed(seed, options.profile), {
      ...(options.mutant ? { mutant: options.mutant } : {}),
      ...(options.config ? { config: options.config } : {}),
    });
    totals.runs++;
    totals.steps += result.steps;
    totals.faults += result.faultsInjected;
    totals.committed += result.transactions.committed;
    totals.aborted += result.transactions.aborted;
    totals.simulatedMs += result.simulatedMs;
    if (result.group) {
      const g = (totals.group ??= { elections: 0, logRefused: 0, lateApplied: 0 });
      g.elections += result.group.elections;
      g.logRefused += result.group.logRefused;
      g.lateApplied += result.group.lateApplied;
    }
    if (result.violations.length > 0) {
      totals.violations++;
      const p = (result.violations[0] as { property: PropertyId }).property;
      totals.byProperty[p] = (totals.byProperty[p] ?? 0) + 1;
      failure ??= { seed, result };
      if (options.stopOnFirst ?? true) break;
    }
    if (options.onProgress && totals.runs % every === 0) options.onProgress(totals);
  }
  return { totals, ...(failure ? { failure } : {}) };
}

/** A failure made smaller. */
export interface Shrunk {
  readonly scenario: Scenario;
  readonly result: RunResult;
  readonly shrinks: number;
}

/**
 * Shrinks the failure of `seed` to a smaller scenario whose run fails the same property. The
 * scenario of a seed is the first value fast-check draws with it, so `fc.check` with that seed
 * meets it first and shrinks from it. Returns undefined when the seed's scenario does not fail.
 */
export async function shrinkSeed(
  seed: number,
  profile: ScenarioProfile,
  options: { mutant?: MutantName; config?: SimConfig; property?: PropertyId } = {},
): Promise<Shrunk | undefined> {
  const run = (s: Scenario): Promise<RunResult> => runScenario(s, { ...(options.mutant ? { mutant: options.mutant } : {}), ...(options.config ? { config: options.config } : {}) });
  const first = (await run(scenarioForSeed(seed, profile))).violations[0];
  if (!first) return undefined;
  const property = options.property ?? first.property;
  const out = await fc.check(
    fc.asyncProperty(scenarioArbitrary(profile), async (s) => !(await run(s)).violations.some((v) => v.property === property)),
    { seed, numRuns: 1, endOnFailure: false },
  );
  const counterexample = out.counterexample?.[0];
  if (!out.failed || !counterexample) return undefined;
  return { scenario: counterexample, result: await runScenario(counterexample, { ...options, trace: true }), shrinks: out.numShrinks };
}

/** Shrinks a failing scenario (not tied to a seed) with fast-check's shrinker for `profile`. */
export async function shrinkScenario(scenario: Scenario, profile: ScenarioProfile, options: { mutant?: MutantName; config?: SimConfig } = {}): Promise<Shrunk> {
  const run = (s: Scenario): Promise<RunResult> => runScenario(s, options);
  const first = (await run(scenario)).violations[0];
  if (!first) return { scenario, result: await runScenario(scenario, { ...options, trace: true }), shrinks: 0 };
  const out = await fc.check(
    fc.asyncProperty(scenarioArbitrary(profile), async (s) => !(await run(s)).violations.some((v) => v.property === first.property)),
    { numRuns: 1, examples: [[scenario]], endOnFailure: false },
  );
  const counterexample = out.counterexample?.[0] ?? scenario;
  return { scenario: counterexample, result: await runScenario(counterexample, { ...options, trace: true }), shrinks: out.numShrinks };
}
