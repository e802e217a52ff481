// The properties bite on the code users run: every mutant is a switch inside the production
// Coordinator or Participant, and the simulator catches each one within a bounded number of runs
// (from fixed seeds, so this is deterministic), reporting the very property the mutant breaks.
// The CLI lists and hunts them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

import { runCampaign } from '../../src/sim/campaign.js';
import { MUTANTS } from '../../src/sim/mutants.js';
import { PROFILES } from '../../src/sim/scenario.js';

/** Every mutant must fall within this many runs of its profile. */
const MAX_RUNS_TO_CATCH = 1_000;
/** Independent starting seeds per mutant: each must catch it within the bound. */
const STARTS = [1, 500_001, 1_000_001];

describe('mutants', () => {
  for (const m of MUTANTS) {
    it(`catches ${m.name} with ${m.expected.join(' or ')} (${m.description})`, async () => {
      const needed: string[] = [];
      for (const start of STARTS) {
        const { totals, failure } = await runCampaign({ runs: MAX_RUNS_TO_CATCH, startSeed: start, profile: PROFILES[m.profile], mutant: m.name });
        assert.ok(failure, `${m.name} survived ${MAX_RUNS_TO_CATCH} runs from seed ${start} (profile ${m.profile})`);
        const first = failure.result.violations[0];
        assert.ok(first && m.expected.includes(first.property), `${m.name} was caught by ${first?.property} (${first?.message}), not by ${m.expected.join(' or ')} (npm run sim -- --mutant ${m.name} --seed ${failure.seed})`);
        needed.push(`${totals.runs} (${first.property})`);
      }
      process.stdout.write(`# ${m.name}: caught after ${needed.join(', ')} runs [${m.profile}]\n`);
    });
  }

  it('prints the mutant names one a line (npm run sim -- --list-mutants)', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/sim/cli.ts', '--list-mutants'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), MUTANTS.map((m) => m.name));
  });

  it('finds the violation of a mutant from the command line: exit code 1, a seed and a trace', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/sim/cli.ts', '--mutant', 'yes-before-prepared-durable', '--start', '1', '--no-shrink'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /violation in run \d+ \(seed \d+\)/);
    assert.match(r.stdout, /✗ P7 /);
    assert.match(r.stdout, /^\s*\d+\. t=\s*\d+ms {2}bank-[a-e] → coordinator {2}Vote YES tx=tx-/m);
    assert.match(r.stdout, /replay: npm run sim -- --seed \d+ --mutant yes-before-prepared-durable/);
  });
});
