// The property checker: ghost state kept beside the simulation (what every node said, wrote and
// received) and the checks of DESIGN.md's invariants and RELIABILITY.md's properties. Safety
// properties are checked as events happen and after every step; termination and the final
// read-back are checked once faults have stopped and the system has settled.

import {
  CoordinatorRecordKind,
  TxState,
  type CoordinatorEffect,
  type CoordinatorInput,
  type CoordinatorMessage,
  type CoordinatorRecord,
  type CoordinatorReply,
  type ParticipantMessage,
} from '../protocol/coordinator-events.js';
import { decodeCoordinatorRecord, DONE, OPEN } from '../coordinator/decision-log.js';
import { decodeParticipantRecord, SUBLEVELS } from '../participant/participant-log.js';
import { ParticipantRecordState, type ParticipantEffect, type ParticipantInput, type ParticipantRecord } from '../protocol/participant-events.js';
import { ErrorCode, Outcome, Vote } from '../protocol/types.js';
import { twoPhaseStep, type RmState, type TwoPhaseState } from './abstract-models.js';
import { COUNTER_KEY, EFFECT_KEY, HOLD_KEY, sharedKeyOf } from './sim-app.js';
import type { DiskOp, SimDisk } from './sim-disk.js';

/** Where a participant's log keeps what (keys as the disk stores them, sublevel prefixes included). */
const LOG = `!${SUBLEVELS.log}!`;
const PREPARED = `!${SUBLEVELS.prepared}!`;
const HOLD = `!${SUBLEVELS.app}!${HOLD_KEY}`;
const EFFECT = `!${SUBLEVELS.app}!${EFFECT_KEY}`;
const COUNTER = `!${SUBLEVELS.app}!${COUNTER_KEY}`;

const decoder = new TextDecoder();

/** The participant record of `txId` on `disk` (the synced layer only with `synced`). */
function participantRecord(disk: SimDisk, txId: string, synced = false): ParticipantRecord | undefined {
  const read = (key: string): Uint8Array | undefined => (synced ? disk.getSynced(key) : disk.get(key));
  const value = read(LOG + txId) ?? read(PREPARED + txId);
  return value === undefined ? undefined : decodeParticipantRecord(txId, value);
}

/** A JSON value of the application's store. */
function appValue(disk: SimDisk, key: string): unknown {
  const value = disk.get(key);
  return value === undefined ? undefined : JSON.parse(decoder.decode(value));
}

/** The coordinator record under `key` on `disk` (synced layer only with `synced`). */
function coordinatorRecord(disk: SimDisk, key: string, synced = false): CoordinatorRecord | undefined {
  const value = synced ? disk.getSynced(key) : disk.get(key);
  return value === undefined ? undefined : decodeCoordinatorRecord(key, value);
}

/** The transactions a batch of log writes is about. */
function txIdsOfOps(ops: readonly DiskOp[]): string[] {
  const out = new Set<string>();
  for (const op of ops) {
    for (const prefix of [OPEN, DONE, LOG, PREPARED]) if (op.key.startsWith(prefix)) out.add(op.key.slice(prefix.length));
  }
  return [...out];
}

/** The properties checked, by id (invariants of DESIGN.md and properties of RELIABILITY.md). */
export const PROPERTIES = {
  P1: 'Agreement (invariant 1): no participant committed while another aborted',
  P2: 'Commit validity (invariant 2): COMMIT only after a YES or READ_ONLY from every branch, each YES backed by a durable PREPARED',
  P3: 'Abort validity (invariant 2): a NO vote means ABORT; a NO voter never gets Commit',
  P4: 'Single stable decision (invariant 5): one decision per tx, the same wherever and whenever it is read; ids are never reused',
  P5: 'Log before send (invariant 3): no Commit leaves before the COMMIT record is synced',
  P6: 'Prepared means bound: a prepared participant moves only on a decision it received, backed by a durable decision',
  P7: 'Participant durability (invariant 4): YES only after PREPARED is synced',
  P8: 'Idempotence (invariant 7): business effect exactly once per committed tx at each YES participant, 0 for aborted; unknown-tx messages change nothing',
  P9: 'Out-of-order safety: an Abort before the Prepare leaves a tombstone and the late Prepare votes NO; Commit for a tx never prepared is never applied',
  P10: 'Termination (invariant 6): after faults stop, every tx is finished at the coordinator and every participant within the bound',
  P11: 'Recovery completeness: after a coordinator restart every open decision is resumed',
  P12: 'No premature GC: a COMMIT record is deleted only after every participant committed; no committed tx ever reads as presumed aborted',
  P13: 'Honest outcomes (invariant 8): a tx reported COMMITTED is committed at every YES participant; unknown outcomes read back true',
  P15: 'Stale messages: replayed messages change no decision and no business effect',
  P17: 'Bounded frames: no session frame exceeds the message limit',
  P18: 'Model conformance: every observed transition of a 2PC tx is a TwoPhase action',
  P20: 'A failed write is not a decision: after a forced write fails, no decision, vote, ack or answer other than OUTCOME_UNKNOWN follows from it',
  P21: "Isolation of hooks: no two PREPARED records on a participant's disk lock one key with one of them exclusive; a shared key's counter counts every commit that locked it (no lost update)",
  P23: 'Fencing: no decision-log write of a leadership term that ended (lease expired, key taken by another, or by the same member in a later term) ever lands in etcd',
  P24: 'One leader at a time: no two group members believe they lead (answer as leader) at the same virtual instant',
  CRASH: 'The simulated processes never throw',
} as const;
/** A property id. */
export type PropertyId = keyof typeof PROPERTIES;

/** A property that failed. */
export interface Violation {
  readonly property: PropertyId;
  readonly message: string;
  readonly txId?: string;
  readonly t: number;
  readonly step: number;
}

/** What the checker reads from the world. */
export interface CheckerWorld {
  readonly now: number;
  readonly steps: number;
  readonly participantNames: readonly string[];
  disk(node: string): SimDisk;
  /** The branches (participant names) the initiator gave `txId`, when known. */
  branchesOf(txId: string): readonly string[] | undefined;
  /** Whether the message being handled is a replay of an old one. */
  readonly replaying: boolean;
}

interface Ghost {
  readonly id: string;
  decision?: Outcome;
  decisionSource?: string;
  decidedAt?: number;
  durableCommit: boolean;
  onePhase: boolean;
  reportedCommitted: boolean;
  readonly votes: Map<string, Set<Vote>>;
  readonly noAt: Map<string, number>;
  /** Participants whose NO the coordinator received (processed), whatever it did with it. */
  readonly noReceived: Set<string>;
  /** What the prepare hook answered at each participant (a YES means a commit applies an effect). */
  readonly hookVotes: Map<string, Set<Vote>>;
  readonly preparedSynced: Set<string>;
  /** Participants whose PREPARED record is written (page cache included). */
  readonly preparedWritten: Set<string>;
  readonly received: Map<string, Set<Outcome>>;
  readonly recordOutcome: Map<string, Outcome>;
  readonly abortBeforePrepare: Set<string>;
  // TwoPhase projection
  readonly rm: Map<string, RmState>;
  readonly msgPrepared: Set<string>;
  readonly tmPrepared: Set<string>;
  tm: 'init' | 'committed' | 'aborted';
  abs?: TwoPhaseState;
}

/** How a reply reads, for messages. */
function describeOutcome(reply: CoordinatorReply): string {
  return reply.type === 'transaction' ? `${reply.view.state} ${reply.view.outcome ?? ''}`.trim() : reply.type.toUpperCase();
}

/** Keeps the ghost state and checks the properties. */
export class Checker {
  readonly violations: Violation[] = [];
  /** How many times each property was checked (a property never checked proves nothing). */
  readonly exercised: Record<PropertyId, number> = { P1: 0, P2: 0, P3: 0, P4: 0, P5: 0, P6: 0, P7: 0, P8: 0, P9: 0, P10: 0, P11: 0, P12: 0, P13: 0, P15: 0, P17: 0, P18: 0, P20: 0, P21: 0, P23: 0, P24: 0, CRASH: 0 };
  readonly #world: CheckerWorld;
  readonly #txs = new Map<string, Ghost>();
  readonly #dirty = new Set<string>();
  /** Per node: the transactions a failed log write was about (P20), until the node restarts. */
  readonly #failedWrites = new Map<string, Set<string>>();
  #crashStep = false;

  constructor(world: CheckerWorld) {
    this.#world = world;
  }

  /** Every transaction id seen, in order of first sight. */
  txIds(): string[] {
    return [...this.#txs.keys()];
  }

  /** The decision the ghost state holds for `txId`. */
  decisionOf(txId: string): Outcome | undefined {
    return this.#txs.get(txId)?.decision;
  }

  /** Counts of decided transactions. */
  outcomes(): { committed: number; aborted: number; undecided: number } {
    let committed = 0;
    let aborted = 0;
    let undecided = 0;
    for (const g of this.#txs.values()) {
      if (g.decision === Outcome.COMMITTED) committed++;
      else if (g.decision === Outcome.ABORTED) aborted++;
      else undecided++;
    }
    return { committed, aborted, undecided };
  }

  fail(property: PropertyId, message: string, txId?: string): void {
    if (this.violations.some((v) => v.property === property && v.txId === txId && v.message === message)) return;
    this.violations.push({ property, message, ...(txId ? { txId } : {}), t: this.#world.now, step: this.#world.steps });
  }

  #tx(txId: string): Ghost {
    let g = this.#txs.get(txId);
    if (!g) {
      g = {
        id: txId,
        durableCommit: false,
        onePhase: false,
        reportedCommitted: false,
        votes: new Map(),
        noAt: new Map(),
        noReceived: new Set(),
        hookVotes: new Map(),
        preparedSynced: new Set(),
        preparedWritten: new Set(),
        received: new Map(),
        recordOutcome: new Map(),
        abortBeforePrepare: new Set(),
        rm: new Map(),
        msgPrepared: new Set(),
        tmPrepared: new Set(),
        tm: 'init',
      };
      this.#txs.set(txId, g);
    }
    return g;
  }

  /** P4: every observation of a decision must agree with the first one. */
  #observe(txId: string, outcome: Outcome, source: string): void {
    this.exercised.P4++;
    const g = this.#tx(txId);
    if (g.decision === undefined) {
      g.decision = outcome;
      g.decisionSource = source;
      g.decidedAt = this.#world.now;
    } else if (g.decision !== outcome) {
      this.fail('P4', `${txId}: ${source} says ${outcome}, but ${g.decisionSource} said ${g.decision}`, txId);
    }
    if (outcome === Outcome.COMMITTED) this.#checkCommitValid(g, source);
  }

  /** P2 and P3 at the moment a commit is known. */
  #checkCommitValid(g: Ghost, source: string): void {
    this.exercised.P2++;
    this.exercised.P3++;
    const branches = this.#world.branchesOf(g.id) ?? [];
    for (const p of branches) {
      const votes = g.votes.get(p);
      const said = votes && (votes.has(Vote.YES) || votes.has(Vote.READ_ONLY));
      const committedOnePhase = g.onePhase && g.recordOutcome.get(p) === Outcome.COMMITTED;
      if (!said && !committedOnePhase) this.fail('P2', `${g.id} committed (${source}) but ${p} never voted YES or READ_ONLY`, g.id);
      const noAt = g.noAt.get(p);
      if (noAt !== undefined && (g.decidedAt === undefined || noAt <= g.decidedAt)) {
        this.fail('P3', `${g.id} committed (${source}) although ${p} voted NO at t=${noAt}`, g.id);
      }
    }
  }

  // ---- coordinator --------------------------------------------------------------------------

  coordinatorStep(input: CoordinatorInput | undefined, effects: readonly CoordinatorEffect[], before: TxState | undefined): void {
    const w = this.#world;
    if (input && (input.type === 'commit' || input.type === 'begin') && (input.type === 'begin' || input.txId === '')) {
      // The transaction this request created: ids are never handed out twice (P4).
      for (const e of effects) {
        if (e.type !== 'set-timer' || !e.key.startsWith('deadline/')) continue;
        const txId = e.key.slice('deadline/'.length);
        if (this.#txs.has(txId)) this.fail('P4', `transaction id ${txId} was issued twice`, txId);
        this.#tx(txId);
      }
    }
    if (input?.type === 'message' && before === undefined && input.message.type !== 'enlist') {
      this.exercised.P8++;
      // Invariant 7 / P8: a vote, ack or inquiry for an unknown or finished tx changes nothing.
      for (const e of effects) {
        if (e.type === 'persist' || e.type === 'decided') {
          this.fail('P8', `a ${input.message.type} from ${input.from} for the unknown or finished ${input.message.txId} caused ${e.type}`, input.message.txId);
        }
      }
    }
    if (input?.type === 'message' && input.message.type === 'vote' && input.message.vote === Vote.NO) this.#tx(input.message.txId).noReceived.add(input.from);
    if (w.replaying) this.exercised.P15++;
    if (w.replaying && input?.type === 'message' && before === undefined) {
      for (const e of effects) if (e.type === 'decided') this.fail('P15', `a replayed ${input.message.type} decided ${e.txId}`, e.txId);
    }
    // TwoPhase projection: the TM receives Prepared only while undecided.
    if (input?.type === 'message' && before === TxState.PREPARING) {
      const m = input.message;
      if (m.type === 'vote' && (m.vote === Vote.YES || m.vote === Vote.READ_ONLY)) {
        const g = this.#tx(m.txId);
        if ((this.#world.branchesOf(m.txId) ?? []).includes(input.from)) {
          g.tmPrepared.add(input.from);
          this.#dirty.add(g.id);
        }
      }
    }
    if (input?.type === 'lookup-result' && input.record === undefined) {
      // A presumed abort: the coordinator answers ABORTED for a tx it has no record of.
      const presumed = effects.some(
        (e) =>
          (e.type === 'send' && e.message.type === 'decision' && e.message.outcome === Outcome.ABORTED) ||
          (e.type === 'reply' &&
            (e.reply.type === 'aborted' ||
              (e.reply.type === 'error' && e.reply.error.code === ErrorCode.TX_ABORTED) ||
              (e.reply.type === 'transaction' && e.reply.view.outcome === Outcome.ABORTED))),
      );
      // After a tx is forgotten (GC) a stale message can still draw this answer; the participants
      // keep their own outcome, so only an undecided TM is projected as aborting here.
      if (presumed && this.#tx(input.txId).tm === 'init') this.#tmDecides(input.txId, Outcome.ABORTED);
    }
    for (const e of effects) {
      if (e.type === 'decided') {
        this.#observe(e.txId, e.outcome, `the coordinator (decided)`);
        this.#tmDecides(e.txId, e.outcome);
      } else if (e.type === 'persist') {
        for (const op of e.ops) {
          if (op.op !== 'put' || op.space !== 'open') continue;
          const r = op.record;
          if (r.kind === CoordinatorRecordKind.ONE_PHASE) this.#tx(r.txId).onePhase = true;
          if (r.kind === CoordinatorRecordKind.COMMIT) {
            const g = this.#tx(r.txId);
            for (const p of r.participants) {
              if (!g.preparedSynced.has(p)) this.fail('P2', `COMMIT record for ${r.txId} lists ${p}, whose PREPARED record is not durable`, r.txId);
            }
          }
        }
      } else if (e.type === 'send' && e.message.type === 'prepare' && e.message.onePhase) {
        this.#tx(e.message.txId).onePhase = true;
      }
    }
  }

  #tmDecides(txId: string, outcome: Outcome): void {
    const g = this.#tx(txId);
    if (g.onePhase) return;
    if (g.tm === 'init') {
      g.tm = outcome;
    } else if (g.tm !== outcome) {
      // Both decisions were taken at some point: P4 reports it; the projection shows it too.
      this.fail('P18', `${txId}: the TM decided ${outcome} after ${g.tm}`, txId);
    }
    this.#dirty.add(txId);
  }

  /** A frame of the coordinator's left for `to`. */
  coordinatorSent(to: string, messages: readonly CoordinatorMessage[]): void {
    for (const m of messages) this.#coordinatorSend(to, m);
  }

  #coordinatorSend(to: string, message: CoordinatorMessage): void {
    if (message.type !== 'decision') return;
    this.exercised.P20++;
    if (this.#failedWrites.get('coordinator')?.has(message.txId)) {
      this.fail('P20', `the coordinator sent ${message.outcome} for ${message.txId} to ${to} after its log write for it failed`, message.txId);
    }
    if (message.outcome !== Outcome.COMMITTED) return;
    // A one-phase commit is decided by its participant: the coordinator only relays it.
    if (this.#txs.get(message.txId)?.onePhase) return;
    // P5: the decision record is on the synced layer before Commit leaves.
    this.exercised.P5++;
    const disk = this.#world.disk('coordinator');
    const open = coordinatorRecord(disk, OPEN + message.txId, true);
    const done = coordinatorRecord(disk, DONE + message.txId, true);
    const durable = open?.kind === CoordinatorRecordKind.COMMIT || done?.outcome === Outcome.COMMITTED;
    if (!durable) this.fail('P5', `Commit for ${message.txId} sent to ${to} before the COMMIT record was synced`, message.txId);
  }

  /** The coordinator's disk is about to write a batch (`before`: what the key held). */
  coordinatorWrite(ops: readonly DiskOp[]): void {
    // P12: a COMMIT record is deleted only once every participant durably committed.
    const disk = this.#world.disk('coordinator');
    for (const op of ops) {
      if (op.type !== 'del' || !op.key.startsWith(OPEN)) continue;
      const record = coordinatorRecord(disk, op.key);
      if (record?.kind !== CoordinatorRecordKind.COMMIT) continue;
      this.exercised.P12++;
      for (const p of record.participants) {
        const r = participantRecord(this.#world.disk(p), record.txId, true);
        if (r?.state !== ParticipantRecordState.COMMITTED) {
          this.fail('P12', `the COMMIT record of ${record.txId} was deleted while ${p} had not durably committed`, record.txId);
        }
      }
    }
  }

  /** The coordinator disk wrote or synced a batch. */
  coordinatorDurable(ops: readonly DiskOp[]): void {
    for (const op of ops) {
      if (op.type !== 'put' || !op.key.startsWith(OPEN)) continue;
      const r = decodeCoordinatorRecord(op.key, op.value);
      if (r.kind === CoordinatorRecordKind.COMMIT) {
        const g = this.#tx(r.txId);
        g.durableCommit = true;
        this.#observe(r.txId, Outcome.COMMITTED, 'the durable COMMIT record');
        // A COMMIT record that became durable as its writer died is a decision all the same.
        this.#tmDecides(r.txId, Outcome.COMMITTED);
      }
    }
  }

  coordinatorRecovered(open: readonly CoordinatorRecord[], live: readonly string[]): void {
    for (const r of open) {
      this.exercised.P11++;
      if (!live.includes(r.txId)) this.fail('P11', `recovery did not resume ${r.txId} (open ${r.kind} record)`, r.txId);
    }
  }

  /** A log write of `node` failed (it may have landed): nothing may follow from it (P20). */
  writeFailed(node: string, ops: readonly DiskOp[]): void {
    const txIds = txIdsOfOps(ops);
    if (txIds.length === 0) return;
    const set = this.#failedWrites.get(node) ?? new Set<string>();
    for (const t of txIds) set.add(t);
    this.#failedWrites.set(node, set);
  }

  /** A frame over the message limit was about to be sent (P17). */
  frameOverLimit(from: string, to: string, bytes: number, limit: number): void {
    this.fail('P17', `${from} sent a ${bytes}-byte frame to ${to}, over the ${limit}-byte message limit`);
  }

  /** An initiator got `reply`. */
  reply(reply: CoordinatorReply): void {
    this.exercised.P17++;
    const failed = this.#failedWrites.get('coordinator');
    if (failed && reply.type !== 'error' && reply.type !== 'begun' && reply.type !== 'reserved') {
      const txId = reply.type === 'transaction' ? reply.view.txId : reply.txId;
      this.exercised.P20++;
      if (failed.has(txId) && (reply.type !== 'transaction' || reply.view.outcome !== undefined)) {
        this.fail('P20', `the initiator heard ${describeOutcome(reply)} for ${txId} from a coordinator whose log write for it failed`, txId);
      }
    } else if (failed && reply.type === 'error' && reply.error.code === ErrorCode.TX_ABORTED && reply.error.txId && failed.has(reply.error.txId)) {
      this.fail('P20', `the initiator heard ABORTED for ${reply.error.txId} from a coordinator whose log write for it failed`, reply.error.txId);
    }
    switch (reply.type) {
      case 'committed': {
        this.#tx(reply.txId).reportedCommitted = true;
        return this.#observe(reply.txId, Outcome.COMMITTED, 'the reply to the initiator');
      }
      case 'aborted':
        return this.#observe(reply.txId, Outcome.ABORTED, 'the reply to the initiator');
      case 'error':
        if (reply.error.code === ErrorCode.TX_ABORTED && reply.error.txId) this.#observe(reply.error.txId, Outcome.ABORTED, 'the reply to the initiator');
        return;
      case 'transaction': {
        const v = reply.view;
        if (!v.outcome || (v.state !== TxState.DECIDED && v.state !== TxState.ENDED)) return;
        const g = this.#txs.get(v.txId);
        this.exercised.P13++;
        if (v.presumed) this.exercised.P12++;
        if (v.presumed && g?.decision === Outcome.COMMITTED) {
          this.fail('P12', `GetTransaction(${v.txId}) presumed ABORTED for a committed transaction`, v.txId);
          return;
        }
        return this.#observe(v.txId, v.outcome, `GetTransaction${v.presumed ? ' (presumed)' : ''}`);
      }
      default:
        return;
    }
  }

  // ---- participants -------------------------------------------------------------------------

  participantStep(participant: string, input: ParticipantInput | undefined, effects: readonly ParticipantEffect[]): void {
    if (input?.type === 'lookup-result' && input.record === undefined && input.pending.type === 'message') {
      const m = input.pending.message;
      if (m.type === 'decision' && m.outcome === Outcome.ABORTED && effects.some((e) => e.type === 'persist')) {
        // An Abort before any Prepare: the tombstone must make a later Prepare vote NO (P9).
        this.#tx(m.txId).abortBeforePrepare.add(participant);
      }
    }
    if (this.#world.replaying && input?.type === 'message') {
      const g = this.#txs.get(input.message.txId);
      for (const e of effects) {
        if (e.type === 'run-apply' && g?.decision !== undefined && e.outcome !== g.decision) {
          this.fail('P15', `a replayed ${input.message.type} made ${participant} apply ${e.outcome} to ${e.txId}, decided ${g.decision}`, e.txId);
        }
      }
    }
  }

  /** A frame of `participant`'s left for the coordinator. */
  participantSent(participant: string, messages: readonly ParticipantMessage[]): void {
    for (const m of messages) this.#participantSend(participant, m);
  }

  #participantSend(participant: string, message: ParticipantMessage): void {
    if (message.type === 'vote' || message.type === 'ack') {
      this.exercised.P20++;
      if (this.#failedWrites.get(participant)?.has(message.txId)) {
        this.fail('P20', `${participant} sent a ${message.type} for ${message.txId} after its log write for it failed`, message.txId);
      }
    }
    if (message.type === 'ack' && message.outcome === Outcome.COMMITTED) {
      // P7: COMMITTED is acknowledged only once the outcome record is synced (the coordinator may forget it next).
      this.exercised.P7++;
      const synced = participantRecord(this.#world.disk(participant), message.txId, true);
      if (synced?.state !== ParticipantRecordState.COMMITTED) {
        this.fail('P7', `${participant} acknowledged COMMITTED for ${message.txId} before its COMMITTED record was synced`, message.txId);
      }
    }
    if (message.type !== 'vote') return;
    const g = this.#tx(message.txId);
    const votes = g.votes.get(participant) ?? new Set<Vote>();
    votes.add(message.vote);
    g.votes.set(participant, votes);
    const disk = this.#world.disk(participant);
    if (message.vote === Vote.NO) {
      if (!g.noAt.has(participant)) g.noAt.set(participant, this.#world.now);
      return;
    }
    if (message.vote === Vote.YES) {
      this.exercised.P7++;
      this.exercised.P9++;
      // P7: YES only once PREPARED (or the one-phase COMMITTED) is on the synced layer.
      const synced = participantRecord(disk, message.txId, true);
      if (synced?.state !== ParticipantRecordState.PREPARED && synced?.state !== ParticipantRecordState.COMMITTED) {
        this.fail('P7', `${participant} voted YES on ${message.txId} before its PREPARED record was synced`, message.txId);
      }
      // P9: an Abort that came first left a tombstone: the late Prepare must vote NO.
      if (g.abortBeforePrepare.has(participant)) {
        this.fail('P9', `${participant} voted YES on ${message.txId} after an Abort for it had arrived first`, message.txId);
      }
      if (!synced && !g.onePhase) this.#rmPrepared(g, participant);
      return;
    }
    if (!g.onePhase) this.#rmPrepared(g, participant);
  }

  #rmPrepared(g: Ghost, participant: string): void {
    if (g.msgPrepared.has(participant)) return;
    g.msgPrepared.add(participant);
    if ((g.rm.get(participant) ?? 'working') === 'working') g.rm.set(participant, 'prepared');
    this.#dirty.add(g.id);
  }

  /** A frame of the coordinator's reached `participant`. */
  participantReceived(participant: string, messages: readonly CoordinatorMessage[]): void {
    for (const m of messages) this.#participantReceived(participant, m);
  }

  #participantReceived(participant: string, message: CoordinatorMessage): void {
    if (message.type !== 'decision') return;
    const g = this.#tx(message.txId);
    const got = g.received.get(participant) ?? new Set<Outcome>();
    got.add(message.outcome);
    g.received.set(participant, got);
    if (message.outcome === Outcome.COMMITTED) {
      const noAt = g.noAt.get(participant);
      if (noAt !== undefined && g.decidedAt !== undefined && noAt <= g.decidedAt) {
        this.fail('P3', `${participant} voted NO on ${message.txId} and then received Commit`, message.txId);
      }
    }
  }

  participantHookVote(participant: string, txId: string, vote: Vote): void {
    const g = this.#tx(txId);
    const votes = g.hookVotes.get(participant) ?? new Set<Vote>();
    votes.add(vote);
    g.hookVotes.set(participant, votes);
    if (vote === Vote.NO && !g.noAt.has(participant)) g.noAt.set(participant, this.#world.now);
  }

  /** A participant's disk wrote a batch (visible to its process). */
  participantAppended(participant: string, ops: readonly DiskOp[]): void {
    const disk = this.#world.disk(participant);
    for (const op of ops) {
      if (op.type === 'put' && op.key.startsWith(PREPARED)) {
        this.#tx(op.key.slice(PREPARED.length)).preparedWritten.add(participant);
        this.#checkLocks(participant, disk);
      } else if (op.type === 'put' && op.key.startsWith(LOG)) {
        const r = decodeParticipantRecord(op.key.slice(LOG.length), op.value);
        if (r.state === ParticipantRecordState.PREPARED) continue;
        const outcome = r.state === ParticipantRecordState.COMMITTED ? Outcome.COMMITTED : Outcome.ABORTED;
        const g = this.#tx(r.txId);
        this.#checkMove(participant, g, r, outcome);
        if (r.onePhase) g.onePhase = true;
        g.recordOutcome.set(participant, outcome);
        this.exercised.P1++;
        for (const [other, o] of g.recordOutcome) {
          if (o !== outcome) this.fail('P1', `${r.txId}: ${participant} ${outcome} but ${other} ${o}`, r.txId);
        }
        this.#observe(r.txId, outcome, `${participant}'s log`);
        if (!g.onePhase) {
          g.rm.set(participant, outcome);
          this.#dirty.add(g.id);
        }
      } else if (op.type === 'put' && op.key.startsWith(EFFECT)) {
        const txId = op.key.slice(EFFECT.length);
        this.exercised.P8++;
        const n = Number(appValue(disk, op.key) ?? 0);
        if (n > 1) this.fail('P8', `${participant} applied the business effect of ${txId} ${n} times`, txId);
        const g = this.#tx(txId);
        if (g.decision === Outcome.ABORTED) this.fail('P8', `${participant} applied the business effect of the aborted ${txId}`, txId);
      }
    }
  }

  /** P21: the PREPARED records on `disk` never hold conflicting locks on one key. */
  #checkLocks(participant: string, disk: SimDisk): void {
    this.exercised.P21++;
    const byKey = new Map<string, { txId: string; mode: string }>();
    for (const [key, value] of disk.scan(PREPARED)) {
      const r = decodeParticipantRecord(key.slice(PREPARED.length), value);
      for (const lock of r.locks ?? []) {
        const other = byKey.get(lock.key);
        if (other && (other.mode === 'exclusive' || lock.mode === 'exclusive')) {
          this.fail('P21', `${participant} holds ${other.txId} and ${r.txId} PREPARED with locks on ${lock.key} (${other.mode}, ${lock.mode})`, r.txId);
        }
        if (!other || lock.mode === 'exclusive') byKey.set(lock.key, { txId: r.txId, mode: lock.mode });
      }
    }
  }

  /** P6 and P9 when `participant` writes `outcome` for `g`. */
  #checkMove(participant: string, g: Ghost, record: ParticipantRecord, outcome: Outcome): void {
    if (g.preparedWritten.has(participant) && !record.onePhase) {
      this.exercised.P6++;
      // P6: a prepared participant moves only on a decision it received, and only one that is durable.
      if (!g.received.get(participant)?.has(outcome)) {
        this.fail('P6', `${participant} moved ${record.txId} from PREPARED to ${outcome} without receiving that decision`, record.txId);
      } else if (outcome === Outcome.COMMITTED && !g.durableCommit) {
        this.fail('P6', `${participant} committed ${record.txId} on a Commit not backed by a durable COMMIT record`, record.txId);
      } else if (outcome === Outcome.ABORTED && g.durableCommit) {
        this.fail('P6', `${participant} aborted ${record.txId} although the COMMIT record is durable`, record.txId);
      }
    }
    if (outcome === Outcome.COMMITTED && !record.onePhase && !g.preparedSynced.has(participant)) {
      // P9: Commit for a transaction never prepared here is never applied.
      this.fail('P9', `${participant} committed ${record.txId} without a durable PREPARED record`, record.txId);
    }
    g.preparedWritten.delete(participant);
  }

  /** A participant's disk made a batch durable. */
  participantDurable(participant: string, ops: readonly DiskOp[]): void {
    for (const op of ops) {
      if (op.type !== 'put' || !op.key.startsWith(PREPARED)) continue;
      const g = this.#tx(op.key.slice(PREPARED.length));
      g.preparedSynced.add(participant);
      // TwoPhase: a durable PREPARED is RMPrepare; the YES (or, after a crash, the inquiry) announces it.
      this.#rmPrepared(g, participant);
    }
  }

  /** A node crashed: rebuild the projection of what its disk still holds; the crash step itself is not a model step. */
  crashed(node: string, powerLoss: boolean): void {
    this.#crashStep = true;
    this.#failedWrites.delete(node);
    if (!powerLoss || node === 'coordinator') return;
    const disk = this.#world.disk(node);
    for (const g of this.#txs.values()) {
      const r = participantRecord(disk, g.id);
      if (r?.state === ParticipantRecordState.PREPARED) g.preparedWritten.add(node);
      else g.preparedWritten.delete(node);
      if (g.abortBeforePrepare.has(node) && r?.state !== ParticipantRecordState.ABORTED) g.abortBeforePrepare.delete(node);
      const outcome = r && r.state !== ParticipantRecordState.PREPARED ? (r.state as Outcome) : undefined;
      if (outcome) g.recordOutcome.set(node, outcome);
      else g.recordOutcome.delete(node);
      if (!r && g.noAt.has(node) && !g.noReceived.has(node)) {
        // A NO whose unsynced ABORTED record the power loss took, and which never reached the
        // coordinator (the frames in flight died with the session): nobody heard it, so it never
        // happened, and a prepare sent again may be answered YES. (Its abort hook's writes went
        // with the record: one batch.) A NO the coordinator received stays covered by P3.
        g.noAt.delete(node);
        g.votes.get(node)?.delete(Vote.NO);
        if (g.votes.get(node)?.size === 0) g.votes.delete(node);
      }
      if (!outcome && g.decisionSource === `${node}'s log` && !g.votes.has(node)) {
        // The only sighting of a decision was this participant's own record, which the power loss
        // took before anyone heard of it (no vote left): it never happened. A NO that did leave
        // stays covered by P3 (a NO voter never gets Commit).
        delete g.decision;
        delete g.decisionSource;
        delete g.decidedAt;
      }
      if (!g.rm.has(node)) continue;
      const state: RmState = !r ? (g.msgPrepared.has(node) ? 'prepared' : 'working') : r.state === ParticipantRecordState.PREPARED ? 'prepared' : r.state;
      g.rm.set(node, state);
      this.#dirty.add(g.id);
    }
  }

  // ---- after every step ---------------------------------------------------------------------

  /** Checks what must hold after every step: the TwoPhase projection of the transactions touched. */
  afterStep(): void {
    const crash = this.#crashStep;
    this.#crashStep = false;
    for (const txId of this.#dirty) {
      const g = this.#txs.get(txId);
      if (!g || g.onePhase) continue;
      const branches = this.#world.branchesOf(txId);
      if (!branches || branches.length < 2) continue;
      const next = this.#project(g, branches);
      const prev = g.abs;
      g.abs = next;
      if (!prev || crash) continue;
      const step = twoPhaseStep(prev, next);
      this.exercised.P18++;
      if (!step.ok) this.fail('P18', `${txId}: observed transition is not a TwoPhase action: ${step.why} (rms ${branches.join(',')})`, txId);
    }
    this.#dirty.clear();
  }

  #project(g: Ghost, branches: readonly string[]): TwoPhaseState {
    let tmPrepared = 0;
    let msgPrepared = 0;
    branches.forEach((p, i) => {
      if (g.tmPrepared.has(p)) tmPrepared |= 1 << i;
      if (g.msgPrepared.has(p)) msgPrepared |= 1 << i;
    });
    return {
      rm: branches.map((p) => g.rm.get(p) ?? 'working'),
      tm: g.tm,
      tmPrepared,
      msgPrepared,
      msgCommit: g.tm === 'committed',
      msgAbort: g.tm === 'aborted',
    };
  }

  // ---- at quiescence ------------------------------------------------------------------------

  /** Termination and no-loss, once every process runs, faults stopped and everything settled. */
  finalChecks(): void {
    const w = this.#world;
    this.exercised.P10++;
    this.exercised.P13++;
    for (const g of this.#txs.values()) {
      const branches = w.branchesOf(g.id) ?? [];
      for (const p of w.participantNames) {
        const disk = w.disk(p);
        const record = participantRecord(disk, g.id);
        const effect = Number(appValue(disk, EFFECT + g.id) ?? 0);
        const votedYes = g.votes.get(p)?.has(Vote.YES) ?? false;
        const hookYes = g.hookVotes.get(p)?.has(Vote.YES) ?? false;
        if (record?.state === ParticipantRecordState.PREPARED) this.fail('P10', `${p} still holds ${g.id} PREPARED after faults stopped`, g.id);
        if (disk.get(HOLD + g.id) !== undefined) this.fail('P10', `${p} still holds the locks of ${g.id} after faults stopped`, g.id);
        if (g.decision === Outcome.COMMITTED && branches.includes(p) && votedYes) {
          if (record?.state !== ParticipantRecordState.COMMITTED) {
            this.fail(g.reportedCommitted ? 'P13' : 'P10', `${g.id} committed${g.reportedCommitted ? ' (reported to the initiator)' : ''} but ${p}, a YES voter, ended ${record?.state ?? 'with no record'}`, g.id);
          }
          const expected = hookYes ? 1 : 0;
          if (effect !== expected) this.fail('P8', `${g.id} committed but ${p}'s business effect count is ${effect} (expected ${expected})`, g.id);
        } else if (g.decision !== Outcome.COMMITTED && effect !== 0) {
          this.fail('P8', `${g.id} is ${g.decision ?? 'undecided'} but ${p}'s business effect count is ${effect}`, g.id);
        }
      }
    }
    for (const p of w.participantNames) {
      const disk = w.disk(p);
      for (const [key] of disk.scan(PREPARED)) this.fail('P10', `${p} still has ${key} after faults stopped`, key.slice(PREPARED.length));
      // P21: each shared key's counter is the number of business effects of the transactions that
      // locked it; a commit that read the counter while another was applying loses one.
      this.exercised.P21++;
      const effects = new Map<string, number>();
      for (const [key, value] of disk.scan(EFFECT)) {
        const shared = sharedKeyOf(key.slice(EFFECT.length));
        effects.set(shared, (effects.get(shared) ?? 0) + Number(JSON.parse(decoder.decode(value))));
      }
      const counters = new Map<string, number>();
      for (const [key, value] of disk.scan(COUNTER)) counters.set(key.slice(COUNTER.length), Number(JSON.parse(decoder.decode(value))));
      for (const shared of new Set([...effects.keys(), ...counters.keys()])) {
        const expected = effects.get(shared) ?? 0;
        const got = counters.get(shared) ?? 0;
        if (got !== expected) this.fail('P21', `${p}'s counter of ${shared} is ${got}, but ${expected} committed transactions locked it (a lost update)`);
      }
    }
  }
}
