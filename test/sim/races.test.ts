// Race tests on the real gRPC stack: fast-check's scheduler decides the order in which concurrent
// initiator calls (Commit, Abort, GetTransaction, a late enlist) are issued and the order in which
// participant hooks return, and, for a participant restarted in phase 2, where its close and
// restart fall among the hooks. Every answer is then checked against the one outcome the
// coordinator reached. The network adds orderings of its own, so a seed replays the scheduler's
// choices but not always the same interleaving: a failure prints its seed and path (replay them
// with RACE_SEED and RACE_PATH) and the scheduler's report, the order in which tasks were let go.
// To keep that order meaningful, the scheduler picks its next task only once what the previous
// one set in motion has landed (see `settleFirst`), except for releases drawn as impatient.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';

import { ErrorCode, VerdictError } from '../../src/errors.js';
import type { Participant, ParticipantHooks, PrepareResult } from '../../src/participant/index.js';
import { TxState, type TxView } from '../../src/protocol/coordinator-events.js';
import type { Outcome } from '../../src/protocol/types.js';
import { TestCluster, uniqueName, waitFor } from '../support/cluster.js';

/** Runs of each property (RACE_RUNS overrides; RACE_SEED and RACE_PATH replay a failure). */
const RUNS = Number(process.env.RACE_RUNS ?? 30);
const REPLAY = process.env.RACE_SEED ? { seed: Number(process.env.RACE_SEED), path: process.env.RACE_PATH } : {};
/** Transaction timeout: far beyond a run, so that no deadline decides a race. */
const TX_TIMEOUT_MS = 30_000;
/** Bound on one run, from the first released task until everything settled. */
const RUN_BOUND_MS = 10_000;
/** Bound on what a released task sets in motion landing (a vote, a decision, an answer). */
const SETTLE_BOUND_MS = 5_000;
/** Bound on draining the scheduler and closing a run's participants. */
const CLEANUP_BOUND_MS = 10_000;

type VoteWord = 'yes' | 'no' | 'read-only';
type HookName = 'prepare' | 'commit' | 'abort';

interface HookEntry {
  readonly hook: HookName;
  readonly txId: string;
  /** Which incarnation of the participant ran it (1 for participants never restarted). */
  readonly incarnation: number;
  /** Set once the hook returned (its staged writes are then handed to the SDK). */
  returned: boolean;
}

const codeOf = (e: unknown): string => (e instanceof VerdictError ? e.code : `not a VerdictError: ${String(e)}`);

/** Rejects with `what` when `promise` has not settled within `ms`. */
async function within<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A scheduler act that, before the scheduler picks its next task, waits (polling, bounded) until
 * nothing the test knows to be on its way is still in flight: `inFlight` names what it waits
 * for, or returns undefined. Arrivals then compete in the scheduler instead of losing to
 * whichever task was already there, and a system that stops making progress fails the run.
 * `impatient[i]` makes the i-th release go at once instead, racing whatever is in flight.
 */
function settleFirst(inFlight: () => string | undefined, impatient: readonly boolean[] = []): fc.SchedulerAct {
  let releases = 0;
  return async (release) => {
    if (!impatient[releases++]) {
      // Checked at every turn of the event loop (not on a timer): the release goes as soon as
      // the last arrival landed, so that it can still race what that arrival set off.
      const deadline = Date.now() + SETTLE_BOUND_MS;
      for (let awaited = inFlight(); awaited !== undefined; awaited = inFlight()) {
        if (Date.now() > deadline) throw new Error(`nothing settled within ${SETTLE_BOUND_MS} ms: still waiting for ${awaited}`);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    await release();
  };
}

/** Which releases go at once, racing what is in flight (about one in four). */
const impatientArb = fc.array(fc.constantFrom(false, false, false, true), { maxLength: 12 });

/** Where a run's hooks wait for the scheduler. Once the run is over they no longer wait. */
class Holds {
  #live = true;
  constructor(readonly s: fc.Scheduler) {}

  hold(label: string): Promise<void> {
    return this.#live ? this.s.schedule(Promise.resolve(), label) : Promise.resolve();
  }

  /** Stops holding and lets everything still held through (bounded). */
  async drain(): Promise<void> {
    this.#live = false;
    await within('the scheduler to drain', CLEANUP_BOUND_MS, this.s.waitIdle());
  }
}

/** Runs `body`, then `cleanup`; a cleanup failure is reported only when the body passed. */
async function withCleanup<T>(body: () => Promise<T>, cleanup: () => Promise<void>): Promise<T> {
  let result: T;
  try {
    result = await body();
  } catch (e) {
    await cleanup().catch(() => undefined);
    throw e;
  }
  await cleanup();
  return result;
}

/** Hooks whose every step waits for the scheduler, recording calls and staging `applied/` writes. */
function heldHooks(holds: Holds, name: string, vote: VoteWord, entries: HookEntry[], incarnation = 1): ParticipantHooks {
  const label = incarnation === 1 ? name : `${name}#${incarnation}`;
  return {
    prepare: async (txId): Promise<PrepareResult> => {
      const entry: HookEntry = { hook: 'prepare', txId, incarnation, returned: false };
      entries.push(entry);
      await holds.hold(`${label} prepare → ${vote}`);
      entry.returned = true;
      return vote;
    },
    commit: async (txId, { batch }) => {
      const entry: HookEntry = { hook: 'commit', txId, incarnation, returned: false };
      entries.push(entry);
      await holds.hold(`${label} commit`);
      batch.put(`applied/${txId}/${incarnation}`, 'committed');
      entry.returned = true;
    },
    abort: async (txId, { batch }) => {
      const entry: HookEntry = { hook: 'abort', txId, incarnation, returned: false };
      entries.push(entry);
      await holds.hold(`${label} abort`);
      batch.put(`applied/${txId}/${incarnation}`, 'aborted');
      entry.returned = true;
    },
  };
}

const count = (entries: readonly HookEntry[], hook: HookName): number => entries.filter((e) => e.hook === hook).length;

/** The `applied/<txId>/<incarnation>` writes that reached a participant's store. */
async function appliedWrites(participant: Participant, txId: string): Promise<Map<number, unknown>> {
  const out = new Map<number, unknown>();
  const prefix = `applied/${txId}/`;
  for await (const [key, value] of participant.store.iterator({ gte: prefix, lt: `${prefix}~` })) {
    out.set(Number(key.slice(prefix.length)), value);
  }
  return out;
}

/** A Verdict view says an outcome exactly when its state is a decided one. */
function assertViewAgrees(view: TxView, outcome: Outcome, where: string): void {
  assert.equal(view.presumed, false, `${where}: a live or recorded transaction is never presumed`);
  if (view.state === TxState.ACTIVE || view.state === TxState.PREPARING) {
    assert.equal(view.outcome, undefined, `${where}: ${view.state} but says ${view.outcome}`);
  } else {
    assert.ok(view.state === TxState.DECIDED || view.state === TxState.ENDED, `${where}: unexpected state ${view.state}`);
    assert.equal(view.outcome, outcome, `${where}: reads ${view.outcome} (${view.state}) but the outcome is ${outcome}`);
  }
}

// ---- 1. Commit, Abort and GetTransaction of one transaction, racing ---------------------------

type Joins = 'enlisted' | 'named';
type Call = { readonly kind: 'commit'; readonly waitForCompletion: boolean } | { readonly kind: 'abort' } | { readonly kind: 'get' };

interface RacePlan {
  /** The branches known before the race: enlisted after Begin, or named in every Commit. */
  readonly branches: readonly { readonly joins: Joins; readonly vote: VoteWord }[];
  /** A participant that enlists during the race (its enlist is one of the racing calls). */
  readonly latecomer: VoteWord | undefined;
  readonly calls: readonly Call[];
  /** Releases that do not wait for what is in flight (see `settleFirst`). */
  readonly impatient: readonly boolean[];
  /**
   * Whether a release may go as soon as a YES is durable at its participant, racing the vote's
   * flight and the COMMIT record it may complete (an Abort then lands before, during or after).
   */
  readonly raceVotes: boolean;
}

interface Racer {
  readonly name: string;
  readonly joins: Joins | 'latecomer';
  readonly vote: VoteWord;
  readonly participant: Participant;
  readonly entries: HookEntry[];
  readonly finished: { readonly txId: string; readonly outcome: Outcome | undefined }[];
}

type CallResult =
  | { readonly kind: 'commit'; readonly waitForCompletion: boolean; readonly ok: true; readonly finishedAtAnswer: readonly string[] }
  | { readonly kind: 'commit' | 'abort' | 'enlist' | 'get'; readonly ok: false; readonly code: string }
  | { readonly kind: 'abort' | 'enlist'; readonly ok: true }
  | { readonly kind: 'get'; readonly ok: true; readonly view: TxView };

const voteArb = fc.constantFrom<VoteWord>('yes', 'yes', 'yes', 'no', 'read-only');
// Commit weighs more: an Abort issued first decides before anything else can race with it.
const callArb: fc.Arbitrary<Call> = fc.oneof(
  { arbitrary: fc.boolean().map((waitForCompletion) => ({ kind: 'commit', waitForCompletion }) as const), weight: 2 },
  { arbitrary: fc.constant({ kind: 'abort' } as const), weight: 1 },
  { arbitrary: fc.constant({ kind: 'get' } as const), weight: 1 },
);
const racePlanArb: fc.Arbitrary<RacePlan> = fc.record({
  branches: fc.array(fc.record({ joins: fc.constantFrom<Joins>('enlisted', 'named'), vote: voteArb }), { minLength: 2, maxLength: 3 }),
  latecomer: fc.option(voteArb, { nil: undefined }),
  // At least one call that decides: otherwise only the (far) deadline would.
  calls: fc.array(callArb, { minLength: 1, maxLength: 5 }).filter((calls) => calls.some((c) => c.kind !== 'get')),
  impatient: impatientArb,
  raceVotes: fc.boolean(),
});

async function startRacer(cluster: TestCluster, holds: Holds, joins: Racer['joins'], vote: VoteWord): Promise<Racer> {
  const name = uniqueName(`race-${joins}`);
  const entries: HookEntry[] = [];
  const { participant } = await cluster.participant(name, vote, { hooks: heldHooks(holds, name, vote, entries) });
  const finished: Racer['finished'][number][] = [];
  participant.on('finished', (txId, outcome) => finished.push({ txId, outcome }));
  return { name, joins, vote, participant, entries, finished };
}

/** How a race went, for the coverage count printed at the end. */
type RaceShape =
  | 'aborted before any Prepare'
  | 'Abort overtook the Prepares'
  | 'aborted by a NO vote'
  | 'committed, an Abort refused'
  | 'committed, no Abort tried';

async function raceOnce(cluster: TestCluster, s: fc.Scheduler, plan: RacePlan): Promise<RaceShape> {
  const holds = new Holds(s);
  const racers = await Promise.all([
    ...plan.branches.map((b) => startRacer(cluster, holds, b.joins, b.vote)),
    ...(plan.latecomer ? [startRacer(cluster, holds, 'latecomer', plan.latecomer)] : []),
  ]);
  const decisions: { txId: string; outcome: Outcome }[] = [];
  const onDecided = (txId: string, outcome: Outcome): void => void decisions.push({ txId, outcome });
  cluster.coordinator.on('decided', onDecided);

  return withCleanup(
    async (): Promise<RaceShape> => {
      const begun = await cluster.client.begin({ timeoutMs: TX_TIMEOUT_MS });
      const { txId } = begun;
      for (const r of racers) if (r.joins === 'enlisted') await r.participant.enlist(begun, Buffer.from(`enlisted ${r.vote}`));
      const named = racers.filter((r) => r.joins === 'named').map((r) => ({ participant: r.name, payload: `named ${r.vote}` }));
      const latecomer = racers.find((r) => r.joins === 'latecomer');
      const finishedNow = (): string[] => racers.filter((r) => r.finished.some((f) => f.txId === txId)).map((r) => r.name);

      // The race: every call waits for the scheduler to issue it; the answers come back over gRPC.
      const issue = (call: Call): Promise<CallResult> => {
        switch (call.kind) {
          case 'commit':
            return cluster.client.commit(txId, named, { waitForCompletion: call.waitForCompletion }).then(
              () => ({ kind: 'commit', waitForCompletion: call.waitForCompletion, ok: true, finishedAtAnswer: finishedNow() }),
              (e: unknown) => ({ kind: 'commit', ok: false, code: codeOf(e) }),
            );
          case 'abort':
            return cluster.client.abort(txId, 'racing').then(
              () => ({ kind: 'abort', ok: true }),
              (e: unknown) => ({ kind: 'abort', ok: false, code: codeOf(e) }),
            );
          case 'get':
            return cluster.client.get(txId).then(
              (view) => ({ kind: 'get', ok: true, view }),
              (e: unknown) => ({ kind: 'get', ok: false, code: codeOf(e) }),
            );
        }
      };
      // Issued calls, for the settle check: answered, or (a Commit only) parked at the coordinator.
      const issued: { label: string; call: Call | { kind: 'enlist' }; answered: boolean }[] = [];
      const issueScheduled = (label: string, call: Call | { kind: 'enlist' }, run: () => Promise<CallResult>): Promise<CallResult> =>
        s.schedule(Promise.resolve(), `issue ${label}`).then(() => {
          const entry = { label, call, answered: false };
          issued.push(entry);
          return run().finally(() => (entry.answered = true));
        });
      const answers = plan.calls.map((call, i) => issueScheduled(`${call.kind} #${i}`, call, () => issue(call)));
      const enlisted = latecomer
        ? issueScheduled(`enlist of ${latecomer.name}`, { kind: 'enlist' }, () =>
            latecomer.participant.enlist(begun, Buffer.from(`late ${latecomer.vote}`)).then(
              (): CallResult => ({ kind: 'enlist', ok: true }),
              (e: unknown): CallResult => ({ kind: 'enlist', ok: false, code: codeOf(e) }),
            ),
          )
        : undefined;

      /** What a released task set in motion and has not landed yet (see `settleFirst`). */
      const inFlight = (): string | undefined => {
        const view = cluster.coordinator.describe(txId);
        const racer = (name: string): Racer | undefined => racers.find((r) => r.name === name);
        const has = (r: Racer | undefined, hook: HookName, returned = false): boolean =>
          r !== undefined && r.entries.some((e) => e.hook === hook && (!returned || e.returned));
        // A call landed when answered; a Commit may also be parked while prepare runs, or while a
        // waitForCompletion Commit waits for acknowledgements.
        for (const { label, call, answered } of issued) {
          if (answered) continue;
          const parked =
            call.kind === 'commit' &&
            view !== undefined &&
            (view.state === TxState.PREPARING || (view.state === TxState.DECIDED && view.outcome === 'committed' && call.waitForCompletion));
          if (!parked) return `the answer to ${label}`;
        }
        if (view?.state === TxState.PREPARING) {
          for (const b of view.branches) {
            const r = racer(b.participant);
            if (!has(r, 'prepare')) return `the Prepare at ${b.participant}`;
            if (!has(r, 'prepare', true)) continue; // held by the scheduler
            if (r?.vote === 'no') {
              // A NO is sent only after the abort hook that follows it (held by the scheduler too).
              if (!has(r, 'abort')) return `the abort hook after the NO of ${b.participant}`;
              if (has(r, 'abort', true) && b.vote === undefined) return `the vote of ${b.participant}`;
            } else if (b.vote === undefined) {
              // Racing the votes, a YES has landed once it is durable at its participant (the
              // vote, and the COMMIT record it may complete, are then on their way).
              const landed = plan.raceVotes && r?.vote === 'yes' && r.participant.inDoubt().some((t) => t.txId === txId);
              if (!landed) return `the vote of ${b.participant}`;
            }
          }
          // Every vote in and still preparing: the COMMIT record is being forced.
          if (!plan.raceVotes && view.branches.every((b) => b.vote !== undefined)) return 'the COMMIT record';
        }
        if (view?.state === TxState.DECIDED) {
          const hook = view.outcome === 'committed' ? 'commit' : 'abort';
          for (const b of view.branches) {
            if (b.vote === 'yes' && !b.acknowledged && !has(racer(b.participant), hook)) return `the decision at ${b.participant}`;
          }
        }
        for (const r of racers) {
          for (const e of r.entries) {
            if (!e.returned || e.hook === 'prepare') continue;
            if (!r.finished.some((f) => f.txId === txId && f.outcome === (e.hook === 'commit' ? 'committed' : 'aborted'))) {
              return `the outcome record at ${r.name}`;
            }
            const branch = view?.branches.find((b) => b.participant === r.name);
            if (branch?.vote === 'yes' && !branch.acknowledged) return `the acknowledgement of ${r.name}`;
          }
        }
        return undefined;
      };

      const polled: TxView[] = [];
      const settled = (async () => {
        const results = await Promise.all(answers);
        const enlist = await enlisted;
        // Then until the transaction ended at the coordinator and every branch finished with it
        // (a branch that got a Prepare, or that enlisted, always finishes).
        const final = await waitFor('the transaction to end at the coordinator', async () => {
          const view = await cluster.client.get(txId);
          polled.push(view);
          return view.state === TxState.ENDED ? view : undefined;
        });
        const branchNames = new Set(final.branches.map((b) => b.participant));
        await waitFor('every branch to finish the transaction', () =>
          racers.filter((r) => branchNames.has(r.name)).every((r) => r.finished.some((f) => f.txId === txId)),
        );
        return { results, enlist, final };
      })();
      const { results, enlist, final } = await s.waitFor(within('the race to settle', RUN_BOUND_MS, settled), settleFirst(inFlight, plan.impatient));

      // One outcome, decided once, and every answer agrees with it.
      const outcome = final.outcome;
      assert.ok(outcome === 'committed' || outcome === 'aborted', `the ended transaction has outcome ${outcome}`);
      assert.deepEqual(
        decisions.filter((d) => d.txId === txId).map((d) => d.outcome),
        [outcome],
        'the coordinator decided exactly once',
      );
      for (const [i, r] of results.entries()) {
        const where = `call #${i} (${r.kind})`;
        switch (r.kind) {
          case 'commit':
            if (r.ok) {
              assert.equal(outcome, 'committed', `${where} answered committed`);
              if (r.waitForCompletion) {
                // The ack follows the durable outcome record, so every YES voter has finished.
                const yes = racers.filter((x) => x.vote === 'yes' && final.branches.some((b) => b.participant === x.name)).map((x) => x.name);
                for (const name of yes) assert.ok(r.finishedAtAnswer.includes(name), `${where} waited for completion but ${name} had not finished`);
              }
            } else {
              assert.ok(r.code === ErrorCode.TX_ABORTED || r.code === ErrorCode.OUTCOME_UNKNOWN, `${where} failed with ${r.code}`);
              if (r.code === ErrorCode.TX_ABORTED) assert.equal(outcome, 'aborted', `${where} answered TX_ABORTED`);
            }
            break;
          case 'abort':
            if (r.ok) assert.equal(outcome, 'aborted', `${where} succeeded`);
            else {
              assert.ok(r.code === ErrorCode.WRONG_STATE || r.code === ErrorCode.OUTCOME_UNKNOWN, `${where} failed with ${r.code}`);
              if (r.code === ErrorCode.WRONG_STATE) assert.equal(outcome, 'committed', `${where} was refused (WRONG_STATE)`);
            }
            break;
          case 'get':
            assert.ok(r.ok, `${where} failed with ${r.ok ? '' : r.code}`);
            if (r.ok) assertViewAgrees(r.view, outcome, where);
            break;
          case 'enlist':
            break;
        }
      }
      for (const [i, view] of polled.entries()) assertViewAgrees(view, outcome, `status read #${i} after the race`);

      // Membership: enlisted ones always, named ones iff a Commit got in first, the latecomer iff
      // its enlist was accepted (it can only be refused as WRONG_STATE, once Commit or Abort won).
      const branchNames = new Set(final.branches.map((b) => b.participant));
      for (const r of racers.filter((x) => x.joins === 'enlisted')) assert.ok(branchNames.has(r.name), `enlisted ${r.name} is a branch`);
      if (latecomer && enlist) {
        if (enlist.ok) assert.ok(branchNames.has(latecomer.name), 'an accepted enlist makes a branch');
        else {
          assert.equal(enlist.ok ? '' : enlist.code, ErrorCode.WRONG_STATE, 'a late enlist is refused as WRONG_STATE');
          assert.ok(!branchNames.has(latecomer.name), 'a refused enlist makes no branch');
        }
      }
      const namedIn = racers.filter((r) => r.joins === 'named').map((r) => branchNames.has(r.name));
      assert.ok(namedIn.every((x) => x === namedIn[0]), 'the named branches join together (with the Commit that started prepare) or not at all');

      // Hooks: prepare went to every branch or to none; then exactly one outcome at each.
      const branches = racers.filter((r) => branchNames.has(r.name));
      for (const r of racers) assert.ok(r.entries.every((e) => e.txId === txId), `${r.name} ran hooks for another transaction`);
      const prepared = branches.some((r) => count(r.entries, 'prepare') > 0);
      for (const r of racers) {
        const where = `${r.name} (${r.joins}, votes ${r.vote}): ${r.entries.map((e) => e.hook).join(',') || 'no hooks'}`;
        const [prepares, commits, aborts] = [count(r.entries, 'prepare'), count(r.entries, 'commit'), count(r.entries, 'abort')];
        if (!branchNames.has(r.name)) {
          assert.equal(r.entries.length, 0, `${where}: not a branch, yet hooks ran`);
          continue;
        }
        assert.equal(prepares, prepared ? 1 : 0, `${where}: prepare went to every branch or to none`);
        if (outcome === 'committed') {
          assert.ok(prepared, `${where}: committed without a prepare`);
          assert.notEqual(r.vote, 'no', `${where}: committed over a NO vote`);
          assert.equal(commits, r.vote === 'yes' ? 1 : 0, `${where}: commit hook count`);
          assert.equal(aborts, 0, `${where}: abort hook in a committed transaction`);
        } else {
          assert.equal(commits, 0, `${where}: commit hook in an aborted transaction`);
          // A YES or NO voter, and an enlisted branch never prepared, always learn the abort; a
          // read-only voter only when the abort overtook its prepare.
          const mustAbort = prepared ? r.vote !== 'read-only' : r.joins !== 'named';
          if (mustAbort) assert.equal(aborts, 1, `${where}: abort hook count`);
          else assert.ok(aborts <= 1, `${where}: abort hook ran ${aborts} times`);
        }
        // Whatever a commit or abort hook staged landed once, with the outcome.
        const applied = await appliedWrites(r.participant, txId);
        assert.deepEqual([...applied.values()], commits + aborts > 0 ? [outcome] : [], `${where}: staged writes`);
        assert.deepEqual(r.participant.inDoubt(), [], `${where}: still in doubt`);
      }

      if (outcome === 'committed') return results.some((r) => r.kind === 'abort') ? 'committed, an Abort refused' : 'committed, no Abort tried';
      if (!prepared) return 'aborted before any Prepare';
      return results.some((r) => r.kind === 'abort' && r.ok) ? 'Abort overtook the Prepares' : 'aborted by a NO vote';
    },
    async () => {
      cluster.coordinator.off('decided', onDecided);
      await holds.drain();
      await within('the racers to close', CLEANUP_BOUND_MS, Promise.all(racers.map((r) => r.participant.close())));
    },
  );
}

describe('racing Commit, Abort and GetTransaction of one transaction (real gRPC, fc.scheduler)', () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start({ protocol: { retryInitialMs: 20, retryMaxMs: 200 } });
  });
  after(() => cluster.close());

  it('reaches exactly one outcome, answers every call by it, and runs each hook once', { timeout: 120_000 }, async (t) => {
    const shapes = new Map<RaceShape, number>();
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), racePlanArb, async (s, plan) => {
        const shape = await raceOnce(cluster, s, plan);
        shapes.set(shape, (shapes.get(shape) ?? 0) + 1);
      }),
      { numRuns: RUNS, includeErrorInReport: true, ...REPLAY },
    );
    t.diagnostic(`runs by shape: ${[...shapes].map(([shape, n]) => `${shape}: ${n}`).join('; ')}`);
  });

  // Interleavings random runs reach only now and then, pinned. Task ids count in scheduling
  // order: first the issuing of each call, then the prepare hooks, then the commit or abort hooks
  // (the two prepare hooks, and the hooks after them, may go to either participant: both vote
  // YES, so it does not matter which).
  const twoYes = (calls: readonly Call[]): RacePlan => ({
    branches: [
      { joins: 'enlisted', vote: 'yes' },
      { joins: 'named', vote: 'yes' },
    ],
    latecomer: undefined,
    calls,
    impatient: [],
    raceVotes: false,
  });
  const commit: Call = { kind: 'commit', waitForCompletion: false };
  const abort: Call = { kind: 'abort' };

  it('refuses an Abort issued once both votes are in and the commit is durable', async () => {
    // Issue Commit (1), both prepares return (3, 4), issue Abort (2), the commit hooks (5, 6).
    assert.equal(await raceOnce(cluster, fc.schedulerFor([1, 3, 4, 2, 5, 6]), twoYes([commit, abort])), 'committed, an Abort refused');
  });

  it('lets an Abort issued between the two votes win, and aborts the prepare still running', async () => {
    // Issue Commit (1), one prepare returns (3), issue Abort (2), the other returns (4), abort hooks.
    assert.equal(await raceOnce(cluster, fc.schedulerFor([1, 3, 2, 4, 5, 6]), twoYes([commit, abort])), 'Abort overtook the Prepares');
  });

  it('answers TX_ABORTED to a Commit that comes while the winning Abort is still being delivered', async () => {
    // Issue Commit (1), one prepare returns (4), issue Abort (2), issue Commit again (3) while the
    // YES voter's abort hook (6) is held, the other prepare returns (5) into its abort hook (7).
    const shape = await raceOnce(cluster, fc.schedulerFor([1, 4, 2, 3, 5, 6, 7]), twoYes([commit, abort, commit]));
    assert.equal(shape, 'Abort overtook the Prepares');
  });
});

// ---- 2. A participant restarted during phase 2 ------------------------------------------------

interface RestartPlan {
  /** Close-and-start cycles of the flaky participant, placed by the scheduler. */
  readonly restarts: number;
  readonly waitForCompletion: boolean;
  /** Releases that do not wait for what is in flight (see `settleFirst`). */
  readonly impatient: readonly boolean[];
}

/** How a run went, for the coverage count printed at the end. */
type RestartShape = 'applied before any close' | 'commit re-run after a close' | 'decision reached a later incarnation only';

const restartPlanArb: fc.Arbitrary<RestartPlan> = fc.record({
  restarts: fc.integer({ min: 1, max: 2 }),
  waitForCompletion: fc.boolean(),
  impatient: impatientArb,
});

async function restartOnce(cluster: TestCluster, s: fc.Scheduler, plan: RestartPlan): Promise<RestartShape> {
  const holds = new Holds(s);
  const [steadyName, flakyName] = [uniqueName('steady'), uniqueName('flaky')];
  const steadyEntries: HookEntry[] = [];
  const flakyEntries: HookEntry[] = [];
  const flakyFinished: { txId: string; outcome: Outcome | undefined; incarnation: number }[] = [];
  const steady = (await cluster.participant(steadyName, 'yes', { hooks: heldHooks(holds, steadyName, 'yes', steadyEntries) })).participant;

  // The flaky participant votes YES at once (its vote must be in before the race); its commit
  // and abort hooks wait for the scheduler, in every incarnation.
  const startFlaky = async (incarnation: number): Promise<Participant> => {
    const held = heldHooks(holds, flakyName, 'yes', flakyEntries, incarnation);
    const hooks: ParticipantHooks = {
      ...held,
      prepare: (txId) => {
        flakyEntries.push({ hook: 'prepare', txId, incarnation, returned: true });
        return 'yes';
      },
    };
    const { participant } = await cluster.participant(flakyName, 'yes', { hooks });
    participant.on('finished', (txId, outcome) => flakyFinished.push({ txId, outcome, incarnation }));
    return participant;
  };
  const incarnations = [await startFlaky(1)];
  const current = (): Participant => incarnations[incarnations.length - 1] as Participant;
  const decisions: { txId: string; outcome: Outcome }[] = [];
  const onDecided = (txId: string, outcome: Outcome): void => void decisions.push({ txId, outcome });
  cluster.coordinator.on('decided', onDecided);

  return withCleanup(
    async (): Promise<RestartShape> => {
      // Incarnations whose commit hook had returned when the initiator got its answer.
      let returnedAtAnswer: number[] = [];
      const answer = cluster.client
        .transact([{ participant: steadyName }, { participant: flakyName, payload: 'in doubt' }], {
          timeoutMs: TX_TIMEOUT_MS,
          waitForCompletion: plan.waitForCompletion,
        })
        .then(
          (r) => {
            returnedAtAnswer = flakyEntries.filter((e) => e.hook === 'commit' && e.returned).map((e) => e.incarnation);
            return r.outcome as string;
          },
          (e: unknown) => codeOf(e),
        );
      // Flaky holds a durable YES that the coordinator counted; the decision now waits for the
      // steady participant's prepare, which the scheduler holds.
      const { txId } = await waitFor('flaky to hold the transaction in doubt', () => current().inDoubt()[0]);
      await waitFor('the coordinator to count the YES of flaky', () =>
        cluster.coordinator.describe(txId)?.branches.some((b) => b.participant === flakyName && b.vote === 'yes'),
      );

      // From here the scheduler orders the steady vote, every commit hook, and each close and
      // restart of flaky (a close always before the next start).
      const steps = [];
      for (let i = 1; i <= plan.restarts; i++) {
        steps.push({ label: `close flaky#${i}`, builder: () => current().close() });
        steps.push({ label: `start flaky#${i + 1}`, builder: async () => void incarnations.push(await startFlaky(i + 1)) });
      }
      const restarts = s.scheduleSequence(steps);

      const settled = (async () => {
        const outcome = await answer;
        const sequence = await restarts.task;
        const final = await waitFor('the transaction to end at the coordinator', async () => {
          const view = await cluster.client.get(txId);
          return view.state === TxState.ENDED ? view : undefined;
        });
        await waitFor('flaky to hold nothing in doubt', () => current().inDoubt().length === 0);
        await waitFor('steady to finish', () => steadyEntries.some((e) => e.hook === 'commit') && steady.inDoubt().length === 0);
        return { outcome, sequence, final };
      })();
      /** What a released task set in motion and has not landed yet (see `settleFirst`). */
      const inFlight = (): string | undefined => {
        const view = cluster.coordinator.describe(txId);
        const decided = decisions.some((d) => d.txId === txId);
        const acknowledged = (name: string): boolean => view === undefined || view.branches.some((b) => b.participant === name && b.acknowledged);
        const has = (entries: readonly HookEntry[], hook: HookName, returned: boolean, incarnation?: number): boolean =>
          entries.some((e) => e.hook === hook && (!returned || e.returned) && (incarnation === undefined || e.incarnation === incarnation));
        if (has(steadyEntries, 'prepare', true) && !decided) return 'the decision';
        if (decided && !has(steadyEntries, 'commit', false)) return 'the decision at steady';
        if (has(steadyEntries, 'commit', true) && !acknowledged(steadyName)) return 'the acknowledgement of steady';
        // The incarnation up (between a close and the next start, none is).
        const flaky = current();
        const n = incarnations.length;
        if (flaky.state === 'connected') {
          if (decided && !acknowledged(flakyName) && !has(flakyEntries, 'commit', false, n)) return `the decision at flaky#${n}`;
          if (has(flakyEntries, 'commit', true, n) && !acknowledged(flakyName)) return `the acknowledgement of flaky#${n}`;
        }
        return undefined;
      };
      const { outcome, sequence, final } = await s.waitFor(within('the restarts to settle', RUN_BOUND_MS, settled), settleFirst(inFlight, plan.impatient));

      assert.equal(outcome, 'committed', 'two YES votes commit, whatever happens to flaky afterwards');
      assert.deepEqual(sequence, { done: true, faulty: false }, 'every close and restart went through');
      assert.equal(incarnations.length, plan.restarts + 1);
      assert.equal(final.outcome, 'committed');
      assert.ok(final.branches.every((b) => b.acknowledged), 'every branch acknowledged');
      assert.deepEqual(
        decisions.filter((d) => d.txId === txId).map((d) => d.outcome),
        ['committed'],
        'decided exactly once',
      );

      // Exactly once across incarnations: one incarnation's staged write landed, and no commit hook
      // ran after it; an earlier one ran the hook only if it was closed before making it durable.
      const summary = flakyEntries.map((e) => `${e.hook}@${e.incarnation}`).join(', ');
      assert.ok(flakyEntries.every((e) => e.txId === txId), `flaky ran hooks for another transaction: ${summary}`);
      assert.deepEqual(
        flakyEntries.filter((e) => e.hook === 'prepare').map((e) => e.incarnation),
        [1],
        `prepared once: ${summary}`,
      );
      assert.equal(count(flakyEntries, 'abort'), 0, `no abort hook: ${summary}`);
      const commitIncarnations = flakyEntries.filter((e) => e.hook === 'commit').map((e) => e.incarnation);
      assert.equal(new Set(commitIncarnations).size, commitIncarnations.length, `at most one commit hook per incarnation: ${summary}`);
      const applied = await appliedWrites(current(), txId);
      assert.equal(applied.size, 1, `exactly one incarnation's commit landed: ${[...applied.keys()].join(',')} (${summary})`);
      const [appliedBy] = [...applied.keys()] as [number];
      assert.equal(applied.get(appliedBy), 'committed');
      assert.ok(commitIncarnations.includes(appliedBy), `the landed write came from a commit hook of #${appliedBy}: ${summary}`);
      assert.ok(
        commitIncarnations.every((i) => i <= appliedBy),
        `no commit hook after the commit was durable (#${appliedBy}): ${summary}`,
      );
      assert.ok(
        flakyFinished.filter((f) => f.txId === txId && f.outcome === 'committed').every((f) => f.incarnation === appliedBy),
        'only the incarnation that applied the commit reported it finished',
      );
      if (plan.waitForCompletion) {
        // Completion means flaky acknowledged, which it does only once its commit is durable.
        assert.ok(returnedAtAnswer.includes(appliedBy), `answered "completed" before the commit hook of #${appliedBy} returned: ${summary}`);
      }
      assert.deepEqual(current().inDoubt(), [], 'nothing in doubt at the end');

      assert.deepEqual(
        steadyEntries.map((e) => e.hook),
        ['prepare', 'commit'],
        'steady prepared and committed once',
      );
      assert.deepEqual([...(await appliedWrites(steady, txId)).values()], ['committed']);

      if (appliedBy === 1) return 'applied before any close';
      return commitIncarnations[0] !== appliedBy ? 'commit re-run after a close' : 'decision reached a later incarnation only';
    },
    async () => {
      cluster.coordinator.off('decided', onDecided);
      await holds.drain();
      await within('the participants to close', CLEANUP_BOUND_MS, Promise.all([steady.close(), ...incarnations.map((p) => p.close())]));
    },
  );
}

describe('a participant closed and restarted during phase 2 (real gRPC, fc.scheduler)', () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start({ protocol: { retryInitialMs: 20, retryMaxMs: 200 } });
  });
  after(() => cluster.close());

  it('applies the commit exactly once across incarnations and ends with nothing in doubt', { timeout: 120_000 }, async (t) => {
    const shapes = new Map<RestartShape, number>();
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), restartPlanArb, async (s, plan) => {
        const shape = await restartOnce(cluster, s, plan);
        shapes.set(shape, (shapes.get(shape) ?? 0) + 1);
      }),
      { numRuns: RUNS, includeErrorInReport: true, ...REPLAY },
    );
    t.diagnostic(`runs by shape: ${[...shapes].map(([shape, n]) => `${shape}: ${n}`).join('; ')}`);
  });

  // Each shape pinned once. Task 1 is steady's prepare, 2 the first close; then, in scheduling
  // order, the commit hooks delivered at the decision, the restart, the later commit hooks.
  const once: RestartPlan = { restarts: 1, waitForCompletion: true, impatient: [] };

  it('starts the next incarnation with nothing in doubt when the commit was applied before the close', async () => {
    // Decided, both commit hooks (3, 4) return, then close and start (5).
    assert.equal(await restartOnce(cluster, fc.schedulerFor([1, 3, 4, 2, 5]), once), 'applied before any close');
  });

  it('re-runs the commit hook in the next incarnation when a close interrupts it', async () => {
    // Decided, both commit hooks (3, 4) held; flaky closes, starts (5), commits again (6).
    assert.equal(await restartOnce(cluster, fc.schedulerFor([1, 2, 5, 6, 3, 4]), once), 'commit re-run after a close');
  });

  it('delivers a decision taken while flaky is down to its next incarnation', async () => {
    // Flaky closes (its start is 3), then the decision (steady's commit hook is 4); flaky#2 commits (5).
    assert.equal(await restartOnce(cluster, fc.schedulerFor([2, 1, 3, 4, 5]), once), 'decision reached a later incarnation only');
  });
});
