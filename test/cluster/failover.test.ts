// A coordinator group as real processes (`verdict coordinator --etcd`) on a real 3-member etcd
// cluster, with bank participants and a transfer workload running, and the history checker at the
// end: leader SIGKILL, leader SIGSTOP past its lease (the SDKs leave the frozen leader), an etcd member killed, etcd quorum lost.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { status as Status, type ServiceError } from '@grpc/grpc-js';

import { EtcdCluster } from '../../src/faults/etcd-cluster.js';
import { tempDir } from '../support/cluster.js';
import { RawTransactions } from '../support/raw-grpc.js';
import { poll } from '../../src/faults/process-cluster.js';
import { GroupRun } from './group-support.js';
import { VerdictClient } from '../../src/client/index.js';
import { ErrorCode } from '../../src/errors.js';
import { rejection } from '../support/rejection.js';

/** The members' lease, as `--lease-ttl` takes it, and in ms. */
const LEASE_TTL = '1s';
const LEASE_TTL_MS = 1_000;
/** Committed transfers to see before a fault, and again after it (progress). */
const COMMITS = 15;
const PROGRESS_TIMEOUT_MS = 60_000;
/**
 * How soon the SDKs notice a frozen member with a group's defaults, with slack for a loaded
 * machine: keepalive every 2 s with 3 s to answer, then 3 s to connect to the next address.
 */
const DETECT_BOUND_MS = 10_000;

/** Asks `address` for a transaction's state with a raw client; resolves with the error, or undefined when it answered. */
async function rawGet(address: string): Promise<ServiceError | undefined> {
  const raw = new RawTransactions(address, { ownConnection: true });
  try {
    await raw.get('tx-1-999999999');
    return undefined;
  } catch (e) {
    return e as ServiceError;
  } finally {
    raw.close();
  }
}

describe('coordinator group failover (real processes, real etcd)', { timeout: 600_000 }, () => {
  const dir = tempDir('verdict-group-');
  let etcd: EtcdCluster;
  let n = 0;
  const runs: GroupRun[] = [];

  before(async () => {
    etcd = await EtcdCluster.start();
  });
  after(async () => {
    for (const r of runs) await r.destroy();
    await etcd.stop();
    dir.cleanup();
  });

  async function start(): Promise<GroupRun> {
    n++;
    const run = await GroupRun.start({ dir: join(dir.path, `run-${n}`), etcd, prefix: `/failover-${n}/`, leaseTtl: LEASE_TTL, seed: 1700 + n });
    runs.push(run);
    run.workload.start();
    await run.workload.whenMore(COMMITS, PROGRESS_TIMEOUT_MS, committed);
    return run;
  }

  const committed = (a: { observed: string }): boolean => a.observed === 'committed';
  const assertClean = (result: Awaited<ReturnType<GroupRun['finish']>>): void => {
    assert.deepEqual(result.violations, [], `history violations: ${result.violations.join('; ')}`);
    assert.ok(result.summary.committed >= 2 * COMMITS, `committed ${result.summary.committed}`);
  };

  it('SIGKILL of the leader: a follower takes over, in-doubt transactions resolve, nothing is lost', async () => {
    const run = await start();
    const leader = await run.leader();
    assert.ok(leader, 'a leader holds the key');
    const epochBefore = await run.bankEpoch();
    const killedAt = Date.now();
    await leader.kill();
    const next = await run.waitServing(leader);
    const withoutLeaderMs = Date.now() - killedAt;
    console.log(`# time without a serving leader after SIGKILL: ${withoutLeaderMs} ms (lease ${LEASE_TTL_MS} ms)`);
    assert.notEqual(next, leader);
    // The lease bounds the gap: TTL, plus a campaign interval, plus the new term's recovery.
    assert.ok(withoutLeaderMs < LEASE_TTL_MS + 10_000, `${withoutLeaderMs} ms without a leader`);
    assert.ok((await run.waitBanksAt(epochBefore + 1)) > epochBefore, 'the banks moved to the new term');
    await run.workload.whenMore(COMMITS, PROGRESS_TIMEOUT_MS, committed);
    // The killed member comes back as a follower: the leader stays.
    await leader.start();
    // It names the leader from its first answer on (it read the leader key before it announced its address).
    const answer = await rawGet(leader.advertise);
    assert.equal(answer?.code, Status.UNAVAILABLE);
    assert.equal(answer?.metadata.get('verdict-code')[0], 'NOT_LEADER');
    assert.equal(answer?.metadata.get('verdict-leader')[0], next.advertise);
    assertClean(await run.finish());
  });

  it('SIGSTOP of the leader past its lease: the SDKs leave it and commit with the new leader while it is frozen; after SIGCONT it answers NOT_LEADER and steps down', async () => {
    const run = await start();
    const leader = await run.leader();
    assert.ok(leader);
    const epochBefore = await run.bankEpoch();
    // An initiator whose connection to the leader is open when it freezes, with a commit in flight.
    const others = run.addresses.filter((a) => a !== leader.advertise);
    const client = new VerdictClient([leader.advertise, ...others], { callTimeoutMs: 60_000 });
    try {
      const { txId } = await client.begin();
      const frozenAt = Date.now();
      leader.pause();
      // The payload is one no bank accepts: whatever happens, this transaction can only abort.
      const inFlight = await rejection(client.commit(txId, [{ participant: run.banks.banks[0]?.name ?? 'bank-1', payload: 'not a transfer' }]));
      const unknownAfterMs = Date.now() - frozenAt;
      console.log(`# a commit in flight to the frozen leader ended ${inFlight.code} after ${unknownAfterMs} ms`);
      assert.equal(inFlight.code, ErrorCode.OUTCOME_UNKNOWN);
      assert.equal(inFlight.txId, txId);
      // Keepalive (2 s, 3 s to answer, with a group) ends it, not its 60 s deadline.
      assert.ok(unknownAfterMs < DETECT_BOUND_MS, `the commit waited ${unknownAfterMs} ms`);

      // While it stays frozen: a new leader serves, every bank's session moves to it, transfers commit.
      const next = await run.waitServing(leader);
      assert.notEqual(next, leader);
      await run.waitBanksAt(epochBefore + 1);
      const movedAfterMs = Date.now() - frozenAt;
      console.log(`# every bank reconnected to the new leader ${movedAfterMs} ms after SIGSTOP (lease ${LEASE_TTL_MS} ms)`);
      assert.ok(movedAfterMs < LEASE_TTL_MS + 2 * DETECT_BOUND_MS, `the banks took ${movedAfterMs} ms to leave the frozen leader`);
      await run.workload.whenMore(COMMITS, PROGRESS_TIMEOUT_MS, committed);
      assert.equal(leader.state, 'paused', 'the new transactions committed while the old leader was frozen');
      // The new leader tells the truth about the commit that was in flight: never decided, so aborted.
      const view = await client.get(txId);
      assert.equal(view.outcome, 'aborted', `the in-flight commit's transaction is ${view.state} ${view.outcome ?? ''}`);

      leader.resume();
      // The first call it handles after SIGCONT: its lease lapsed by its own clock, so it never answers as leader.
      const answer = await rawGet(leader.advertise);
      assert.equal(answer?.code, Status.UNAVAILABLE, `the deposed leader answered ${answer ? `${answer.code} ${answer.details}` : 'as leader'}`);
      assert.equal(answer?.metadata.get('verdict-code')[0], 'NOT_LEADER');
      assert.equal((await run.leader())?.nodeId, next.nodeId, 'the new leader keeps the key');
      assert.ok(leader.alive, 'the deposed leader steps down and keeps running as a follower');
      await poll('the deposed leader to log that it stepped down', 10_000, () => leader.logTail(400).includes('stepping down to follower'));
    } finally {
      client.close();
    }
    await run.workload.whenMore(COMMITS, PROGRESS_TIMEOUT_MS, committed);
    assertClean(await run.finish());
  });

  it("a leader's disk lost (its working directory deleted): nothing depends on it", async () => {
    const run = await start();
    const leader = await run.leader();
    assert.ok(leader);
    // A member keeps nothing on its own disk: its decision log is in etcd, its logs go to stderr.
    assert.deepEqual(readdirSync(leader.home), []);
    const epochBefore = await run.bankEpoch();
    await leader.kill();
    rmSync(leader.home, { recursive: true, force: true });
    mkdirSync(leader.home);
    await run.waitServing(leader);
    await run.waitBanksAt(epochBefore + 1);
    await run.workload.whenMore(COMMITS, PROGRESS_TIMEOUT_MS, committed);
    // It comes back on an empty disk and writes nothing there (which member leads afterwards is
    // etcd's business: under load a 1 s lease may change hands); the group's decisions are intact.
    await leader.start();
    await run.waitServing();
    assertClean(await run.finish());
    assert.deepEqual(readdirSync(leader.home), [], 'the member ran again without writing to its disk');
  });

  it('one etcd member killed: the group keeps deciding', async () => {
    const run = await start();
    await etcd.kill(0);
    try {
      await run.workload.whenMore(COMMITS, PROGRESS_TIMEOUT_MS, committed);
    } finally {
      etcd.restart(0);
      await etcd.waitHealthy();
    }
    assertClean(await run.finish());
  });

  it('etcd quorum lost: the group stops deciding (UNAVAILABLE), gives no wrong answer, and resumes with quorum', async () => {
    const run = await start();
    const leader = await run.leader();
    assert.ok(leader);
    await etcd.kill(1);
    await etcd.kill(2);
    let sawUnavailable = false;
    try {
      // The leader cannot renew its lease: within its TTL it stops answering as leader.
      const deadline = Date.now() + LEASE_TTL_MS + 15_000;
      while (Date.now() < deadline && !sawUnavailable) {
        const answer = await rawGet(leader.advertise);
        sawUnavailable = answer?.code === Status.UNAVAILABLE;
        if (!sawUnavailable) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(sawUnavailable, 'the leader kept answering as leader without an etcd quorum');
      const before = run.workload.attempts.filter((a) => a.observed === 'committed').length;
      // Nothing commits without a quorum: a bounded look at the workload, not a sleep.
      await assert.rejects(run.workload.whenMore(1, 3_000, committed), /timed out|within/);
      assert.equal(run.workload.attempts.filter((a) => a.observed === 'committed').length, before);
    } finally {
      etcd.restart(1);
      etcd.restart(2);
      await etcd.waitHealthy();
    }
    await run.waitServing();
    await run.workload.whenMore(COMMITS, PROGRESS_TIMEOUT_MS, committed);
    assertClean(await run.finish());
  });
});
