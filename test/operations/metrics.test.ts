// `verdict coordinator --metrics HOST:PORT`: a Prometheus scrape of the real process shows the
// transactions it decided (by outcome and abort reason), the phase latencies, the sessions and the
// log's batches and fsyncs moving.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';

import { VerdictClient } from '../../src/client/index.js';
import { TransactionAbortedError } from '../../src/errors.js';
import { Participant } from '../../src/participant/index.js';
import { startCli, startCoordinatorCli, type CliProcess } from '../support/cli.js';
import { freePort, recordingHooks, tempDir, testLogger, uniqueName, waitFor } from '../support/cluster.js';

/** The value of one sample (`name{labels} value`) in a scrape, or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    if (line.slice(0, space) === `${name}${labels}`) return Number(line.slice(space + 1));
  }
  return undefined;
}

async function scrape(address: string): Promise<string> {
  const res = await fetch(`http://${address}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return res.text();
}

describe('metrics endpoint', () => {
  const dir = tempDir('verdict-metrics-');
  const running: CliProcess[] = [];
  const closers: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    for (const cli of running.splice(0)) cli.kill();
  });
  after(() => dir.cleanup());

  it('counts commits and aborts by reason, phase latencies, sessions, log batches and fsyncs', async () => {
    const metricsAddress = `127.0.0.1:${await freePort()}`;
    const { cli, address } = await startCoordinatorCli(join(dir.path, 'c1'), ['--metrics', metricsAddress]);
    running.push(cli);

    const before = await scrape(metricsAddress);
    assert.equal(sample(before, 'verdict_transactions_total', '{outcome="committed",reason=""}'), undefined, 'nothing decided yet');
    assert.equal(sample(before, 'verdict_sessions'), 0);
    assert.equal(sample(before, 'verdict_transactions_live'), 0);
    const fsyncsBefore = sample(before, 'verdict_log_fsyncs_total') ?? -1;
    assert.ok(fsyncsBefore >= 0, 'the fsync gauge is exported');

    const [a, b] = [uniqueName('m-a'), uniqueName('m-b')];
    for (const [name, policy] of [
      [a, 'yes'],
      [b, (_tx: string, payload: string) => (payload === 'refuse' ? { vote: 'no' as const, reason: 'out of stock' } : 'yes' as const)],
    ] as const) {
      const participant = await Participant.start({ name, coordinator: address, dataDir: join(dir.path, name), hooks: recordingHooks(policy).hooks, logger: testLogger });
      closers.push(() => participant.close());
      await participant.ready();
    }
    const client = new VerdictClient(address);
    closers.push(() => client.close());

    await client.transact([{ participant: a }, { participant: b }]);
    await client.transact([{ participant: a }, { participant: b }]);
    await assert.rejects(client.transact([{ participant: a }, { participant: b, payload: Buffer.from('refuse') }]), TransactionAbortedError);

    // Every branch acknowledges in the end: then delivery and total latencies are observed too.
    const text = await waitFor('all three transactions to end', async () => {
      const t = await scrape(metricsAddress);
      return sample(t, 'verdict_phase_duration_seconds_count', '{phase="total"}') === 3 && sample(t, 'verdict_transactions_live') === 0 ? t : undefined;
    });
    assert.equal(sample(text, 'verdict_transactions_total', '{outcome="committed",reason=""}'), 2);
    assert.equal(sample(text, 'verdict_transactions_total', '{outcome="aborted",reason="voted-no"}'), 1);
    assert.equal(sample(text, 'verdict_phase_duration_seconds_count', '{phase="prepare"}'), 3);
    assert.equal(sample(text, 'verdict_phase_duration_seconds_count', '{phase="decision-write"}'), 2, 'only commits force a decision record');
    assert.equal(sample(text, 'verdict_phase_duration_seconds_count', '{phase="delivery"}'), 3);
    assert.ok((sample(text, 'verdict_phase_duration_seconds_sum', '{phase="total"}') ?? 0) > 0);
    assert.equal(sample(text, 'verdict_sessions'), 2);
    assert.equal(sample(text, 'verdict_sessions_opened_total'), 2);
    assert.equal(sample(text, 'verdict_transactions_in_doubt'), 0);
    assert.equal(sample(text, 'verdict_transactions_needs_attention'), 0);
    assert.ok((sample(text, 'verdict_log_fsyncs_total') ?? 0) >= fsyncsBefore + 1, 'the commit records were synced');
    assert.ok((sample(text, 'verdict_log_batches_total') ?? 0) >= (sample(text, 'verdict_log_fsyncs_total') ?? 0));
    assert.ok(sample(text, 'process_cpu_user_seconds_total') !== undefined, "Node's default metrics are there too");

    assert.equal((await fetch(`http://${metricsAddress}/other`)).status, 404);
    assert.equal(cli.stdout(), `listening on ${address}\n`, 'stdout still carries only the address line');
  });

  it('refuses a metrics port in use with one line, before the data directory is opened', async () => {
    const busy = await freePort();
    const { cli: holder } = await startCoordinatorCli(join(dir.path, 'c2'), ['--metrics', `127.0.0.1:${busy}`]);
    running.push(holder);
    const data = join(dir.path, 'c3');
    const second = startCli(['coordinator', '--listen', '127.0.0.1:0', '--data', data, '--metrics', `127.0.0.1:${busy}`]);
    running.push(second);
    assert.deepEqual(await second.exited, { code: 1, signal: null });
    const lines = second.stderr().trimEnd().split('\n');
    assert.equal(lines.length, 1, second.stderr());
    assert.match(lines[0] ?? '', new RegExp(`^verdict: cannot serve metrics on 127\\.0\\.0\\.1:${busy}: .*EADDRINUSE`));
    assert.equal(existsSync(data), false, 'the data directory was never created');
    assert.equal(second.stdout(), '');
  });
});

describe('participant metrics', () => {
  it("registers votes, outcomes, in-doubt and connected in the service's registry", async () => {
    const { Registry } = await import('prom-client');
    const { TestCluster } = await import('../support/cluster.js');
    const cluster = await TestCluster.start();
    try {
      const registry = new Registry();
      const [a, b] = [uniqueName('pm-a'), uniqueName('pm-b')];
      await cluster.participant(a, 'yes', { metrics: { registry } });
      const aYesVotes = async (): Promise<number | undefined> => sample(await registry.metrics(), 'verdict_participant_votes_total', `{participant="${a}",vote="yes"}`);
      // b's NO waits until a has voted: otherwise the abort can reach a before its prepare ran,
      // and a never votes in the second transaction.
      await cluster.participant(
        b,
        async (_tx, payload) => {
          if (payload !== 'no') return 'yes';
          await waitFor('a to vote yes in the second transaction', async () => ((await aYesVotes()) === 2 ? true : undefined));
          return 'no';
        },
        { metrics: { registry } },
      );
      await cluster.client.transact([{ participant: a }, { participant: b }]);
      await assert.rejects(cluster.client.transact([{ participant: a }, { participant: b, payload: Buffer.from('no') }]), TransactionAbortedError);
      const text = await waitFor('both participants to finish both transactions', async () => {
        const t = await registry.metrics();
        return sample(t, 'verdict_participant_outcomes_total', `{participant="${a}",outcome="aborted"}`) === 1 ? t : undefined;
      });
      assert.equal(sample(text, 'verdict_participant_votes_total', `{participant="${a}",vote="yes"}`), 2);
      assert.equal(sample(text, 'verdict_participant_votes_total', `{participant="${b}",vote="yes"}`), 1);
      assert.equal(sample(text, 'verdict_participant_votes_total', `{participant="${b}",vote="no"}`), 1);
      assert.equal(sample(text, 'verdict_participant_outcomes_total', `{participant="${a}",outcome="committed"}`), 1);
      assert.equal(sample(text, 'verdict_participant_connected', `{participant="${a}"}`), 1);
      assert.equal(sample(text, 'verdict_participant_in_doubt', `{participant="${b}"}`), 0);
      await cluster.participants.get(a)?.close();
      assert.equal(sample(await registry.metrics(), 'verdict_participant_connected', `{participant="${a}"}`), 0);
    } finally {
      await cluster.close();
    }
  });
});

describe('verdict/metrics', () => {
  it('gives an embedded coordinator the metrics of --metrics, in the registry the service passes', async () => {
    const { Registry } = await import('prom-client');
    const { CoordinatorMetrics } = await import('../../src/metrics/index.js');
    const { TestCluster } = await import('../support/cluster.js');
    const registry = new Registry();
    const metrics = new CoordinatorMetrics(registry);
    const cluster = await TestCluster.start({ observer: metrics.observer });
    try {
      metrics.attach(cluster.coordinator);
      const name = uniqueName('em-a');
      await cluster.participant(name, 'yes');
      await cluster.client.transact([{ participant: name }]);
      const text = await registry.metrics();
      assert.equal(sample(text, 'verdict_transactions_total', '{outcome="committed",reason=""}'), 1);
      assert.ok((sample(text, 'verdict_log_fsyncs_total', '') ?? 0) >= 1, 'the forced write of the commit is counted');
    } finally {
      await cluster.close();
    }
  });
});
