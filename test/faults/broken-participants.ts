// Ledger participants for the chaos harness's own tests: a correct one, and three with the bugs
// the harness must catch. Each participant keeps one entry per applied transaction
// (`entry/<txId>/<n>` → delta) and a hold per prepared one (`hold/<txId>` → delta); a transfer
// moves an amount from one participant to another, so the entries of each transaction sum to 0.

import { setTimeout as delay } from 'node:timers/promises';
import type { AppStore, ParticipantHooks } from '../../src/index.js';
import type { ChaosParticipant, InvariantContext, TransactionContext } from '../../src/testing/index.js';

/** How a ledger participant behaves. */
export type LedgerVariant =
  /** Everything through the batch: exactly once, survives every crash. */
  | 'correct'
  /** Writes its entry straight to the store, outside the batch: a re-run hook applies it twice. */
  | 'applies-commit-twice'
  /** Votes YES with the hold in memory only: after a restart its commit applies nothing. */
  | 'votes-yes-without-persisting'
  /** Clears every hold when it restarts ("stale reservations"): in-doubt commits apply nothing. */
  | 'forgets-prepared-on-restart';

const HOLD = 'hold/';
const ENTRY = 'entry/';

function delta(payload: Uint8Array): number {
  return (JSON.parse(Buffer.from(payload).toString('utf8')) as { delta: number }).delta;
}

/**
 * A ledger participant with the given behaviour. `prepareMs` makes its prepare hook take that
 * long on average (a participant doing real work), which keeps the other branches of its
 * transactions in doubt meanwhile. Each prepare takes a random 0…2 × `prepareMs`, so that
 * transactions started together do not stay in lockstep.
 */
export function ledgerParticipant(name: string, variant: LedgerVariant = 'correct', prepareMs = 0): ChaosParticipant {
  return {
    name,
    createHooks: ({ store, incarnation }) => hooksFor(variant, () => store, incarnation, prepareMs),
    effects: ({ store }) => countEntries(store),
  };
}

function hooksFor(variant: LedgerVariant, store: () => AppStore, incarnation: number, prepareMs: number): ParticipantHooks {
  const inMemory = new Map<string, number>();
  let cleaned: Promise<void> | undefined;
  // The bug of 'forgets-prepared-on-restart': on the first request after a restart, every hold
  // is taken for a leftover and deleted, including those of transactions still in doubt.
  const startup = (): Promise<void> => {
    if (variant !== 'forgets-prepared-on-restart' || incarnation === 1) return Promise.resolve();
    cleaned ??= (async () => {
      const keys: string[] = [];
      for await (const key of store().keys({ gte: HOLD, lt: 'hold0' })) keys.push(key);
      await store().batch(keys.map((key) => ({ type: 'del' as const, key })));
    })();
    return cleaned;
  };
  return {
    async prepare(txId, payload, { batch }) {
      await startup();
      if (prepareMs > 0) await delay(Math.random() * 2 * prepareMs);
      const d = delta(payload);
      if (variant === 'votes-yes-without-persisting') inMemory.set(txId, d);
      else batch.put(HOLD + txId, d);
      return 'yes' as const;
    },
    async commit(txId, { batch }) {
      await startup();
      const d = variant === 'votes-yes-without-persisting' ? inMemory.get(txId) : ((await store().get(HOLD + txId)) as number | undefined);
      inMemory.delete(txId);
      batch.del(HOLD + txId);
      // A correct participant would throw here (and be retried); these apply nothing.
      if (d === undefined) return;
      if (variant === 'applies-commit-twice') await store().put(`${ENTRY}${txId}/${Date.now()}-${Math.random()}`, d);
      else batch.put(`${ENTRY}${txId}/0`, d);
    },
    async abort(txId, { batch }) {
      await startup();
      inMemory.delete(txId);
      batch.del(HOLD + txId);
    },
  };
}

/** How many entries each transaction left in `store`. */
export async function countEntries(store: AppStore): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const key of store.keys({ gte: ENTRY, lt: 'entry0' })) {
    const txId = key.slice(ENTRY.length, key.indexOf('/', ENTRY.length));
    out.set(txId, (out.get(txId) ?? 0) + 1);
  }
  return out;
}

/** A transfer of 1…50 between two different participants. */
export function ledgerTransaction({ rng, participants }: TransactionContext): { participant: string; payload: string }[] {
  const from = rng.int(0, participants.length - 1);
  const to = (from + rng.int(1, participants.length - 1)) % participants.length;
  const amount = rng.int(1, 50);
  return [
    { participant: participants[from] as string, payload: JSON.stringify({ delta: -amount }) },
    { participant: participants[to] as string, payload: JSON.stringify({ delta: amount }) },
  ];
}

/**
 * Money is conserved transaction by transaction (double entry): the entries of each transaction,
 * over every participant, sum to 0, and no hold is left. Checked per transaction, not over the
 * whole ledger: several lost legs can cancel out in a total (a CI run lost +13, +39, −41, +14,
 * −42, −8 and +25 at one participant, which sum to 0).
 */
export async function ledgerInvariant({ stores }: InvariantContext): Promise<string[]> {
  const problems: string[] = [];
  const byTx = new Map<string, number>();
  for (const [name, store] of stores) {
    for await (const [key, value] of store.iterator()) {
      if (key.startsWith(ENTRY)) {
        const txId = key.slice(ENTRY.length, key.indexOf('/', ENTRY.length));
        byTx.set(txId, (byTx.get(txId) ?? 0) + (value as number));
      } else if (key.startsWith(HOLD)) problems.push(`${name} still holds ${key}`);
    }
  }
  const unbalanced = [...byTx].filter(([, sum]) => sum !== 0);
  if (unbalanced.length > 0) {
    problems.unshift(`the ledger does not balance: the entries of ${unbalanced.map(([txId, sum]) => `${txId} sum to ${sum}`).join(', ')}, not 0`);
  }
  return problems;
}
