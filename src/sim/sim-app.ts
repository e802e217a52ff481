// The application a simulated participant embeds: real hooks, handed to the real Participant,
// that take the time and give the answers the scenario plans for each branch (the branch payload
// names its plan). Prepare stages a hold; commit stages the business effect (a counter the checker
// reads: exactly once per committed transaction) and drops the hold; abort drops the hold.

import type { Clock } from '../common/clock.js';
import type { AppStore } from '../participant/participant-log.js';
import type { ParticipantHooks } from '../participant/participant-options.js';
import { Vote } from '../protocol/types.js';
import type { BranchPlan } from './scenario.js';
import { planOfPayload } from './sim-client.js';

/** Application keys (in the participant's `app` store). */
export const HOLD_KEY = 'hold/';
export const EFFECT_KEY = 'effect/';

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

/** The hooks of participant `name`; `store` is read once the participant started. */
export function simHooks(name: string, world: AppWorld, store: () => AppStore): ParticipantHooks {
  const plans = new Map<string, BranchPlan>();
  const applyRuns = new Map<string, number>();
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => world.clock.setTimer(resolve, ms));
  const planOf = (txId: string): BranchPlan => plans.get(txId) ?? FAST_YES;
  const apply = async (txId: string, committing: boolean, batch: { put(k: string, v: unknown): void; del(k: string): void }): Promise<void> => {
    const run = (applyRuns.get(txId) ?? 0) + 1;
    applyRuns.set(txId, run);
    await sleep(1);
    if (run <= planOf(txId).applyFailures) {
      if (world.tracing) world.trace(`${name}: ${committing ? 'commit' : 'abort'} hook throws tx=${txId}`, [txId]);
      throw new Error('simulated hook failure');
    }
    if (committing) {
      const count = Number((await store().get(EFFECT_KEY + txId)) ?? 0);
      batch.put(EFFECT_KEY + txId, count + 1);
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
    commit: (txId, ctx) => apply(txId, true, ctx.batch),
    abort: (txId, ctx) => apply(txId, false, ctx.batch),
  };
}
