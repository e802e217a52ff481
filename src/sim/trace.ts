// The simulator's event trace: one line per thing that happened, in simulated time. A failing run
// prints it (numbered, filtered to the transaction at fault); a hash of it proves determinism.

import type { CoordinatorMessage, ParticipantMessage } from '../protocol/coordinator-events.js';

/** One traced event. */
export interface TraceLine {
  readonly t: number;
  readonly text: string;
  /** Transactions the line is about (for filtering). */
  readonly txIds: readonly string[];
  /** Faults, crashes and restarts: always shown. */
  readonly fault: boolean;
  /** Session plumbing (hello, welcome): hidden when the trace is filtered to one transaction. */
  readonly noise: boolean;
}

/** Collects trace lines and a running hash of them. */
export class Trace {
  readonly lines: TraceLine[] = [];
  readonly #keep: boolean;
  #h1 = 0x811c9dc5;
  #h2 = 0x01000193;

  /** With `keep` false only the hash is kept (fast runs); the hash is the same either way. */
  constructor(keep: boolean) {
    this.#keep = keep;
  }

  add(t: number, text: string, txIds: readonly string[] = [], fault = false, noise = false): void {
    this.#mix(`${t}|${text}`);
    if (this.#keep) this.lines.push({ t, text, txIds, fault, noise });
  }

  /** A hex digest of every line so far. */
  get hash(): string {
    return (this.#h1 >>> 0).toString(16).padStart(8, '0') + (this.#h2 >>> 0).toString(16).padStart(8, '0');
  }

  #mix(s: string): void {
    // Two FNV-1a style lanes with different multipliers: cheap, and collisions are not a concern here.
    let h1 = this.#h1;
    let h2 = this.#h2;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    }
    h1 = Math.imul(h1 ^ 0x0a, 0x01000193);
    this.#h1 = h1;
    this.#h2 = h2 ^ (h1 >>> 15);
  }
}

/** Formats trace lines as a numbered list; `txId` keeps only its lines (and faults). */
export function formatTrace(lines: readonly TraceLine[], options: { txId?: string; limit?: number } = {}): string {
  const picked = options.txId ? lines.filter((l) => l.fault || (l.txIds.length === 0 && !l.noise) || l.txIds.includes(options.txId as string)) : lines;
  const limit = options.limit ?? Infinity;
  const shown = picked.length > limit ? picked.slice(picked.length - limit) : picked;
  const width = String(lines.length).length;
  const out: string[] = [];
  if (shown.length < picked.length) out.push(`  … ${picked.length - shown.length} earlier lines not shown`);
  for (const l of shown) {
    const n = String(lines.indexOf(l) + 1).padStart(width, ' ');
    out.push(`${n}. t=${String(l.t).padStart(5, ' ')}ms  ${l.text}`);
  }
  return out.join('\n');
}

/** A short description of a coordinator → participant message. */
export function describeCoordinatorMessage(m: CoordinatorMessage): string {
  switch (m.type) {
    case 'prepare':
      return `Prepare tx=${m.txId}${m.onePhase ? ' one-phase' : ''} deadline=${m.deadline}`;
    case 'decision':
      return `${m.outcome === 'committed' ? 'Commit' : 'Abort'} tx=${m.txId}`;
    case 'enlist-result':
      return `EnlistResult #${m.requestId}${m.error ? ` ${m.error.code}` : ' ok'}`;
    case 'outcome-query':
      return `OutcomeQuery tx=${m.txId}`;
  }
}

/** A short description of a participant → coordinator message. */
export function describeParticipantMessage(m: ParticipantMessage): string {
  switch (m.type) {
    case 'vote':
      return `Vote ${m.vote.toUpperCase()} tx=${m.txId}${m.reason ? ` (${m.reason})` : ''}`;
    case 'ack':
      return `Ack ${m.outcome} tx=${m.txId}`;
    case 'inquiry':
      return `Inquiry tx=${m.txId}`;
    case 'enlist':
      return `Enlist #${m.requestId} tx=${m.txId}`;
  }
}
