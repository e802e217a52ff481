// Model-based test of the initiator API over the real gRPC stack: fast-check draws sequences of
// Begin / Commit / one-shot Commit / Abort / GetTransaction calls (with the votes each branch will
// give), runs them against a real coordinator and participants, and compares every answer with a
// small model of what the API promises: the outcome follows the votes, a decision never changes,
// repeated calls are idempotent, and a status read tells the truth.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';

import type { VerdictClient } from '../../src/client/client.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import { TxState } from '../../src/protocol/coordinator-events.js';
import { TestCluster, uniqueName } from '../support/cluster.js';

type VoteWord = 'yes' | 'no' | 'read-only';

interface ModelTx {
  readonly txId: string;
  /** `active` until a Commit or Abort decides it. */
  outcome: 'active' | 'committed' | 'aborted';
}

interface Model {
  readonly txs: ModelTx[];
}

interface Real {
  readonly client: VerdictClient;
  readonly participants: readonly string[];
}

const codeOf = (e: unknown): string => (e instanceof VerdictError ? e.code : `not a VerdictError: ${String(e)}`);

/** The outcome the votes call for. */
const outcomeOf = (votes: readonly VoteWord[]): 'committed' | 'aborted' => (votes.every((v) => v !== 'no') ? 'committed' : 'aborted');

function branches(real: Real, votes: readonly VoteWord[]): { participant: string; payload: string }[] {
  return votes.map((vote, i) => ({ participant: real.participants[i] as string, payload: vote }));
}

/** A one-shot Commit: committed when no branch votes NO, else TX_ABORTED. */
class Transact implements fc.AsyncCommand<Model, Real> {
  constructor(readonly votes: readonly VoteWord[]) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const expected = outcomeOf(this.votes);
    try {
      const { txId } = await r.client.transact(branches(r, this.votes));
      assert.equal(expected, 'committed', `committed although the votes were ${this.votes.join(',')}`);
      m.txs.push({ txId, outcome: 'committed' });
    } catch (e) {
      assert.equal(codeOf(e), ErrorCode.TX_ABORTED);
      assert.equal(expected, 'aborted', `aborted although the votes were ${this.votes.join(',')}`);
      const txId = (e as VerdictError).txId;
      if (txId) m.txs.push({ txId, outcome: 'aborted' });
    }
  }
  toString = (): string => `transact(${this.votes.join(',')})`;
}

class Begin implements fc.AsyncCommand<Model, Real> {
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const { txId } = await r.client.begin({ timeoutMs: 60_000 });
    assert.ok(!m.txs.some((t) => t.txId === txId), `begin handed out ${txId} twice`);
    m.txs.push({ txId, outcome: 'active' });
  }
  toString = (): string => 'begin()';
}

/** Commit of a known transaction: decides an active one; repeats the decision of a decided one. */
class Commit implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly pick: number,
    readonly votes: readonly VoteWord[],
  ) {}
  check = (m: Readonly<Model>): boolean => m.txs.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const tx = m.txs[this.pick % m.txs.length] as ModelTx;
    const expected = tx.outcome === 'active' ? outcomeOf(this.votes) : tx.outcome;
    try {
      await r.client.commit(tx.txId, branches(r, this.votes));
      assert.equal(expected, 'committed', `commit of ${tx.txId} (was ${tx.outcome}) succeeded`);
    } catch (e) {
      assert.equal(codeOf(e), ErrorCode.TX_ABORTED, `commit of ${tx.txId} (was ${tx.outcome})`);
      assert.equal(expected, 'aborted', `commit of ${tx.txId} (was ${tx.outcome}) aborted`);
    }
    tx.outcome = expected;
  }
  toString = (): string => `commit(#${this.pick}, ${this.votes.join(',')})`;
}

/** Abort: decides an active transaction, repeats an abort, and is refused for a committed one. */
class Abort implements fc.AsyncCommand<Model, Real> {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>): boolean => m.txs.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const tx = m.txs[this.pick % m.txs.length] as ModelTx;
    try {
      await r.client.abort(tx.txId, 'model test');
      assert.notEqual(tx.outcome, 'committed', `abort of the committed ${tx.txId} succeeded`);
      tx.outcome = 'aborted';
    } catch (e) {
      assert.equal(codeOf(e), ErrorCode.WRONG_STATE);
      assert.equal(tx.outcome, 'committed', `abort of ${tx.txId} (was ${tx.outcome}) refused`);
    }
  }
  toString = (): string => `abort(#${this.pick})`;
}

/** GetTransaction tells the truth: active while undecided, then the decided outcome, forever. */
class Get implements fc.AsyncCommand<Model, Real> {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>): boolean => m.txs.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const tx = m.txs[this.pick % m.txs.length] as ModelTx;
    const view = await r.client.get(tx.txId);
    if (tx.outcome === 'active') {
      assert.equal(view.state, TxState.ACTIVE);
      assert.equal(view.outcome, undefined);
    } else {
      assert.equal(view.outcome, tx.outcome, `${tx.txId} reads ${view.outcome} (${view.state})`);
      assert.ok(view.state === TxState.DECIDED || view.state === TxState.ENDED, `${tx.txId} is ${view.state}`);
    }
  }
  toString = (): string => `get(#${this.pick})`;
}

/** An id this coordinator never issued is TX_NOT_FOUND, never a presumed outcome. */
class GetNeverIssued implements fc.AsyncCommand<Model, Real> {
  check = (m: Readonly<Model>): boolean => m.txs.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const [, epoch] = (m.txs[0] as ModelTx).txId.split('-');
    await assert.rejects(r.client.get(`tx-${epoch}-999999999`), (e: unknown) => codeOf(e) === ErrorCode.TX_NOT_FOUND);
  }
  toString = (): string => 'get(never issued)';
}

const PARTICIPANTS = 3;
const votesArb = fc.array(fc.constantFrom<VoteWord>('yes', 'yes', 'yes', 'read-only', 'no'), { minLength: 1, maxLength: PARTICIPANTS });
const commands = [
  votesArb.map((v) => new Transact(v)),
  fc.constant(new Begin()),
  fc.tuple(fc.nat(), votesArb).map(([i, v]) => new Commit(i, v)),
  fc.nat().map((i) => new Abort(i)),
  fc.nat().map((i) => new Get(i)),
  fc.constant(new GetNeverIssued()),
];

describe('initiator API against a model (real gRPC)', () => {
  let cluster: TestCluster;
  const names: string[] = [];

  before(async () => {
    cluster = await TestCluster.start();
    for (let i = 0; i < PARTICIPANTS; i++) {
      const name = uniqueName(`model-${i}`);
      names.push(name);
      // Each branch's payload says how to vote.
      await cluster.participant(name, (_txId, payload) => (payload === 'no' ? 'no' : payload === 'read-only' ? 'read-only' : 'yes'));
    }
  });
  after(() => cluster.close());

  it('answers every sequence of initiator calls as the model says', async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 10 }), async (cmds) => {
        await fc.asyncModelRun(() => ({ model: { txs: [] }, real: { client: cluster.client, participants: names } }), cmds);
      }),
      { numRuns: Number(process.env.MODEL_RUNS ?? 30) },
    );
  });
});
