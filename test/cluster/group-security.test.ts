// A coordinator group secured as a single coordinator is, as real processes: three `verdict
// coordinator --etcd` members serving mutual TLS and bearer tokens, on a 3-member etcd that serves
// clients over TLS and requires client certificates; banks and the workload present their
// certificates. A follower refuses what the leader would refuse without naming the leader; a
// participant impersonating another is refused by the leader and by a follower; the SDKs follow a
// SIGKILLed leader with their credentials; a member without an etcd client certificate cannot
// start; SIGHUP makes a member serve its rotated TLS files.
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';

import { VerdictClient } from '../../src/client/index.js';
import { issueCertificate } from '../../src/common/dev-certs.js';
import { clientTlsFromDir } from '../../src/common/throwaway-tls.js';
import { clientChannel, type ClientSecurityOptions } from '../../src/common/tls.js';
import { EtcdCluster } from '../../src/faults/etcd-cluster.js';
import type { MemberProcess } from '../../src/faults/group-member-process.js';
import { fixedPort, poll } from '../../src/faults/process-cluster.js';
import { AdminServiceClient } from '../../src/gen/verdict/v1/admin.js';
import { ParticipantServiceClient, type SessionResponse } from '../../src/gen/verdict/v1/participant.js';
import { TransactionServiceClient } from '../../src/gen/verdict/v1/transaction.js';
import { Participant } from '../../src/participant/index.js';
import { startCli } from '../support/cli.js';
import { codeOf, servedSerial } from '../security/support.js';
import { recordingHooks, tempDir, testLogger } from '../support/cluster.js';
import { GroupRun } from './group-support.js';

/** Committed transfers to see before the leader is killed, and again after it. */
const COMMITS = 10;
const PROGRESS_TIMEOUT_MS = 40_000;
/** Deadline of every raw call, in ms. */
const CALL_TIMEOUT_MS = 5_000;
/** A well-formed id that was never issued: the leader answers it, a follower redirects it. */
const NEVER_ISSUED = 'tx-1-999999999';

/** What a raw call ended with: its status code, details, and the NOT_LEADER metadata if any. */
interface Answer {
  readonly code: number;
  readonly details: string;
  readonly verdictCode: string | undefined;
  readonly leader: string | undefined;
}

const answerOf = (e: ServiceError | Partial<ServiceError>): Answer => ({
  code: e.code ?? -1,
  details: e.details ?? '',
  verdictCode: e.metadata?.get('verdict-code')[0]?.toString(),
  leader: e.metadata?.get('verdict-leader')[0]?.toString(),
});

/** The refusal `answer` is, failing the test when the call was served instead. */
function refusal(answer: Answer | 'answered' | 'welcomed', what: string): Answer {
  if (typeof answer === 'string') assert.fail(`${what}: ${answer}, not refused`);
  return answer;
}

/** GetTransaction on `address` with `security`, on a connection of its own; the error's answer, or `answered`. */
async function rawGet(address: string, security: ClientSecurityOptions): Promise<Answer | 'answered'> {
  const channel = clientChannel(security);
  const client = new TransactionServiceClient(address, channel.credentials, { ...channel.options, 'grpc.use_local_subchannel_pool': 1 });
  try {
    return await new Promise((resolve) => {
      client.getTransaction({ txId: NEVER_ISSUED }, new Metadata(), { deadline: new Date(Date.now() + CALL_TIMEOUT_MS) }, (e) => resolve(e ? answerOf(e) : 'answered'));
    });
  } finally {
    client.close();
  }
}

/** AdminService ListParticipants on `address` with `security`. */
async function rawListParticipants(address: string, security: ClientSecurityOptions): Promise<Answer | 'answered'> {
  const channel = clientChannel(security);
  const client = new AdminServiceClient(address, channel.credentials, { ...channel.options, 'grpc.use_local_subchannel_pool': 1 });
  try {
    return await new Promise((resolve) => {
      client.listParticipants({}, new Metadata(), { deadline: new Date(Date.now() + CALL_TIMEOUT_MS) }, (e) => resolve(e ? answerOf(e) : 'answered'));
    });
  } finally {
    client.close();
  }
}

/** Opens a session on `address` with `security`, says hello as `name`, and resolves with how the stream ended (or `welcomed`). */
async function rawHello(address: string, security: ClientSecurityOptions, name: string): Promise<Answer | 'welcomed'> {
  const channel = clientChannel(security);
  const client = new ParticipantServiceClient(address, channel.credentials, { ...channel.options, 'grpc.use_local_subchannel_pool': 1 });
  const stream = client.session(new Metadata(), { deadline: new Date(Date.now() + CALL_TIMEOUT_MS) });
  try {
    return await new Promise((resolve) => {
      stream.on('data', (frame: SessionResponse) => {
        if (frame.welcome) resolve('welcomed');
      });
      stream.on('error', (e: ServiceError) => resolve(answerOf(e)));
      stream.write({ hello: { participant: name }, votes: [], acks: [], inquiries: [], enlists: [] });
    });
  } finally {
    stream.cancel();
    client.close();
  }
}

describe('a coordinator group with mutual TLS and tokens, on etcd with client certificates (real processes)', { timeout: 240_000 }, () => {
  const dir = tempDir('verdict-groupsec-');
  const runDir = join(dir.path, 'run');
  const tlsDir = join(runDir, 'tls');
  const tokensFile = join(dir.path, 'tokens.txt');
  const initiatorToken = randomBytes(32).toString('base64url');
  const participantToken = randomBytes(32).toString('base64url');
  let etcd: EtcdCluster;
  let run: GroupRun;
  /** The CA alone: TLS without a client certificate (a token, or nothing, identifies the caller). */
  let caOnly: { readonly ca: Buffer };

  const committed = (a: { observed: string }): boolean => a.observed === 'committed';

  before(async () => {
    writeFileSync(tokensFile, `# test tokens\nverdict://initiator/tok-init ${initiatorToken}\nverdict://participant/tok-bank ${participantToken}\n`, { mode: 0o600 });
    etcd = await EtcdCluster.start(3, { tls: true });
    run = await GroupRun.start({ dir: runDir, etcd, prefix: '/groupsec/', leaseTtl: '1s', seed: 1717, tls: true, memberArgs: ['--tokens', tokensFile] });
    caOnly = { ca: readFileSync(join(tlsDir, 'ca.pem')) };
    await Promise.all([issueCertificate(tlsDir, { kind: 'participant', name: 'mallory' }), issueCertificate(tlsDir, { kind: 'initiator', name: 'checkout' })]);
    run.workload.start();
    await run.workload.whenMore(COMMITS, PROGRESS_TIMEOUT_MS, committed);
  });
  after(async () => {
    await run?.destroy();
    await etcd?.stop();
    dir.cleanup();
  });

  async function leaderAndFollower(): Promise<{ leader: MemberProcess; follower: MemberProcess }> {
    const leader = await run.waitServing();
    const follower = run.members.find((m) => m !== leader && m.alive);
    assert.ok(follower, 'a follower runs');
    return { leader, follower };
  }

  it('a follower refuses unauthenticated and unauthorized callers before it names the leader', async () => {
    const { leader, follower } = await leaderAndFollower();
    const initiator = { tls: clientTlsFromDir(tlsDir, 'initiator', 'checkout') };
    const participant = { tls: clientTlsFromDir(tlsDir, 'participant', 'mallory') };

    // An authenticated initiator is sent to the leader: by certificate, and by token.
    for (const [who, security] of [['certificate', initiator], ['token', { tls: caOnly, token: initiatorToken }]] as const) {
      const redirected = refusal(await rawGet(follower.advertise, security), who);
      assert.deepEqual({ code: redirected.code, verdictCode: redirected.verdictCode, leader: redirected.leader }, { code: Status.UNAVAILABLE, verdictCode: 'NOT_LEADER', leader: leader.advertise }, who);
    }
    // Nobody else learns where the leader is, or that there is one.
    const refusals: [string, Promise<Answer | 'answered'>, number, RegExp][] = [
      ['no certificate, no token', rawGet(follower.advertise, { tls: caOnly }), Status.UNAUTHENTICATED, /no identity/],
      ['a wrong token', rawGet(follower.advertise, { tls: caOnly, token: randomBytes(32).toString('base64url') }), Status.UNAUTHENTICATED, /bearer token is not valid/],
      ['a participant on TransactionService', rawGet(follower.advertise, participant), Status.PERMISSION_DENIED, /is a participant/],
      ['an initiator on AdminService', rawListParticipants(follower.advertise, initiator), Status.PERMISSION_DENIED, /is not an admin/],
      ['plaintext', rawGet(follower.advertise, {}), Status.UNAVAILABLE, /./],
    ];
    for (const [what, call, code, details] of refusals) {
      const answer = refusal(await call, what);
      assert.equal(answer.code, code, `${what}: ${answer.code} ${answer.details}`);
      assert.match(answer.details, details, what);
      assert.notEqual(answer.verdictCode, 'NOT_LEADER', what);
      assert.equal(answer.leader, undefined, `${what}: the leader is not named`);
    }
  });

  it('a participant impersonating another is refused by a follower and by the leader', async () => {
    const { leader, follower } = await leaderAndFollower();
    const mallory = { tls: clientTlsFromDir(tlsDir, 'participant', 'mallory') };
    const byToken = { tls: caOnly, token: participantToken };

    // At a follower: refused for the name, by certificate and by token, without the leader's address.
    for (const [who, security, identity] of [['certificate', mallory, 'mallory'], ['token', byToken, 'tok-bank']] as const) {
      const answer = refusal(await rawHello(follower.advertise, security, 'bank-1'), who);
      assert.equal(answer.code, Status.PERMISSION_DENIED, `${who}: ${answer.code} ${answer.details}`);
      assert.match(answer.details, new RegExp(`verdict://participant/${identity} may not open a session as participant bank-1`));
      assert.equal(answer.leader, undefined, `${who}: the leader is not named`);
      // Under its own name it is sent on to the leader: the refusal was the name's.
      const own = refusal(await rawHello(follower.advertise, security, identity), `${who}, own name`);
      assert.deepEqual([own.verdictCode, own.leader], ['NOT_LEADER', leader.advertise], who);
    }

    // At the leader, through the SDK: ready() rejects at once with PERMISSION_DENIED.
    const impostor = await Participant.start({
      name: 'bank-1',
      coordinator: [leader.advertise],
      dataDir: join(dir.path, 'impostor'),
      hooks: recordingHooks().hooks,
      logger: testLogger,
      ...mallory,
    });
    try {
      await assert.rejects(impostor.ready({ timeoutMs: 10_000 }), (e: { code?: string; message?: string }) => {
        assert.equal(e.code, 'PERMISSION_DENIED', e.message);
        assert.match(e.message ?? '', /verdict:\/\/participant\/mallory may not open a session as participant bank-1/);
        return true;
      });
    } finally {
      await impostor.close();
    }
    // The real bank-1 kept its session: transfers still commit.
    await run.workload.whenMore(3, PROGRESS_TIMEOUT_MS, committed);
  });

  it('SIGHUP makes a member serve its TLS files as they are now; the others keep theirs until told', async () => {
    const { leader, follower } = await leaderAndFollower();
    const before = await servedSerial(follower.advertise);
    assert.equal(before, await servedSerial(leader.advertise), 'every member serves the same certificate at first');
    // A new certificate (and key) in the same files, as a rotation writes them.
    await issueCertificate(tlsDir, { kind: 'coordinator', hosts: ['127.0.0.1', 'localhost'] });
    const rotated = new X509Certificate(readFileSync(join(tlsDir, 'coordinator.pem'))).serialNumber;
    assert.notEqual(rotated, before);
    follower.signal('SIGHUP');
    await poll(`${follower.nodeId} to log the reload`, 10_000, () => follower.logTail(50).includes('TLS certificates reloaded'));
    assert.equal(await servedSerial(follower.advertise), rotated, 'the follower serves the new certificate');
    assert.equal(await servedSerial(leader.advertise), before, 'the leader, not signalled, keeps the old one');
    const answer = refusal(await rawGet(follower.advertise, { tls: clientTlsFromDir(tlsDir, 'initiator', 'checkout') }), 'after SIGHUP');
    assert.equal(answer.verdictCode, 'NOT_LEADER', `${answer.code} ${answer.details}`);
  });

  it('SIGKILL of the leader: banks, workload and a token client follow the new leader over TLS; nothing is lost', async () => {
    const leader = await run.waitServing();
    // A token client given every member: it reaches the leader through whichever member it asks.
    const tokenClient = new VerdictClient([...run.addresses].reverse(), { tls: caOnly, token: initiatorToken, callTimeoutMs: 10_000 });
    try {
      // TX_NOT_FOUND is the leader's answer (a follower's would be NOT_LEADER).
      assert.equal(await codeOf(tokenClient.get(NEVER_ISSUED)), 'TX_NOT_FOUND');
      const epochBefore = await run.bankEpoch();
      await leader.kill();
      const next = await run.waitServing(leader);
      assert.notEqual(next, leader);
      assert.ok((await run.waitBanksAt(epochBefore + 1)) > epochBefore, 'the banks moved to the new term, with their certificates');
      await run.workload.whenMore(COMMITS, PROGRESS_TIMEOUT_MS, committed);
      // The same client and token, on the new leader (the old one is gone: its address cannot be reached).
      // A new term presumes the never-issued id of epoch 1 aborted: a leader's answer again.
      assert.equal((await tokenClient.get(NEVER_ISSUED)).outcome, 'aborted');
      assert.equal(tokenClient.target, next.advertise);
    } finally {
      tokenClient.close();
    }
    const result = await run.finish();
    assert.deepEqual(result.violations, [], `history violations: ${result.violations.join('; ')}`);
    assert.ok(result.summary.committed >= 2 * COMMITS, `committed ${result.summary.committed}`);
  });

  it('a member without an etcd client certificate cannot start: one line naming etcd, exit code 1', async () => {
    const tls = etcd.tls;
    assert.ok(tls);
    const base = ['coordinator', '--node-id', 'nocert', '--advertise', `127.0.0.1:${await fixedPort()}`, '--etcd-prefix', '/groupsec/'];
    const cases: [string, string[], RegExp][] = [
      ['no client certificate', ['--etcd', etcd.endpoints, '--etcd-ca', tls.caFile], /^verdict: cannot use etcd at https:\/\/127\.0\.0\.1:\d+,.*: 14 UNAVAILABLE: .*certificate/],
      ['plaintext to a TLS etcd', ['--etcd', etcd.urls.map((u) => u.replace('https://', 'http://')).join(',')], /^verdict: cannot use etcd at http:\/\/127\.0\.0\.1:\d+,.*: 14 UNAVAILABLE/],
    ];
    for (const [what, args, message] of cases) {
      const cli = startCli([...base, ...args]);
      const exit = await cli.exited;
      const lines = cli.stderr().trimEnd().split('\n');
      assert.equal(exit.code, 1, `${what}: ${cli.stderr()}`);
      assert.equal(lines.length, 1, `${what}: one line: ${cli.stderr()}`);
      assert.match(lines[0] ?? '', message, what);
      assert.equal(cli.stdout(), '', `${what}: it never said it listens`);
    }
  });
});
