// The simulated coordinator process: the real CoordinatorMachine, with the production shell's
// effect handling (src/coordinator/coordinator.ts, decision-log.ts, participant-sessions.ts)
// re-done on simulated time, disk and sessions. Mutants live here, never in the machine.

import {
  CoordinatorRecordKind,
  type CoordinatorEffect,
  type CoordinatorInput,
  type CoordinatorLogOp,
  type CoordinatorMessage,
  type CoordinatorRecord,
  type ParticipantMessage,
} from '../protocol/coordinator-events.js';
import { CoordinatorMachine } from '../protocol/coordinator-machine.js';
import { compareTxIds } from '../protocol/ids.js';
import { Vote } from '../protocol/types.js';
import { RETRY_GIVES_UP_AFTER } from './mutants.js';
import { SimTimers, type NodeHost } from './sim-host.js';
import type { CoordinatorEndpoint, SimSessions } from './sim-sessions.js';
import { SimGroupCommitter, type DiskOp, type SimDisk } from './sim-storage.js';

const EPOCH_KEY = 'meta/epoch';
const HORIZON_KEY = 'meta/gc-horizon';
const OPEN = 'open/';
const DONE = 'done/';
const ENDED = 'ended/';
const GC_BATCH_SIZE = 16;
const endedKey = (ms: number, txId: string): string => `${ENDED}${String(ms).padStart(15, '0')}/${txId}`;

/** What the coordinator shell needs besides its host. */
export interface CoordinatorWiring {
  readonly sessions: SimSessions;
  /** An initiator's request gets its answer. */
  reply(requestId: number, reply: Extract<CoordinatorEffect, { type: 'reply' }>['reply']): void;
  /** Whether the scenario runs garbage collection. */
  readonly gc: boolean;
  /** Request `requestId` created transaction `txId` (so the world can tell its workload plan). */
  created(requestId: number, txId: string): void;
}

/** One incarnation of the coordinator process. */
export class SimCoordinator implements CoordinatorEndpoint {
  readonly machine: CoordinatorMachine;
  readonly epoch: number;
  readonly committer: SimGroupCommitter;
  readonly #host: NodeHost;
  readonly #disk: SimDisk;
  readonly #wiring: CoordinatorWiring;
  readonly #timers: SimTimers;
  /** participant → its live session id. */
  readonly #sessionOf = new Map<string, number>();
  readonly #participantOf = new Map<number, string>();
  /** Frames being built this step, by session (flushed at the end of the step). */
  readonly #frames = new Map<number, CoordinatorMessage[]>();
  /** END summaries written but not settled (DecisionLog.#ending). */
  readonly #ending = new Map<string, CoordinatorRecord>();
  readonly #retries = new Map<string, number>();
  #gcRunning = false;

  /** Boots: bumps the epoch (synced), loads the open records and the horizon, recovers. */
  constructor(host: NodeHost, disk: SimDisk, wiring: CoordinatorWiring) {
    this.#host = host;
    this.#disk = disk;
    this.#wiring = wiring;
    this.committer = new SimGroupCommitter(disk, host.config.disk, host.prng, (d, fn) => host.after(d, fn));
    const previous = Number(disk.get(EPOCH_KEY) ?? 0);
    this.epoch = host.has('epoch-not-bumped') ? Math.max(1, previous) : previous + 1;
    disk.append([{ type: 'put', key: EPOCH_KEY, value: this.epoch }], true);
    const open = disk.scan(OPEN).map(([, v]) => v as CoordinatorRecord);
    const horizon = disk.get(HORIZON_KEY) as string | undefined;
    this.machine = new CoordinatorMachine({ ...host.config.coordinator, epoch: this.epoch });
    this.#timers = new SimTimers(host, (key) => this.dispatch({ type: 'timer', key }));
    if (host.tracing) host.trace(`coordinator: started, epoch ${this.epoch}, ${open.length} open record(s) to recover${horizon ? `, gc horizon ${horizon}` : ''}`);
    const effects = this.machine.recover(open, host.now, horizon);
    host.observer.coordinatorRecovered(open, this.machine.liveTxIds());
    host.observer.coordinatorStep(undefined, effects, undefined);
    this.#run(effects);
    if (wiring.gc) this.#scheduleGc();
  }

  // ---- sessions (participant-sessions.ts) ---------------------------------------------------

  acceptHello(sessionId: number, participant: string): boolean {
    if (this.#sessionOf.has(participant)) {
      if (this.#host.tracing) this.#host.trace(`coordinator: refused session ${sessionId}: ${participant} already has session ${this.#sessionOf.get(participant)}`);
      return false;
    }
    this.#sessionOf.set(participant, sessionId);
    this.#participantOf.set(sessionId, participant);
    return true;
  }

  onConnected(sessionId: number, participant: string): void {
    if (this.#sessionOf.get(participant) !== sessionId) return;
    this.dispatch({ type: 'connected', participant });
  }

  onFrame(sessionId: number, participant: string, messages: readonly ParticipantMessage[]): void {
    if (this.#sessionOf.get(participant) !== sessionId) return;
    // A frame carries votes, then acks, then inquiries, then enlists (the wire message's field order).
    for (const type of ['vote', 'ack', 'inquiry', 'enlist'] as const) {
      for (const m of messages) {
        if (m.type !== type) continue;
        let message = m;
        if (m.type === 'vote' && m.vote === Vote.NO && this.#host.has('no-vote-read-as-yes')) message = { ...m, vote: Vote.YES, reason: '' };
        this.dispatch({ type: 'message', from: participant, message });
      }
    }
  }

  onSessionClosed(sessionId: number): void {
    const participant = this.#participantOf.get(sessionId);
    if (participant === undefined) return;
    this.#participantOf.delete(sessionId);
    this.#frames.delete(sessionId);
    if (this.#sessionOf.get(participant) === sessionId) {
      this.#sessionOf.delete(participant);
      if (this.#host.tracing) this.#host.trace(`coordinator: ${participant} disconnected (session ${sessionId})`);
      this.dispatch({ type: 'disconnected', participant });
    }
  }

  /** Sends the frames built during this step: one per session, as the production flush does. */
  flush(): void {
    for (const [sessionId, messages] of this.#frames) {
      // The wire frame groups prepares, then decisions, then enlist results.
      const ordered = (['prepare', 'decision', 'enlist-result'] as const).flatMap((t) => messages.filter((m) => m.type === t));
      this.#wiring.sessions.sendToParticipant(sessionId, ordered);
    }
    this.#frames.clear();
  }

  // ---- initiator requests -------------------------------------------------------------------

  /** Handles one input and carries out its effects. */
  dispatch(input: CoordinatorInput): void {
    const txId = txIdOf(input);
    const before = txId === undefined ? undefined : this.machine.view(txId)?.state;
    const effects = this.machine.handle(input, this.#host.now);
    if (input.type === 'begin' || (input.type === 'commit' && input.txId === '')) {
      for (const e of effects) if (e.type === 'set-timer' && e.key.startsWith('deadline/')) this.#wiring.created(input.requestId, e.key.slice('deadline/'.length));
    }
    this.#host.observer.coordinatorStep(input, effects, before);
    this.#run(effects);
  }

  #run(effects: readonly CoordinatorEffect[]): void {
    for (const effect of effects) this.#execute(effect);
  }

  #execute(effect: CoordinatorEffect): void {
    const host = this.#host;
    switch (effect.type) {
      case 'send': {
        const sessionId = this.#sessionOf.get(effect.to);
        if (sessionId === undefined) {
          if (host.tracing) host.trace(`coordinator: ${effect.to} not connected; message dropped`, 'txId' in effect.message ? [effect.message.txId] : []);
          return;
        }
        host.observer.coordinatorSend(effect.to, effect.message);
        const frame = this.#frames.get(sessionId) ?? [];
        frame.push(effect.message);
        this.#frames.set(sessionId, frame);
        return;
      }
      case 'persist':
        return this.#persist(effect);
      case 'reply':
        return this.#wiring.reply(effect.requestId, effect.reply);
      case 'set-timer':
        if (host.has('retry-gives-up') && effect.key.startsWith('retry/')) {
          const n = (this.#retries.get(effect.key) ?? 0) + 1;
          this.#retries.set(effect.key, n);
          if (n > RETRY_GIVES_UP_AFTER + 1) return;
        }
        return this.#timers.set(effect.key, effect.at, effect.jitterMs);
      case 'cancel-timer':
        return this.#timers.cancel(effect.key);
      case 'lookup':
        host.after(host.prng.int(0, host.config.lookupMaxMs), () => {
          let record = this.#ending.get(effect.txId) ?? (this.#disk.get(DONE + effect.txId) as CoordinatorRecord | undefined);
          if (record === undefined && host.has('unknown-tx-committed')) {
            record = { kind: CoordinatorRecordKind.END, txId: effect.txId, participants: [], outcome: 'committed' };
          }
          this.dispatch({ type: 'lookup-result', txId: effect.txId, record, pending: effect.pending });
        });
        return;
      case 'decided':
        if (host.tracing) host.trace(`coordinator: DECIDED ${effect.outcome.toUpperCase()} tx=${effect.txId}${effect.reason ? ` (${effect.reason})` : ''}`, [effect.txId]);
        if (effect.outcome === 'committed' && host.has('forget-commit-early')) {
          // Forgets the decision as soon as it is sent: recovery will presume abort.
          this.committer.write([{ type: 'del', key: OPEN + effect.txId }], false, () => undefined);
          host.observer.coordinatorWrite([{ type: 'del', key: OPEN + effect.txId }]);
        }
        return;
      case 'ended':
        if (host.tracing) host.trace(`coordinator: ended tx=${effect.txId} (${effect.outcome})`, [effect.txId]);
        return;
      case 'ignored':
        if (host.tracing) host.trace(`coordinator: ignored ${effect.what} (${effect.why})${effect.participant ? ` from ${effect.participant}` : ''}`, effect.txId ? [effect.txId] : []);
        return;
    }
  }

  /** decision-log.ts `write`: open/done records, the ended index, and the in-flight END summaries. */
  #persist(effect: Extract<CoordinatorEffect, { type: 'persist' }>): void {
    const host = this.#host;
    const ops: DiskOp[] = [];
    const ending: CoordinatorRecord[] = [];
    for (const op of effect.ops as readonly CoordinatorLogOp[]) {
      if (op.op === 'del') {
        ops.push({ type: 'del', key: OPEN + op.txId });
      } else if (op.space === 'open') {
        ops.push({ type: 'put', key: OPEN + op.record.txId, value: op.record });
      } else {
        ops.push({ type: 'put', key: DONE + op.record.txId, value: op.record });
        ops.push({ type: 'put', key: endedKey(host.now, op.record.txId), value: '' });
        this.#ending.set(op.record.txId, op.record);
        ending.push(op.record);
      }
    }
    const { token } = effect;
    let force = effect.force;
    if (token?.kind === 'commit' && host.has('commit-record-unforced')) force = false;
    const early = force && token !== undefined && host.has('commit-before-durable');
    if (host.tracing) {
      host.trace(`coordinator: log write ${describeOps(effect.ops)}${force ? ' (forced)' : ''}`, effect.ops.map((o) => (o.op === 'del' ? o.txId : o.record.txId)));
    }
    host.observer.coordinatorWrite(ops);
    this.committer.write(ops, force, (error) => {
      if (error === undefined) {
        for (const r of ending) if (this.#ending.get(r.txId) === r) this.#ending.delete(r.txId);
      }
      if (host.tracing) host.trace(`coordinator: log write ${error ? `FAILED (${error})` : force ? 'synced' : 'written'}: ${describeOps(effect.ops)}`, token ? [token.txId] : []);
      if (!token || early) return;
      if (error) this.dispatch({ type: 'persist-failed', token, message: error });
      else this.dispatch({ type: 'persisted', token });
    });
    if (early && token) host.after(0, () => this.dispatch({ type: 'persisted', token }));
  }

  // ---- garbage collection (Coordinator.collectGarbage) ----------------------------------------

  #scheduleGc(): void {
    this.#host.after(this.#host.config.gcIntervalMs, () => {
      if (!this.#gcRunning) this.#gcBatch();
      this.#scheduleGc();
    });
  }

  #gcBatch(): void {
    const host = this.#host;
    const cutoff = host.now - host.config.retentionMs;
    this.#gcRunning = true;
    host.after(host.prng.int(0, host.config.lookupMaxMs), () => {
      const expired = this.#disk
        .scan(ENDED)
        .map(([key]) => key)
        .filter((key) => key < endedKey(cutoff, ''))
        .slice(0, GC_BATCH_SIZE);
      if (expired.length === 0) {
        this.#gcRunning = false;
        return;
      }
      const txIds = expired.map((key) => key.slice(key.lastIndexOf('/') + 1));
      let horizon = txIds[0] ?? '';
      for (const t of txIds) if (compareTxIds(t, horizon) > 0) horizon = t;
      if (host.tracing) host.trace(`coordinator: gc drops ${txIds.length} end summaries up to ${horizon}`, txIds);
      this.dispatch({ type: 'gc-horizon', txId: horizon });
      const ops: DiskOp[] = txIds.flatMap((t, i): DiskOp[] => [
        { type: 'del', key: DONE + t },
        { type: 'del', key: expired[i] as string },
      ]);
      // decision-log.ts `forget`: the stored horizon only rises (batches expire in write order).
      const previous = this.#disk.get(HORIZON_KEY) as string | undefined;
      ops.push({ type: 'put', key: HORIZON_KEY, value: previous !== undefined && compareTxIds(previous, horizon) > 0 ? previous : horizon });
      host.observer.coordinatorWrite(ops);
      this.committer.write(ops, false, () => {
        this.#gcRunning = false;
        if (expired.length === GC_BATCH_SIZE) this.#gcBatch();
      });
    });
  }
}

function txIdOf(input: CoordinatorInput): string | undefined {
  switch (input.type) {
    case 'message':
      return input.message.txId;
    case 'persisted':
    case 'persist-failed':
      return input.token.txId;
    case 'lookup-result':
    case 'abort':
    case 'get':
    case 'gc-horizon':
      return input.txId;
    case 'commit':
      return input.txId || undefined;
    case 'timer':
      return input.key.slice(input.key.indexOf('/') + 1);
    default:
      return undefined;
  }
}

function describeOps(ops: readonly CoordinatorLogOp[]): string {
  return ops
    .map((o) => (o.op === 'del' ? `del open/${o.txId}` : `put ${o.space}/${o.record.txId} ${o.record.kind.toUpperCase()}${o.record.outcome ? ` ${o.record.outcome}` : ''}`))
    .join(', ');
}
