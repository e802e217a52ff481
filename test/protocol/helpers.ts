// Drivers for the protocol state machines in unit tests: they keep the clock and request ids,
// record every input and effect in order (so tests can assert what happened before what), and
// pick effects apart. `Cluster` wires a coordinator to real participant machines over an
// in-memory network for end-to-end checks of the two machines together.
import assert from 'node:assert/strict';

import {
  type CoordinatorEffect,
  type CoordinatorInput,
  type CoordinatorMessage,
  type CoordinatorRecord,
  type CoordinatorReply,
  type ParticipantMessage,
  type PersistToken,
} from '../../src/protocol/coordinator-events.js';
import {
  CoordinatorMachine,
  DEFAULT_COORDINATOR_MACHINE_CONFIG,
  type CoordinatorMachineConfig,
} from '../../src/protocol/coordinator-machine.js';
import {
  type ParticipantEffect,
  type ParticipantInput,
  type ParticipantPersistToken,
  type ParticipantRecord,
} from '../../src/protocol/participant-events.js';
import {
  DEFAULT_PARTICIPANT_MACHINE_CONFIG,
  ParticipantMachine,
  type ParticipantMachineConfig,
} from '../../src/protocol/participant-machine.js';
import { Outcome, Vote, type BranchSpec } from '../../src/protocol/types.js';

// ---- generic effect helpers ----------------------------------------------------------------

/** The effects of one type, narrowed. */
export function only<E extends { readonly type: string }, T extends E['type']>(effects: readonly E[], type: T): Extract<E, { type: T }>[] {
  return effects.filter((e): e is Extract<E, { type: T }> => e.type === type);
}

/** The single effect of `type`; fails the test when there is not exactly one. */
export function one<E extends { readonly type: string }, T extends E['type']>(effects: readonly E[], type: T): Extract<E, { type: T }> {
  const found = only(effects, type);
  assert.equal(found.length, 1, `expected exactly one ${type} effect, got ${found.length}: ${JSON.stringify(effects)}`);
  return found[0] as Extract<E, { type: T }>;
}

/** UTF-8 bytes of `s`. */
export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** `bytes` decoded as UTF-8. */
export function text(b: Uint8Array): string {
  return Buffer.from(b).toString('utf8');
}

/** A branch spec. */
export function branch(participant: string, payload = ''): BranchSpec {
  return { participant, payload: bytes(payload) };
}

// ---- coordinator ---------------------------------------------------------------------------

/** Small limits so that tests can reach them. */
export const TEST_COORDINATOR_CONFIG: CoordinatorMachineConfig = {
  ...DEFAULT_COORDINATOR_MACHINE_CONFIG,
  epoch: 3,
  defaultTimeoutMs: 5_000,
  maxTimeoutMs: 60_000,
  maxBranches: 4,
  maxPayloadBytes: 16,
  maxLiveTransactions: 5,
  retryInitialMs: 100,
  retryMaxMs: 800,
  attentionAfterAttempts: 3,
};

/** A coordinator send effect. */
export type CoordinatorSend = Extract<CoordinatorEffect, { type: 'send' }>;

/** The Prepare messages in `effects`, by recipient. */
export function prepares(effects: readonly CoordinatorEffect[]): { to: string; message: Extract<CoordinatorMessage, { type: 'prepare' }> }[] {
  const out: { to: string; message: Extract<CoordinatorMessage, { type: 'prepare' }> }[] = [];
  for (const e of only(effects, 'send')) if (e.message.type === 'prepare') out.push({ to: e.to, message: e.message });
  return out;
}

/** The decisions in `effects` as `participant:outcome` strings, in order. */
/** The participants asked for their outcome (outcome-query sends), as `participant`. */
export function outcomeQueries(effects: readonly CoordinatorEffect[]): string[] {
  return only(effects, 'send')
    .filter((e) => e.message.type === 'outcome-query')
    .map((e) => e.to);
}

export function decisions(effects: readonly CoordinatorEffect[]): string[] {
  const out: string[] = [];
  for (const e of only(effects, 'send')) if (e.message.type === 'decision') out.push(`${e.to}:${e.message.outcome}`);
  return out;
}

/** The recipients of Prepare messages in `effects`, in order. */
export function prepareTargets(effects: readonly CoordinatorEffect[]): string[] {
  return prepares(effects).map((p) => p.to);
}

/** The reply to `requestId` in `effects`; fails when there is not exactly one. */
export function replyTo(effects: readonly CoordinatorEffect[], requestId: number): CoordinatorReply {
  const found = only(effects, 'reply').filter((r) => r.requestId === requestId);
  assert.equal(found.length, 1, `expected one reply to request ${requestId}, got ${found.length}: ${JSON.stringify(effects)}`);
  return (found[0] as Extract<CoordinatorEffect, { type: 'reply' }>).reply;
}

/** The error code of an error reply (fails on a success reply). */
export function errorCode(reply: CoordinatorReply): string {
  assert.equal(reply.type, 'error', `expected an error reply, got ${JSON.stringify(reply)}`);
  return reply.type === 'error' ? reply.error.code : '';
}

/** The `ignored` reasons in `effects`. */
export function ignoredWhy(effects: readonly { readonly type: string }[]): string[] {
  return effects.filter((e): e is { type: 'ignored'; why: string } => e.type === 'ignored').map((e) => e.why);
}

/** One entry of a harness trace: an input fed to the machine, or an effect it returned. */
export type TraceEntry<I, E> = { readonly kind: 'input'; readonly input: I } | { readonly kind: 'effect'; readonly effect: E };

/** Drives a CoordinatorMachine: owns the clock and request ids and records a trace. */
export class CoordinatorHarness {
  readonly machine: CoordinatorMachine;
  readonly config: CoordinatorMachineConfig;
  now: number;
  readonly trace: TraceEntry<CoordinatorInput, CoordinatorEffect>[] = [];
  #requestId = 100;

  constructor(config: Partial<CoordinatorMachineConfig> = {}, now = 1_000) {
    this.config = { ...TEST_COORDINATOR_CONFIG, ...config };
    this.machine = new CoordinatorMachine(this.config);
    this.now = now;
  }

  /** Feeds one input at the current time. */
  handle(input: CoordinatorInput): CoordinatorEffect[] {
    this.trace.push({ kind: 'input', input });
    const effects = this.machine.handle(input, this.now);
    for (const effect of effects) this.trace.push({ kind: 'effect', effect });
    return effects;
  }

  /** Calls `recover` and records its effects. */
  recover(records: readonly CoordinatorRecord[]): CoordinatorEffect[] {
    const effects = this.machine.recover(records, this.now);
    for (const effect of effects) this.trace.push({ kind: 'effect', effect });
    return effects;
  }

  nextRequestId(): number {
    return ++this.#requestId;
  }

  connect(...participants: string[]): CoordinatorEffect[] {
    return participants.flatMap((participant) => this.handle({ type: 'connected', participant }));
  }

  disconnect(participant: string): CoordinatorEffect[] {
    return this.handle({ type: 'disconnected', participant });
  }

  /** Begins a transaction and returns its id (fails the test when begin is refused). */
  begin(timeoutMs = 0): { txId: string; deadline: number; effects: CoordinatorEffect[] } {
    const requestId = this.nextRequestId();
    const effects = this.handle({ type: 'begin', requestId, timeoutMs });
    const reply = replyTo(effects, requestId);
    assert.equal(reply.type, 'begun', `begin refused: ${JSON.stringify(reply)}`);
    return reply.type === 'begun' ? { txId: reply.txId, deadline: reply.deadline, effects } : { txId: '', deadline: 0, effects };
  }

  commit(
    txId: string,
    branches: readonly BranchSpec[],
    opts: { timeoutMs?: number; waitForCompletion?: boolean } = {},
  ): { requestId: number; effects: CoordinatorEffect[] } {
    const requestId = this.nextRequestId();
    const effects = this.handle({
      type: 'commit',
      requestId,
      txId,
      branches,
      timeoutMs: opts.timeoutMs ?? 0,
      waitForCompletion: opts.waitForCompletion ?? false,
    });
    return { requestId, effects };
  }

  /** A one-shot commit; returns the id of the transaction it created (from the prepare or persist). */
  oneShot(branches: readonly BranchSpec[], opts: { timeoutMs?: number; waitForCompletion?: boolean } = {}): { txId: string; requestId: number; effects: CoordinatorEffect[] } {
    const { requestId, effects } = this.commit('', branches, opts);
    const timer = one(effects, 'set-timer');
    assert.match(timer.key, /^deadline\//);
    return { txId: timer.key.slice('deadline/'.length), requestId, effects };
  }

  abort(txId: string, reason = ''): { requestId: number; effects: CoordinatorEffect[] } {
    const requestId = this.nextRequestId();
    return { requestId, effects: this.handle({ type: 'abort', requestId, txId, reason }) };
  }

  get(txId: string): { requestId: number; effects: CoordinatorEffect[] } {
    const requestId = this.nextRequestId();
    return { requestId, effects: this.handle({ type: 'get', requestId, txId }) };
  }

  message(from: string, message: ParticipantMessage): CoordinatorEffect[] {
    return this.handle({ type: 'message', from, message });
  }

  vote(from: string, txId: string, vote: Vote, reason = ''): CoordinatorEffect[] {
    return this.message(from, { type: 'vote', txId, vote, reason });
  }

  ack(from: string, txId: string, outcome: Outcome): CoordinatorEffect[] {
    return this.message(from, { type: 'ack', txId, outcome });
  }

  inquiry(from: string, txId: string): CoordinatorEffect[] {
    return this.message(from, { type: 'inquiry', txId });
  }

  enlist(from: string, txId: string, payload: Uint8Array = new Uint8Array()): { requestId: number; effects: CoordinatorEffect[] } {
    const requestId = this.nextRequestId();
    return { requestId, effects: this.message(from, { type: 'enlist', requestId, txId, payload }) };
  }

  persisted(kind: PersistToken['kind'], txId: string): CoordinatorEffect[] {
    return this.handle({ type: 'persisted', token: { kind, txId } });
  }

  persistFailed(kind: PersistToken['kind'], txId: string, message = 'disk full'): CoordinatorEffect[] {
    return this.handle({ type: 'persist-failed', token: { kind, txId }, message });
  }

  /** Reports every persist in `effects` that carries a token as durable; returns what follows. */
  completePersists(effects: readonly CoordinatorEffect[]): CoordinatorEffect[] {
    const out: CoordinatorEffect[] = [];
    for (const p of only(effects, 'persist')) if (p.token) out.push(...this.handle({ type: 'persisted', token: p.token }));
    return out;
  }

  /** Fires the timer `key` at `at` (the clock moves there first when it is later). */
  fire(key: string, at?: number): CoordinatorEffect[] {
    if (at !== undefined && at > this.now) this.now = at;
    return this.handle({ type: 'timer', key });
  }

  /** Answers the single lookup effect in `effects` with `record`. */
  answerLookup(effects: readonly CoordinatorEffect[], record: CoordinatorRecord | undefined): CoordinatorEffect[] {
    const lookup = one(effects, 'lookup');
    return this.handle({ type: 'lookup-result', txId: lookup.txId, record, pending: lookup.pending });
  }

  /** Every effect recorded so far. */
  effects(): CoordinatorEffect[] {
    return this.trace.flatMap((t) => (t.kind === 'effect' ? [t.effect] : []));
  }

  /** Index in the trace of the first entry matching `pred`, or -1. */
  indexOf(pred: (t: TraceEntry<CoordinatorInput, CoordinatorEffect>) => boolean): number {
    return this.trace.findIndex(pred);
  }

  /** Drives `txId` through a two-phase commit up to the durable COMMIT (all YES, record persisted). */
  commitAllYes(txId: string, participants: readonly string[]): CoordinatorEffect[] {
    const out: CoordinatorEffect[] = [];
    for (const p of participants) out.push(...this.vote(p, txId, Vote.YES));
    out.push(...this.completePersists(out));
    return out;
  }
}

// ---- participant ---------------------------------------------------------------------------

/** Drives a ParticipantMachine: owns the clock and records a trace. */
export class ParticipantHarness {
  readonly machine: ParticipantMachine;
  readonly config: ParticipantMachineConfig;
  now: number;
  readonly trace: TraceEntry<ParticipantInput, ParticipantEffect>[] = [];

  constructor(config: Partial<ParticipantMachineConfig> = {}, now = 1_000) {
    this.config = { ...DEFAULT_PARTICIPANT_MACHINE_CONFIG, ...config };
    this.machine = new ParticipantMachine(this.config);
    this.now = now;
  }

  handle(input: ParticipantInput): ParticipantEffect[] {
    this.trace.push({ kind: 'input', input });
    const effects = this.machine.handle(input, this.now);
    for (const effect of effects) this.trace.push({ kind: 'effect', effect });
    return effects;
  }

  recover(records: readonly ParticipantRecord[]): ParticipantEffect[] {
    const effects = this.machine.recover(records, this.now);
    for (const effect of effects) this.trace.push({ kind: 'effect', effect });
    return effects;
  }

  prepare(txId: string, opts: { payload?: Uint8Array; deadline?: number; onePhase?: boolean } = {}): ParticipantEffect[] {
    return this.handle({
      type: 'message',
      message: { type: 'prepare', txId, payload: opts.payload ?? bytes('work'), deadline: opts.deadline ?? this.now + 5_000, onePhase: opts.onePhase ?? false },
    });
  }

  decide(txId: string, outcome: Outcome): ParticipantEffect[] {
    return this.handle({ type: 'message', message: { type: 'decision', txId, outcome } });
  }

  prepareDone(txId: string, vote: Vote, reason = ''): ParticipantEffect[] {
    return this.handle({ type: 'prepare-done', txId, vote, reason });
  }

  applyDone(txId: string): ParticipantEffect[] {
    return this.handle({ type: 'apply-done', txId });
  }

  applyFailed(txId: string, message = 'hook threw'): ParticipantEffect[] {
    return this.handle({ type: 'apply-failed', txId, message });
  }

  persisted(kind: ParticipantPersistToken['kind'], txId: string): ParticipantEffect[] {
    return this.handle({ type: 'persisted', token: { kind, txId } });
  }

  fire(key: string, at?: number): ParticipantEffect[] {
    if (at !== undefined && at > this.now) this.now = at;
    return this.handle({ type: 'timer', key });
  }

  /** Answers the single lookup effect in `effects` with `record`. */
  answerLookup(effects: readonly ParticipantEffect[], record: ParticipantRecord | undefined): ParticipantEffect[] {
    const lookup = one(effects, 'lookup');
    return this.handle({ type: 'lookup-result', txId: lookup.txId, record, pending: lookup.pending });
  }

  /** A fresh transaction (no local record) prepared and voted YES: returns every effect. */
  prepareYes(txId: string, opts: { payload?: Uint8Array; deadline?: number } = {}): ParticipantEffect[] {
    const out = this.answerLookup(this.prepare(txId, opts), undefined);
    out.push(...this.prepareDone(txId, Vote.YES));
    out.push(...this.persisted('prepared', txId));
    return out;
  }
}

/** The messages a participant sent in `effects`. */
export function sent(effects: readonly ParticipantEffect[]): ParticipantMessage[] {
  return only(effects, 'send').map((s) => s.message);
}

// ---- cluster -------------------------------------------------------------------------------

type Work = () => void;

/** How a cluster participant's prepare hook answers. */
export type HookVote = Vote | { readonly vote: Vote; readonly reason: string };

/**
 * A coordinator and participant machines joined by an in-memory, in-order network with
 * synchronous disks: every effect is carried out and every completion fed back, until quiet.
 * Timers are kept, not fired: tests fire them with `fireTimers`.
 */
export class Cluster {
  readonly coordinator: CoordinatorHarness;
  readonly participants = new Map<string, ParticipantHarness>();
  /** Coordinator log spaces. */
  readonly open = new Map<string, CoordinatorRecord>();
  readonly done = new Map<string, CoordinatorRecord>();
  /** Participant logs. */
  readonly plogs = new Map<string, Map<string, ParticipantRecord>>();
  /** How each participant votes; YES when absent. */
  readonly votes = new Map<string, HookVote>();
  /** `participant/txId/outcome` → how often the hook ran. */
  readonly applied = new Map<string, number>();
  /** Replies to initiators by request id, in arrival order. */
  readonly replies = new Map<number, CoordinatorReply[]>();
  readonly coordinatorTimers = new Map<string, number>();
  /** When set, a message for which it returns true is dropped. */
  drop: ((from: string, to: string, message: CoordinatorMessage | ParticipantMessage) => boolean) | undefined;
  readonly #queue: Work[] = [];

  constructor(names: readonly string[], config: Partial<CoordinatorMachineConfig> = {}) {
    this.coordinator = new CoordinatorHarness(config);
    for (const name of names) {
      this.participants.set(name, new ParticipantHarness());
      this.plogs.set(name, new Map());
    }
  }

  /** Connects every participant (both sides learn it) and runs to quiescence. */
  connectAll(): void {
    for (const name of this.participants.keys()) this.connect(name);
  }

  connect(name: string): void {
    this.#queue.push(() => this.#coord(this.coordinator.handle({ type: 'connected', participant: name })));
    this.#queue.push(() => this.#part(name, this.#p(name).handle({ type: 'connected' })));
    this.run();
  }

  /** Runs `fn` against the coordinator harness and carries out its effects. */
  withCoordinator(fn: (c: CoordinatorHarness) => CoordinatorEffect[]): void {
    this.#queue.push(() => this.#coord(fn(this.coordinator)));
    this.run();
  }

  /** Delivers `message` to participant `name` as if the coordinator sent it again, and runs. */
  redeliver(name: string, message: Extract<CoordinatorMessage, { type: 'prepare' | 'decision' }>): void {
    this.#queue.push(() => this.#part(name, this.#p(name).handle({ type: 'message', message })));
    this.run();
  }

  /** Fires every pending coordinator timer whose key starts with `prefix`. */
  fireTimers(prefix: string): void {
    for (const key of [...this.coordinatorTimers.keys()]) {
      if (!key.startsWith(prefix)) continue;
      this.coordinatorTimers.delete(key);
      this.#queue.push(() => this.#coord(this.coordinator.fire(key)));
    }
    this.run();
  }

  /** The outcome recorded in `name`'s log for `txId`. */
  recordOf(name: string, txId: string): ParticipantRecord | undefined {
    return this.plogs.get(name)?.get(txId);
  }

  timesApplied(name: string, txId: string, outcome: Outcome): number {
    return this.applied.get(`${name}/${txId}/${outcome}`) ?? 0;
  }

  run(maxSteps = 10_000): void {
    let steps = 0;
    while (this.#queue.length > 0) {
      assert.ok(++steps < maxSteps, 'the cluster did not quiesce');
      (this.#queue.shift() as Work)();
    }
  }

  #p(name: string): ParticipantHarness {
    const p = this.participants.get(name);
    assert.ok(p, `no participant ${name}`);
    return p;
  }

  #coord(effects: readonly CoordinatorEffect[]): void {
    const c = this.coordinator;
    for (const e of effects) {
      switch (e.type) {
        case 'send': {
          if (e.message.type === 'enlist-result') break;
          const message = e.message;
          if (this.drop?.('coordinator', e.to, message)) break;
          if (!this.participants.has(e.to)) break;
          this.#queue.push(() => this.#part(e.to, this.#p(e.to).handle({ type: 'message', message })));
          break;
        }
        case 'persist':
          for (const op of e.ops) {
            if (op.op === 'del') this.open.delete(op.txId);
            else (op.space === 'open' ? this.open : this.done).set(op.record.txId, op.record);
          }
          if (e.token) {
            const token = e.token;
            this.#queue.push(() => this.#coord(c.handle({ type: 'persisted', token })));
          }
          break;
        case 'reply': {
          const list = this.replies.get(e.requestId) ?? [];
          list.push(e.reply);
          this.replies.set(e.requestId, list);
          break;
        }
        case 'lookup': {
          const record = this.done.get(e.txId);
          this.#queue.push(() => this.#coord(c.handle({ type: 'lookup-result', txId: e.txId, record, pending: e.pending })));
          break;
        }
        case 'set-timer':
          this.coordinatorTimers.set(e.key, e.at);
          break;
        case 'cancel-timer':
          this.coordinatorTimers.delete(e.key);
          break;
        default:
          break;
      }
    }
  }

  #part(name: string, effects: readonly ParticipantEffect[]): void {
    const p = this.#p(name);
    const log = this.plogs.get(name) as Map<string, ParticipantRecord>;
    for (const e of effects) {
      switch (e.type) {
        case 'send': {
          const message = e.message;
          if (this.drop?.(name, 'coordinator', message)) break;
          this.#queue.push(() => this.#coord(this.coordinator.message(name, message)));
          break;
        }
        case 'run-prepare': {
          const v = this.votes.get(name) ?? Vote.YES;
          const vote = typeof v === 'string' ? v : v.vote;
          const reason = typeof v === 'string' ? '' : v.reason;
          this.#queue.push(() => this.#part(name, p.prepareDone(e.txId, vote, reason)));
          break;
        }
        case 'run-apply': {
          const key = `${name}/${e.txId}/${e.outcome}`;
          this.applied.set(key, (this.applied.get(key) ?? 0) + 1);
          this.#queue.push(() => this.#part(name, p.applyDone(e.txId)));
          break;
        }
        case 'persist': {
          log.set(e.record.txId, e.record);
          const token = e.token;
          this.#queue.push(() => this.#part(name, p.handle({ type: 'persisted', token })));
          break;
        }
        case 'lookup': {
          const record = log.get(e.txId);
          this.#queue.push(() => this.#part(name, p.handle({ type: 'lookup-result', txId: e.txId, record, pending: e.pending })));
          break;
        }
        default:
          break;
      }
    }
  }
}
