// `verdict chaos --group` and `runChaos({ group })` against a real coordinator group on a real
// 3-member etcd: the leader is SIGKILLed (at least twice) and SIGSTOPped, another member takes over
// each time, and the history check passes. What is asserted is what happened: the members' exits
// by signal, the leader key as etcd named it in turn, the takeovers the injector waited for. With
// --tls, every member serves mutual TLS from the run's throwaway PKI, as the report then says.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { ChaosReport } from '../../src/faults/chaos-report.js';
import { ALL_FAULT_KINDS, FAULT_KINDS, LEADER_TARGET, buildSchedule, parseFaultKinds } from '../../src/faults/chaos-schedule.js';
import { groupScheduleTargets } from '../../src/faults/chaos.js';
import { assertNoViolations, runChaos } from '../../src/testing/index.js';
import { tempDir } from '../support/cluster.js';
import { ledgerInvariant, ledgerParticipant, ledgerTransaction } from './broken-participants.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
/** Leader kills every run must really carry out, each followed by another member's takeover. */
const MIN_LEADER_KILLS = 2;

/**
 * Asserts that at least `min` leader kills happened: each SIGKILLed the member etcd named leader
 * (its incarnation ended by SIGKILL), and etcd then named the member that served next.
 */
function assertLeaderKills(report: ChaosReport, min: number): void {
  const group = report.group;
  assert.ok(group, 'the report describes the group');
  const kills = report.faults.filter((f) => f.kind === 'leader-kill' && f.status === 'injected');
  assert.ok(kills.length >= min, `${kills.length} leader kill(s) carried out: ${JSON.stringify(report.faults.map((f) => f.detail))}`);
  const sigkills = new Map<string, number>();
  for (const e of group.exits) if (e.signal === 'SIGKILL' && e.cause === 'killed') sigkills.set(e.member, (sigkills.get(e.member) ?? 0) + 1);
  const killsOf = new Map<string, number>();
  for (const k of kills) {
    assert.ok(k.member && group.members.includes(k.member), `leader kill #${k.seq} names a member: ${k.member}`);
    assert.ok(k.failover, `leader kill #${k.seq} of ${k.member}: no member took over (${k.note})`);
    assert.notEqual(k.failover.to, k.member);
    killsOf.set(k.member, (killsOf.get(k.member) ?? 0) + 1);
    // etcd named the killed member, then the one that took over, in that order.
    const i = group.leaders.findIndex((l, j) => l === k.member && group.leaders[j + 1] === k.failover?.to);
    assert.ok(i >= 0, `etcd never named ${k.member} then ${k.failover.to}: ${group.leaders.join(' → ')}`);
  }
  for (const [member, n] of killsOf) assert.ok((sigkills.get(member) ?? 0) >= n, `${member} was leader-killed ${n} time(s) but ended by SIGKILL ${sigkills.get(member) ?? 0}`);
  assert.ok(group.failovers >= kills.length, `${group.failovers} failover(s) seen for ${kills.length} leader kill(s)`);
}

/** This process's live children, `pid command` each (a run must leave none: no member, bank or etcd). */
function children(): string[] {
  const out: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const ppid = /^PPid:\s+(\d+)$/m.exec(status)?.[1];
      const state = /^State:\s+(\S)/m.exec(status)?.[1];
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      // tsx's esbuild service is the test runner's own.
      if (Number(ppid) === process.pid && state !== 'Z' && !command.includes('/esbuild ')) out.push(`${entry} ${command}`);
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

describe('the schedule of a group run', () => {
  const banks = ['bank-1', 'bank-2', 'bank-3'];
  const failpoints = Object.fromEntries(banks.map((b) => [b, ['participant.before-ack=crash']]));

  it('aims the coordinator\'s faults and every link fault at the leader, failpoints at banks only, and places the leader faults', () => {
    const events = buildSchedule({ seed: 9, durationMs: 60_000, kinds: ALL_FAULT_KINDS, failpoints, ...groupScheduleTargets(banks) });
    assert.deepEqual(new Set(events.map((e) => e.kind)), new Set(ALL_FAULT_KINDS));
    for (const e of events) {
      if (e.kind === 'leader-kill' || e.kind === 'leader-pause' || !['kill', 'pause', 'failpoint'].includes(e.kind)) assert.equal(e.target, LEADER_TARGET, JSON.stringify(e));
      else if (e.kind === 'failpoint') assert.ok(banks.includes(e.target), JSON.stringify(e));
      else assert.ok(e.target === LEADER_TARGET || banks.includes(e.target), JSON.stringify(e));
    }
  });

  it('never places a leader fault in a run without a group', () => {
    const events = buildSchedule({ seed: 9, durationMs: 60_000, kinds: ALL_FAULT_KINDS, failpoints, processes: ['coordinator', ...banks], links: banks, hub: 'coordinator' });
    assert.ok(events.length > 0);
    assert.ok(events.every((e) => (FAULT_KINDS as readonly string[]).includes(e.kind)));
  });
});

describe('chaos against a coordinator group (real processes, real etcd)', () => {
  it('verdict chaos --group: the leader is killed twice and paused, another member takes over each time, and the history check passes', { timeout: 90_000 }, () => {
    const out = tempDir('verdict-chaos-group-test-');
    try {
      const started = Date.now();
      const run = spawnSync(
        process.execPath,
        ['--import', 'tsx', CLI, 'chaos', '--group', '--faults', 'leader-kill,leader-pause,kill,partition', '--duration', '12s', '--seed', '3', '--out', out.path, '--quiet'],
        { encoding: 'utf8', timeout: 85_000 },
      );
      console.log(`# verdict chaos --group took ${Date.now() - started} ms`);
      assert.equal(run.status, 0, `exit ${run.status}\n${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, /\[bank, coordinator group of 3\]/);
      assert.match(run.stdout, /OK: no violation/);
      const report = JSON.parse(readFileSync(join(out.path, 'report.json'), 'utf8')) as ChaosReport & { ok: boolean };
      assert.equal(report.ok, true);
      assert.deepEqual(report.violations, []);
      assert.ok(report.txs.finalCommitted > 0);
      assertLeaderKills(report, MIN_LEADER_KILLS);
      const pauses = report.faults.filter((f) => f.kind === 'leader-pause' && f.status === 'injected');
      assert.ok(pauses.length >= 1 && pauses.every((p) => p.failover && p.failover.to !== p.member), JSON.stringify(pauses));
      // The paused leader stepped down and kept running: a pause ends no incarnation.
      assert.ok(report.group?.exits.every((e) => e.cause !== 'unexpected'));
    } finally {
      out.cleanup();
    }
  });

  it('runChaos({ group }): your participants follow the leader through leader kills, and the history check passes', { timeout: 90_000 }, async () => {
    const dir = tempDir('verdict-chaos-group-harness-');
    try {
      const started = Date.now();
      const report = await runChaos({
        participants: [ledgerParticipant('ledger-a'), ledgerParticipant('ledger-b')],
        transaction: ledgerTransaction,
        invariant: ledgerInvariant,
        group: true,
        faults: ['leader-kill', 'kill', 'delay'],
        duration: 9_000,
        seed: 12,
        dir: dir.path,
      });
      console.log(`# runChaos({ group }) took ${Date.now() - started} ms`);
      assertNoViolations(report);
      assert.ok(report.txs.finalCommitted > 0);
      assertLeaderKills(report, MIN_LEADER_KILLS);
      // Every member, and etcd, is gone once the run returned.
      assert.deepEqual(children(), []);
    } finally {
      dir.cleanup();
    }
  });

  it('refuses, with one line, leader faults without a group', async () => {
    assert.throws(() => parseFaultKinds('kill,leader-kill'), /leader-kill needs a coordinator group/);
    assert.deepEqual(parseFaultKinds('all', { group: true }).slice(-2), ['leader-kill', 'leader-pause']);
    const noGroup = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'chaos', '--faults', 'leader-kill'], { encoding: 'utf8' });
    assert.equal(noGroup.status, 1);
    assert.match(noGroup.stderr, /^verdict: fault kind leader-kill needs a coordinator group \(--group\)\n$/);
    await assert.rejects(runChaos({ participants: [ledgerParticipant('ledger-a')], faults: ['leader-pause'] }), /leader-pause needs a coordinator group/);
  });
});

describe('chaos against a coordinator group serving mutual TLS (real processes, real etcd)', () => {
  it('verdict chaos --group --tls: every member serves mutual TLS through its proxy, a new leader serves it after a leader kill, and the history check passes', { timeout: 60_000 }, () => {
    const out = tempDir('verdict-chaos-group-tls-test-');
    try {
      const started = Date.now();
      const run = spawnSync(
        process.execPath,
        ['--import', 'tsx', CLI, 'chaos', '--group', '--tls', '--faults', 'leader-kill,kill,reset', '--duration', '6s', '--seed', '3', '--out', out.path, '--quiet'],
        { encoding: 'utf8', timeout: 55_000 },
      );
      console.log(`# verdict chaos --group --tls took ${Date.now() - started} ms`);
      assert.equal(run.status, 0, `exit ${run.status}\n${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, /\[bank, coordinator group of 3, mutual TLS\]/);
      assert.match(run.stdout, /mutual TLS +3\/3/);
      assert.match(run.stdout, /OK: no violation/);
      const report = JSON.parse(readFileSync(join(out.path, 'report.json'), 'utf8')) as ChaosReport & { ok: boolean };
      assert.equal(report.ok, true);
      assert.equal(report.tls, true);
      assert.deepEqual(report.violations, []);
      assert.ok(report.txs.finalCommitted > 0);
      assertLeaderKills(report, 1);
      // Every member required a client certificate (its certificate valid for the proxy's address it
      // advertises), and every term a member led served mutual TLS: the killed leader's and its successor's.
      const tls = report.group?.tls;
      assert.ok(tls, 'the report says how every member served TLS');
      assert.deepEqual(tls.map((m) => m.member), report.group?.members);
      for (const m of tls) assert.ok(m.probe === 'mutual' && m.mutualTerms === m.terms, JSON.stringify(m));
      assert.ok(tls.filter((m) => m.terms > 0).length >= 2, `two members led: ${JSON.stringify(tls)}`);
      for (const member of report.group?.members ?? []) {
        const starts = readFileSync(join(out.path, 'data', `${member}.log`), 'utf8').split('\n').filter((l) => l.includes('"coordinator started"'));
        for (const line of starts) assert.equal((JSON.parse(line) as { tls: string }).tls, 'mutual');
      }
      assert.ok(existsSync(join(out.path, 'data', 'tls', 'participant-bank-1.pem')) && existsSync(join(out.path, 'data', 'tls', 'initiator-workload.pem')));
    } finally {
      out.cleanup();
    }
  });
  it('runChaos({ group, tls: true }): your participants present their certificates to every member, and the history check passes', { timeout: 60_000 }, async () => {
    const dir = tempDir('verdict-chaos-group-tls-harness-');
    try {
      const started = Date.now();
      const report = await runChaos({
        participants: [ledgerParticipant('ledger-a'), ledgerParticipant('ledger-b')],
        transaction: ledgerTransaction,
        invariant: ledgerInvariant,
        group: true,
        tls: true,
        faults: ['leader-kill', 'delay'],
        duration: 4_000,
        seed: 12,
        dir: dir.path,
      });
      console.log(`# runChaos({ group, tls }) took ${Date.now() - started} ms`);
      assertNoViolations(report);
      assert.equal(report.tls, true);
      assert.ok(report.txs.finalCommitted > 0);
      assert.ok(report.group?.tls?.every((m) => m.probe === 'mutual' && m.mutualTerms === m.terms), JSON.stringify(report.group?.tls));
      assert.ok(existsSync(join(dir.path, 'tls', 'participant-ledger-a.pem')));
      assert.deepEqual(children(), []);
    } finally {
      dir.cleanup();
    }
  });
});
