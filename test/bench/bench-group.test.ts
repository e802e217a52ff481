// `verdict bench --group` end to end on a tiny configuration: LevelDB and a coordinator group on a
// real throwaway 3-member etcd in the same run, and the failover of a group of three real member
// processes over two leader SIGKILLs; and the same over mutual TLS, the group's member serving the
// bench's throwaway PKI as the LevelDB coordinator does. The report's shape and sanity are
// asserted, never its performance: this machine is shared and noisy.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe, it } from 'node:test';

import { CommanderError } from 'commander';
import { benchConfigurations, formatFailover, formatTable, resolveBenchOptions, runBench, type BenchResult } from '../../src/bench/index.js';
import { parseBenchFlags } from '../support/bench-flags.js';
import { startCli } from '../support/cli.js';

/** Generous: etcd, two measurements' children and three member processes through tsx on a busy 2-core machine. */
const TEST_TIMEOUT_MS = 300_000;
const KILLS = 2;

describe('verdict bench --group', () => {
  it('measures LevelDB and a coordinator group on etcd in one run, and the failover of its leader', { timeout: TEST_TIMEOUT_MS }, async () => {
    const progress: string[] = [];
    const results = await runBench({
      participants: [2],
      inflight: [4],
      durationS: 1,
      warmupS: 0.5,
      ceiling: false,
      group: true,
      kills: KILLS,
      onProgress: (line) => progress.push(line),
    });

    assert.deepEqual(
      results.map((r) => [r.participants, r.inflight, r.decisionLog]),
      [
        [2, 4, 'leveldb'],
        [2, 4, 'etcd'],
      ],
    );
    const [level, etcd] = results as [BenchResult, BenchResult];
    for (const r of results) {
      const where = r.decisionLog;
      assert.ok(r.committedPerSec > 0, `${where}: committed something`);
      assert.equal(r.errorsPerSec, 0, `${where}: no call failed (${r.firstError ?? ''})`);
      assert.ok(r.p50Ms > 0 && r.p50Ms <= r.p99Ms, `${where}: p50 ${r.p50Ms} ≤ p99 ${r.p99Ms}`);
      // The group's member counts etcd transactions as its log batches.
      assert.ok(Number.isFinite(r.coordinatorBatchesPerTx) && r.coordinatorBatchesPerTx > 0, `${where}: log batches per tx ${r.coordinatorBatchesPerTx}`);
    }
    assert.equal(level.etcdCpuUsPerTx, null, 'no etcd in the LevelDB configuration');
    const etcdCpu = etcd.etcdCpuUsPerTx ?? Number.NaN;
    assert.ok(Number.isFinite(etcdCpu) && etcdCpu >= 0, `the etcd members' CPU is read (${etcdCpu} µs/tx)`);
    assert.ok(etcd.totalCpuUsPerTx >= etcdCpu + etcd.coordinatorCpuUsPerTx, 'the total counts etcd too');
    assert.equal(level.vsLevelDb, undefined);
    assert.equal(level.failover, undefined, 'the failover belongs to the group');
    assert.equal(etcd.vsLevelDb?.committedPerSec, etcd.committedPerSec / level.committedPerSec);
    assert.equal(etcd.vsLevelDb?.p99Ms, etcd.p99Ms / level.p99Ms);

    const f = etcd.failover;
    assert.ok(f, 'the group result carries the failover');
    assert.equal(f.leaseTtlS, 1, 'a 1 s lease by default');
    assert.equal(f.members, 3);
    assert.equal(f.timesMs.length, KILLS, 'one time per kill');
    for (const t of f.timesMs) assert.ok(Number.isFinite(t) && t > 0, `a measured, positive time (${t} ms)`);
    assert.ok(f.p50Ms > 0 && f.p50Ms <= f.worstMs && f.worstMs === Math.max(...f.timesMs), `p50 ${f.p50Ms} ≤ worst ${f.worstMs}`);
    assert.equal(progress.filter((l) => /^failover \d+\/2: /.test(l)).length, KILLS, 'a progress line per kill');

    const [header, , ...rows] = formatTable(results).split('\n');
    assert.match(header ?? '', / log .* log batches\/tx .* × leveldb$/);
    assert.match(rows[0] ?? '', / leveldb .* -$/);
    assert.match(rows[1] ?? '', new RegExp(` etcd .* ${etcd.vsLevelDb?.committedPerSec.toFixed(2)}×$`));
    assert.match(formatFailover(results), /^failover \(SIGKILL of the leader of a 3-member group, lease 1 s; .*\): p50 \d+ ms, worst \d+ ms over 2 kills \(\d+, \d+ ms\)$/);
    // The JSON contract of --json: still an array of results, the group's with its failover.
    const json = JSON.parse(JSON.stringify(results)) as Record<string, unknown>[];
    assert.equal(json[1]?.['decisionLog'], 'etcd');
    assert.equal(typeof json[1]?.['coordinatorBatchesPerTx'], 'number');
    assert.deepEqual(Object.keys(json[1]?.['failover'] as object).sort(), ['leaseTtlS', 'members', 'p50Ms', 'timesMs', 'worstMs']);
  });

  it('--group --tls: LevelDB and the group commit over mutual TLS, and the failover group serves it too', { timeout: TEST_TIMEOUT_MS }, async () => {
    const progress: string[] = [];
    const results = await runBench({
      participants: [1],
      inflight: [2],
      durationS: 0.5,
      warmupS: 0,
      ceiling: false,
      group: true,
      tls: 'on',
      kills: 1,
      onProgress: (line) => progress.push(line),
    });
    assert.deepEqual(
      results.map((r) => [r.transport, r.decisionLog]),
      [
        ['tls', 'leveldb'],
        ['tls', 'etcd'],
      ],
    );
    // The load generator and the participant dial mutual TLS: a member serving anything else would commit nothing.
    for (const r of results) {
      assert.ok(r.committedPerSec > 0, `${r.decisionLog} over TLS: committed something`);
      assert.equal(r.errorsPerSec, 0, `${r.decisionLog} over TLS: no call failed (${r.firstError ?? ''})`);
    }
    assert.equal(results[1]?.failover?.timesMs.length, 1, 'the failover over TLS measured its kill');
    assert.ok(progress.some((l) => /^failover: a 3-member group \(lease 1 s, mutual TLS\)/.test(l)), progress.join('\n'));
  });

  it('runs LevelDB only, with no failover and no decision-log columns, without --group', () => {
    const options = resolveBenchOptions({ participants: [3], inflight: [64] });
    assert.deepEqual(options.logs, ['leveldb']);
    assert.equal(options.kills, 0);
    assert.deepEqual(
      benchConfigurations(resolveBenchOptions({ participants: [1, 3], inflight: [64], group: true })).map((c) => `${c.participants}/${c.log}`),
      ['1/leveldb', '1/etcd', '3/leveldb', '3/etcd'],
      'each configuration on LevelDB, then on the group',
    );
    assert.equal(resolveBenchOptions({ group: true }).kills, 5, '5 kills by default');
    assert.deepEqual(
      benchConfigurations(resolveBenchOptions({ participants: [1], inflight: [64], group: true, tls: 'compare' })).map((c) => `${c.transport}/${c.log}`),
      ['plaintext/leveldb', 'plaintext/etcd', 'tls/leveldb', 'tls/etcd'],
      'with --tls-compare, each log in plaintext and over TLS',
    );
  });

  for (const [options, why] of [
    [{ kills: 2 }, /need group/],
    [{ leaseTtlS: 2 }, /need group/],
    [{ group: true, baseline: true }, /cannot be combined with baseline/],
    [{ group: true, kills: -1 }, /kills must be an integer from 0/],
    [{ group: true, kills: 1.5 }, /kills must be an integer from 0/],
    [{ group: true, leaseTtlS: 0 }, /leaseTtlS must be a whole number of seconds/],
  ] as const) {
    it(`refuses ${JSON.stringify(options)}`, () => {
      assert.throws(() => resolveBenchOptions(options), (e: unknown) => e instanceof RangeError && why.test(e.message));
    });
  }


  for (const [args, why] of [
    [['--kills', '2'], /^--kills measures the failover of a coordinator group: it needs --group$/],
    [['--lease-ttl', '2s'], /^--lease-ttl measures the failover of a coordinator group: it needs --group$/],
    [['--group', '--kills', 'two'], /--kills <n>.*is invalid\. expected an integer from 0 to 100$/],
    [['--group', '--kills', '101'], /expected an integer from 0 to 100$/],
    [['--group', '--lease-ttl', '1500ms'], /^--lease-ttl 1500ms is not a whole number of seconds/],
    [['--group', '--lease-ttl', '500ms'], /--lease-ttl.*expected a duration from 1s to 10m$/],
    [['--group', '--baseline'], /'--group' cannot be used with option '--baseline'/],
  ] as const) {
    it(`refuses ${args.join(' ')} with one line, before anything runs`, async () => {
      const e = await parseBenchFlags(args);
      assert.ok(e instanceof CommanderError, `a commander error (got ${String(e)})`);
      assert.doesNotMatch(e.message, /\n/);
      assert.match(e.message.replace(/^error: /, ''), why);
    });
  }

  it('says in one line that the group needs etcd when etcd does not start, and exits 1', { timeout: 60_000 }, async () => {
    const bin = mkdtempSync(join(tmpdir(), 'verdict-fake-etcd-'));
    try {
      writeFileSync(join(bin, 'etcd'), '#!/bin/sh\necho "this etcd refuses to start" >&2\nexit 1\n', { mode: 0o755 });
      const cli = startCli(['bench', '--group', '--kills', '0', '--participants', '1', '--inflight', '1', '--duration', '1s', '--no-ceiling'], {
        PATH: `${bin}${delimiter}${process.env['PATH'] ?? ''}`,
      });
      assert.deepEqual(await cli.exited, { code: 1, signal: null });
      const last = cli.stderr().trimEnd().split('\n').at(-1) ?? '';
      assert.match(last, /^verdict: the coordinator group of --group needs etcd: etcd could not be started: .*this etcd refuses to start$/);
      assert.doesNotMatch(cli.stderr(), /unexpected error|\n {4}at /, 'no stack trace');
      assert.equal(cli.stdout(), '');
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('prints a refused flag as one line and exits 1 (the real CLI)', { timeout: 60_000 }, async () => {
    const cli = startCli(['bench', '--kills', '3']);
    assert.deepEqual(await cli.exited, { code: 1, signal: null });
    assert.equal(cli.stderr(), 'verdict: --kills measures the failover of a coordinator group: it needs --group\n');
    assert.equal(cli.stdout(), '');
  });
});
