// The simulated etcd on its own: the store the group simulation stands on must be linearizable,
// expire leases on the virtual clock (and not while it has no quorum), answer a cut member with
// failures or deadlines, and report a decision-log write that lands outside its writer's term.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { EtcdClient } from '../../src/cluster/etcd-client.js';
import { Prng } from '../../src/sim/prng.js';
import type { DiskOp } from '../../src/sim/sim-disk.js';
import { SimEtcd } from '../../src/sim/sim-etcd.js';
import { EtcdDecisionStore } from '../../src/cluster/etcd-decision-store.js';
import { armMutants } from '../../src/common/mutants.js';

const LEADER = '/g/leader';
const LOG = '/g/log/';

/** A world of one store and its members, on a virtual clock advanced event by event. */
class World {
  now = 0;
  readonly prng = new Prng(42);
  readonly tracing = false;
  readonly landed: DiskOp[][] = [];
  readonly failed: string[] = [];
  readonly violations: string[] = [];
  #events: { at: number; seq: number; fn: () => void }[] = [];
  #seq = 0;
  readonly etcd = new SimEtcd(this, { leaderKey: LEADER, logPrefix: LOG });

  atMember(time: number, _member: string, _inc: number, fn: () => void): void {
    this.#events.push({ at: time, seq: this.#seq++, fn });
  }
  atStore(time: number, fn: () => void): void {
    this.#events.push({ at: time, seq: this.#seq++, fn });
  }
  trace(): void {}
  logLanded(ops: readonly DiskOp[]): void {
    this.landed.push([...ops]);
  }
  logWriteFailed(member: string): void {
    this.failed.push(member);
  }
  fencingViolated(message: string): void {
    this.violations.push(message);
  }

  /** Runs events until `p` settles (or none are left); resolves to its outcome. */
  async settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: Error }> {
    let outcome: { ok: true; value: T } | { ok: false; error: Error } | undefined;
    p.then(
      (value) => (outcome = { ok: true, value }),
      (error: Error) => (outcome = { ok: false, error }),
    );
    for (;;) {
      await new Promise((r) => setImmediate(r));
      if (outcome) return outcome;
      this.#events.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const e = this.#events.shift();
      if (!e) throw new Error('the call never settled and no event is left');
      this.now = Math.max(this.now, e.at);
      e.fn();
    }
  }

  /** Advances the clock to `t`, running what falls due. */
  async advance(t: number): Promise<void> {
    this.atStore(t, () => undefined);
    await this.settle(new Promise<void>((resolve) => this.atStore(t, resolve)));
  }
}

async function ok<T>(w: World, p: Promise<T>): Promise<T> {
  const r = await w.settle(p);
  if (!r.ok) throw r.error;
  return r.value;
}

/** Creates the leader key under a fresh lease of `ttlS`; the revision when won, undefined when held by another. */
async function campaign(w: World, client: EtcdClient, name: string, ttlS = 1): Promise<{ revision?: string; lease: ReturnType<EtcdClient['lease']> }> {
  const lease = client.lease(ttlS, { autoKeepAlive: false });
  const id = await ok(w, lease.grant());
  const res = await ok(w, client.if(LEADER, 'Create', '==', 0).then(client.put(LEADER).value(name).lease(id)).else(client.get(LEADER)).commit());
  return res.succeeded ? { revision: res.header.revision, lease } : { lease };
}

describe('simulated etcd', () => {
  it('lets exactly one of two members create the leader key; the loser reads who holds it', async () => {
    const w = new World();
    const a = w.etcd.client('a', 1);
    const b = w.etcd.client('b', 1);
    const won = await campaign(w, a, 'a');
    assert.ok(won.revision);
    const lease = b.lease(1);
    const id = await ok(w, lease.grant());
    const res = await ok(w, b.if(LEADER, 'Create', '==', 0).then(b.put(LEADER).value('b').lease(id)).else(b.get(LEADER)).commit());
    assert.equal(res.succeeded, false);
    assert.equal(res.responses[0]?.response_range?.kvs?.[0]?.value.toString(), 'a');
    assert.equal((await ok(w, a.get(LEADER).exec())).kvs[0]?.create_revision, won.revision);
  });

  it('expires a lease that is not kept alive, on the virtual clock, and keeps one that is', async () => {
    const w = new World();
    const a = w.etcd.client('a', 1);
    const { lease } = await campaign(w, a, 'a');
    await w.advance(700);
    assert.equal((await ok(w, lease.keepaliveOnce())).TTL, '1');
    await w.advance(1_500);
    assert.equal(w.etcd.leader()?.value, 'a', 'a lease kept alive at 700 ms expired before 1,700 ms');
    await w.advance(2_000);
    assert.equal(w.etcd.leader(), undefined);
    const late = await w.settle(lease.keepaliveOnce());
    assert.equal(late.ok ? 'answered' : late.error.name, 'EtcdLeaseInvalidError');
  });

  it('expires nothing while quorum is lost, renews every lease when it returns, and fails or times out calls meanwhile', async () => {
    const w = new World();
    const a = w.etcd.client('a', 1);
    await campaign(w, a, 'a');
    w.etcd.loseQuorum();
    const outcomes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await w.settle(a.get(LEADER).options({ deadline: new Date(w.now + 100) }).buffer());
      outcomes.push(r.ok ? 'answered' : r.error.name);
    }
    assert.ok(!outcomes.includes('answered'), outcomes.join());
    assert.ok(outcomes.includes('GRPCUnavailableError') && outcomes.includes('GRPCDeadlineExceededError'), outcomes.join());
    await w.advance(5_000);
    w.etcd.regainQuorum();
    assert.equal(w.etcd.leader()?.value, 'a', 'a lease expired while etcd had no quorum');
    await w.advance(5_999);
    assert.equal(w.etcd.leader()?.value, 'a', 'the lease was not renewed for a full TTL when quorum returned');
    await w.advance(6_100);
    assert.equal(w.etcd.leader(), undefined);
  });

  it('refuses a write fenced on a create revision that is gone, and reports an unfenced one that lands', async () => {
    const w = new World();
    const a = w.etcd.client('a', 1);
    const revision = (await campaign(w, a, 'a')).revision;
    assert.ok(revision);
    const term = { createRevision: revision };
    const writer = w.etcd.client('a', 1, term);
    const fenced = (value: string) => writer.if(LEADER, 'Create', '==', term.createRevision).then(writer.put(`${LOG}open/t1`).value(value)).commit();
    assert.equal((await ok(w, fenced('x'))).succeeded, true);
    assert.equal(w.landed.length, 1);
    assert.deepEqual(w.violations, []);
    await w.advance(3_000); // the lease lapses: the term is over
    const b = w.etcd.client('b', 1);
    assert.ok((await campaign(w, b, 'b')).revision);
    assert.equal((await ok(w, fenced('y'))).succeeded, false);
    assert.equal(w.landed.length, 1, 'a refused write landed');
    assert.deepEqual(w.failed, ['a'], 'the refused write was not reported as failed');
    const unfenced = await ok(w, writer.if(LEADER, 'Create', '>', -1).then(writer.put(`${LOG}open/t1`).value('z')).commit());
    assert.equal(unfenced.succeeded, true);
    assert.equal(w.violations.length, 1);
    assert.match(w.violations.join(), /landed in the term of revision/);
  });

  it('may apply a call that hung across a cut once the cut heals: a failed write may have landed', async () => {
    let lateLandings = 0;
    for (let seed = 0; seed < 20; seed++) {
      const w = new World();
      Object.assign(w, { prng: new Prng(seed) });
      const a = w.etcd.client('a', 1);
      const revision = (await campaign(w, a, 'a', 60)).revision;
      assert.ok(revision);
      const writer = w.etcd.client('a', 1, { createRevision: revision });
      w.etcd.cut('a');
      const r = await w.settle(writer.if(LEADER, 'Create', '==', revision).then(writer.put(`${LOG}open/t${seed}`).value('v')).options({ deadline: new Date(w.now + 50) }).commit());
      assert.equal(r.ok, false, 'a call from a cut member was answered');
      assert.equal(w.landed.length, 0);
      w.etcd.heal('a');
      lateLandings += w.landed.length;
    }
    assert.ok(lateLandings > 0 && lateLandings < 20, `${lateLandings} of 20 hung writes landed after the heal`);
  });

  it('checks a write by the term whose store sent it: an old term\'s write sent after the same member won again is a violation, caught when the fence is per node (the mutant)', async () => {
    const clock = { now: () => w.now, setTimer: () => ({}), clearTimer: () => undefined, defer: (fn: () => void) => fn(), random: () => 0.5 };
    const w = new World();
    const a = w.etcd.client('a', 1);
    const first = await campaign(w, a, 'a');
    assert.ok(first.revision);
    // The first term's decision store writes through a client of that term, as the simulation's members do.
    const term1 = w.etcd.termOf('a', 1);
    assert.deepEqual(term1, { createRevision: first.revision });
    const fence = { key: LEADER, createRevision: first.revision, value: 'a' };
    const oldStore = new EtcdDecisionStore({ client: w.etcd.client('a', 1, term1), prefix: '/g/', fence, clock });
    const sharedStore = new EtcdDecisionStore({ client: a, prefix: '/g/', fence, clock });
    await w.advance(3_000); // the lease lapses: the first term is over
    const second = await campaign(w, a, 'a');
    assert.ok(second.revision && second.revision !== first.revision, 'the same member won a second term');
    const put = (key: string) => [{ type: 'put' as const, key: `open/${key}`, value: new TextEncoder().encode('v') }];
    try {
      armMutants('decision-write-fenced-per-node');
      // Per node: the key holds 'a' again, so the old term's write lands.
      assert.equal((await w.settle(oldStore.write(put('t1'), true))).ok, true);
      assert.equal(w.violations.length, 1);
      assert.match(w.violations[0] ?? '', new RegExp(`term of revision ${first.revision}\\) landed in the term of revision ${second.revision}`));
      // Through the member's shared client the ghost would take it for the new term's: the blind spot the per-term client closes.
      assert.equal((await w.settle(sharedStore.write(put('t2'), true))).ok, true);
      assert.equal(w.violations.length, 1, 'a write checked against the member\'s latest term was reported');
    } finally {
      armMutants();
    }
    // Per term (production): refused, nothing lands, and the store refuses from then on.
    const fenced = new EtcdDecisionStore({ client: w.etcd.client('a', 1, term1), prefix: '/g/', fence, clock });
    const landed = w.landed.length;
    assert.equal((await w.settle(fenced.write(put('t3'), true))).ok, false);
    assert.equal(w.landed.length, landed);
    assert.equal(w.violations.length, 1);
  });
});
