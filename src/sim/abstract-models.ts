// The abstract models of transaction commit from the TLA+ specifications (tlaplus/Examples,
// `transaction_commit/`): TCommit (only the resource managers' states) and TwoPhase (the
// transaction manager, its prepared set and a message set that only grows). An explicit-state
// enumerator is the oracle (34 and 288 states for 3 resource managers) and `twoPhaseStep` checks
// that a transition the simulator observed is a sequence of TwoPhase actions (refinement).

/** A resource manager's state, as in both specifications. */
export type RmState = 'working' | 'prepared' | 'committed' | 'aborted';
/** The transaction manager's state in TwoPhase. */
export type TmState = 'init' | 'committed' | 'aborted';

/** A TCommit state: one RmState per resource manager. */
export type TCommitState = readonly RmState[];

/** A TwoPhase state. Sets of resource managers are bit masks (index i ↔ bit i). */
export interface TwoPhaseState {
  readonly rm: readonly RmState[];
  readonly tm: TmState;
  readonly tmPrepared: number;
  /** [type |-> "Prepared", rm |-> i] ∈ msgs for each bit i. */
  readonly msgPrepared: number;
  readonly msgCommit: boolean;
  readonly msgAbort: boolean;
}

/** The initial TCommit state for `n` resource managers. */
export function tcommitInit(n: number): TCommitState {
  return Array.from({ length: n }, () => 'working' as const);
}

/** TCNext: every state one Prepare(r) or Decide(r) away. */
export function tcommitNext(s: TCommitState): TCommitState[] {
  const canCommit = s.every((r) => r === 'prepared' || r === 'committed');
  const notCommitted = s.every((r) => r !== 'committed');
  const out: TCommitState[] = [];
  const set = (i: number, v: RmState): TCommitState => s.map((r, j) => (j === i ? v : r));
  s.forEach((r, i) => {
    if (r === 'working') out.push(set(i, 'prepared'));
    if (r === 'prepared' && canCommit) out.push(set(i, 'committed'));
    if ((r === 'working' || r === 'prepared') && notCommitted) out.push(set(i, 'aborted'));
  });
  return out;
}

/** TCConsistent: no resource manager committed while another aborted. */
export function tcConsistent(rm: readonly RmState[]): boolean {
  return !(rm.includes('committed') && rm.includes('aborted'));
}

/** The initial TwoPhase state for `n` resource managers. */
export function twoPhaseInit(n: number): TwoPhaseState {
  return { rm: tcommitInit(n), tm: 'init', tmPrepared: 0, msgPrepared: 0, msgCommit: false, msgAbort: false };
}

/** The TwoPhase actions by name, with the state each leads to. */
export function twoPhaseNext(s: TwoPhaseState): { action: string; next: TwoPhaseState }[] {
  const n = s.rm.length;
  const all = (1 << n) - 1;
  const out: { action: string; next: TwoPhaseState }[] = [];
  const setRm = (i: number, v: RmState): readonly RmState[] => s.rm.map((r, j) => (j === i ? v : r));
  if (s.tm === 'init' && s.tmPrepared === all) out.push({ action: 'TMCommit', next: { ...s, tm: 'committed', msgCommit: true } });
  if (s.tm === 'init') out.push({ action: 'TMAbort', next: { ...s, tm: 'aborted', msgAbort: true } });
  for (let i = 0; i < n; i++) {
    const bit = 1 << i;
    if (s.tm === 'init' && s.msgPrepared & bit) out.push({ action: `TMRcvPrepared(${i})`, next: { ...s, tmPrepared: s.tmPrepared | bit } });
    if (s.rm[i] === 'working') {
      out.push({ action: `RMPrepare(${i})`, next: { ...s, rm: setRm(i, 'prepared'), msgPrepared: s.msgPrepared | bit } });
      out.push({ action: `RMChooseToAbort(${i})`, next: { ...s, rm: setRm(i, 'aborted') } });
    }
    if (s.msgCommit) out.push({ action: `RMRcvCommitMsg(${i})`, next: { ...s, rm: setRm(i, 'committed') } });
    if (s.msgAbort) out.push({ action: `RMRcvAbortMsg(${i})`, next: { ...s, rm: setRm(i, 'aborted') } });
  }
  return out;
}

/** A canonical string for a TwoPhase state. */
export function twoPhaseKey(s: TwoPhaseState): string {
  return `${s.rm.join(',')}|${s.tm}|${s.tmPrepared}|${s.msgPrepared}|${s.msgCommit ? 'C' : ''}${s.msgAbort ? 'A' : ''}`;
}

/** Breadth-first enumeration of every reachable state; returns them by canonical key. */
export function enumerate<S>(init: S, next: (s: S) => readonly S[], key: (s: S) => string, limit = 1_000_000): Map<string, S> {
  const seen = new Map<string, S>([[key(init), init]]);
  const queue: S[] = [init];
  for (let i = 0; i < queue.length; i++) {
    for (const s of next(queue[i] as S)) {
      const k = key(s);
      if (seen.has(k)) continue;
      if (seen.size >= limit) throw new RangeError(`more than ${limit} states`);
      seen.set(k, s);
      queue.push(s);
    }
  }
  return seen;
}

/** Every reachable TCommit state for `n` resource managers. */
export function enumerateTCommit(n: number): Map<string, TCommitState> {
  return enumerate(tcommitInit(n), tcommitNext, (s) => s.join(','));
}

/** Every reachable TwoPhase state for `n` resource managers. */
export function enumerateTwoPhase(n: number): Map<string, TwoPhaseState> {
  return enumerate(twoPhaseInit(n), (s) => twoPhaseNext(s).map((a) => a.next), twoPhaseKey);
}

/**
 * Explains the observed transition `from` → `to` as TwoPhase actions, or returns why it is not
 * one. Several actions may happen in one simulator step (e.g. the last vote received and the
 * commit decided), so the transition is decomposed in protocol order: receipts, the decision,
 * then the resource managers, each checked against the state built so far.
 */
export function twoPhaseStep(from: TwoPhaseState, to: TwoPhaseState): { ok: true; actions: string[] } | { ok: false; why: string } {
  const n = from.rm.length;
  if (to.rm.length !== n) return { ok: false, why: 'the number of resource managers changed' };
  const actions: string[] = [];
  let s = from;
  // Messages never disappear.
  if ((from.msgPrepared & ~to.msgPrepared) !== 0 || (from.msgCommit && !to.msgCommit) || (from.msgAbort && !to.msgAbort)) {
    return { ok: false, why: 'a message disappeared from msgs' };
  }
  if ((from.tmPrepared & ~to.tmPrepared) !== 0) return { ok: false, why: 'tmPrepared shrank' };
  // 1. RMPrepare first for resource managers whose Prepared message appears: the TM may receive it in the same step.
  for (let i = 0; i < n; i++) {
    const bit = 1 << i;
    if (to.msgPrepared & bit && !(s.msgPrepared & bit)) {
      if (s.rm[i] !== 'working') return { ok: false, why: `Prepared(${i}) sent while rm ${i} is ${s.rm[i]}` };
      s = { ...s, rm: s.rm.map((r, j) => (j === i ? 'prepared' : r)), msgPrepared: s.msgPrepared | bit };
      actions.push(`RMPrepare(${i})`);
    }
  }
  // 2. TMRcvPrepared.
  for (let i = 0; i < n; i++) {
    const bit = 1 << i;
    if (to.tmPrepared & bit && !(s.tmPrepared & bit)) {
      if (s.tm !== 'init') return { ok: false, why: `TM received Prepared(${i}) after deciding (${s.tm})` };
      if (!(s.msgPrepared & bit)) return { ok: false, why: `TM counted rm ${i} as prepared but rm ${i} never sent Prepared` };
      s = { ...s, tmPrepared: s.tmPrepared | bit };
      actions.push(`TMRcvPrepared(${i})`);
    }
  }
  // 3. The decision.
  if (to.tm !== s.tm) {
    if (s.tm !== 'init') return { ok: false, why: `TM changed its decision from ${s.tm} to ${to.tm}` };
    if (to.tm === 'committed') {
      if (s.tmPrepared !== (1 << n) - 1) return { ok: false, why: 'TM committed without every rm prepared' };
      if (!to.msgCommit) return { ok: false, why: 'TM committed without a Commit message' };
      s = { ...s, tm: 'committed', msgCommit: true };
      actions.push('TMCommit');
    } else {
      if (!to.msgAbort) return { ok: false, why: 'TM aborted without an Abort message' };
      s = { ...s, tm: 'aborted', msgAbort: true };
      actions.push('TMAbort');
    }
  }
  if (to.msgCommit !== s.msgCommit) return { ok: false, why: 'a Commit message appeared without TMCommit' };
  if (to.msgAbort !== s.msgAbort) return { ok: false, why: 'an Abort message appeared without TMAbort' };
  // 4. The resource managers.
  for (let i = 0; i < n; i++) {
    const a = s.rm[i];
    const b = to.rm[i];
    if (a === b) continue;
    if (b === 'committed') {
      if (!s.msgCommit) return { ok: false, why: `rm ${i} committed without a Commit message` };
      actions.push(`RMRcvCommitMsg(${i})`);
    } else if (b === 'aborted') {
      if (a === 'working') actions.push(`RMChooseToAbort(${i})`);
      else if (s.msgAbort) actions.push(`RMRcvAbortMsg(${i})`);
      else return { ok: false, why: `rm ${i} aborted from ${a} without an Abort message` };
    } else {
      return { ok: false, why: `rm ${i} went from ${a} to ${b}` };
    }
    s = { ...s, rm: s.rm.map((r, j) => (j === i ? b : r)) as RmState[] };
  }
  return { ok: true, actions };
}
