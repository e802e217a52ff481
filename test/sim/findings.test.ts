// Protocol problems the simulator found and that are not fixed yet (src/sim/findings.ts). Each is
// kept out of the ordinary runs by a switch; here its recorded seed shows that the ordinary run is
// clean and that, exposed, the problem still reproduces. Once the protocol is fixed the exposed run
// turns clean too: then drop the finding and its switch.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { exposeFindings, FINDINGS } from '../../src/sim/findings.js';
import { PROFILES, scenarioForSeed } from '../../src/sim/scenario.js';
import { DEFAULT_SIM_CONFIG } from '../../src/sim/sim-options.js';
import { runScenario } from '../../src/sim/simulation.js';

describe('known protocol findings', () => {
  for (const f of FINDINGS) {
    it(`${f.id}: ${f.title}`, () => {
      const scenario = scenarioForSeed(f.seed, PROFILES[f.profile]);
      assert.deepEqual(runScenario(scenario).violations, [], `seed ${f.seed} fails even with the switch on`);
      const exposed = runScenario(scenario, { config: exposeFindings(DEFAULT_SIM_CONFIG, [f.id]) });
      assert.notDeepEqual(
        exposed.violations,
        [],
        `${f.id} no longer reproduces (npm run sim -- --expose ${f.id} --profile ${f.profile} --seed ${f.seed}): if the protocol was fixed, remove the finding and its switch`,
      );
    });
  }
});
