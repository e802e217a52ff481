// A coordinator group on etcd under simulation (issue 17): 1–3 production CoordinatorGroupMembers
// (leadership, etcd decision store, gate, terms) over a simulated etcd (linearizable, leases on the
// virtual clock, members cut from it, quorum lost and back), and every property of the single
// coordinator holds, plus P23 (no write of a deposed leader lands)
// — the participants and the initiator reach the members through the SDKs' own leader following —
// and P24 (no two members believe they lead at once). The fencing mutants are caught by these two.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { runCampaign } from '../../src/sim/campaign.js';
import type { PropertyId } from '../../src/sim/checker.js';
import type { MutantName } from '../../src/sim/mutants.js';
import type { FaultPlan, Scenario, TxPlan } from '../../src/sim/scenario.js';
import { PROFILES, scenarioForSeed } from '../../src/sim/scenario.js';
import { runScenario, type RunResult } from '../../src/sim/simulation.js';
import { assertSimulation, exercised } from './sim-assert.js';

/** Runs of the ha profile in npm test; SIM_HA_RUNS overrides (npm run sim -- --profile ha for long runs). */
const HA_RUNS = Number(process.env.SIM_HA_RUNS ?? 300);
/** The fast-check seed of those runs: the same scenarios every time; SIM_HA_SEED explores others. */
const HA_SEED = Number(process.env.SIM_HA_SEED ?? 20_261_206);

/** A two-branch transaction started at `at` that every participant votes YES on. */
function tx(at: number): TxPlan {
  return {
    at,
    style: 'one-shot',
    branches: [
      { participant: 0, vote: 'yes', latencyMs: 5, applyFailures: 0 },
      { participant: 1, vote: 'yes', latencyMs: 5, applyFailures: 0 },
    ],
    timeoutMs: 400,
    waitForCompletion: false,
    initiatorAbort: false,
    payloadBytes: 0,
  };
}

/** A group of `members` with 1 s leases, two participants, a transaction every 150 ms, and `faults`. */
function groupScenario(members: number, faults: FaultPlan[], seed = 7): Scenario {
  return {
    seed,
    participants: 2,
    txs: Array.from({ length: 20 }, (_, i) => tx(100 + i * 150)),
    faults,
    network: { resetPerMille: 0, maxDelayMs: 4 },
    faultWindowMs: 4_000,
    gc: true,
    group: { members, leaseTtlS: 1 },
  };
}

const fault = (kind: FaultPlan['kind'], at: number, durationMs: number, node = 0): FaultPlan => ({ at, kind, node, durationMs, direction: 'both' });

function lines(r: RunResult): string[] {
  return r.trace.map((l) => l.text);
}

/** The members that served as leader (their gate open), in order. */
function elected(r: RunResult): string[] {
  return lines(r).flatMap((t) => /^✓ (coordinator-\d) serves as leader$/.exec(t)?.[1] ?? []);
}

function assertClean(r: RunResult): void {
  assert.deepEqual(
    r.violations.map((v) => `${v.property}: ${v.message}`),
    [],
  );
  assert.ok(r.transactions.committed > 0, 'no transaction committed: the group never served');
}

describe('coordinator group on a simulated etcd', () => {
  it(`holds every property, fencing (P23) and one leader at a time (P24) included [${HA_RUNS} runs from seed ${HA_SEED}, ha faults]`, async () => {
    const totals = await assertSimulation(PROFILES.ha, { numRuns: HA_RUNS, seed: HA_SEED });
    for (const p of ['P1', 'P4', 'P5', 'P12', 'P20', 'P23', 'P24'] as const) assert.ok(exercised(totals, p) > 0, `${p} was never checked`);
    assert.ok(totals.committed > 0 && totals.aborted > 0);
  });

  it('a leader paused past its lease is replaced, and when it resumes it steps down without a write', async () => {
    const r = await runScenario(groupScenario(2, [fault('pause', 700, 2_500)]), { trace: true });
    assertClean(r);
    const leaders = elected(r);
    assert.ok(leaders.length >= 2, `one election only: ${leaders.join(', ')}`);
    assert.notEqual(leaders[1], leaders[0], 'the paused leader was elected again before another member');
    const paused = leaders[0] as string;
    const resumed = lines(r).findIndex((t) => t === `✓ ${paused} resumed (SIGCONT)`);
    assert.ok(resumed > 0, 'the leader was never resumed');
    assert.ok(
      lines(r)
        .slice(resumed)
        .some((t) => t.startsWith(`✗ ${paused} steps down: leadership lost`)),
      'the resumed leader did not step down',
    );
  });

  it('the SDKs follow the leader themselves: sessions and calls to a paused leader are dropped by keepalive, NOT_LEADER answers (stale hints too) move them, and transactions commit at the new leader before the old one resumes', async () => {
    // Paused long enough for the moves' backoff (it grows with every refused or timed-out attempt).
    const scenario = { ...groupScenario(3, [fault('pause', 700, 4_000)]), txs: Array.from({ length: 40 }, (_, i) => tx(100 + i * 150)), faultWindowMs: 5_000 };
    const r = await runScenario(scenario, { trace: true });
    assertClean(r);
    const leaders = elected(r);
    const paused = leaders[0] as string;
    const next = leaders[1] as string;
    const at = (re: RegExp, from = 0): number => lines(r).findIndex((t, i) => i >= from && re.test(t));
    const pausedAt = at(new RegExp(`^✗ ${paused} paused`));
    const resumedAt = at(new RegExp(`^✓ ${paused} resumed`));
    const servesAt = at(new RegExp(`^✓ ${next} serves as leader$`));
    assert.ok(pausedAt >= 0 && pausedAt < servesAt && servesAt < resumedAt, `paused ${pausedAt}, new leader ${servesAt}, resumed ${resumedAt}`);
    // Members that do not lead answer NOT_LEADER, as the production gate does; the participants' own session code moves on it.
    assert.ok(at(/session \d+ from bank-\w+ refused: this coordinator does not lead; the leader is coordinator-\d:7070/) >= 0, 'no session was refused naming a leader');
    // The sessions to the paused leader time out (keepalive) and the participants reach the new one, while it is still paused.
    const accepted = at(new RegExp(`^${next}: session \\d+ from bank-\\w+ accepted`), servesAt);
    assert.ok(accepted > servesAt && accepted < resumedAt, 'no participant reached the new leader while the old one was paused');
    // And the initiator's calls commit there meanwhile, through the client SDK's leader following.
    const committedThere = lines(r)
      .slice(accepted, resumedAt)
      .some((t) => /^coordinator → initiator {2}#\d+ COMMITTED/.test(t));
    assert.ok(committedThere, 'no transaction committed at the new leader while the old one was paused');
  });

  it('a leader cut from etcd loses its leadership by its own clock, and another member leads', async () => {
    const r = await runScenario(groupScenario(3, [fault('store-partition', 700, 2_500)]), { trace: true });
    assertClean(r);
    const leaders = elected(r);
    assert.ok(leaders.length >= 2 && leaders[1] !== leaders[0], `elected: ${leaders.join(', ')}`);
    // It stops on its first failed etcd call (a write that may have landed) or when its lease may have lapsed.
    const cut = lines(r).indexOf(`✗ ${leaders[0]} cut from etcd for 2500ms`);
    const down = lines(r).findIndex((t) => t.startsWith(`✗ ${leaders[0]} steps down: `));
    const next = lines(r).findIndex((t) => t === `✓ ${leaders[1]} serves as leader`);
    assert.ok(cut >= 0 && cut < down && down < next, `cut at line ${cut}, stepped down at ${down}, next leader at ${next}`);
    assert.ok((r.group?.unavailable ?? 0) > 0);
  });

  it('a crashed leader is replaced and the in-doubt transactions resolve', async () => {
    const r = await runScenario(groupScenario(3, [fault('crash', 900, 1_500)]), { trace: true });
    assertClean(r);
    assert.ok(elected(r).length >= 2);
    assert.equal(r.transactions.undecided, 0);
  });

  it('etcd losing quorum stops decisions without a wrong answer, and they resume when it returns', async () => {
    const r = await runScenario(groupScenario(3, [fault('quorum-loss', 700, 1_800)]), { trace: true });
    assertClean(r);
    assert.ok((r.group?.unavailable ?? 0) > 0, 'no etcd call met the lost quorum');
    assert.ok(lines(r).includes('✓ etcd has quorum again (every lease renewed)'));
  });

  // The single coordinator's properties see the group's log through etcd: P5 reads what etcd
  // committed, P12 what it deleted, P20 a write etcd failed or refused.
  const inherited: readonly [MutantName, PropertyId][] = [
    ['commit-before-durable', 'P5'],
    ['forget-commit-early', 'P12'],
    ['abort-on-failed-commit-write', 'P20'],
  ];
  for (const [mutant, property] of inherited) {
    it(`catches ${mutant} with ${property} in a coordinator group as well`, async () => {
      const { failure } = await runCampaign({ runs: 300, startSeed: 1, profile: PROFILES.ha, mutant });
      assert.ok(failure, `${mutant} survived 300 runs of the ha profile`);
      assert.equal(failure.result.violations[0]?.property, property, JSON.stringify(failure.result.violations[0]));
    });
  }

  it('keeps the leader key under the lease its leader keeps alive when campaign ticks overlap (quorum lost, then back)', async () => {
    // Found by a 20,000-run campaign: while etcd had no quorum, campaign calls hung past the
    // campaign interval and a step-down rescheduled the campaign, so two ticks overlapped; one
    // created the leader key under a lease the other had replaced, the member kept the new lease
    // alive, the key went with the old one, and a second member was elected while the first still
    // answered as leader (P24). The decision log stayed safe: the deposed leader's writes were fenced.
    const scenario: Scenario = {
      seed: 70_010_188,
      participants: 2,
      faultWindowMs: 4_886,
      txs: [
        { at: 399, style: 'begin', branches: [{ participant: 0, vote: 'no', latencyMs: 211, applyFailures: 0 }], timeoutMs: 177, waitForCompletion: true, initiatorAbort: false, payloadBytes: 0 },
        { at: 1_354, style: 'one-shot', branches: [{ participant: 1, vote: 'yes', latencyMs: 16, applyFailures: 0 }], timeoutMs: 40, waitForCompletion: false, initiatorAbort: false, payloadBytes: 0 },
        { at: 3, style: 'one-shot', branches: [{ participant: 0, vote: 'no', latencyMs: 0, applyFailures: 0 }], timeoutMs: 40, waitForCompletion: false, initiatorAbort: false, payloadBytes: 0 },
        { at: 1_358, style: 'begin', branches: [{ participant: 1, vote: 'yes', latencyMs: 0, applyFailures: 0 }], timeoutMs: 40, waitForCompletion: false, initiatorAbort: false, payloadBytes: 0 },
        { at: 1_254, style: 'one-shot', branches: [{ participant: 1, vote: 'read-only', latencyMs: 0, applyFailures: 0 }], timeoutMs: 40, waitForCompletion: false, initiatorAbort: false, payloadBytes: 0 },
      ],
      faults: [fault('quorum-loss', 950, 2_177), { at: 257, kind: 'partition', node: 2, durationMs: 550, direction: 'both' }],
      network: { resetPerMille: 0, maxDelayMs: 4 },
      gc: true,
      group: { members: 3, leaseTtlS: 1 },
    };
    const r = await runScenario(scenario, { trace: true });
    assert.deepEqual(r.violations, []);
    assert.ok(elected(r).length >= 2, 'no leader after quorum came back');
  });

  it('catches an unfenced decision-log write with P23 in a run that is clean without the mutant', async () => {
    const scenario = scenarioForSeed(1, PROFILES.ha);
    assert.deepEqual((await runScenario(scenario)).violations, []);
    const r = await runScenario(scenario, { mutant: 'decision-write-unfenced' });
    assert.equal(r.violations[0]?.property, 'P23', JSON.stringify(r.violations[0]));
  });

  it('catches a fence per member instead of per term with P23: an old term\'s straggling write lands once the member leads again', async () => {
    const scenario = scenarioForSeed(195, PROFILES.ha);
    assert.equal(scenario.group?.members, 1, 'a group of one re-elects the same member');
    assert.deepEqual((await runScenario(scenario)).violations, []);
    const r = await runScenario(scenario, { mutant: 'decision-write-fenced-per-node' });
    assert.equal(r.violations[0]?.property, 'P23', JSON.stringify(r.violations[0]));
    assert.match(r.violations[0]?.message ?? '', /landed in the term of revision \d+ \(\{"nodeId":"coordinator-1"/);
  });

  it('catches a leader that outlives its lease with P24 in a run that is clean without the mutant', async () => {
    const scenario = scenarioForSeed(27, PROFILES.ha);
    assert.deepEqual((await runScenario(scenario)).violations, []);
    const r = await runScenario(scenario, { mutant: 'leader-outlives-lease' });
    assert.equal(r.violations[0]?.property, 'P24', JSON.stringify(r.violations[0]));
  });
});
