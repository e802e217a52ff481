// `verdict tx get`, `verdict tx list` and `verdict participants` against a real coordinator
// process: tables for people, JSON for scripts, filters that select, precise one-line errors for
// bad input, and PERMISSION_DENIED for a caller that is not an admin once callers authenticate.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { AdminClient } from '../../src/cli/admin-client.js';
import { VerdictClient } from '../../src/client/index.js';
import { createDevPki } from '../../src/common/dev-certs.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import type { TransactionFilter } from '../../src/gen/verdict/v1/admin.js';
import { Participant } from '../../src/participant/index.js';
import { startCli, startCoordinatorCli, type CliProcess } from '../support/cli.js';
import { freePort, Gate, recordingHooks, tempDir, testLogger, uniqueName, waitFor } from '../support/cluster.js';

/** Runs one CLI command to its end; resolves with its exit code and output. */
async function run(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = startCli(args, env);
  const { code } = await cli.exited;
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}

async function runJson<T>(args: readonly string[]): Promise<T> {
  const res = await run([...args, '--json']);
  assert.equal(res.code, 0, res.stderr);
  return JSON.parse(res.stdout) as T;
}

interface TxJson {
  txId: string;
  state: string;
  needsAttention: boolean;
  branches: { participant: string; vote?: string; acknowledged: boolean }[];
}

describe('admin commands', () => {
  const dir = tempDir('verdict-admin-');
  const closers: (() => unknown)[] = [];
  let cli: CliProcess;
  let address: string;
  const [a, b] = [uniqueName('adm-a'), uniqueName('adm-b')];
  const gate = new Gate();
  let held = '';
  let other = '';
  let connectedAfter = 0;

  before(async () => {
    ({ cli, address } = await startCoordinatorCli(join(dir.path, 'coordinator')));
    connectedAfter = Date.now();
    for (const [name, hooks] of [
      [a, recordingHooks('yes').hooks],
      // b holds its prepare until the gate opens: the transaction stays live, a having voted YES.
      [b, { ...recordingHooks('yes').hooks, prepare: async (_tx: string, _p: Uint8Array, ctx: { signal: AbortSignal }) => (await gate.wait(ctx.signal), 'yes' as const) }],
    ] as const) {
      const participant = await Participant.start({ name, coordinator: address, dataDir: join(dir.path, name), hooks, logger: testLogger });
      closers.push(() => participant.close());
      await participant.ready();
    }
    const client = new VerdictClient(address);
    closers.push(() => client.close());
    // Two live transactions: one held in prepare at a and b, one only begun.
    // Held until after() opens the gate, however long the suite takes on a loaded machine.
    const committing = client.transact([{ participant: a }, { participant: b }], { timeoutMs: 600_000, callTimeoutMs: 600_000 }).catch(() => undefined);
    closers.push(() => committing);
    const begun = await client.begin({ timeoutMs: 600_000 });
    other = begun.txId;
    held = await waitFor('the first transaction to be prepared at a', async () => {
      const list = await new AdminClient({ coordinator: address }).list({ filter: 2, participant: '', limit: 10 });
      return list.transactions[0]?.txId;
    });
  });

  after(async () => {
    gate.open();
    for (const close of closers.reverse()) await close();
    cli.kill();
    dir.cleanup();
  });

  it('tx list: every live transaction by default, oldest first; --state, --participant and --limit select', async () => {
    const all = await runJson<{ transactions: TxJson[]; matched: number }>(['tx', 'list', '--coordinator', address]);
    assert.deepEqual(all.transactions.map((t) => t.txId).sort(), [held, other].sort());
    assert.equal(all.matched, 2);

    const inDoubt = await runJson<{ transactions: TxJson[] }>(['tx', 'list', '--coordinator', address, '--state', 'in-doubt']);
    assert.deepEqual(inDoubt.transactions.map((t) => t.txId), [held], 'a voted YES and does not know the outcome; the begun one holds nobody');
    assert.equal(inDoubt.transactions[0]?.state, 'preparing');
    assert.deepEqual(inDoubt.transactions[0]?.branches.find((x) => x.participant === a)?.vote, 'yes');

    const attention = await runJson<{ transactions: TxJson[]; matched: number }>(['tx', 'list', '--coordinator', address, '--state', 'needs-attention']);
    assert.deepEqual(attention, { transactions: [], matched: 0 });

    const atB = await runJson<{ transactions: TxJson[] }>(['tx', 'list', '--coordinator', address, '--participant', b]);
    assert.deepEqual(atB.transactions.map((t) => t.txId), [held]);
    const elsewhere = await runJson<{ transactions: TxJson[] }>(['tx', 'list', '--coordinator', address, '--participant', 'nobody-here']);
    assert.deepEqual(elsewhere.transactions, []);

    const one = await run(['tx', 'list', '--coordinator', address, '--limit', '1']);
    assert.equal(one.code, 0, one.stderr);
    const lines = one.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^TX\s+STATE\s+OUTCOME\s+BRANCHES\s+UNACKNOWLEDGED\s+ATTENTION$/);
    assert.equal(lines.length, 3, one.stdout);
    assert.match(lines[2] ?? '', /^\(1 of 2 shown: raise --limit for more\)$/);
  });

  it('tx get: a live transaction in detail, as a table and as JSON', async () => {
    const view = await runJson<TxJson>(['tx', 'get', held, '--coordinator', address]);
    assert.equal(view.txId, held);
    assert.equal(view.state, 'preparing');
    assert.deepEqual(view.branches.map((x) => x.participant).sort(), [a, b].sort());

    const human = await run(['tx', 'get', held, '--coordinator', address]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^tx:\\s+${held}\\nstate:\\s+preparing\\n`));
    assert.match(human.stdout, /\nPARTICIPANT\s+VOTE\s+ACKNOWLEDGED\s+ATTEMPTS\s+LAST ERROR\n/);
    assert.match(human.stdout, new RegExp(`\\n${a}\\s+yes\\s+no\\s+1\\n`));
  });

  it('participants: sessions, connected since, transactions in flight', async () => {
    const rows = await runJson<{ participant: string; peer: string; connectedSince: string; transactionsInFlight: number }[]>(['participants', '--coordinator', address]);
    assert.deepEqual(rows.map((r) => r.participant), [a, b].sort());
    for (const r of rows) {
      assert.equal(r.transactionsInFlight, 1, `${r.participant} has the held transaction in flight`);
      assert.match(r.peer, /127\.0\.0\.1:\d+$/);
      const since = Date.parse(r.connectedSince);
      assert.ok(since >= connectedAfter - 1_000 && since <= Date.now(), r.connectedSince);
    }
    const human = await run(['participants', '--coordinator', address]);
    assert.match(human.stdout, /^PARTICIPANT\s+PEER\s+CONNECTED SINCE\s+IN FLIGHT\n/);
  });

  it('answers bad input with one precise line and exit code 1', async () => {
    const malformed = await run(['tx', 'get', 'bogus', '--coordinator', address]);
    assert.equal(malformed.code, 1);
    assert.equal(malformed.stderr, 'verdict: tx id "bogus" is malformed (expected tx-<epoch>-<seq>)\n');
    const badName = await run(['tx', 'list', '--coordinator', address, '--participant', 'Not A Name']);
    assert.equal(badName.code, 1);
    assert.match(badName.stderr, /^verdict: participant name "Not A Name" is invalid/);
    assert.equal(badName.stderr.split('\n').length, 2, badName.stderr);
    const badState = await run(['tx', 'list', '--coordinator', address, '--state', 'stuck']);
    assert.equal(badState.code, 1);
    assert.match(badState.stderr, /^verdict: option '--state <state>' argument 'stuck' is invalid/);
    const tooMany = await run(['tx', 'list', '--coordinator', address, '--limit', '10001']);
    assert.equal(tooMany.code, 1);
    assert.match(tooMany.stderr, /^verdict: .*--limit 10001 is over 10000/);

    // The service itself refuses what the CLI would not send.
    const admin = new AdminClient({ coordinator: address });
    try {
      await assert.rejects(admin.list({ filter: 0, participant: '', limit: 10_001 }), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.INVALID_ARGUMENT);
      await assert.rejects(admin.list({ filter: 99 as TransactionFilter, participant: '', limit: 1 }), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.INVALID_ARGUMENT);
    } finally {
      admin.close();
    }
  });

  it('tx get of a finished transaction: ended, with its outcome', async () => {
    gate.open();
    await waitFor('the held transaction to end', async () => (await runJson<TxJson>(['tx', 'get', held, '--coordinator', address])).state === 'ended');
    const view = await runJson<TxJson & { outcome: string }>(['tx', 'get', held, '--coordinator', address]);
    assert.equal(view.outcome, 'committed');
  });
});

describe('admin commands: needs attention', () => {
  const dir = tempDir('verdict-admin-attention-');
  let cli: CliProcess | undefined;
  const closers: (() => unknown)[] = [];
  after(async () => {
    for (const close of closers.reverse()) await close();
    cli?.kill();
    dir.cleanup();
  });

  it('lists a transaction whose delivery exhausted its retry budget, and the gauges count it', async () => {
    const metrics = `127.0.0.1:${await freePort()}`;
    const started = await startCoordinatorCli(join(dir.path, 'coordinator'), ['--attention-after-attempts', '2', '--retry-initial', '10ms', '--retry-max', '20ms', '--metrics', metrics]);
    cli = started.cli;
    const name = uniqueName('slow-commit');
    const gate = new Gate();
    // The commit hook waits: no ack reaches the coordinator, which keeps sending the decision.
    const hooks = { ...recordingHooks('yes').hooks, commit: async () => gate.wait() };
    const participant = await Participant.start({ name, coordinator: started.address, dataDir: join(dir.path, name), hooks, logger: testLogger });
    closers.push(() => participant.close());
    closers.push(() => gate.open());
    await participant.ready();
    const client = new VerdictClient(started.address);
    closers.push(() => client.close());
    const other = uniqueName('quick');
    const quick = await Participant.start({ name: other, coordinator: started.address, dataDir: join(dir.path, other), hooks: recordingHooks('yes').hooks, logger: testLogger });
    closers.push(() => quick.close());
    await quick.ready();
    const { txId } = await client.transact([{ participant: name }, { participant: other }]);

    const listed = await waitFor('the transaction to need attention', async () => {
      const res = await runJson<{ transactions: TxJson[] }>(['tx', 'list', '--coordinator', started.address, '--state', 'needs-attention']);
      return res.transactions.length > 0 ? res.transactions : undefined;
    });
    assert.deepEqual(listed.map((t) => t.txId), [txId]);
    assert.equal(listed[0]?.needsAttention, true);
    const human = await run(['tx', 'list', '--coordinator', started.address, '--state', 'needs-attention']);
    assert.match(human.stdout, new RegExp(`\\n${txId}\\s+decided\\s+committed\\s+.*NEEDS ATTENTION\\n`));
    const scrape = await (await fetch(`http://${metrics}/metrics`)).text();
    assert.match(scrape, /^verdict_transactions_needs_attention 1$/m);
    assert.match(scrape, /^verdict_transactions_in_doubt 1$/m, 'the slow participant voted YES and has not acknowledged');
    assert.match(scrape, /^verdict_decision_retries_total [1-9]\d*$/m);

    gate.open();
    await waitFor('the transaction to end', async () => (await runJson<TxJson>(['tx', 'get', txId, '--coordinator', started.address])).state === 'ended');
    assert.deepEqual(await runJson<{ transactions: TxJson[]; matched: number }>(['tx', 'list', '--coordinator', started.address, '--state', 'needs-attention']), { transactions: [], matched: 0 });
  });
});

describe('admin commands under authentication', () => {
  const dir = tempDir('verdict-admin-sec-');
  let cli: CliProcess | undefined;
  after(() => {
    cli?.kill();
    dir.cleanup();
  });

  it('serve admins only: an initiator token is PERMISSION_DENIED, no token UNAUTHENTICATED, an admin token works', async () => {
    const pki = await createDevPki(join(dir.path, 'pki'));
    const adminToken = `${'b'.repeat(32)}-admin`;
    const initiatorToken = `${'c'.repeat(32)}-initiator`;
    const tokens = join(dir.path, 'tokens');
    writeFileSync(tokens, `verdict://admin/ops ${adminToken}\nverdict://initiator/shop ${initiatorToken}\n`);
    writeFileSync(join(dir.path, 'admin.token'), `${adminToken}\n`);
    writeFileSync(join(dir.path, 'initiator.token'), `${initiatorToken}\n`);
    const started = await startCoordinatorCli(join(dir.path, 'coordinator'), ['--tls-cert', pki.coordinator.cert, '--tls-key', pki.coordinator.key, '--tokens', tokens]);
    cli = started.cli;
    const connection = ['--coordinator', started.address, '--tls-ca', pki.ca.cert];

    for (const args of [['tx', 'list'], ['tx', 'get', 'tx-1-1'], ['participants']]) {
      const denied = await run([...args, ...connection, '--token-file', join(dir.path, 'initiator.token')]);
      assert.equal(denied.code, 1, `${args.join(' ')}: ${denied.stdout}`);
      assert.equal(denied.stderr, 'verdict: verdict://initiator/shop is not an admin; AdminService is for verdict://admin/<name> identities\n');
      assert.equal(denied.stdout, '');
    }
    const anonymous = await run(['participants', ...connection]);
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr, /^verdict: no identity/);

    const allowed = await run(['participants', ...connection, '--token-file', join(dir.path, 'admin.token')]);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal(allowed.stdout, 'no participant sessions\n');
    const viaEnv = await run(['tx', 'list', ...connection, '--json'], { VERDICT_TOKEN: adminToken });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.deepEqual(JSON.parse(viaEnv.stdout), { transactions: [], matched: 0 });

    // The same refusal as a gRPC status, for other clients.
    const admin = new AdminClient({ coordinator: started.address, tlsCa: pki.ca.cert, tokenFile: join(dir.path, 'initiator.token') });
    try {
      await assert.rejects(admin.participants(), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.PERMISSION_DENIED);
    } finally {
      admin.close();
    }
  });
});
