// `verdict chaos` end to end (a short run, every fault kind), the schedule's determinism, and the
// harness on correct participants: no violation.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { FAULT_KINDS, buildSchedule, parseFaultKinds, type ScheduleOptions } from '../../src/faults/chaos-schedule.js';
import { assertNoViolations, runChaos } from '../../src/testing/index.js';
import { ledgerInvariant, ledgerParticipant, ledgerTransaction } from './broken-participants.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

describe('chaos schedule', () => {
  const options: ScheduleOptions = {
    seed: 7,
    durationMs: 30_000,
    kinds: FAULT_KINDS,
    processes: ['coordinator', 'bank-1', 'bank-2'],
    links: ['bank-1', 'bank-2'],
    failpoints: { coordinator: ['coordinator.after-votes=crash'], 'bank-1': ['participant.before-ack=crash'], 'bank-2': ['participant.before-ack=crash'] },
  };

  it('is the same for the same seed, different for another, and places every kind', () => {
    assert.deepEqual(buildSchedule(options), buildSchedule(options));
    assert.notDeepEqual(buildSchedule(options), buildSchedule({ ...options, seed: 8 }));
    const kinds = new Set(buildSchedule(options).map((e) => e.kind));
    assert.deepEqual([...kinds].sort(), [...FAULT_KINDS].sort());
  });

  it('never overlaps two process faults, or two link faults, on one target', () => {
    const busy = new Map<string, number>();
    for (const e of buildSchedule(options)) {
      const key = `${['kill', 'pause', 'failpoint'].includes(e.kind) ? 'process' : 'link'}:${e.target}`;
      assert.ok((busy.get(key) ?? 0) <= e.atMs, `${key} faulted again at ${e.atMs}`);
      busy.set(key, e.atMs + e.holdMs);
    }
  });

  it('parses fault lists and refuses unknown kinds', () => {
    assert.deepEqual(parseFaultKinds('kill, pause,kill'), ['kill', 'pause']);
    assert.deepEqual(parseFaultKinds('all'), [...FAULT_KINDS]);
    assert.throws(() => parseFaultKinds('kill,meteor'), /meteor/);
  });
});

describe('verdict chaos', () => {
  it('runs the bank demo under every kind of fault, finds nothing wrong and writes its report', { timeout: 120_000 }, () => {
    const out = mkdtempSync(join(tmpdir(), 'verdict-chaos-test-'));
    const run = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'chaos', '--duration', '10s', '--seed', '3', '--out', out, '--quiet'], {
      encoding: 'utf8',
      timeout: 110_000,
    });
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as {
      ok: boolean;
      seed: number;
      faultCounts: Record<string, number>;
      violations: unknown[];
      txs: { finalCommitted: number };
    };
    assert.equal(run.status, 0, `exit ${run.status}\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /OK: no violation/);
    assert.equal(report.ok, true);
    assert.equal(report.seed, 3);
    assert.ok(report.txs.finalCommitted > 0);
    for (const kind of FAULT_KINDS) assert.ok(report.faultCounts[kind]! > 0, `no ${kind} fault injected: ${JSON.stringify(report.faultCounts)}`);
    assert.ok(existsSync(join(out, 'history.jsonl')));
    rmSync(out, { recursive: true, force: true });
  });

  it('refuses bad flags with one line', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'chaos', '--faults', 'kill,meteor'], { encoding: 'utf8' });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^verdict: .*meteor/);
  });
});

describe('runChaos on correct participants', () => {
  it('finds no violation under every kind of fault', { timeout: 90_000 }, async () => {
    const report = await runChaos({
      participants: [ledgerParticipant('ledger-a'), ledgerParticipant('ledger-b'), ledgerParticipant('ledger-c')],
      transaction: ledgerTransaction,
      invariant: ledgerInvariant,
      duration: 6_000,
      seed: 11,
    });
    assertNoViolations(report);
    assert.ok(report.txs.finalCommitted > 0);
    assert.ok(Object.values(report.faultCounts).reduce((a, b) => a + b, 0) >= 4, JSON.stringify(report.faultCounts));
    assert.ok(report.files && existsSync(report.files.report));
    rmSync(report.dir, { recursive: true, force: true });
  });
});

describe('chaos with mutual TLS', () => {
  it('verdict chaos --tls: every bank and the workload present certificates, and kills, resets and failpoints find nothing wrong', { timeout: 120_000 }, () => {
    const out = mkdtempSync(join(tmpdir(), 'verdict-chaos-tls-test-'));
    const run = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'chaos', '--tls', '--duration', '6s', '--seed', '5', '--faults', 'kill,reset,drop,failpoint', '--out', out, '--quiet'], {
      encoding: 'utf8',
      timeout: 110_000,
    });
    assert.equal(run.status, 0, `exit ${run.status}\n${run.stdout}\n${run.stderr}`);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { ok: boolean; tls: boolean; recoveries: number; txs: { finalCommitted: number } };
    assert.match(run.stdout, /\[bank, mutual TLS\]/);
    assert.equal(report.ok, true);
    assert.equal(report.tls, true);
    assert.ok(report.txs.finalCommitted > 0);
    assert.ok(report.recoveries > 0, 'a process was killed and came back over TLS');
    // Every incarnation of the coordinator served mutual TLS (it logs how it serves at each start).
    const starts = readFileSync(join(out, 'data', 'coordinator.log'), 'utf8').split('\n').filter((l) => l.includes('"coordinator started"'));
    assert.ok(starts.length > 0);
    for (const line of starts) assert.equal((JSON.parse(line) as { tls: string }).tls, 'mutual');
    rmSync(out, { recursive: true, force: true });
  });

  it('runChaos({ tls: true }): your participants and the workload run over mutual TLS under every kind of fault', { timeout: 90_000 }, async () => {
    const report = await runChaos({
      participants: [ledgerParticipant('ledger-a'), ledgerParticipant('ledger-b')],
      transaction: ledgerTransaction,
      invariant: ledgerInvariant,
      duration: 5_000,
      seed: 12,
      tls: true,
    });
    assertNoViolations(report);
    assert.equal(report.tls, true);
    assert.ok(report.txs.finalCommitted > 0);
    const starts = readFileSync(join(report.dir, 'coordinator.log'), 'utf8').split('\n').filter((l) => l.includes('"coordinator started"'));
    for (const line of starts) assert.equal((JSON.parse(line) as { tls: string }).tls, 'mutual');
    assert.ok(existsSync(join(report.dir, 'tls', 'participant-ledger-a.pem')) && existsSync(join(report.dir, 'tls', 'initiator-workload.pem')));
    rmSync(report.dir, { recursive: true, force: true });
  });
});
