// A coordinator group on a real 3-member etcd cluster, members in this process: one leads, the
// others answer every call UNAVAILABLE / NOT_LEADER naming the leader; a new leader bumps the
// epoch with a compare-and-swap and re-drives the open decisions it finds in etcd.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status as Status } from '@grpc/grpc-js';

import { CoordinatorGroupMember } from '../../src/cluster/index.js';
import { VerdictClient } from '../../src/client/index.js';
import { Participant } from '../../src/participant/index.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import { Etcd3 } from 'etcd3';
import { EtcdCluster } from '../../src/faults/etcd-cluster.js';
import { freePort, Gate, recordingHooks, tempDir, testLogger, uniqueName, waitFor } from '../support/cluster.js';
import { expectStatus, metadataText, rawBytesCall, RawSessions, RawTransactions } from '../support/raw-grpc.js';

const LEASE_TTL_S = 1;

describe('coordinator group on etcd', () => {
  let etcd: EtcdCluster;
  const dir = tempDir();
  const closers: { close(): unknown }[] = [];

  before(async () => {
    etcd = await EtcdCluster.start();
  });
  after(async () => {
    for (const c of closers.reverse()) await c.close();
    await etcd.stop();
    dir.cleanup();
  });

  async function group(prefix: string, n: number): Promise<CoordinatorGroupMember[]> {
    const members: CoordinatorGroupMember[] = [];
    for (let i = 0; i < n; i++) {
      const advertise = `127.0.0.1:${await freePort()}`;
      const member = await CoordinatorGroupMember.start({
        etcd: etcd.hosts,
        nodeId: `c${i}`,
        advertise,
        etcdPrefix: prefix,
        leaseTtlS: LEASE_TTL_S,
        campaignIntervalMs: 50,
        coordinator: { protocol: { retryInitialMs: 20, retryMaxMs: 200 } },
        logger: testLogger,
      });
      closers.push(member);
      members.push(member);
    }
    return members;
  }

  const leaderOf = (members: readonly CoordinatorGroupMember[]): CoordinatorGroupMember | undefined => members.find((m) => m.state === 'leading');

  it('elects one leader; followers answer every call UNAVAILABLE with NOT_LEADER and the leader address', async () => {
    const members = await group('/t-elect/', 3);
    const leader = await waitFor('a leader', () => leaderOf(members));
    assert.equal(members.filter((m) => m.state === 'leading').length, 1);
    const followers = members.filter((m) => m !== leader);
    await waitFor('followers to know the leader', () => followers.every((f) => f.leaderAddress === leader.address));
    for (const f of followers) {
      const raw = new RawTransactions(f.address);
      closers.push(raw);
      const e = await expectStatus(raw.get('01J00000000000000000000000-1'), Status.UNAVAILABLE, /does not lead/);
      assert.equal(metadataText(e, 'verdict-code'), 'NOT_LEADER');
      assert.equal(metadataText(e, 'verdict-leader'), leader.address);
      // Every method, streams included (reserveTxIds too: the gate covers the whole service definition).
      const stream = raw.commitStream();
      const streamStatus = await stream.final();
      assert.equal(streamStatus.code, Status.UNAVAILABLE);
      assert.equal(streamStatus.metadata.get('verdict-code')[0], 'NOT_LEADER');
      const reserve = await rawBytesCall(f.address, '/verdict.v1.TransactionService/ReserveTxIds', new Uint8Array());
      assert.ok(!Buffer.isBuffer(reserve), 'ReserveTxIds was answered by a follower');
      assert.equal(reserve.code, Status.UNAVAILABLE);
      assert.equal(metadataText(reserve, 'verdict-code'), 'NOT_LEADER');
      const sessions = new RawSessions(f.address);
      closers.push({ close: () => sessions.client.close() });
      const s = sessions.open();
      s.hello('p');
      const final = await s.final();
      assert.equal(final.code, Status.UNAVAILABLE);
      assert.equal(final.metadata.get('verdict-code')[0], 'NOT_LEADER');
      assert.equal(final.metadata.get('verdict-leader')[0], leader.address);
    }
    assert.ok(leader.coordinator, 'the leader runs a coordinator');
    assert.equal(leader.notLeaderAnswers, 0);
  });

  it('a new leader bumps the epoch and re-drives a COMMIT it finds in etcd to a participant that was away', async () => {
    const members = await group('/t-takeover/', 2);
    const leader = await waitFor('a leader', () => leaderOf(members));
    const oldEpoch = leader.coordinator?.epoch ?? 0;
    const [steadyName, awayName] = [uniqueName('steady'), uniqueName('away')];
    const gate = new Gate();
    const steadyCalls = recordingHooks(async () => {
      await gate.wait();
      return 'yes' as const;
    });
    const awayCalls = recordingHooks('yes');
    const steady = await Participant.start({
      name: steadyName,
      coordinator: leader.address,
      dataDir: `${dir.path}/${steadyName}`,
      hooks: steadyCalls.hooks,
      logger: testLogger,
    });
    closers.push(steady);
    const away = await Participant.start({ name: awayName, coordinator: leader.address, dataDir: `${dir.path}/${awayName}`, hooks: awayCalls.hooks, logger: testLogger });
    await Promise.all([steady.ready(), away.ready()]);
    const client = new VerdictClient(leader.address);
    closers.push(client);
    const commit = client.transact([{ participant: steadyName }, { participant: awayName }], { timeoutMs: 10_000 });
    const txId = (await waitFor('away to be in doubt', () => away.inDoubt()[0])).txId;
    await away.close();
    gate.open();
    assert.equal((await commit).outcome, 'committed');

    // The leader goes; the other member takes over from etcd alone.
    await leader.close();
    const next = await waitFor('a new leader', () => leaderOf(members.filter((m) => m !== leader)), 15_000);
    const epoch = next.coordinator?.epoch ?? 0;
    assert.ok(epoch > oldEpoch, `the epoch went from ${oldEpoch} to ${epoch}`);
    const view = next.coordinator?.describe(txId);
    assert.equal(view?.state, 'decided');
    assert.equal(view?.outcome, 'committed');

    // Both participants come back at the new leader (following the leader is the SDK's part):
    // steady acknowledges again (idempotent), away learns the outcome and commits.
    await steady.close();
    const steadyBack = await Participant.start({ name: steadyName, coordinator: next.address, dataDir: `${dir.path}/${steadyName}`, hooks: steadyCalls.hooks, logger: testLogger });
    closers.push(steadyBack);
    const back = await Participant.start({ name: awayName, coordinator: next.address, dataDir: `${dir.path}/${awayName}`, hooks: awayCalls.hooks, logger: testLogger });
    closers.push(back);
    await waitFor('the transaction to end at the new leader', () => next.coordinator?.describe(txId) === undefined, 15_000);
    assert.deepEqual(
      awayCalls.calls.map((c) => c.hook),
      ['prepare', 'commit'],
    );
    const after = new VerdictClient(next.address);
    closers.push(after);
    assert.equal((await after.get(txId)).outcome, 'committed');
  });

  it('a refused write is never a decision: the initiator hears OUTCOME_UNKNOWN, the member steps down, get() tells the truth', async () => {
    const prefix = '/t-refused/';
    const members = await group(prefix, 2);
    const leader = await waitFor('a leader', () => leaderOf(members));
    const [a, b] = [uniqueName('a'), uniqueName('b')];
    const gate = new Gate();
    const pa = await Participant.start({
      name: a,
      coordinator: leader.address,
      dataDir: `${dir.path}/${a}`,
      hooks: recordingHooks(async () => {
        await gate.wait();
        return 'yes' as const;
      }).hooks,
      logger: testLogger,
    });
    const pb = await Participant.start({ name: b, coordinator: leader.address, dataDir: `${dir.path}/${b}`, hooks: recordingHooks('yes').hooks, logger: testLogger });
    closers.push(pa, pb);
    await Promise.all([pa.ready(), pb.ready()]);
    const client = new VerdictClient(leader.address);
    closers.push(client);
    const commit = client.transact([{ participant: a }, { participant: b }], { timeoutMs: 10_000 });
    const txId = (await waitFor('b to be in doubt', () => pb.inDoubt()[0])).txId;
    // The leader key goes away under the leader (its lease lives on): its next write is refused.
    const etcdClient = new Etcd3(etcd.clientOptions());
    closers.push(etcdClient);
    await etcdClient.delete().key(`${prefix}leader`);
    const stepped = new Promise<string>((resolve) => leader.once('following', resolve));
    gate.open();
    await assert.rejects(commit, (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.OUTCOME_UNKNOWN && e.txId === txId);
    assert.match(await stepped, /the coordinator stopped/);
    // Whoever leads next finds no COMMIT record: the transaction is aborted, at every participant.
    const next = await waitFor('a leader again', () => leaderOf(members), 15_000);
    const asker = new VerdictClient(next.address);
    closers.push(asker);
    assert.equal((await asker.get(txId)).outcome, 'aborted');
  });
});
