// A simulated participant process: the real ParticipantMachine with the SDK's effect handling
// (src/participant/participant.ts, participant-log.ts) on simulated time, disk and session. The
// application is simulated too: its hooks take the time and give the answers the scenario plans,
// and stage their writes (a hold at prepare, the business effect at commit) into the atomic
// batch of the protocol record, as the SDK's `batch` does.

import type { CoordinatorMessage, ParticipantMessage } from '../protocol/coordinator-events.js';
import { ParticipantRecordState, type ParticipantEffect, type ParticipantInput, type ParticipantRecord } from '../protocol/participant-events.js';
import { ParticipantMachine } from '../protocol/participant-machine.js';
import { backoffDelayMs, Outcome, Vote } from '../protocol/types.js';
import type { BranchPlan } from './scenario.js';
import { SimTimers, type NodeHost } from './sim-host.js';
import type { ParticipantEndpoint, SimSessions } from './sim-sessions.js';
import { SimGroupCommitter, type DiskOp, type SimDisk } from './sim-storage.js';

/** Log and application-store keys on a participant's disk. */
export const LOG = 'log/';
export const PREPARED = 'prepared/';
export const HOLD = 'app/hold/';
export const EFFECT = 'app/effect/';

/** What the participant shell needs besides its host. */
export interface ParticipantWiring {
  readonly sessions: SimSessions;
  /** How the application's hooks behave for `txId` here (undefined: not planned, a fast YES). */
  behaviour(txId: string): BranchPlan | undefined;
  /** A log write failed: the SDK stops (fail-stop). */
  failStop(reason: string): void;
  /** The application's memory of the transactions it answered READ_ONLY (it outlives crashes). */
  readonly readOnlyAnswered: Set<string>;
}

const FAST_YES: BranchPlan = { participant: -1, vote: 'yes', latencyMs: 1, applyFailures: 0 };

/** One incarnation of a participant process. */
export class SimParticipant implements ParticipantEndpoint {
  readonly name: string;
  readonly machine: ParticipantMachine;
  readonly committer: SimGroupCommitter;
  readonly #host: NodeHost;
  readonly #disk: SimDisk;
  readonly #wiring: ParticipantWiring;
  readonly #timers: SimTimers;
  readonly #prepareOps = new Map<string, DiskOp[]>();
  readonly #applyOps = new Map<string, DiskOp[]>();
  readonly #applyRuns = new Map<string, number>();
  readonly #enlists = new Map<number, string>();
  #session: { id: number; welcomed: boolean } | undefined;
  #frame: ParticipantMessage[] = [];
  #reconnectAttempt = 0;
  #nextEnlistId = 0;

  /** Boots: loads the PREPARED records, recovers them, and dials the coordinator. */
  constructor(host: NodeHost, disk: SimDisk, wiring: ParticipantWiring) {
    this.name = host.name;
    this.#host = host;
    this.#disk = disk;
    this.#wiring = wiring;
    this.committer = new SimGroupCommitter(disk, host.config.disk, host.prng, (d, fn) => host.after(d, fn));
    this.machine = new ParticipantMachine(host.config.participant);
    this.#timers = new SimTimers(host, (key) => this.#onTimer(key));
    const prepared = disk.scan(PREPARED).map(([, v]) => v as ParticipantRecord);
    if (host.tracing) host.trace(`${this.name}: started, ${prepared.length} transaction(s) in doubt`, prepared.map((r) => r.txId));
    const effects = this.machine.recover(prepared, host.now);
    host.observer.participantStep(this.name, undefined, effects);
    this.#run(effects);
    this.#connect();
  }

  /** Whether the session is up (welcomed). */
  get connected(): boolean {
    return this.#session?.welcomed === true;
  }

  // ---- session ------------------------------------------------------------------------------

  #connect(): void {
    const id = this.#wiring.sessions.open(this.name);
    this.#session = { id, welcomed: false };
    this.#host.after(this.#host.config.connectTimeoutMs, () => {
      if (this.#session?.id !== id || this.#session.welcomed) return;
      if (this.#host.tracing) this.#host.trace(`${this.name}: no welcome on session ${id}; giving up on it`);
      this.#wiring.sessions.closeBy(id, 'participant');
      this.#lost(id);
    });
  }

  onWelcome(sessionId: number, epoch: number): void {
    if (this.#session?.id !== sessionId || this.#session.welcomed) return;
    this.#session.welcomed = true;
    this.#reconnectAttempt = 0;
    if (this.#host.tracing) this.#host.trace(`${this.name}: connected (session ${sessionId}, coordinator epoch ${epoch})`);
    this.#dispatch({ type: 'connected' });
  }

  onRefused(sessionId: number): void {
    this.#lost(sessionId);
  }

  onSessionClosed(sessionId: number): void {
    this.#lost(sessionId);
  }

  #lost(sessionId: number): void {
    if (this.#session?.id !== sessionId) return;
    this.#session = undefined;
    this.#frame = [];
    this.#dispatch({ type: 'disconnected' });
    this.#enlists.clear();
    const c = this.#host.config;
    const base = backoffDelayMs(++this.#reconnectAttempt, c.reconnectInitialMs, c.reconnectMaxMs);
    const delay = Math.round(base / 2 + this.#host.prng.float() * (base / 2));
    if (this.#host.tracing) this.#host.trace(`${this.name}: session lost; reconnecting in ${delay}ms`);
    this.#host.after(delay, () => {
      if (!this.#session) this.#connect();
    });
  }

  onFrame(sessionId: number, messages: readonly CoordinatorMessage[]): void {
    if (this.#session?.id !== sessionId || !this.#session.welcomed) return;
    for (const m of messages) {
      if (m.type === 'enlist-result') {
        const txId = this.#enlists.get(m.requestId);
        if (txId === undefined) continue;
        this.#enlists.delete(m.requestId);
        if (!m.error) this.#dispatch({ type: 'enlisted', txId });
        continue;
      }
      this.#host.observer.participantReceived(this.name, m);
      if (m.type === 'decision' && m.outcome === Outcome.COMMITTED && this.#host.has('duplicate-commit-applied-twice')) {
        const record = this.#disk.get(LOG + m.txId) as ParticipantRecord | undefined;
        if (record?.state === ParticipantRecordState.COMMITTED) this.#writeEffectDirectly(m.txId);
      }
      this.#dispatch({ type: 'message', message: m });
    }
  }

  /** Joins an active transaction (Participant.enlist); fails silently when not connected. */
  enlist(txId: string, payload: Uint8Array): boolean {
    if (!this.connected) return false;
    const requestId = ++this.#nextEnlistId;
    this.#enlists.set(requestId, txId);
    this.#queue({ type: 'enlist', requestId, txId, payload });
    this.flush();
    return true;
  }

  #queue(message: ParticipantMessage): void {
    if (!this.#session) {
      if (this.#host.tracing) this.#host.trace(`${this.name}: no session; message dropped`, 'txId' in message ? [message.txId] : []);
      return;
    }
    this.#host.observer.participantSend(this.name, message);
    this.#frame.push(message);
  }

  /** Sends the frame built during this step. */
  flush(): void {
    if (this.#frame.length === 0 || !this.#session) return;
    const ordered = (['vote', 'ack', 'inquiry', 'enlist'] as const).flatMap((t) => this.#frame.filter((m) => m.type === t));
    this.#frame = [];
    this.#wiring.sessions.sendToCoordinator(this.#session.id, ordered);
  }

  // ---- the protocol loop --------------------------------------------------------------------

  #dispatch(input: ParticipantInput): void {
    const effects = this.machine.handle(input, this.#host.now);
    this.#host.observer.participantStep(this.name, input, effects);
    this.#run(effects);
  }

  #run(effects: readonly ParticipantEffect[]): void {
    for (const effect of effects) this.#execute(effect);
  }

  #execute(effect: ParticipantEffect): void {
    const host = this.#host;
    switch (effect.type) {
      case 'send':
        return this.#queue(effect.message);
      case 'run-prepare':
        return this.#runPrepare(effect.txId, effect.deadline);
      case 'run-apply':
        return this.#runApply(effect.txId, effect.outcome);
      case 'persist':
        return this.#persist(effect);
      case 'lookup':
        host.after(host.prng.int(0, host.config.lookupMaxMs), () => {
          const record = this.#disk.get(LOG + effect.txId) as ParticipantRecord | undefined;
          this.#dispatch({ type: 'lookup-result', txId: effect.txId, record, pending: effect.pending });
        });
        return;
      case 'set-timer':
        return this.#timers.set(effect.key, effect.at, effect.jitterMs);
      case 'cancel-timer':
        return this.#timers.cancel(effect.key);
      case 'finished':
        if (host.tracing) host.trace(`${this.name}: finished tx=${effect.txId} (${effect.outcome ?? 'read-only'})`, [effect.txId]);
        return;
      case 'ignored':
        if (host.tracing) host.trace(`${this.name}: ignored ${effect.what} (${effect.why})`, [effect.txId]);
        return;
    }
  }

  #onTimer(key: string): void {
    if (key === 'inquire' && !this.connected && this.#host.has('participant-unilateral-abort')) {
      for (const txId of this.machine.inDoubt()) {
        if (this.#host.tracing) this.#host.trace(`${this.name}: coordinator unreachable; aborting tx=${txId} on its own`, [txId]);
        this.#dispatch({ type: 'message', message: { type: 'decision', txId, outcome: Outcome.ABORTED } });
      }
    }
    this.#dispatch({ type: 'timer', key });
  }

  /** The prepare hook: answers as planned, or NO when the deadline's abort signal fires first. */
  #runPrepare(txId: string, deadline: number): void {
    const host = this.#host;
    const plan = this.#wiring.behaviour(txId) ?? FAST_YES;
    const again = plan.vote === 'read-only' && host.config.stableReadOnlyHooks && this.#wiring.readOnlyAnswered.has(txId);
    const finishes = plan.vote === 'hang' ? Infinity : host.now + (again ? 0 : plan.latencyMs);
    const inTime = finishes <= deadline;
    const at = inTime ? finishes : Math.max(host.now, deadline);
    const vote = !inTime ? Vote.NO : plan.vote === 'yes' ? Vote.YES : plan.vote === 'read-only' ? Vote.READ_ONLY : Vote.NO;
    const reason = !inTime ? 'prepare hook failed: prepare deadline reached' : vote === Vote.NO ? 'insufficient funds' : '';
    host.after(at - host.now, () => {
      if (host.tracing) host.trace(`${this.name}: prepare hook answers ${vote.toUpperCase()} tx=${txId}${reason ? ` (${reason})` : ''}`, [txId]);
      host.observer.participantHookVote(this.name, txId, vote);
      if (vote === Vote.YES) this.#prepareOps.set(txId, [{ type: 'put', key: HOLD + txId, value: true }]);
      if (vote === Vote.READ_ONLY) this.#wiring.readOnlyAnswered.add(txId);
      this.#dispatch({ type: 'prepare-done', txId, vote, reason });
    });
  }

  /** The commit or abort hook: fails the planned number of times, then stages its writes. */
  #runApply(txId: string, outcome: Outcome): void {
    const host = this.#host;
    const plan = this.#wiring.behaviour(txId) ?? FAST_YES;
    const run = (this.#applyRuns.get(txId) ?? 0) + 1;
    this.#applyRuns.set(txId, run);
    host.after(host.prng.int(0, 2), () => {
      const committing = outcome === Outcome.COMMITTED;
      if (committing && host.has('unstaged-commit-effects')) this.#writeEffectDirectly(txId);
      if (run <= plan.applyFailures) {
        if (host.tracing) host.trace(`${this.name}: ${committing ? 'commit' : 'abort'} hook threw tx=${txId}`, [txId]);
        this.#dispatch({ type: 'apply-failed', txId, message: 'simulated hook failure' });
        return;
      }
      const ops: DiskOp[] = [{ type: 'del', key: HOLD + txId }];
      if (committing && !host.has('unstaged-commit-effects')) ops.push({ type: 'put', key: EFFECT + txId, value: this.#effectCount(txId) + 1 });
      this.#applyOps.set(txId, ops);
      host.observer.participantApplied(this.name, txId, outcome);
      this.#dispatch({ type: 'apply-done', txId });
    });
  }

  #effectCount(txId: string): number {
    return Number(this.#disk.get(EFFECT + txId) ?? 0);
  }

  /** What the non-idempotent mutants do: the business effect written on its own, at once. */
  #writeEffectDirectly(txId: string): void {
    const ops: DiskOp[] = [{ type: 'put', key: EFFECT + txId, value: this.#effectCount(txId) + 1 }];
    if (this.#host.tracing) this.#host.trace(`${this.name}: business effect applied directly tx=${txId}`, [txId]);
    this.committer.write(ops, false, () => undefined);
  }

  /** participant.ts `persist` + participant-log.ts `write`: the record and the staged writes, atomically. */
  #persist(effect: Extract<ParticipantEffect, { type: 'persist' }>): void {
    const host = this.#host;
    const { record, token } = effect;
    const txId = record.txId;
    const withPrepare = record.state === ParticipantRecordState.PREPARED || (record.state === ParticipantRecordState.COMMITTED && record.onePhase);
    const tombstone = record.state === ParticipantRecordState.ABORTED && !this.#applyOps.has(txId);
    const ops: DiskOp[] = [...(withPrepare ? (this.#prepareOps.get(txId) ?? []) : []), ...(this.#applyOps.get(txId) ?? [])];
    this.#prepareOps.delete(txId);
    this.#applyOps.delete(txId);
    // One record key per transaction, whatever its state. participant-log.ts keeps a PREPARED
    // record under `prepared/` only and moves it to `log/` with its outcome; the machine cannot
    // tell the two apart, because an in-doubt transaction is always in memory and a lookup treats
    // a PREPARED record as none.
    ops.push({ type: 'put', key: LOG + txId, value: record });
    if (record.state === ParticipantRecordState.PREPARED) ops.push({ type: 'put', key: PREPARED + txId, value: record });
    else ops.push({ type: 'del', key: PREPARED + txId });
    const early = effect.force && record.state === ParticipantRecordState.PREPARED && host.has('yes-before-prepared-durable');
    if (tombstone && host.has('no-abort-tombstone')) {
      if (host.tracing) host.trace(`${this.name}: tombstone for tx=${txId} not written`, [txId]);
      host.after(0, () => this.#dispatch({ type: 'persisted', token }));
      return;
    }
    if (host.tracing) host.trace(`${this.name}: log write ${record.state.toUpperCase()}${record.onePhase ? ' (one-phase)' : ''} tx=${txId}${effect.force ? ' (forced)' : ''}`, [txId]);
    host.observer.participantWrite(this.name, record, ops);
    this.committer.write(ops, effect.force, (error) => {
      if (error) {
        if (host.tracing) host.trace(`${this.name}: log write FAILED tx=${txId} (${error}); stopping`, [txId]);
        this.#wiring.failStop(error);
        return;
      }
      if (host.tracing) host.trace(`${this.name}: log write ${effect.force ? 'synced' : 'written'}: ${record.state.toUpperCase()} tx=${txId}`, [txId]);
      if (!early) this.#dispatch({ type: 'persisted', token });
    });
    if (early) host.after(0, () => this.#dispatch({ type: 'persisted', token }));
  }
}
