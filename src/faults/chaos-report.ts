// The report of a chaos run: named violations, counts of transactions and faults, the final table
// printed by `verdict chaos`, and the files a run leaves behind (report.json, history.jsonl).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GROUP_FAULT_KINDS, type ChaosEvent, type FaultKind } from './chaos-schedule.js';
import type { FaultRecord } from './chaos-injector.js';
import type { TlsServing } from './tls-serving-probe.js';

/** The names the checker gives what it finds. */
export const VIOLATION_KINDS = {
  atomicity: 'a transaction committed at one participant and aborted (or not applied) at another',
  'lost-commit': 'the initiator was told COMMITTED but a participant never applied it',
  'phantom-commit': 'the initiator was told ABORTED but the transaction committed',
  termination: 'something was still in doubt or undecided after healing',
  'duplicate-hook-call': 'a hook ran again for a transaction whose outcome was already durable',
  'duplicate-apply': 'a commit took effect more than once',
  'balance-invariant': "the bank's total balance (or an account) is not what the committed transfers give",
  invariant: "the workload's own invariant failed",
  validity: 'a transaction that had to abort (a NO vote) committed',
  liveness: 'no progress after healing, or a process that could not be brought back',
  process: 'a process exited in a way nobody caused',
  tls: 'in a TLS run, a coordinator that did not serve mutual TLS',
} as const;
/** The name of a violation. */
export type ViolationKind = keyof typeof VIOLATION_KINDS;

/** One thing the checker found. */
export interface Violation {
  readonly kind: ViolationKind;
  readonly message: string;
}

/** Transactions of a run, as the initiator saw them and as they ended. */
export interface ChaosTxCounts {
  /** Attempts, begun or not. */
  readonly attempts: number;
  /** The initiator was told committed. */
  readonly committed: number;
  /** The initiator was told aborted. */
  readonly aborted: number;
  /** The initiator's call failed (outcome unknown, or no transaction begun). */
  readonly failedToInitiator: number;
  /** Those whose outcome the coordinator later gave. */
  readonly unknownResolved: { readonly committed: number; readonly aborted: number; readonly unresolved: number };
  /** Final outcomes at the coordinator. */
  readonly finalCommitted: number;
  readonly finalAborted: number;
}

/** A group run's coordinator group: who led, and what the leader faults did. */
export interface ChaosGroupReport {
  /** The members' names (`c1` … `cN`). */
  readonly members: readonly string[];
  /** Every change of the leader key seen during the run (ms after the fault phase began). */
  readonly leaderChanges: readonly { readonly atMs: number; readonly leader: string | undefined }[];
  /** The members etcd named leader, in turn. */
  readonly leaders: readonly string[];
  /** Times another member took over as leader. */
  readonly failovers: number;
  /** `leader-kill` and `leader-pause` faults injected. */
  readonly leaderKills: number;
  readonly leaderPauses: number;
  /** Every end of a member's incarnation (SIGKILLs by leader kills among them), oldest first. */
  readonly exits: readonly { readonly member: string; readonly incarnation: number; readonly signal: string | null; readonly cause: string; readonly at: number }[];
  /** Each leader fault whose takeover was seen: who led, who served next, and how long nobody served. */
  readonly takeovers: readonly { readonly kind: FaultKind; readonly from: string; readonly to: string; readonly withoutLeaderMs: number }[];
  /** In a TLS run: how every member served TLS. */
  readonly tls?: readonly MemberTlsReport[];
}

/** How one member of a TLS group run served TLS. */
export interface MemberTlsReport {
  readonly member: string;
  /** Terms it led: each leader logs how it serves as its term starts. */
  readonly terms: number;
  /** Those of its terms that served mutual TLS. */
  readonly mutualTerms: number;
  /** What a probe through its proxy found after healing (`mutual`: a client certificate was required). */
  readonly probe: TlsServing;
  /** Why the probe did not find mutual TLS. */
  readonly detail?: string;
}

/** Whether a member served mutual TLS: in every term it led, and to the probe. */
export function servedMutualTls(m: MemberTlsReport): boolean {
  return m.probe === 'mutual' && m.mutualTerms === m.terms;
}

/** A `tls` violation for every member of `members` that did not serve mutual TLS. */
export function tlsViolations(members: readonly MemberTlsReport[]): Violation[] {
  return members
    .filter((m) => !servedMutualTls(m))
    .map((m) => ({ kind: 'tls' as const, message: `member ${m.member} did not serve mutual TLS: ${m.mutualTerms} of ${m.terms} term(s) led with mutual TLS; probe: ${m.probe}${m.detail ? ` (${m.detail})` : ''}` }));
}

/** Summarises a leader watch: the members named in turn, and how many times another took over. */
export function summarizeLeaders(changes: ChaosGroupReport['leaderChanges']): { readonly sequence: readonly string[]; readonly failovers: number } {
  const sequence: string[] = [];
  for (const c of changes) if (c.leader !== undefined && c.leader !== sequence[sequence.length - 1]) sequence.push(c.leader);
  return { sequence, failovers: Math.max(0, sequence.length - 1) };
}

/** What a chaos run did and found. */
export interface ChaosReport {
  /** `bank`: the demo banks as processes; `harness`: a user's participants in the test process. */
  readonly mode: 'bank' | 'harness';
  /** Whether every connection ran mutual TLS (throwaway certificates). */
  readonly tls: boolean;
  readonly seed: number;
  readonly durationMs: number;
  readonly participants: readonly string[];
  readonly faultKinds: readonly FaultKind[];
  readonly schedule: readonly ChaosEvent[];
  readonly faults: readonly FaultRecord[];
  readonly faultCounts: Readonly<Record<FaultKind, number>>;
  /** Requested kinds that were never injected. */
  readonly missingKinds: readonly FaultKind[];
  readonly txs: ChaosTxCounts;
  /** Killed or crashed processes brought back. */
  readonly recoveries: number;
  /** Longest time a transaction stayed unresolved at some participant, in ms. */
  readonly maxInDoubtMs: number;
  readonly violations: readonly Violation[];
  /** Wall time of the whole run and of its phases, in ms. */
  readonly elapsedMs: number;
  readonly timings: { readonly startMs: number; readonly faultsMs: number; readonly healMs: number; readonly checkMs: number };
  /** The run's data and logs. */
  readonly dir: string;
  /** Present when the run was against a coordinator group. */
  readonly group?: ChaosGroupReport;
  /** Files written for this report, when any. */
  files?: { readonly report: string; readonly history: string };
}

/** One line of the history file. */
export type HistoryLine = Readonly<Record<string, unknown>> & { readonly type: string; readonly at: number };

/** Violations by kind. */
export function countViolations(violations: readonly Violation[]): Partial<Record<ViolationKind, number>> {
  const out: Partial<Record<ViolationKind, number>> = {};
  for (const v of violations) out[v.kind] = (out[v.kind] ?? 0) + 1;
  return out;
}

/** Whether a run found nothing wrong. */
export function passed(report: ChaosReport): boolean {
  return report.violations.length === 0;
}

/**
 * Names a violation found by the crash suite's history checker (`checkHistory`), which reports
 * sentences: the chaos report groups them by kind.
 */
export function classifyHistoryViolation(message: string): Violation {
  const rules: [RegExp, ViolationKind][] = [
    [/^LOST:/, 'lost-commit'],
    [/^PHANTOM:/, 'phantom-commit'],
    [/a hook ran twice/, 'duplicate-hook-call'],
    [/opening balance and applied records give/, 'duplicate-apply'],
    [/total balance changed|its committed transfers give/, 'balance-invariant'],
    [/overdr(ew|awn)/, 'validity'],
    [/still .* at the coordinator|gave no final state|PREPARED record|undecided leg|did not settle/, 'termination'],
    [/never applied it|was applied at|was applied as|finished .* as .* but it ended|never run by this demo|applied -?\d+ at/, 'atomicity'],
    [/never seeded/, 'balance-invariant'],
  ];
  for (const [pattern, kind] of rules) if (pattern.test(message)) return { kind, message };
  return { kind: 'invariant', message };
}

/** The final table. */
export function formatChaosReport(r: ChaosReport): string {
  const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  const rows: [string, string, string?][] = [
    ['committed', String(r.txs.committed), `told to the initiator (final: ${r.txs.finalCommitted})`],
    ['aborted', String(r.txs.aborted), `told to the initiator (final: ${r.txs.finalAborted})`],
    [
      'failed to initiator',
      String(r.txs.failedToInitiator),
      `later resolved: ${r.txs.unknownResolved.committed} committed, ${r.txs.unknownResolved.aborted} aborted, ${r.txs.unknownResolved.unresolved} never begun or unresolved`,
    ],
  ];
  // Leader faults only in a group run (a single-coordinator report reads as it always did).
  const faultRows: [string, string, string?][] = Object.entries(r.faultCounts)
    .filter(([k]) => r.group !== undefined || !(GROUP_FAULT_KINDS as readonly string[]).includes(k))
    .map(([k, n]) => [`faults: ${k}`, String(n)]);
  const byKind = countViolations(r.violations);
  const tail: [string, string, string?][] = [
    ['recoveries', String(r.recoveries), 'killed or crashed processes brought back'],
    ['max time in doubt', secs(r.maxInDoubtMs)],
    ['violations', String(r.violations.length), Object.entries(byKind).map(([k, n]) => `${k}: ${n}`).join(', ')],
  ];
  const groupRows: [string, string, string?][] = r.group
    ? [
        ['leader kills', String(r.group.leaderKills)],
        ['leader pauses', String(r.group.leaderPauses)],
        ['failovers seen', String(r.group.failovers), `leaders in turn: ${r.group.leaders.join(' → ') || 'none seen'}`],
        ...(r.group.tls
          ? [['mutual TLS', `${r.group.tls.filter(servedMutualTls).length}/${r.group.tls.length}`, 'members that required client certificates in every term they led and to a probe'] as [string, string, string]]
          : []),
      ]
    : [];
  const all = [...rows, ...faultRows, ...groupRows, ...tail];
  const width = Math.max(...all.map(([, v]) => v.length));
  const line = ([k, v, note]: [string, string, string?]): string => `  ${k.padEnd(20)}${v.padStart(width)}${note ? `  ${note}` : ''}`;
  const out = [
    `verdict chaos: seed ${r.seed}, ${secs(r.durationMs)} of faults (${r.faultKinds.join(',')}) on ${r.participants.length} participants [${r.mode}${r.group ? `, coordinator group of ${r.group.members.length}` : ''}${r.tls ? ', mutual TLS' : ''}], ${secs(r.elapsedMs)} in all`,
    '',
    ...rows.map(line),
    '',
    ...faultRows.map(line),
    '',
    ...(r.group ? [...groupRows.map(line), ...r.group.takeovers.map((t) => `    ${t.kind} ${t.from}: ${t.to} served after ${t.withoutLeaderMs} ms`), ''] : []),
    ...tail.map(line),
    '',
  ];
  if (r.missingKinds.length > 0) out.push(`note: never injected: ${r.missingKinds.join(', ')} (a longer --duration places every kind)`);
  for (const v of r.violations.slice(0, 30)) out.push(`violation [${v.kind}]: ${v.message}`);
  if (r.violations.length > 30) out.push(`… and ${r.violations.length - 30} more (see report.json)`);
  out.push(r.violations.length === 0 ? 'OK: no violation' : `FAILED: ${r.violations.length} violation(s)`);
  if (r.files) out.push(`report: ${r.files.report}`, `history: ${r.files.history}`);
  out.push(`data and logs: ${r.dir}`);
  return out.join('\n');
}

/** The progress line printed while a run goes. */
export function formatProgress(p: { elapsedMs: number; txs: number; committed: number; faults: number; inDoubt: number | undefined; phase: string }): string {
  return `[${(p.elapsedMs / 1000).toFixed(1).padStart(5)} s] ${p.phase.padEnd(8)} txs ${p.txs} (${p.committed} committed)  faults ${p.faults}  in doubt ${p.inDoubt ?? '?'}`;
}

/** Writes `report.json` and `history.jsonl` into `dir`; records their paths on the report. */
export function writeChaosReport(dir: string, report: ChaosReport, history: readonly HistoryLine[]): { report: string; history: string } {
  mkdirSync(dir, { recursive: true });
  const files = { report: join(dir, 'report.json'), history: join(dir, 'history.jsonl') };
  report.files = files;
  const sorted = [...history].sort((a, b) => a.at - b.at);
  writeFileSync(files.history, sorted.map((l) => JSON.stringify(l)).join('\n') + (sorted.length > 0 ? '\n' : ''));
  writeFileSync(files.report, JSON.stringify({ ...report, ok: passed(report), violationCounts: countViolations(report.violations) }, null, 2) + '\n');
  return files;
}
