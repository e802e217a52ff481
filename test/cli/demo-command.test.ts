// The bank demo end to end: transfers commit and abort (overdrafts through a NO vote), and the
// audit finds the money conserved and every transfer all-or-nothing, both with an embedded
// coordinator and against a coordinator running as its own process.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';

import { runDemo } from '../../src/demo/index.js';
import { startCli, startCoordinatorCli, type CliProcess } from '../support/cli.js';
import { tempDir, testLogger } from '../support/cluster.js';

const TRANSFERS = 200;

describe('verdict demo', () => {
  const dir = tempDir('verdict-demo-');
  const running: CliProcess[] = [];

  afterEach(() => {
    for (const cli of running.splice(0)) cli.kill();
  });
  after(() => dir.cleanup());

  it('commits and aborts transfers with an embedded coordinator, and the invariant holds', async () => {
    const dataDir = join(dir.path, 'embedded');
    const report = await runDemo({ transfers: TRANSFERS, concurrency: 16, banks: 3, dataDir, logger: testLogger });

    assert.deepEqual(report.violations, []);
    assert.ok(report.embedded);
    assert.equal(report.committed + report.aborted, TRANSFERS);
    assert.equal(report.unknown, 0);
    assert.ok(report.committed > 0, 'some transfers committed');
    // About one transfer in ten overdraws on purpose (none in 200 has odds below 1e-9).
    assert.ok(report.overdrafts > 0 && report.aborted >= report.overdrafts, 'every overdraft aborted');
    assert.equal(report.totalAfter, report.totalBefore);
    assert.ok(report.latencyMs.p50 > 0 && report.latencyMs.p50 <= report.latencyMs.p99);
    // A clean run leaves nothing behind.
    assert.ok(!report.dataKept);
    assert.deepEqual(existsSync(dataDir) ? readdirSync(dataDir) : [], []);
  });

  it('runs every connection over mutual TLS with throwaway certificates (--tls), and the invariant holds', async () => {
    const dataDir = join(dir.path, 'tls');
    const report = await runDemo({ transfers: TRANSFERS / 2, concurrency: 16, banks: 3, dataDir, logger: testLogger, tls: true, keepData: true });

    assert.deepEqual(report.violations, []);
    assert.ok(report.tls);
    assert.ok(report.committed > 0, 'some transfers committed');
    assert.equal(report.committed + report.aborted, TRANSFERS / 2);
    assert.equal(report.totalAfter, report.totalBefore);
    // The coordinator required client certificates: each bank and the initiator had one of its own.
    const issued = readdirSync(join(report.runDir, 'tls')).filter((f) => f.endsWith('.pem')).sort();
    assert.deepEqual(issued, ['ca.pem', 'coordinator.pem', 'initiator-demo.pem', ...report.banks.map((b) => `participant-${b}.pem`)].sort());
  });

  it('says so in its summary when run with --tls', async () => {
    const demo = startCli(['demo', '--tls', '--transfers', '40', '--data', join(dir.path, 'tls-cli')]);
    running.push(demo);
    const { code } = await demo.exited;
    assert.equal(code, 0, `stdout: ${demo.stdout()}; stderr: ${demo.stderr()}`);
    assert.match(demo.stdout(), /embedded coordinator at 127\.0\.0\.1:\d+ \(mutual TLS\)$/m);
    assert.match(demo.stdout(), /^OK: /m);
  });

  it('refuses --tls with --coordinator in one line, exit 1', async () => {
    const demo = startCli(['demo', '--tls', '--coordinator', '127.0.0.1:1', '--data', join(dir.path, 'refused')]);
    running.push(demo);
    const { code } = await demo.exited;
    assert.equal(code, 1);
    assert.equal(demo.stderr(), 'verdict: --tls makes throwaway certificates for an embedded coordinator: it cannot be used with --coordinator\n');
    assert.ok(!existsSync(join(dir.path, 'refused')), 'nothing was created');
  });

  it('runs against a coordinator started separately with --coordinator, and exits 0', async () => {
    const { cli: coordinator, address } = await startCoordinatorCli(join(dir.path, 'coordinator'));
    running.push(coordinator);

    const demo = startCli(['demo', '--transfers', String(TRANSFERS), '--concurrency', '16', '--coordinator', address, '--data', join(dir.path, 'external')]);
    running.push(demo);
    const { code } = await demo.exited;
    const out = demo.stdout();
    assert.equal(code, 0, `the demo passed; stdout: ${out}; stderr: ${demo.stderr()}`);

    assert.match(out, new RegExp(`3 banks .* coordinator at ${address.replace(/\./g, '\\.')}$`, 'm'));
    assert.doesNotMatch(out, /embedded/);
    const count = (row: string): number => Number(out.match(new RegExp(`^  ${row} +(\\d+)`, 'm'))?.[1]);
    assert.ok(count('committed') > 0, 'some transfers committed');
    assert.ok(count('aborted') > 0, 'some transfers aborted');
    assert.equal(count('committed') + count('aborted'), TRANSFERS);
    assert.equal(count('violations'), 0);
    assert.match(out, /^ {2}total balance +(\d+) -> \1$/m);
    assert.match(out, /^ {2}throughput +\d+\.\d {2}tx\/s$/m);
    assert.match(out, /^ {2}latency p99 +\d+\.\d {2}ms$/m);

    coordinator.child.kill('SIGTERM');
    assert.deepEqual(await coordinator.exited, { code: 0, signal: null });
  });
});
