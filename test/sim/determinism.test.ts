// P19: the simulator is deterministic. One seed gives one trace (same hash, same verdict), whatever
// else ran before it in the process; tracing never changes what happens; different seeds explore
// different runs; a mutant's failure replays identically.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { PROFILES, PROFILE_NAMES, scenarioForSeed, decodeScenario, encodeScenario } from '../../src/sim/scenario.js';
import { runScenario } from '../../src/sim/simulation.js';

const SEEDS = [1, 7, 42, 1234, 99_991];

describe('determinism (P19)', () => {
  it('gives the same trace hash for the same seed, in every profile', async () => {
    for (const name of PROFILE_NAMES) {
      for (const seed of SEEDS) {
        const scenario = scenarioForSeed(seed, PROFILES[name]);
        const a = await runScenario(scenario, { trace: true });
        const b = await runScenario(scenarioForSeed(seed, PROFILES[name]), { trace: true });
        assert.equal(a.traceHash, b.traceHash, `${name} seed ${seed}: the trace differs between two runs`);
        assert.equal(a.trace.length, b.trace.length);
        assert.equal(a.steps, b.steps);
        assert.ok(a.trace.length > 0);
      }
    }
  });

  it('runs the same way with and without the trace', async () => {
    for (const seed of SEEDS) {
      const scenario = scenarioForSeed(seed, PROFILES.all);
      const traced = await runScenario(scenario, { trace: true });
      const quiet = await runScenario(scenario);
      assert.equal(quiet.steps, traced.steps, `seed ${seed}: tracing changed the number of steps`);
      assert.deepEqual(quiet.transactions, traced.transactions);
      assert.equal(quiet.simulatedMs, traced.simulatedMs);
      assert.deepEqual(quiet.violations, traced.violations);
    }
  });

  it('explores different runs for different seeds', async () => {
    const hashes = new Set<string>();
    for (const seed of SEEDS) hashes.add((await runScenario(scenarioForSeed(seed, PROFILES.all), { trace: true })).traceHash);
    assert.equal(hashes.size, SEEDS.length);
  });

  it('replays a scenario from its token, and a mutant failure identically', async () => {
    const scenario = scenarioForSeed(1, PROFILES.all);
    const token = encodeScenario(scenario);
    assert.equal(JSON.stringify(decodeScenario(token)), JSON.stringify(scenario));
    const a = await runScenario(scenario, { trace: true, mutant: 'commit-before-durable' });
    const b = await runScenario(decodeScenario(token), { trace: true, mutant: 'commit-before-durable' });
    assert.ok(a.violations.length > 0, 'the mutant was not caught in this scenario');
    assert.equal(a.traceHash, b.traceHash);
    assert.deepEqual(a.violations, b.violations);
  });
});
