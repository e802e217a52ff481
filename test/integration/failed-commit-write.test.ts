// A failed write is never a decision (P20). LevelDB can fail a synced write after the record
// reached its log file (and a reopen still finds it): the failpoint below fails the COMMIT write
// exactly so, after it landed. The coordinator must not read that as "not written, so abort": the
// initiator hears OUTCOME_UNKNOWN with the tx id, no participant hears any outcome, the coordinator
// stops serving, and the next start decides from what the log holds: COMMITTED, everywhere.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { VerdictClient } from '../../src/client/client.js';
import { armFailpoint, disarmFailpoint } from '../../src/common/failpoints.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import { freePort, TestCluster, uniqueName, waitFor } from '../support/cluster.js';

const codeOf = (e: unknown): string => (e instanceof VerdictError ? e.code : `not a VerdictError: ${String(e)}`);

describe('a COMMIT write that fails after it landed', () => {
  const clusters: TestCluster[] = [];
  after(async () => {
    disarmFailpoint();
    for (const c of clusters) await c.close();
  });

  it('answers OUTCOME_UNKNOWN with the tx id, stops the coordinator, and commits everywhere after a restart', async () => {
    const port = await freePort();
    const listen = `127.0.0.1:${port}`;
    const cluster = await TestCluster.start({ listen });
    clusters.push(cluster);
    const [a, b] = [uniqueName('bank-a'), uniqueName('bank-b')];
    const pa = await cluster.participant(a);
    const pb = await cluster.participant(b);
    const stopped = once(cluster.coordinator, 'error');

    armFailpoint('coordinator.commit-record-write-fails', { kind: 'error', message: 'EIO after the record reached the log' });
    const error = await cluster.client.transact([{ participant: a }, { participant: b }]).then(
      () => undefined,
      (e: unknown) => e,
    );
    disarmFailpoint();

    assert.equal(codeOf(error), ErrorCode.OUTCOME_UNKNOWN, `expected OUTCOME_UNKNOWN, got ${String(error)}`);
    const txId = (error as VerdictError).txId;
    assert.ok(txId, 'OUTCOME_UNKNOWN must carry the tx id: the caller asks about it next');
    const [why] = (await stopped) as [Error];
    assert.match(why.message, /decision log write failed/);
    await waitFor('the coordinator to stop serving', () => cluster.coordinator.state === 'closed');
    // Nobody heard an outcome: no commit or abort hook ran.
    assert.deepEqual(
      [...pa.calls, ...pb.calls].filter((c) => c.hook !== 'prepare'),
      [],
      'a participant heard an outcome from a coordinator whose log write failed',
    );

    // The next incarnation reads the COMMIT record that did land, and re-drives it.
    await cluster.startCoordinator({ listen });
    await waitFor('both banks to commit', () => pa.calls.some((c) => c.hook === 'commit' && c.txId === txId) && pb.calls.some((c) => c.hook === 'commit' && c.txId === txId), 20_000);
    const view = await cluster.client.get(txId);
    assert.equal(view.outcome, 'committed');
    assert.deepEqual(
      [...pa.calls, ...pb.calls].filter((c) => c.hook === 'abort'),
      [],
      'an abort hook ran: atomicity is broken',
    );
  });

  it('in a real coordinator process: exits 1 with one line, and the restarted process commits the transaction', async () => {
    const cluster = await TestCluster.start();
    clusters.push(cluster);
    // The in-process coordinator only hosts nothing here: close it, the real process takes its data directory.
    await cluster.coordinator.close();
    const port = await freePort();
    const listen = `127.0.0.1:${port}`;
    const dataDir = join(cluster.dir.path, 'process-coordinator');
    const startProcess = (failpoints: string) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'coordinator', '--listen', listen, '--data', dataDir, '--log-level', 'silent'], {
        env: { ...process.env, VERDICT_FAILPOINTS: failpoints },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      return { child, exited, out: () => stdout, err: () => stderr };
    };
    const first = startProcess('coordinator.commit-record-write-fails=error');
    try {
      await waitFor('the coordinator process to listen', () => first.out().includes('listening on'), 30_000);
      const client = new VerdictClient(listen);
      const [a, b] = [uniqueName('bank-a'), uniqueName('bank-b')];
      const pa = await cluster.participant(a, 'yes', { coordinator: listen });
      const pb = await cluster.participant(b, 'yes', { coordinator: listen });
      const error = await client.transact([{ participant: a }, { participant: b }]).then(
        () => undefined,
        (e: unknown) => e,
      );
      client.close();
      assert.equal(codeOf(error), ErrorCode.OUTCOME_UNKNOWN, `expected OUTCOME_UNKNOWN, got ${String(error)}`);
      const txId = (error as VerdictError).txId as string;
      assert.ok(txId);
      const [code] = await first.exited;
      assert.equal(code, 1, `the coordinator exited ${code}: ${first.err()}`);
      const lines = first.err().trim().split('\n');
      assert.equal(lines.length, 1, `one line expected on stderr, got:\n${first.err()}`);
      assert.match(lines[0] ?? '', /^verdict: the decision log write failed \(.*\); the coordinator stopped/);
      assert.deepEqual([...pa.calls, ...pb.calls].filter((c) => c.hook !== 'prepare'), []);

      const second = startProcess('');
      try {
        await waitFor('both banks to commit after the restart', () => pa.calls.some((c) => c.hook === 'commit' && c.txId === txId) && pb.calls.some((c) => c.hook === 'commit' && c.txId === txId), 30_000);
        const again = new VerdictClient(listen);
        try {
          assert.equal((await again.get(txId)).outcome, 'committed');
        } finally {
          again.close();
        }
        assert.deepEqual([...pa.calls, ...pb.calls].filter((c) => c.hook === 'abort'), []);
      } finally {
        second.child.kill('SIGKILL');
        await second.exited;
      }
    } finally {
      first.child.kill('SIGKILL');
    }
  });
});
