// A lock-using ledger under faults (the README's `verdict/testing` example): each ledger keeps one
// balance that every transfer reads and writes, so every transaction at a ledger contends on one
// key. Under kills, pauses, partitions, delays, drops, resets and failpoints, the harness must
// find no violation, and the balances must add up: conserved, never negative, each equal to the
// opening balance plus its committed entries.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { AppStore, ParticipantHooks } from '../../src/index.js';
import { assertNoViolations, runChaos, type ChaosParticipant } from '../../src/testing/index.js';

const OPENING = 1_000;

/** The service under test: one balance, a hold per prepared transfer, an entry per commit. */
function ledgerHooks(): ParticipantHooks {
  return {
    async prepare(txId, payload, { lock, get, batch }) {
      const { delta } = JSON.parse(Buffer.from(payload).toString()) as { delta: number };
      await lock('balance', 'exclusive'); // held until this transfer's outcome is written
      const balance = ((await get('balance')) as number | undefined) ?? OPENING;
      if (balance + delta < 0) return { vote: 'no', reason: 'insufficient funds' };
      batch.put(`hold/${txId}`, delta); // durable with the YES vote
      return 'yes';
    },
    async commit(txId, { get, batch }) {
      const delta = (await get(`hold/${txId}`)) as number;
      const balance = ((await get('balance')) as number | undefined) ?? OPENING;
      batch.put('balance', balance + delta); // read-modify-write under the lock
      batch.put(`entry/${txId}`, delta); // exactly once
      batch.del(`hold/${txId}`);
    },
    abort(txId, { batch }) {
      batch.del(`hold/${txId}`);
    },
  };
}

async function entries(store: AppStore): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const [key] of store.iterator({ gte: 'entry/', lt: 'entry0' })) out.set(key.slice(6), 1);
  return out;
}

const ledger = (name: string): ChaosParticipant => ({ name, createHooks: () => ledgerHooks(), effects: ({ store }) => entries(store) });

describe('a lock-using ledger under faults', () => {
  it('keeps its balances right under kills, pauses, partitions, delays, drops, resets and failpoints', { timeout: 120_000 }, async () => {
    const report = await runChaos({
      participants: [ledger('ledger-a'), ledger('ledger-b'), ledger('ledger-c')],
      transaction: ({ rng, participants }) => {
        const from = rng.int(0, participants.length - 1);
        const to = (from + rng.int(1, participants.length - 1)) % participants.length;
        const amount = rng.int(1, 400);
        return [
          { participant: participants[from]!, payload: JSON.stringify({ delta: -amount }) },
          { participant: participants[to]!, payload: JSON.stringify({ delta: amount }) },
        ];
      },
      invariant: async ({ stores }) => {
        const problems: string[] = [];
        let total = 0;
        for (const [name, store] of stores) {
          const balance = ((await store.get('balance')) as number | undefined) ?? OPENING;
          let sum = 0;
          for await (const [key, value] of store.iterator()) {
            if (key.startsWith('entry/')) sum += value as number;
            else if (key.startsWith('hold/')) problems.push(`${name} still holds ${key}`);
          }
          if (balance < 0) problems.push(`${name}'s balance is ${balance}`);
          if (balance !== OPENING + sum) problems.push(`${name}'s balance is ${balance}, but its entries say ${OPENING + sum} (a lost update)`);
          total += balance;
        }
        if (total !== OPENING * stores.size) problems.unshift(`the balances sum to ${total}, not ${OPENING * stores.size}`);
        return problems;
      },
      duration: 6_000,
      seed: 2,
      faults: ['kill', 'pause', 'partition', 'delay', 'drop', 'reset', 'failpoint'],
    });
    assertNoViolations(report);
    process.stdout.write(`# committed ${report.txs.finalCommitted}, faults ${JSON.stringify(report.faultCounts)}\n`);
    assert.ok(report.txs.finalCommitted > 0);
    assert.ok((report.faultCounts['kill'] ?? 0) > 0, `no kill happened: ${JSON.stringify(report.faultCounts)}`);
    rmSync(report.dir, { recursive: true, force: true });
  });
});
