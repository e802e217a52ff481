// `npm run sim`: the deterministic simulator from the command line.
//
//   npm run sim -- --runs 100000            a campaign: runs, steps, faults injected, violations
//   npm run sim -- --seed 4242              replay one run (its scenario is a function of the seed)
//   npm run sim -- --scenario <token>       replay a shrunk scenario printed by a failure
//   npm run sim -- --list-mutants           the deliberately wrong variants, one name a line
//   npm run sim -- --mutant commit-before-durable   find the violation a mutant causes
//
// Exit code: 0 when no property failed, 1 when one did (the seed and trace are printed), 2 for
// bad usage.

import { parseArgs } from 'node:util';
import { runCampaign, shrinkScenario, shrinkSeed, type CampaignTotals } from './campaign.js';
import { PROPERTIES, type Violation } from './checker.js';
import { isMutantName, MUTANTS, type MutantName } from './mutants.js';
import { decodeScenario, describeScenario, encodeScenario, PROFILE_NAMES, PROFILES, scenarioForSeed, type ProfileName, type Scenario } from './scenario.js';
import { DEFAULT_SIM_CONFIG, type SimConfig } from './sim-options.js';
import { runScenario, type RunResult } from './simulation.js';
import { formatTrace } from './trace.js';

const DEFAULT_RUNS = 1_000;
const DEFAULT_MUTANT_RUNS = 5_000;
const TRACE_LIMIT = 400;

function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function usage(message: string): number {
  process.stderr.write(`${message}\nusage: npm run sim -- [--runs N] [--start S] [--seed S] [--scenario TOKEN] [--profile ${PROFILE_NAMES.join('|')}] [--mutant NAME] [--list-mutants] [--trace] [--full] [--tx ID] [--no-shrink]\n`);
  return 2;
}

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        runs: { type: 'string' },
        start: { type: 'string' },
        seed: { type: 'string' },
        scenario: { type: 'string' },
        profile: { type: 'string' },
        mutant: { type: 'string' },
        'list-mutants': { type: 'boolean' },
        trace: { type: 'boolean' },
        full: { type: 'boolean' },
        tx: { type: 'string' },
        'no-shrink': { type: 'boolean' },
      },
      allowPositionals: false,
    }).values;
  } catch (e) {
    return usage((e as Error).message);
  }
  if (args['list-mutants']) {
    for (const m of MUTANTS) out(m.name);
    return 0;
  }
  const single = [args.seed !== undefined && '--seed', args.scenario !== undefined && '--scenario'].filter(Boolean);
  if (single.length > 1) return usage(`${single.join(' and ')} cannot be used together`);
  if (single.length === 1 && (args.runs !== undefined || args.start !== undefined)) return usage(`${single[0]} replays one run: it cannot be combined with --runs or --start`);
  let mutant: MutantName | undefined;
  if (args.mutant !== undefined) {
    if (!isMutantName(args.mutant)) return usage(`unknown mutant ${args.mutant} (see --list-mutants)`);
    mutant = args.mutant;
  }
  // A mutant runs by default under the profile that exercises it best.
  const profileName = (args.profile ?? MUTANTS.find((m) => m.name === mutant)?.profile ?? 'all') as ProfileName;
  if (!PROFILE_NAMES.includes(profileName)) return usage(`unknown profile ${profileName}`);
  const profile = PROFILES[profileName];
  const config: SimConfig = DEFAULT_SIM_CONFIG;
  const flags = `${args.profile !== undefined ? ` --profile ${profileName}` : ''}${mutant ? ` --mutant ${mutant}` : ''}`;
  const view = { trace: args.trace === true, full: args.full === true, ...(args.tx ? { tx: args.tx } : {}) };

  if (args.scenario !== undefined) {
    let scenario: Scenario;
    try {
      scenario = decodeScenario(args.scenario);
    } catch {
      return usage('the scenario token cannot be decoded');
    }
    const result = await runScenario(scenario, { trace: true, config, ...(mutant ? { mutant } : {}) });
    return report(result, view, `npm run sim -- --scenario ${args.scenario}${flags}`);
  }

  if (args.seed !== undefined) {
    const seed = Number(args.seed);
    if (!Number.isSafeInteger(seed)) return usage(`--seed wants an integer, got ${args.seed}`);
    const scenario = scenarioForSeed(seed, profile);
    const result = await runScenario(scenario, { trace: true, config, ...(mutant ? { mutant } : {}) });
    const code = report(result, view, `npm run sim -- --seed ${seed}${flags}`);
    if (code !== 0 && !args['no-shrink']) await shrunk(seed, scenario, result, { profileName, config, mutant, flags, view });
    return code;
  }

  const runs = Number(args.runs ?? (mutant ? DEFAULT_MUTANT_RUNS : DEFAULT_RUNS));
  if (!Number.isSafeInteger(runs) || runs < 1) return usage(`--runs wants a positive integer, got ${args.runs}`);
  // A campaign without --start draws fresh seeds; the start is printed so that it can be rerun.
  const startSeed = args.start !== undefined ? Number(args.start) : Math.floor(Math.random() * 1_000_000_000);
  if (!Number.isSafeInteger(startSeed)) return usage(`--start wants an integer, got ${args.start}`);
  out(`campaign: ${runs} runs from seed ${startSeed}, profile ${profileName}${mutant ? `, mutant ${mutant}` : ''}`);
  const began = performance.now();
  const result = await runCampaign({
    runs,
    startSeed,
    profile,
    config,
    ...(mutant ? { mutant } : {}),
    progressEvery: Math.max(1_000, Math.floor(runs / 10)),
    onProgress: (t) => out(`  … ${summary(t, performance.now() - began)}`),
  });
  out(summary(result.totals, performance.now() - began));
  if (!result.failure) {
    if (mutant) out(`✗ the mutant ${mutant} was NOT caught in ${runs} runs`);
    return mutant ? 1 : 0;
  }
  const { seed, result: failed } = result.failure;
  out();
  out(`violation in run ${result.totals.runs} (seed ${seed})${mutant ? `: the mutant ${mutant} is caught` : ''}`);
  const scenario = scenarioForSeed(seed, profile);
  const traced = await runScenario(scenario, { trace: true, config, ...(mutant ? { mutant } : {}) });
  report(traced.violations.length > 0 ? traced : failed, view, `npm run sim -- --seed ${seed}${flags}`);
  if (!args['no-shrink']) await shrunk(seed, scenario, traced, { profileName, config, mutant, flags, view });
  return 1;
}

interface Context {
  readonly profileName: ProfileName;
  readonly config: SimConfig;
  readonly mutant: MutantName | undefined;
  readonly flags: string;
  readonly view: View;
}

/** Shrinks a failing seed and prints the smaller failure. */
async function shrunk(seed: number, scenario: Scenario, original: RunResult, c: Context): Promise<void> {
  const profile = PROFILES[c.profileName];
  const options = { config: c.config, ...(c.mutant ? { mutant: c.mutant } : {}) };
  const s = (await shrinkSeed(seed, profile, options)) ?? (await shrinkScenario(scenario, profile, options));
  if (s.shrinks === 0 || s.result.violations.length === 0) return;
  if (s.result.trace.length >= original.trace.length) return;
  out();
  out(`shrunk (${s.shrinks} shrinks): ${describeScenario(s.scenario)}`);
  report(s.result, c.view, `npm run sim -- --scenario ${encodeScenario(s.scenario)}${c.flags}`);
}

interface View {
  readonly trace: boolean;
  readonly full: boolean;
  readonly tx?: string;
}

/** Prints a run's verdict and, for a failure (or on request), its trace. */
function report(result: RunResult, view: View, replay: string): number {
  const first: Violation | undefined = result.violations[0];
  out(`${describeScenario(result.scenario)}${result.mutant ? ` mutant=${result.mutant}` : ''}`);
  out(
    `  ${result.steps} steps, ${result.faultsInjected} faults, ${result.transactions.committed} committed, ${result.transactions.aborted} aborted, ${result.simulatedMs} ms simulated, trace ${result.traceHash}`,
  );
  if (first || view.trace) {
    const txId = view.full ? undefined : (view.tx ?? first?.txId);
    out(`trace${txId ? ` (lines about ${txId}, and faults; --full for all)` : ''}:`);
    out(formatTrace(result.trace, { ...(txId ? { txId } : {}), ...(view.full ? {} : { limit: TRACE_LIMIT }) }));
  }
  if (!first) {
    out('✓ every property held');
    return 0;
  }
  for (const v of result.violations) {
    out(`✗ ${v.property} ${PROPERTIES[v.property]}`);
    out(`    ${v.message}  (t=${v.t}ms, step ${v.step})`);
  }
  out(`replay: ${replay}`);
  return 1;
}

function summary(t: CampaignTotals, elapsedMs: number): string {
  const props = Object.entries(t.byProperty)
    .map(([p, n]) => `${p}×${n}`)
    .join(' ');
  const rate = elapsedMs > 0 ? Math.round((t.runs * 1000) / elapsedMs) : 0;
  return `runs ${t.runs}, steps ${t.steps}, faults injected ${t.faults}, violations ${t.violations}${props ? ` (${props})` : ''}, txs committed ${t.committed} aborted ${t.aborted}, simulated ${Math.round(t.simulatedMs / 1000)} s${t.group ? `, leaders elected ${t.group.elections}, log writes fenced out ${t.group.logRefused}, hung etcd calls applied late ${t.group.lateApplied}` : ''}, wall ${(elapsedMs / 1000).toFixed(1)} s (${rate} runs/s)`;
}

process.exitCode = await main(process.argv.slice(2));
