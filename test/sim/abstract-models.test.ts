// P18: the abstract models of tlaplus/Examples (transaction_commit) as an oracle. The enumerator
// reaches exactly the published state counts, TCConsistent holds everywhere, the refinement check
// accepts every TwoPhase action and rejects what is not one, and the simulator's projected
// transitions all pass it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  enumerateTCommit,
  enumerateTwoPhase,
  tcConsistent,
  twoPhaseInit,
  twoPhaseKey,
  twoPhaseNext,
  twoPhaseStep,
  type TwoPhaseState,
} from '../../src/sim/abstract-models.js';
import { PROFILES, scenarioForSeed } from '../../src/sim/scenario.js';
import { runScenario } from '../../src/sim/simulation.js';

describe('abstract models (P18)', () => {
  it('TCommit with 3 resource managers has exactly 34 reachable states, all consistent', () => {
    const states = enumerateTCommit(3);
    assert.equal(states.size, 34);
    for (const s of states.values()) assert.ok(tcConsistent(s), `inconsistent TCommit state ${s.join(',')}`);
  });

  it('TwoPhase with 3 resource managers has exactly 288 reachable states, all consistent', () => {
    const states = enumerateTwoPhase(3);
    assert.equal(states.size, 288);
    for (const s of states.values()) assert.ok(tcConsistent(s.rm), `inconsistent TwoPhase state ${twoPhaseKey(s)}`);
  });

  it('TwoPhase refines TCommit: every reachable TwoPhase state projects onto a reachable TCommit state', () => {
    const tcommit = enumerateTCommit(3);
    for (const s of enumerateTwoPhase(3).values()) assert.ok(tcommit.has(s.rm.join(',')), `rm states ${s.rm.join(',')} not in TCommit`);
  });

  it('accepts every single TwoPhase action as a step, and pairs of them', () => {
    let checked = 0;
    for (const s of enumerateTwoPhase(3).values()) {
      for (const { action, next } of twoPhaseNext(s)) {
        const step = twoPhaseStep(s, next);
        assert.ok(step.ok, `${action} from ${twoPhaseKey(s)} rejected: ${step.ok ? '' : step.why}`);
        for (const second of twoPhaseNext(next)) assert.ok(twoPhaseStep(s, second.next).ok, `${action} then ${second.action} rejected`);
        checked++;
      }
    }
    assert.ok(checked > 500);
  });

  it('rejects transitions that are not TwoPhase actions', () => {
    const init = twoPhaseInit(3);
    const bad: [string, TwoPhaseState][] = [
      ['commit without every rm prepared', { ...init, tm: 'committed', msgCommit: true }],
      ['an rm committing with no Commit message', { ...init, rm: ['committed', 'working', 'working'] }],
      ['the TM counting a Prepared that was never sent', { ...init, tmPrepared: 1 }],
      ['an rm aborting from prepared with no Abort message', { ...init, rm: ['prepared', 'working', 'working'], msgPrepared: 1 }],
    ];
    for (const [what, to] of bad) {
      const from = what.includes('from prepared') ? { ...init, rm: ['prepared', 'working', 'working'] as const, msgPrepared: 1 } : init;
      const target = what.includes('from prepared') ? { ...from, rm: ['aborted', 'working', 'working'] as const } : to;
      assert.equal(twoPhaseStep(from, target).ok, false, `accepted ${what}`);
    }
    const aborted: TwoPhaseState = { ...init, tm: 'aborted', msgAbort: true };
    assert.equal(twoPhaseStep(aborted, { ...aborted, tm: 'committed', msgCommit: true }).ok, false, 'accepted a changed decision');
  });

  it('projects every transition the simulator observes onto TwoPhase actions', async () => {
    let transitions = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const r = await runScenario(scenarioForSeed(seed, PROFILES.all));
      assert.deepEqual(
        r.violations.filter((v) => v.property === 'P18'),
        [],
        `seed ${seed}: a transition is not a TwoPhase action (npm run sim -- --seed ${seed})`,
      );
      transitions += r.exercised.P18;
    }
    assert.ok(transitions > 500, `only ${transitions} abstract transitions were checked`);
  });
});
