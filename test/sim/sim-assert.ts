// Runs simulator scenarios under fast-check and, when one fails, reports what a person needs: the
// fast-check seed and path, the shrunk scenario's violations, its numbered trace (the lines about
// the transaction at fault) and the command that replays it.
import fc from 'fast-check';

import type { PropertyId } from '../../src/sim/checker.js';
import { PROPERTIES } from '../../src/sim/checker.js';
import type { MutantName } from '../../src/sim/mutants.js';
import { describeScenario, encodeScenario, scenarioArbitrary, type Scenario, type ScenarioProfile } from '../../src/sim/scenario.js';
import type { SimConfig } from '../../src/sim/sim-options.js';
import { runScenario, type RunResult } from '../../src/sim/simulation.js';
import { formatTrace } from '../../src/sim/trace.js';

/** Runs per property: about a thousand in CI; SIM_RUNS overrides (e.g. SIM_RUNS=20000 for a soak). */
export const SIM_RUNS = Number(process.env.SIM_RUNS ?? 1_000);

/** A readable account of a failing scenario. */
export async function describeFailure(scenario: Scenario, options: { mutant?: MutantName; config?: SimConfig } = {}): Promise<string> {
  const result = await runScenario(scenario, { ...options, trace: true });
  const first = result.violations[0];
  const lines = [
    `scenario: ${describeScenario(scenario)}`,
    ...result.violations.map((v) => `✗ ${v.property} ${PROPERTIES[v.property]}\n    ${v.message} (t=${v.t}ms, step ${v.step})`),
    `trace${first?.txId ? ` (lines about ${first.txId}, and faults)` : ''}:`,
    formatTrace(result.trace, { ...(first?.txId ? { txId: first.txId } : {}), limit: 300 }),
    `replay: npm run sim -- --scenario ${encodeScenario(scenario)}${options.mutant ? ` --mutant ${options.mutant}` : ''}`,
  ];
  return lines.join('\n');
}

/** Totals over every run of a property check. */
export interface Totals {
  runs: number;
  steps: number;
  faults: number;
  committed: number;
  aborted: number;
  exercised: Record<string, number>;
}

/**
 * Asserts with fast-check that every property holds in every scenario `profile` generates;
 * returns totals (to show the checks were exercised).
 */
export async function assertSimulation(profile: ScenarioProfile, options: { numRuns?: number; seed?: number; config?: SimConfig; mutant?: MutantName } = {}): Promise<Totals> {
  const totals: Totals = { runs: 0, steps: 0, faults: 0, committed: 0, aborted: 0, exercised: {} };
  const config = { ...(options.config ? { config: options.config } : {}), ...(options.mutant ? { mutant: options.mutant } : {}) };
  let failure: { seed: number; path: string; runs: number; shrinks: number; scenario: Scenario | undefined; error: unknown } | undefined;
  await fc.assert(
    fc.asyncProperty(scenarioArbitrary(profile), async (scenario) => {
      const r: RunResult = await runScenario(scenario, config);
      totals.runs++;
      totals.steps += r.steps;
      totals.faults += r.faultsInjected;
      totals.committed += r.transactions.committed;
      totals.aborted += r.transactions.aborted;
      for (const [k, n] of Object.entries(r.exercised)) totals.exercised[k] = (totals.exercised[k] ?? 0) + n;
      return r.violations.length === 0;
    }),
    {
      numRuns: options.numRuns ?? SIM_RUNS,
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      reporter: (details) => {
        if (!details.failed) return;
        failure = {
          seed: details.seed,
          path: details.counterexample ? (details.counterexamplePath ?? '') : '',
          runs: details.numRuns,
          shrinks: details.numShrinks,
          scenario: details.counterexample?.[0],
          error: details.errorInstance,
        };
      },
    },
  );
  if (failure) {
    const where = `fast-check seed ${failure.seed}, path "${failure.path}", after ${failure.runs} runs and ${failure.shrinks} shrinks`;
    throw new Error(`simulation property failed (${where})\n${failure.scenario ? await describeFailure(failure.scenario, config) : String(failure.error)}`);
  }
  return totals;
}

/** The number of checks made of `property` in `totals`. */
export function exercised(totals: Totals, property: PropertyId): number {
  return totals.exercised[property] ?? 0;
}
