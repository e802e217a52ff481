// The simulator's properties: DESIGN.md's invariants 1–8 and RELIABILITY.md's P1–P13, P15 and
// P18, checked after every simulated step (termination and read-back once faults stop), over
// about a thousand fast-check scenarios each. Every scenario checks every property; each test
// draws the faults that stress its own property hardest, and shows that the property was
// actually exercised. A failure prints the seed, the shrunk scenario's trace and its replay command.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { PropertyId } from '../../src/sim/checker.js';
import { PROFILES, type ProfileName } from '../../src/sim/scenario.js';
import { assertSimulation, exercised, SIM_RUNS } from './sim-assert.js';

interface Case {
  readonly property: PropertyId;
  readonly invariant?: number;
  readonly title: string;
  readonly profile: ProfileName;
}

const CASES: readonly Case[] = [
  { property: 'P1', invariant: 1, title: 'atomicity: no participant commits while another aborts', profile: 'all' },
  { property: 'P2', invariant: 2, title: 'commit validity: COMMIT only after YES/READ_ONLY from every branch, each YES durably prepared', profile: 'network' },
  { property: 'P3', invariant: 2, title: 'abort validity: a NO vote aborts, and a NO voter never gets Commit', profile: 'reorder' },
  { property: 'P4', invariant: 5, title: 'stability: one decision per transaction, the same after any crash or power loss', profile: 'power' },
  { property: 'P5', invariant: 3, title: 'write-ahead: no Commit leaves before the COMMIT record is synced', profile: 'power' },
  { property: 'P6', title: 'prepared means bound: no unilateral move out of PREPARED', profile: 'partition' },
  { property: 'P7', invariant: 4, title: 'a participant votes YES only after PREPARED is synced', profile: 'power' },
  { property: 'P8', invariant: 7, title: 'integrity: duplicates and unknown-tx messages change nothing; effects exactly once', profile: 'network' },
  { property: 'P9', title: 'out-of-order safety: abort before prepare leaves a tombstone; no commit without prepare', profile: 'reorder' },
  { property: 'P10', invariant: 6, title: 'termination: every tx finishes everywhere within the bound once faults stop', profile: 'lossy' },
  { property: 'P11', title: 'recovery completeness: a restarted coordinator resumes every open decision', profile: 'crash' },
  { property: 'P12', title: 'no premature GC: a committed tx never reads as presumed aborted', profile: 'crash' },
  { property: 'P13', invariant: 8, title: 'no loss: a tx reported COMMITTED is committed at every YES participant; unknown outcomes read back true', profile: 'disk' },
  { property: 'P15', title: 'stale messages: replayed messages change no decision and no effect', profile: 'network' },
  { property: 'P17', title: 'bounded frames: no session frame exceeds the message limit, however many messages a turn queues', profile: 'network' },
  { property: 'P18', title: 'model conformance: every observed transition of a 2PC tx is a TwoPhase action', profile: 'all' },
  { property: 'P20', title: 'a failed write is not a decision: nothing but OUTCOME_UNKNOWN follows from a failed forced write', profile: 'disk' },
];

describe('simulation properties', () => {
  for (const c of CASES) {
    it(`${c.property}${c.invariant ? ` (invariant ${c.invariant})` : ''}: ${c.title} [${SIM_RUNS} runs, ${c.profile} faults]`, async () => {
      const totals = await assertSimulation(PROFILES[c.profile]);
      assert.equal(totals.runs >= SIM_RUNS, true);
      assert.ok(exercised(totals, c.property) > 0, `${c.property} was never checked: the scenarios do not exercise it`);
    });
  }
});
