// The long form of the crash suite (`npm run test:crash -- --rounds N`): repeats the random-kill
// scenario with a different seed each round, prints every round's report and a summary, and exits 1
// when any round found a violation. With --failpoints, each round also crashes every failpoint on
// a fresh cluster of its own.
//
//   npm run test:crash -- [--rounds N] [--seed S] [--fault-phase-ms MS] [--failpoints] [--tls] [--keep-data]
//
// With --tls every connection runs mutual TLS with throwaway certificates.
//
// Round i runs seed S + i (S is random unless given), so any failing round replays alone with
// `--rounds 1 --seed <its seed>` (or VERDICT_CRASH_SEED=<seed> npm test -- test/crash).

import { randomInt } from 'node:crypto';
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatReport, runFailpointCrash, runRandomFaults, type CrashRunReport } from '../../src/faults/crash-run.js';
import { DEFAULT_FAULT_PHASE_MS } from '../../src/faults/crash-run-options.js';
import { arming, bankClusterFailpoints, exclusiveCrashSuite, runDir, SEED_ENV } from './crash-support.js';

const USAGE = 'usage: npm run test:crash -- [--rounds N] [--seed S] [--fault-phase-ms MS] [--failpoints] [--tls] [--keep-data]';

function integer(value: string | undefined, what: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) throw new Error(`--${what} must be an integer ≥ ${min} (got ${value}); ${USAGE}`);
  return n;
}

function options(): { rounds: number; seed: number; faultPhaseMs: number; failpoints: boolean; tls: boolean; keepData: boolean } {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string' },
      seed: { type: 'string' },
      'fault-phase-ms': { type: 'string' },
      failpoints: { type: 'boolean', default: false },
      tls: { type: 'boolean', default: false },
      'keep-data': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const fromEnv = process.env[SEED_ENV] || undefined;
  return {
    rounds: integer(values.rounds, 'rounds', 1),
    seed: integer(values.seed ?? fromEnv, 'seed', randomInt(1, 2 ** 31), 0),
    faultPhaseMs: integer(values['fault-phase-ms'], 'fault-phase-ms', DEFAULT_FAULT_PHASE_MS),
    failpoints: values.failpoints === true,
    tls: values.tls === true,
    keepData: values['keep-data'] === true,
  };
}

/** Every failpoint on a fresh cluster of its own, armed where and when the seed says. */
async function everyFailpoint(seed: number, tls: boolean): Promise<CrashRunReport[]> {
  const reports: CrashRunReport[] = [];
  for (const failpoint of bankClusterFailpoints()) {
    const { process, fromHit } = arming(seed, failpoint);
    reports.push(await runFailpointCrash({ dir: runDir(failpoint), seed, process, failpoint, fromHit, tls }));
    console.log(formatReport(reports.at(-1) as CrashRunReport));
  }
  return reports;
}

async function main(): Promise<number> {
  const o = options();
  const release = await exclusiveCrashSuite();
  const started = Date.now();
  const failed: CrashRunReport[] = [];
  let runs = 0;
  try {
    console.log(`crash suite: ${o.rounds} round(s) from seed ${o.seed}${o.failpoints ? ', every failpoint each round' : ''}${o.tls ? ', mutual TLS' : ''}`);
    for (let round = 0; round < o.rounds; round++) {
      const seed = (o.seed + round) >>> 0;
      console.log(`\nround ${round + 1}/${o.rounds}, seed ${seed}`);
      const reports = [await runRandomFaults({ dir: runDir(`random-${seed}`), seed, faultPhaseMs: o.faultPhaseMs, tls: o.tls })];
      console.log(formatReport(reports[0] as CrashRunReport));
      if (o.failpoints) reports.push(...(await everyFailpoint(seed, o.tls)));
      for (const report of reports) {
        runs++;
        if (report.violations.length > 0) failed.push(report);
        else if (!o.keepData) rmSync(report.dir, { recursive: true, force: true });
      }
    }
  } finally {
    release();
  }
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  console.log(`\n${runs - failed.length}/${runs} run(s) passed in ${minutes} min`);
  for (const r of failed) console.log(`FAILED: ${r.scenario}, seed ${r.seed}: ${r.violations.length} violation(s); data and logs in ${r.dir}`);
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`crash suite: ${(e as Error)?.message ?? String(e)}`);
    process.exitCode = 1;
  },
);
