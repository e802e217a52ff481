// The fault matrix's SIGKILL rows, in real processes under a workload of concurrent transfers.
// One cluster: first the coordinator is killed between Begin and Commit; then every failpoint a
// bank cluster reaches (the one-phase and PostgreSQL ones are crashed in test/postgres) is
// armed with `crash` in turn, the coordinator's on the coordinator, a participant's on a bank. Each
// time the process must die by its own SIGKILL at that step (a failpoint never reached fails the
// test) and comes back on the same data directory armed for the next one, so every incarnation
// also starts by recovering what the last crash left. Then the cluster is healed and settled,
// stopped, and the whole history checked against every bank's durable state: all-or-nothing
// transfers, no lost commit, no phantom, nothing in doubt, every hook once, money conserved.
//
//   coordinator  B  SIGKILL after Begin, before Commit    → the initiator cannot know; presumed abort
//                P  after-prepare-sent                     → presumed abort; prepared banks block, then abort
//                D  after-votes, before-commit-record      → not durable: presumed abort (must not commit)
//                D  after-commit-record                    → durable: recovery re-sends COMMIT
//                N  between-commit-sends                   → recovery re-sends; duplicates absorbed
//                A  before-end-record                      → re-sent to the un-acked; nothing forgotten early
//                R  after-commit-record, then before-end-record while re-driving it (double crash)
//   participant  P  before-prepared-record                 → no record: the vote is lost, abort
//                P  after-prepared-record, after-vote-sent → in doubt: asks, follows the decision
//                N  before/after-apply-hook, before-ack    → applies the decision once after the restart
//                R  after-prepared-record, then before-apply-hook while resolving it (double crash)
//
// The seed (VERDICT_CRASH_SEED, else random) picks the bank and the hit each failpoint fires at
// and the transfer plan; every failure prints it.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VerdictClient } from '../../src/client/client.js';
import { encodeLeg } from '../../src/demo/bank.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import { CrashRun, failpointCrashSpec } from '../../src/faults/crash-run.js';
import { FAILPOINTS } from '../../src/common/failpoints.js';
import { DEFAULT_CALL_TIMEOUT_MS } from '../../src/faults/transfer-workload.js';
import { Prng } from '../../src/sim/prng.js';
import { arming, assertClean, BANKS, bankClusterFailpoints, crashSeed, exclusiveCrashSuite, runDir, SEED_ENV } from './crash-support.js';

/** A bound on one step, far above its usual few seconds. */
const STEP_TIMEOUT_MS = 120_000;
/** Transactions begun before the coordinator is killed in phase B. */
const BEGUN_BEFORE_KILL = 5;

/** Each side's failpoints in order, then a second crash while that side recovers. */
const SIDES = [
  {
    side: 'coordinator',
    // Durable COMMIT records nobody acknowledged yet: the next incarnation re-drives them and dies
    // as soon as the first acknowledgements let it end a transaction.
    doubleCrash: {
      first: 'coordinator.after-commit-record=crash@2',
      then: 'coordinator.before-end-record=crash',
      why: 'the coordinator dies again while it re-drives the commits it recovered',
    },
  },
  {
    side: 'participant',
    // PREPARED is durable and the YES never left: the next incarnation is in doubt, asks, and dies
    // again in the first hook it runs.
    doubleCrash: {
      first: 'participant.after-prepared-record=crash@2',
      then: 'participant.before-apply-hook=crash',
      why: 'a bank dies again while it resolves what it recovered in doubt',
    },
  },
] as const;

describe('SIGKILL at every protocol step, in real processes', () => {
  const seed = crashSeed();
  const steps = bankClusterFailpoints().map((failpoint) => {
    const { process, fromHit } = arming(seed, failpoint);
    return { failpoint, process, spec: failpointCrashSpec(failpoint, fromHit) };
  });
  let release: (() => void) | undefined;
  let run: CrashRun | undefined;

  before(async () => {
    release = await exclusiveCrashSuite();
    run = await CrashRun.start({ dir: runDir('failpoints'), seed });
  });

  after(async () => {
    await run?.destroy();
    release?.();
  });

  function started(): CrashRun {
    if (!run) throw new Error('the cluster did not start');
    return run;
  }

  function failWith(what: string, problems: readonly string[]): void {
    if (problems.length === 0) return;
    assert.fail(
      [
        `${what} (seed ${seed}):`,
        ...problems.map((p) => `  ${p}`),
        `  data and logs: ${run?.cluster.dir}`,
        `  reproduce with: ${SEED_ENV}=${seed} npm test -- test/crash/failpoints.test.ts`,
      ].join('\n'),
    );
  }

  async function crash(process: string, spec: string): Promise<void> {
    const r = started();
    failWith(`${spec} on ${process}`, await r.crashAt(r.cluster.process(process), spec));
  }

  it('presumes abort for transactions begun before a coordinator SIGKILL; the initiator is told it cannot know', { timeout: STEP_TIMEOUT_MS }, async (t) => {
    t.diagnostic(`seed ${seed}`);
    const r = started();
    const branches = [
      { participant: 'bank-1', payload: encodeLeg({ account: '1', delta: -1 }) },
      { participant: 'bank-2', payload: encodeLeg({ account: '1', delta: 1 }) },
    ];
    let client = new VerdictClient(r.cluster.address, { callTimeoutMs: DEFAULT_CALL_TIMEOUT_MS });
    try {
      const begun = await Promise.all(Array.from({ length: BEGUN_BEFORE_KILL }, () => client.begin({ timeoutMs: 60_000 })));
      const coordinator = r.cluster.coordinator;
      await coordinator.kill();
      r.fault(coordinator, 'SIGKILL after Begin, before Commit');

      // Down: a Commit cannot know its outcome, and says so instead of failing.
      for (const { txId } of begun) {
        await assert.rejects(client.commit(txId, branches), (e: unknown) => {
          assert.ok(e instanceof VerdictError && e.retryable, `a commit to a dead coordinator must be retryable (seed ${seed}): ${String(e)}`);
          assert.ok(e.code === ErrorCode.OUTCOME_UNKNOWN || e.code === ErrorCode.UNAVAILABLE, `not an indeterminate error: ${e.code}`);
          return true;
        });
      }

      // Back (armed already for the next test): no COMMIT record, so each of them is aborted, for
      // good, whoever asks.
      const [next] = steps;
      await coordinator.start(next?.process === coordinator.name ? { failpoints: next.spec } : {});
      r.fault(coordinator, next?.process === coordinator.name ? `restarted with ${next.spec}` : 'restarted');
      client.close();
      client = new VerdictClient(r.cluster.address, { callTimeoutMs: DEFAULT_CALL_TIMEOUT_MS });
      for (const { txId } of begun) {
        const view = await client.get(txId);
        assert.equal(view.outcome, 'aborted', `${txId} (seed ${seed})`);
        assert.equal(view.presumed, true, `${txId} is aborted by presumption (seed ${seed})`);
        await assert.rejects(client.commit(txId, branches), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.TX_ABORTED);
      }
    } finally {
      client.close();
    }
  });

  for (const { side, doubleCrash } of SIDES) {
    for (const { failpoint, process, spec } of steps.filter((s) => s.failpoint.startsWith(`${side}.`))) {
      it(`crashes at ${failpoint} (${FAILPOINTS[failpoint]})`, { timeout: STEP_TIMEOUT_MS }, async (t) => {
        t.diagnostic(`seed ${seed}: ${spec} on ${process}`);
        await crash(process, spec);
      });
    }

    it(`crashes twice: ${doubleCrash.why}`, { timeout: STEP_TIMEOUT_MS }, async (t) => {
      const process = side === 'coordinator' ? 'coordinator' : new Prng(seed).pick(BANKS);
      t.diagnostic(`seed ${seed}: ${doubleCrash.first} then ${doubleCrash.then} on ${process}`);
      await crash(process, doubleCrash.first);
      await crash(process, doubleCrash.then);
    });
  }

  it('recovers: every process back, transfers commit again, nothing left in doubt', { timeout: STEP_TIMEOUT_MS }, async () => {
    failWith('recovery after the last crash', await started().recover());
  });

  it('holds every invariant in the durable state of every bank', { timeout: STEP_TIMEOUT_MS }, async () => {
    assertClean(await started().finish('every failpoint in turn'));
  });
});
