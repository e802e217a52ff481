// A NO that nobody heard: bank-b votes NO (a lock conflict), writes its ABORTED record unsynced
// (presumed abort needs no force) and loses power before the vote leaves its session. It restarts
// knowing nothing of the transaction, the coordinator sends the prepare again, and bank-b votes
// YES: the transaction commits everywhere, which is atomic (the abort hook's writes went with the
// lost record). A 30,000-run campaign found this scenario reported as a P3/P4 violation, because
// the checker counted a NO as soon as it was sent; a NO the coordinator received still counts
// (the `no-vote-read-as-yes` mutant in mutants.test.ts shows that check failing).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { decodeScenario } from '../../src/sim/scenario.js';
import { runScenario } from '../../src/sim/simulation.js';

const SCENARIO =
  'eyJzZWVkIjoxNjAxNTA3MzA4LCJwYXJ0aWNpcGFudHMiOjIsImZhdWx0V2luZG93TXMiOjEwOCwidHhzIjpbeyJhdCI6Miwic3R5bGUiOiJvbmUtc2hvdCIsImJyYW5jaGVzIjpbeyJwYXJ0aWNpcGFudCI6MSwidm90ZSI6InllcyIsImxhdGVuY3lNcyI6MCwiYXBwbHlGYWlsdXJlcyI6MH1dLCJ0aW1lb3V0TXMiOjc4LCJ3YWl0Rm9yQ29tcGxldGlvbiI6ZmFsc2UsImluaXRpYXRvckFib3J0IjpmYWxzZSwicGF5bG9hZEJ5dGVzIjowfSx7ImF0IjoxMCwic3R5bGUiOiJvbmUtc2hvdCIsImJyYW5jaGVzIjpbeyJwYXJ0aWNpcGFudCI6MCwidm90ZSI6InJlYWQtb25seSIsImxhdGVuY3lNcyI6MCwiYXBwbHlGYWlsdXJlcyI6MH0seyJwYXJ0aWNpcGFudCI6MSwidm90ZSI6ImhhbmciLCJsYXRlbmN5TXMiOjAsImFwcGx5RmFpbHVyZXMiOjB9XSwidGltZW91dE1zIjo5Niwid2FpdEZvckNvbXBsZXRpb24iOmZhbHNlLCJpbml0aWF0b3JBYm9ydCI6ZmFsc2UsInBheWxvYWRCeXRlcyI6MH0seyJhdCI6MTAsInN0eWxlIjoib25lLXNob3QiLCJicmFuY2hlcyI6W3sicGFydGljaXBhbnQiOjEsInZvdGUiOiJoYW5nIiwibGF0ZW5jeU1zIjowLCJhcHBseUZhaWx1cmVzIjowfV0sInRpbWVvdXRNcyI6NjgsIndhaXRGb3JDb21wbGV0aW9uIjpmYWxzZSwiaW5pdGlhdG9yQWJvcnQiOmZhbHNlLCJwYXlsb2FkQnl0ZXMiOjB9LHsiYXQiOjczLCJzdHlsZSI6Im9uZS1zaG90IiwiYnJhbmNoZXMiOlt7InBhcnRpY2lwYW50IjowLCJ2b3RlIjoieWVzIiwibGF0ZW5jeU1zIjowLCJhcHBseUZhaWx1cmVzIjowfSx7InBhcnRpY2lwYW50IjoxLCJ2b3RlIjoieWVzIiwibGF0ZW5jeU1zIjowLCJhcHBseUZhaWx1cmVzIjowfV0sInRpbWVvdXRNcyI6NDYwLCJ3YWl0Rm9yQ29tcGxldGlvbiI6dHJ1ZSwiaW5pdGlhdG9yQWJvcnQiOmZhbHNlLCJwYXlsb2FkQnl0ZXMiOjU1N31dLCJmYXVsdHMiOlt7ImF0Ijo4Miwia2luZCI6InBvd2VyLWxvc3MiLCJub2RlIjoyLCJkdXJhdGlvbk1zIjowLCJkaXJlY3Rpb24iOiJib3RoIn1dLCJuZXR3b3JrIjp7InJlc2V0UGVyTWlsbGUiOjEsIm1heERlbGF5TXMiOjN9LCJnYyI6ZmFsc2V9';

describe('a NO lost with its unsynced ABORTED record', () => {
  it('is forgotten: the prepare sent again is answered YES and the transaction commits everywhere, with every property holding', async () => {
    const result = await runScenario(decodeScenario(SCENARIO), { trace: true });
    const lines = result.trace.map((l) => l.text);
    const at = (pattern: RegExp): number => lines.findIndex((l) => pattern.test(l));
    // The scenario still is what it was: a NO sent, the power loss, then a YES to the same prepare.
    const no = at(/bank-b → coordinator .*Vote NO tx=tx-1-4 /);
    const lost = at(/power loss of bank-b/);
    const yes = at(/bank-b → coordinator .*Vote YES tx=tx-1-4/);
    assert.ok(no >= 0 && lost > no && yes > lost, `NO (${no}), power loss (${lost}), YES (${yes}) in that order`);
    assert.ok(at(/coordinator: DECIDED COMMITTED tx=tx-1-4/) > yes, 'tx-1-4 committed');
    assert.deepEqual(result.violations, []);
  });
});
