// The application a simulated participant embeds: real hooks, handed to the real Participant,
// that take the time and give the answers the scenario plans for each branch (the branch payload
// names its plan). A YES prepare locks one of a few shared keys exclusive (and for some
// transactions another one shared; a conflict is a NO) and stages a hold. A read-only branch
// takes no lock: its vote is forgotten at once, and a repeated Prepare must get the same answer
// (a read-only voter that answers NO the second time reads as a participant that aborted after
// preparing). Commit stages the business effect (a
// counter the checker reads: exactly once per committed transaction), adds one to its shared
// key's counter by read-modify-write under the lock, and drops the hold; abort drops the hold.

import type { Clock } from '../common/clock.js';
import { LockMode } from '../participant/lock-manager.js';
import type { HookContext, ParticipantHooks } from '../participant/participant-options.js';
import { Vote } from '../protocol/types.js';
import type { BranchPlan } from './scenario.js';
import { planOfPayload } from './sim-client.js';

/** Application keys (in the participant's `app` store). */
export const HOLD_KEY = 'hold/';
export const EFFECT_KEY = 'effect/';
/** The counter of a shared key: one per committed transaction that locked it (a lost update shows). */
export const COUNTER_KEY = 'counter/';
/** How many shared keys the simulated transactions contend on. */
export const SHARED_KEYS = 3;

function hashOf(txId: string): number {
  let h = 0;
  for (let i = 0; i < txId.length; i++) h = (h * 31 + txId.charCodeAt(i)) >>> 0;
  return h;
}

/** The shared key transaction `txId` locks exclusive (the same at every participant and every run of its hooks). */
export function sharedKeyOf(txId: string): string {
  return `k${hashOf(txId) % SHARED_KEYS}`;
}

/** The key `txId` also locks shared, if any: another transaction's exclusive key. */
export function readKeyOf(txId: string): string | undefined {
  const h = hashOf(txId);
  return (h >>> 4) % 2 === 0 ? undefined : `k${(h + 1) % SHARED_KEYS}`;
}

/** What the application needs from its world. */
export interface AppWorld {
  readonly clock: Clock;
  /** The branch plan of `participant` in plan `plan`. */
  branch(plan: number, participant: string): BranchPlan | undefined;
  /** `txId` carries plan `plan` (as its payload says). */
  planned(txId: string, plan: number): void;
  /** The prepare hook answered `vote`. */
  hookVote(txId: string, vote: Vote): void;
  trace(text: string, txIds: readonly string[]): void;
  readonly tracing: boolean;
}

const FAST_YES: BranchPlan = { participant: -1, vote: 'yes', latencyMs: 1, applyFailures: 0 };

/** The hooks of participant `name`: they read the store through the hooks' `get`. */
export function simHooks(name: string, world: AppWorld): ParticipantHooks {
  const plans = new Map<string, BranchPlan>();
  const applyRuns = new Map<string, number>();
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => world.clock.setTimer(resolve, ms));
  const planOf = (txId: string): BranchPlan => plans.get(txId) ?? FAST_YES;
  const apply = async (txId: string, committing: boolean, { batch, get }: HookContext): Promise<void> => {
    const run = (applyRuns.get(txId) ?? 0) + 1;
    applyRuns.set(txId, run);
    await sleep(1);
    if (run <= planOf(txId).applyFailures) {
      if (world.tracing) world.trace(`${name}: ${committing ? 'commit' : 'abort'} hook throws tx=${txId}`, [txId]);
      throw new Error('simulated hook failure');
    }
    if (committing) {
      const count = Number((await get(EFFECT_KEY + txId)) ?? 0);
      batch.put(EFFECT_KEY + txId, count + 1);
      // Read-modify-write of a key other transactions touch too: safe only under the lock.
      const key = COUNTER_KEY + sharedKeyOf(txId);
      const counter = Number((await get(key)) ?? 0);
      await sleep(1);
      batch.put(key, counter + 1);
    }
    batch.del(HOLD_KEY + txId);
  };
  return {
    async prepare(txId, payload, ctx) {
      const plan = planOfPayload(payload);
      const branch = plan === undefined ? undefined : world.branch(plan, name);
      if (plan !== undefined) world.planned(txId, plan);
      if (branch) plans.set(txId, branch);
      const b = branch ?? FAST_YES;
      if (b.vote === 'yes') {
        try {
          await ctx.lock(sharedKeyOf(txId), LockMode.EXCLUSIVE);
          const read = readKeyOf(txId);
          if (read) await ctx.lock(read, LockMode.SHARED);
        } catch (e) {
          // Not reported as the hook's vote: unlike a planned NO, a conflict depends on what else
          // runs, so a hook re-run after a crash (the NO never left: its ABORTED write failed)
          // may answer YES. The NO the SDK sends is what the checker holds the participant to.
          if (world.tracing) world.trace(`${name}: prepare hook answers NO (lock conflict) tx=${txId}`, [txId]);
          throw e;
        }
      }
      if (b.vote === 'hang') {
        // Never answers: the SDK's deadline signal ends it (a NO).
        await new Promise<never>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true }));
      }
      await sleep(b.latencyMs);
      const vote = b.vote === 'yes' ? Vote.YES : b.vote === 'read-only' ? Vote.READ_ONLY : Vote.NO;
      if (world.tracing) world.trace(`${name}: prepare hook answers ${vote.toUpperCase()} tx=${txId}`, [txId]);
      world.hookVote(txId, vote);
      if (vote === Vote.YES) ctx.batch.put(HOLD_KEY + txId, true);
      return vote === Vote.NO ? { vote, reason: 'insufficient funds' } : vote;
    },
    commit: (txId, ctx) => apply(txId, true, ctx),
    abort: (txId, ctx) => apply(txId, false, ctx),
  };
}
