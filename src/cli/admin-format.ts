// How the admin commands print: aligned plain-text tables for people, JSON for scripts.

import type { TxView } from '../protocol/coordinator-events.js';

/** One participant session, as the commands print it. */
export interface ParticipantRow {
  readonly participant: string;
  readonly peer: string;
  /** ISO 8601. */
  readonly connectedSince: string;
  readonly transactionsInFlight: number;
}

/** Left-aligned columns separated by two spaces, with a header row. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** A transaction in detail: its fields, then its branches as a table. */
export function formatTransaction(view: TxView): string {
  const fields: [string, string][] = [
    ['tx', view.txId],
    ['state', view.state],
    ['outcome', view.outcome ?? '-'],
    ['presumed', String(view.presumed)],
    ['needs attention', String(view.needsAttention)],
  ];
  if (view.reason) fields.push(['reason', view.reason]);
  if (view.deadline !== undefined) fields.push(['deadline', new Date(view.deadline).toISOString()]);
  if (view.owner) fields.push(['owner', view.owner]);
  const width = Math.max(...fields.map(([k]) => k.length));
  let out = fields.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`).join('\n') + '\n';
  if (view.branches.length > 0) {
    out += '\n' + table(
      ['PARTICIPANT', 'VOTE', 'ACKNOWLEDGED', 'ATTEMPTS', 'LAST ERROR'],
      view.branches.map((b) => [b.participant, b.vote ?? '-', b.acknowledged ? 'yes' : 'no', String(b.attempts), b.lastError ?? '']),
    );
  }
  return out;
}

/** Live transactions, one a line; a last line says when the limit cut the list. */
export function formatTransactionList(views: readonly TxView[], matched: number): string {
  if (views.length === 0) return 'no transactions\n';
  let out = table(
    ['TX', 'STATE', 'OUTCOME', 'BRANCHES', 'UNACKNOWLEDGED', 'ATTENTION'],
    views.map((v) => [
      v.txId,
      v.state,
      v.outcome ?? '-',
      v.branches.map((b) => b.participant).join(','),
      String(v.branches.filter((b) => !b.acknowledged).length),
      v.needsAttention ? 'NEEDS ATTENTION' : '',
    ]),
  );
  if (matched > views.length) out += `(${views.length} of ${matched} shown: raise --limit for more)\n`;
  return out;
}

/** Participant sessions, one a line. */
export function formatParticipants(rows: readonly ParticipantRow[]): string {
  if (rows.length === 0) return 'no participant sessions\n';
  return table(
    ['PARTICIPANT', 'PEER', 'CONNECTED SINCE', 'IN FLIGHT'],
    rows.map((r) => [r.participant, r.peer, r.connectedSince, String(r.transactionsInFlight)]),
  );
}
