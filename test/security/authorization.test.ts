// Security of a coordinator with mutual TLS: who may connect, which name a participant may use,
// which transactions an initiator may touch, and who may enlist. Every refusal is checked to
// leave both logs (the coordinator's and a participant's) exactly as they were.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status as Status } from '@grpc/grpc-js';
import { VerdictClient } from '../../src/client/index.js';
import { createCa, createDevPki, issueCertificate, type DevPki } from '../../src/common/dev-certs.js';
import { channelCredentials } from '../../src/common/tls.js';
import { Coordinator } from '../../src/coordinator/index.js';
import { ErrorCode } from '../../src/errors.js';
import { Participant } from '../../src/participant/index.js';
import { RawSessions } from '../support/raw-grpc.js';
import { recordingHooks, tempDir, testLogger, waitFor } from '../support/cluster.js';
import { clientTls, codeOf, TappedStorage, under } from './support.js';

describe('a coordinator with mutual TLS', () => {
  const dir = tempDir('verdict-security-');
  let pki: DevPki;
  let coordinatorLog: TappedStorage;
  let bankLog: TappedStorage;
  let coordinator: Coordinator;
  let bank: Participant;
  let alice: VerdictClient;
  let mallory: VerdictClient;
  let admin: VerdictClient;
  const clients: VerdictClient[] = [];
  const calls = recordingHooks('yes').calls;

  /** Both logs, for "nothing changed" checks. */
  const logs = async (): Promise<unknown> => ({ coordinator: await coordinatorLog.snapshot(), bank: await bankLog.snapshot() });
  const client = async (role: 'initiator' | 'admin', name: string): Promise<VerdictClient> => {
    const c = new VerdictClient(coordinator.address, { tls: clientTls(pki.ca, await pki.identity(role, name)), callTimeoutMs: 5_000 });
    clients.push(c);
    return c;
  };

  before(async () => {
    pki = await createDevPki(under(dir.path, 'pki'));
    coordinatorLog = new TappedStorage(under(dir.path, 'coordinator'));
    bankLog = new TappedStorage(under(dir.path, 'bank-a'));
    coordinator = await Coordinator.start({
      listen: '127.0.0.1:0',
      storage: coordinatorLog,
      logger: testLogger,
      tls: { certFile: pki.coordinator.cert, keyFile: pki.coordinator.key, caFile: pki.ca.cert },
    });
    bank = await Participant.start({
      name: 'bank-a',
      coordinator: coordinator.address,
      dataDir: under(dir.path, 'bank-a'),
      storage: bankLog,
      hooks: recordingHooks('yes', calls).hooks,
      logger: testLogger,
      tls: clientTls(pki.ca, await pki.identity('participant', 'bank-a')),
    });
    await bank.ready();
    alice = await client('initiator', 'alice');
    mallory = await client('initiator', 'mallory');
    admin = await client('admin', 'ops');
  });

  after(async () => {
    for (const c of clients) c.close();
    await bank?.close();
    await coordinator?.close();
    dir.cleanup();
  });

  it('refuses a participant whose certificate names bank-b when it says hello as bank-a, before registering anything', async () => {
    const sessions = new RawSessions(coordinator.address, channelCredentials(clientTls(pki.ca, await pki.identity('participant', 'bank-b'))));
    try {
      const before = await logs();
      const refused = coordinator.stats.sessions.refused;
      const impostor = sessions.open();
      impostor.hello('bank-a');
      const status = await impostor.final();
      assert.equal(status.code, Status.PERMISSION_DENIED);
      assert.match(status.details, /^verdict:\/\/participant\/bank-b may not open a session as participant bank-a$/);
      assert.equal(coordinator.stats.sessions.refused, refused + 1);
      // Under its own name the same certificate is welcome: the check is the name, not the certificate.
      const own = await sessions.connect('bank-b');
      assert.ok(own.frames[0]?.welcome);
      own.cancel();
      assert.deepEqual(await logs(), before);
      // The real bank-a never lost its session.
      assert.equal(bank.state, 'connected');
    } finally {
      sessions.close();
    }
  });

  it('refuses a client without a certificate, with one from another CA, with an expired one, and a plaintext client', async () => {
    const before = await logs();
    const begun = coordinator.stats;
    const otherCa = await createCa(under(dir.path, 'other-ca'));
    const foreign = await issueCertificate(under(dir.path, 'other-ca'), { kind: 'initiator', name: 'alice' });
    const expired = await issueCertificate(under(dir.path, 'expired'), { kind: 'initiator', name: 'alice' }, { days: -1, ca: pki.ca });
    const attempts = {
      'no certificate': new VerdictClient(coordinator.address, { tls: clientTls(pki.ca), callTimeoutMs: 5_000 }),
      'another CA': new VerdictClient(coordinator.address, { tls: { ...clientTls(pki.ca, foreign) }, callTimeoutMs: 5_000 }),
      expired: new VerdictClient(coordinator.address, { tls: clientTls(pki.ca, expired), callTimeoutMs: 5_000 }),
      plaintext: new VerdictClient(coordinator.address, { callTimeoutMs: 5_000 }),
    };
    try {
      for (const [what, c] of Object.entries(attempts)) {
        assert.equal(await codeOf(c.begin()), ErrorCode.UNAVAILABLE, what);
        assert.equal(await codeOf(c.get('tx-1-1')), ErrorCode.UNAVAILABLE, what);
      }
      assert.ok(otherCa.cert.includes('other-ca'));
    } finally {
      for (const c of Object.values(attempts)) c.close();
    }
    assert.equal(coordinator.stats.live, begun.live);
    assert.deepEqual(await logs(), before);
  });

  it("refuses Commit, Abort and GetTransaction of another initiator's transaction, live and after it ended (the owner read from the END record)", async () => {
    const begun = await alice.begin({ timeoutMs: 20_000 });
    await bank.enlist(begun, Buffer.from('debit 100 from alice'));
    const before = await logs();
    for (const attempt of [mallory.commit(begun.txId), mallory.abort(begun.txId, 'veto'), mallory.get(begun.txId)]) {
      assert.equal(await codeOf(attempt), ErrorCode.PERMISSION_DENIED);
    }
    assert.equal(coordinator.describe(begun.txId)?.state, 'active', 'the transaction did not move');
    assert.deepEqual(await logs(), before);
    // The owner and an admin may read it; the owner commits it.
    assert.equal((await admin.get(begun.txId)).owner, 'verdict://initiator/alice');
    assert.equal((await alice.get(begun.txId)).state, 'active');
    await alice.commit(begun.txId, [], { waitForCompletion: true });
    await waitFor('the transaction to end', () => coordinator.describe(begun.txId) === undefined);
    // The coordinator forgets the transaction in memory as soon as the last ack is in, while its
    // END summary (and the removal of the COMMIT record) is an unforced write still queued for the
    // next group commit. Wait for that write itself: a snapshot taken before it lands would
    // differ from the next one (what made this test fail once under load).
    await waitFor('the END summary to be written', async () => {
      const log = await coordinatorLog.snapshot();
      return `done/${begun.txId}` in log && !(`open/${begun.txId}` in log);
    });

    // Ended: the owner comes from the END record in the log.
    const ended = await logs();
    assert.equal(await codeOf(mallory.get(begun.txId)), ErrorCode.PERMISSION_DENIED);
    assert.equal(await codeOf(mallory.abort(begun.txId)), ErrorCode.PERMISSION_DENIED);
    assert.equal((await alice.get(begun.txId)).outcome, 'committed');
    assert.equal((await admin.get(begun.txId)).owner, 'verdict://initiator/alice');
    assert.deepEqual(await logs(), ended);
  });

  it("refuses one-shot and interactive transactions from a participant's identity", async () => {
    const before = await logs();
    const asParticipant = new VerdictClient(coordinator.address, { tls: clientTls(pki.ca, await pki.identity('participant', 'bank-a')), callTimeoutMs: 5_000 });
    try {
      assert.equal(await codeOf(asParticipant.begin()), ErrorCode.PERMISSION_DENIED);
      assert.equal(await codeOf(asParticipant.transact([{ participant: 'bank-a', payload: 'x' }])), ErrorCode.PERMISSION_DENIED);
    } finally {
      asParticipant.close();
    }
    assert.deepEqual(await logs(), before);
  });

  it('refuses an enlist without the capability or with a forged one, and accepts the real one', async () => {
    const begun = await alice.begin({ timeoutMs: 20_000 });
    const other = await alice.begin({ timeoutMs: 20_000 });
    const before = await logs();
    const flipped = `${begun.capability.slice(0, -1)}${begun.capability.endsWith('A') ? 'B' : 'A'}`;
    for (const capability of ['', flipped, other.capability, 'x'.repeat(43), 'é'.repeat(22)]) {
      assert.equal(await codeOf(bank.enlist({ txId: begun.txId, capability })), ErrorCode.PERMISSION_DENIED, JSON.stringify(capability));
    }
    assert.deepEqual(coordinator.describe(begun.txId)?.branches, [], 'nobody joined');
    assert.deepEqual(await logs(), before);
    await bank.enlist(begun);
    assert.deepEqual(
      coordinator.describe(begun.txId)?.branches.map((b) => b.participant),
      ['bank-a'],
    );
    await alice.abort(begun.txId);
    await alice.abort(other.txId);
  });

  it('lets a participant vote only for its own branches: a vote under another name is ignored', async () => {
    const sessions = new RawSessions(coordinator.address, channelCredentials(clientTls(pki.ca, await pki.identity('participant', 'bank-b'))));
    try {
      const b = await sessions.connect('bank-b');
      const begun = await alice.begin({ timeoutMs: 20_000 });
      await bank.enlist(begun);
      const before = await logs();
      const ignored = coordinator.stats.ignored['not-a-branch'];
      b.vote(begun.txId, 2 /* NO */);
      b.send({ acks: [{ txId: begun.txId, outcome: 2 }] });
      await waitFor('the votes to be ignored', () => coordinator.stats.ignored['not-a-branch'] >= ignored + 2);
      assert.equal(coordinator.describe(begun.txId)?.state, 'active');
      assert.deepEqual(await logs(), before);
      await alice.abort(begun.txId);
    } finally {
      sessions.close();
    }
  });
});
