// Hooks that share keys stay correct under concurrency (issue 13): 150 transfers of 1 from
// account a (balance 100, at bank-a) to account b (at bank-b), at concurrency 1, 2, 16 and 150,
// with the README's hook pattern (locks taken in prepare, read-modify-write under them in commit).
// Real gRPC on 127.0.0.1 and real LevelDB.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import { isLockConflictAbort } from '../../src/participant/lock-manager.js';
import type { AppStore, ParticipantHooks } from '../../src/participant/index.js';
import { TestCluster, uniqueName, waitFor } from '../support/cluster.js';

const TRANSFERS = 150;
const OPENING = 100;

interface Leg {
  readonly account: string;
  readonly delta: number;
}

/** The README's pattern: lock, read under the lock, check, stage; apply under the same lock. */
function accountHooks(): ParticipantHooks {
  return {
    async prepare(txId, payload, { lock, get, batch }) {
      const leg = JSON.parse(Buffer.from(payload).toString()) as Leg;
      await lock(`acct/${leg.account}`, 'exclusive');
      const balance = (await get(`acct/${leg.account}`)) as number | undefined;
      if (balance === undefined) return { vote: 'no', reason: `no account ${leg.account}` };
      if (balance + leg.delta < 0) return { vote: 'no', reason: 'insufficient funds' };
      batch.put(`hold/${txId}`, leg);
      return 'yes';
    },
    async commit(txId, { get, batch }) {
      const leg = (await get(`hold/${txId}`)) as Leg;
      const balance = (await get(`acct/${leg.account}`)) as number;
      batch.put(`acct/${leg.account}`, balance + leg.delta);
      batch.put(`applied/${txId}`, leg.delta);
      batch.del(`hold/${txId}`);
    },
    abort(txId, { batch }) {
      batch.del(`hold/${txId}`);
    },
  };
}

async function count(store: AppStore, prefix: string): Promise<number> {
  let n = 0;
  for await (const _ of store.keys({ gte: prefix, lt: `${prefix}\xff` })) n++;
  return n;
}

describe('concurrent transfers on one hot account, with locks', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await TestCluster.start();
  });
  after(() => cluster.close());

  for (const retry of [false, true]) {
    for (const concurrency of [1, 2, 16, 150]) {
      it(`concurrency ${concurrency}${retry ? ', retrying lock conflicts' : ''}: money is conserved, no balance goes negative, a's decrease is the committed debits${retry ? ', exactly 100 commit' : ''}`, { timeout: 120_000 }, async () => {
        const a = uniqueName('bank-a');
        const b = uniqueName('bank-b');
        const { participant: pa } = await cluster.participant(a, 'yes', { hooks: accountHooks() });
        const { participant: pb } = await cluster.participant(b, 'yes', { hooks: accountHooks() });
        await pa.store.put('acct/a', OPENING);
        await pb.store.put('acct/b', OPENING);
        let next = 0;
        let committed = 0;
        let conflicts = 0;
        let refused = 0;
        const worker = async (): Promise<void> => {
          while (next < TRANSFERS) {
            next++;
            for (;;) {
              try {
                await cluster.client.transact([
                  { participant: a, payload: JSON.stringify({ account: 'a', delta: -1 }) },
                  { participant: b, payload: JSON.stringify({ account: 'b', delta: 1 }) },
                ]);
                committed++;
                break;
              } catch (e) {
                if (!(e instanceof VerdictError) || e.code !== ErrorCode.TX_ABORTED) throw e;
                if (isLockConflictAbort(e)) {
                  conflicts++;
                  if (retry) continue;
                } else {
                  assert.match(e.reason ?? '', /insufficient funds/);
                  refused++;
                }
                break;
              }
            }
          }
        };
        await Promise.all(Array.from({ length: concurrency }, worker));
        // Commit returns once the decision is durable; wait until both banks applied everything.
        await waitFor('both banks idle', () => pa.liveCount === 0 && pb.liveCount === 0);
        const balanceA = (await pa.store.get('acct/a')) as number;
        const balanceB = (await pb.store.get('acct/b')) as number;
        process.stdout.write(
          `# concurrency ${concurrency}${retry ? ' (retries)' : ''}: committed ${committed}, lock conflicts ${conflicts}, insufficient funds ${refused}, a=${balanceA} b=${balanceB}\n`,
        );
        assert.equal(balanceA + balanceB, 2 * OPENING, 'money is conserved');
        assert.ok(balanceA >= 0, `a is ${balanceA}`);
        assert.equal(OPENING - balanceA, committed, "a's decrease is the committed debits");
        assert.equal(balanceB - OPENING, committed, "b's increase is the committed credits");
        assert.equal(await count(pa.store, 'applied/'), committed);
        assert.equal(await count(pa.store, 'hold/'), 0, 'no hold is left');
        assert.equal(pa.lockHolders('acct/a'), undefined, 'no lock is left');
        assert.equal(committed + (retry ? refused : refused + conflicts), TRANSFERS, 'every transfer ended one way');
        if (retry) assert.equal(committed, OPENING, 'exactly 100 commit');
      });
    }
  }
});
