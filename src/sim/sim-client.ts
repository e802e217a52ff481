// The simulated initiators: they run the scenario's workload against the coordinator's real
// TransactionService handlers, as unary calls over the simulated network (an answer, an error,
// "outcome unknown" after the call deadline, UNAVAILABLE when the coordinator dies), and read the
// outcome back later when a call left it unknown. Every branch payload names its plan, so that a
// participant's application knows how to behave and the checker knows the transaction's branches.
// With a coordinator group the initiators are given every member's address and follow the leader
// with the client SDK's own policy (LeaderFollower): NOT_LEADER answers, stale leader hints, a
// member that is down (the call never left) or paused (keepalive drops the call: outcome unknown).

import { Metadata, status as Status } from '@grpc/grpc-js';
import type { Clock } from '../common/clock.js';
import { CoordinatorTargets } from '../common/coordinator-targets.js';
import { LeaderFollower, type FollowedFailure } from '../common/leader-following.js';
import type { CallStatus, UnaryCall } from '../common/transport.js';
import { viewFromWire } from '../common/wire.js';
import type { CoordinatorReply } from '../protocol/coordinator-events.js';
import { ErrorCode } from '../protocol/types.js';
import { participantNames, type Scenario, type TxPlan } from './scenario.js';
import { memberAddress, SimNet } from './sim-transport.js';

/** What the initiators need from the world. */
export interface ClientWorld {
  readonly now: number;
  readonly maxCallMs: number;
  readonly tracing: boolean;
  /** Runs `fn` at `time` at the coordinator (deferred while it is paused, dropped if incarnation `inc` died). */
  atCoordinator(time: number, inc: number, fn: () => void): void;
  /** Runs `fn` at `time` on the initiators' side. */
  at(time: number, fn: () => void): void;
  /** Enlists `participant` in `txId` (Participant.enlist); false when it cannot. */
  enlist(participant: string, invitation: { txId: string; capability: string }, payload: Uint8Array): void;
  trace(text: string, txIds?: readonly string[]): void;
  /** `txId` belongs to plan `plan`. */
  planned(txId: string, plan: number): void;
  reply(reply: CoordinatorReply): void;
  /** Runs `fn` at `time` at group member `member` (deferred while it is paused, dropped if incarnation `inc` died). */
  atMember(time: number, member: string, inc: number, fn: () => void): void;
  /** Whether `node` is paused now. */
  paused(node: string): boolean;
  /** A number in [0, 1) from the world's generator (the moves' jitter). */
  random(): number;
  /** How long a silent coordinator keeps a call before keepalive drops it, in ms. */
  readonly keepaliveMs: number;
  /** How long a new connection to a member may take to open before the call goes elsewhere, in ms. */
  readonly connectTimeoutMs: number;
  /** The initiators' reconnect backoff (the delay between moves), in ms. */
  readonly reconnect: { readonly initialMs: number; readonly maxMs: number };
}

/** A failed attempt at one member, as the initiator's channel reports it. */
interface AttemptFailure extends FollowedFailure {
  readonly code: number;
  readonly details: string;
  readonly metadata?: Metadata;
  /** Nothing was sent (nothing listens at the address): safe to send elsewhere. */
  readonly neverSent?: boolean;
}

/** One attempt of a call at a group member, until it is answered or dropped. */
interface Attempt {
  readonly member: string;
  readonly inc: number;
  readonly answer: (e: AttemptFailure | null, res?: unknown) => void;
}

type Method = 'begin' | 'commit' | 'abort' | 'getTransaction';

interface Pending {
  readonly onReply: (reply: CoordinatorReply) => void;
  readonly inc: number;
}

const UNAVAILABLE: CoordinatorReply = { type: 'error', error: { code: ErrorCode.UNAVAILABLE, message: 'the coordinator is unreachable' } };

/** The payload of a planned branch: the plan's index and the participant, for the application. */
export function branchPayload(plan: number, participant: string, padding = 0): Uint8Array {
  return new TextEncoder().encode(`plan:${plan}:${participant}:${'.'.repeat(padding)}`);
}

/** The plan a branch payload names, if it is one. */
export function planOfPayload(payload: Uint8Array): number | undefined {
  const m = /^plan:(\d+):/.exec(new TextDecoder().decode(payload));
  return m ? Number(m[1]) : undefined;
}

/** Runs the workload and tracks the calls in flight. */
export class SimClient {
  readonly #world: ClientWorld;
  readonly #net: SimNet;
  readonly #scenario: Scenario;
  readonly #pending = new Map<number, Pending>();
  /** With a group: the attempts in flight at members, by request id. */
  readonly #attempts = new Map<number, Attempt>();
  readonly #follower: LeaderFollower | undefined;
  /** Members whose connection keepalive dropped (or that died): the next call opens a new one. */
  readonly #disconnected = new Set<string>();
  /** Capabilities Begin returned, until the transaction's branches enlist with them. */
  readonly #capabilities = new Map<string, string>();
  #nextRequestId = 0;
  #arrivalsLeft: number;
  /** Counters of the answers the initiators got. */
  readonly stats = { committed: 0, aborted: 0, unknown: 0, errors: 0 };

  /** `members`: a coordinator group's member nodes, whose addresses the initiators are given. */
  constructor(world: ClientWorld, net: SimNet, scenario: Scenario, members: readonly string[] = []) {
    this.#world = world;
    this.#net = net;
    this.#scenario = scenario;
    this.#arrivalsLeft = scenario.txs.length;
    if (members.length > 0) {
      const clock: Clock = {
        now: () => world.now,
        setTimer: (fn, ms) => {
          world.at(world.now + ms, fn);
          return {};
        },
        clearTimer: () => undefined,
        defer: (fn) => world.at(world.now, fn),
        random: () => world.random(),
      };
      this.#follower = new LeaderFollower(new CoordinatorTargets(members.map(memberAddress)), clock, {
        ...world.reconnect,
        neverSent: (e) => (e as AttemptFailure).neverSent === true,
      });
    }
  }

  /** Schedules every planned transaction. */
  start(): void {
    this.#scenario.txs.forEach((plan, i) => this.#world.at(plan.at, () => this.#startTx(plan, i)));
  }

  /** Whether the workload is over: every transaction started and every call answered. */
  get idle(): boolean {
    return this.#arrivalsLeft === 0 && this.#pending.size === 0;
  }

  /** Group member `member`'s incarnation `inc` died: calls in flight there fail UNAVAILABLE (sent: outcome unknown). */
  memberDown(member: string, inc: number): void {
    for (const [id, a] of [...this.#attempts]) {
      if (a.member !== member || a.inc !== inc) continue;
      this.#attempts.delete(id);
      this.#world.at(this.#world.now + this.#net.delay(), () => a.answer({ code: Status.UNAVAILABLE, details: `connection reset: ${member} went away` }));
    }
    this.#disconnected.add(member);
  }

  /** The coordinator incarnation `inc` died: its calls fail with UNAVAILABLE (their outcome is unknown). */
  coordinatorDown(inc: number): void {
    for (const [id, p] of [...this.#pending]) {
      if (p.inc !== inc) continue;
      this.#pending.delete(id);
      this.#world.at(this.#world.now + this.#net.delay(), () => this.#settle(id, p, UNAVAILABLE));
    }
  }

  /** Sends a unary call; `onReply` gets the answer, whatever it is. */
  call(method: Method, request: object, onReply: (reply: CoordinatorReply) => void): void {
    if (this.#follower) return this.#groupCall(this.#follower, method, request, onReply);
    const w = this.#world;
    const requestId = ++this.#nextRequestId;
    const server = this.#net.handlers();
    if (w.tracing) w.trace(`initiator → coordinator  #${requestId} ${describeRequest(method, request)}`, txIdOfRequest(request));
    if (!server) {
      w.at(w.now + this.#net.delay(), () => {
        if (w.tracing) w.trace(`coordinator → initiator  #${requestId} ${describeReply(UNAVAILABLE)}`);
        w.reply(UNAVAILABLE);
        onReply(UNAVAILABLE);
      });
      return;
    }
    const p: Pending = { onReply, inc: server.inc };
    this.#pending.set(requestId, p);
    let cancelled: (() => void) | undefined;
    w.atCoordinator(w.now + this.#net.delay(), server.inc, () => {
      if (!this.#pending.has(requestId)) return;
      const call: UnaryCall<never> = {
        request: request as never,
        on: (_event, listener) => {
          cancelled = listener;
        },
      };
      const callback = (error: CallStatus | null, response?: unknown): void => {
        const reply = error ? errorReply(error) : successReply(method, response);
        const capability = (response as { capability?: string } | undefined)?.capability;
        if (reply.type === 'begun' && capability) this.#capabilities.set(reply.txId, capability);
        w.at(w.now + this.#net.delay(), () => {
          if (!this.#pending.delete(requestId)) return;
          this.#settle(requestId, p, reply);
        });
      };
      server.handlers[method](call as never, callback as never);
    });
    w.at(w.now + w.maxCallMs, () => {
      if (!this.#pending.delete(requestId)) return;
      cancelled?.();
      this.#settle(requestId, p, { type: 'error', error: { code: ErrorCode.OUTCOME_UNKNOWN, message: `no outcome within ${w.maxCallMs} ms` } });
    });
  }

  /**
   * A call to a coordinator group: attempts at members through the SDK's leader following, under
   * one deadline (past it the outcome is unknown, as for a single coordinator).
   */
  #groupCall(follower: LeaderFollower, method: Method, request: object, onReply: (reply: CoordinatorReply) => void): void {
    const w = this.#world;
    const requestId = ++this.#nextRequestId;
    const p: Pending = { onReply, inc: -1 };
    this.#pending.set(requestId, p);
    if (w.tracing) w.trace(`initiator → ${follower.target}  #${requestId} ${describeRequest(method, request)}`, txIdOfRequest(request));
    const deadline = w.now + w.maxCallMs;
    follower.send<AttemptFailure, unknown>(
      deadline,
      (target, answer) => this.#attempt(requestId, this.#net.memberAt(target), method, request, answer),
      (e, response) => {
        this.#attempts.delete(requestId);
        if (!this.#pending.delete(requestId)) return;
        // A failure without a Verdict code is the connection's (reset, keepalive, refused): UNAVAILABLE.
        const reply: CoordinatorReply = !e
          ? successReply(method, response)
          : metadataString(e.metadata, 'verdict-code')
            ? errorReply(e)
            : { type: 'error', error: { code: ErrorCode.UNAVAILABLE, message: e.details } };
        this.#settle(requestId, p, reply);
      },
    );
    w.at(deadline, () => {
      const attempt = this.#attempts.get(requestId);
      this.#attempts.delete(requestId);
      if (!this.#pending.delete(requestId)) return;
      attempt?.answer({ code: Status.CANCELLED, details: 'deadline' });
      this.#settle(requestId, p, { type: 'error', error: { code: ErrorCode.OUTCOME_UNKNOWN, message: `no outcome within ${w.maxCallMs} ms` } });
    });
  }

  /** One attempt of call `requestId` at `member`: refused (nothing there), gated (NOT_LEADER), or handled. */
  #attempt(requestId: number, member: string, method: Method, request: object, answer: (e: AttemptFailure | null, res?: unknown) => void): void {
    const w = this.#world;
    if (!this.#pending.has(requestId)) return;
    const server = this.#net.memberServer(member);
    if (!server) {
      w.at(w.now + this.#net.delay(), () => answer({ code: Status.UNAVAILABLE, details: `connection refused at ${member}`, neverSent: true }));
      return;
    }
    // A new connection to a paused member never completes its handshake: the call is not sent, and goes elsewhere.
    if (this.#disconnected.has(member) && w.paused(member)) {
      w.at(w.now + w.connectTimeoutMs, () => {
        if (!w.paused(member)) return this.#attempt(requestId, member, method, request, answer);
        if (w.tracing) w.trace(`initiator: no connection to ${member} within ${w.connectTimeoutMs}ms (#${requestId} not sent)`);
        answer({ code: Status.UNAVAILABLE, details: `no connection established to ${member}`, neverSent: true });
      });
      return;
    }
    this.#disconnected.delete(member);
    let cancelled: (() => void) | undefined;
    let settled = false;
    const once = (e: AttemptFailure | null, res?: unknown): void => {
      if (settled) return;
      settled = true;
      if (this.#attempts.get(requestId)?.member === member) this.#attempts.delete(requestId);
      if (e?.code === Status.CANCELLED) cancelled?.();
      answer(e, res);
    };
    this.#attempts.set(requestId, { member, inc: server.inc, answer: once });
    // A member that is paused keeps the connection open and answers nothing: keepalive drops the call.
    const keepalive = (): void => {
      if (settled) return;
      if (w.paused(member)) {
        if (w.tracing) w.trace(`initiator: keepalive timeout on #${requestId} at ${member} (it does not answer)`);
        this.#disconnected.add(member);
        once({ code: Status.UNAVAILABLE, details: `keepalive timeout: ${member} does not answer` });
      } else w.at(w.now + w.keepaliveMs, keepalive);
    };
    w.at(w.now + w.keepaliveMs, keepalive);
    w.atMember(w.now + this.#net.delay(), member, server.inc, () => {
      if (settled) return;
      const gated = SimNet.gated(server);
      const callback = (error: CallStatus | null, response?: unknown): void => {
        const capability = (response as { capability?: string } | undefined)?.capability;
        const txId = (response as { txId?: string } | undefined)?.txId;
        if (!error && method === 'begin' && capability && txId) this.#capabilities.set(txId, capability);
        w.at(w.now + this.#net.delay(), () => once(error ? { code: error.code ?? Status.UNKNOWN, details: error.details ?? '', ...(error.metadata ? { metadata: error.metadata } : {}) } : null, response));
      };
      if ('refusal' in gated) return callback(gated.refusal);
      const call: UnaryCall<never> = {
        request: request as never,
        on: (_event, listener) => {
          cancelled = listener;
        },
      };
      gated.handlers[method](call as never, callback as never);
    });
  }

  #settle(requestId: number, p: Pending, reply: CoordinatorReply): void {
    const w = this.#world;
    if (w.tracing) w.trace(`coordinator → initiator  #${requestId} ${describeReply(reply)}`, replyTxIds(reply));
    w.reply(reply);
    p.onReply(reply);
  }

  #startTx(plan: TxPlan, index: number): void {
    const w = this.#world;
    const names = participantNames(this.#scenario);
    const nameOf = (i: number): string => names[i % names.length] as string;
    const branches = plan.branches.map((b) => ({ participant: nameOf(b.participant), payload: branchPayload(index, nameOf(b.participant), plan.payloadBytes) }));
    const done = (): void => {
      this.#arrivalsLeft--;
    };
    if (plan.style === 'one-shot') {
      this.call('commit', { txId: '', branches, timeoutMs: plan.timeoutMs, waitForCompletion: plan.waitForCompletion }, (reply) => {
        const txId = replyTxIds(reply)[0];
        if (txId) w.planned(txId, index);
      });
      done();
      return;
    }
    this.call('begin', { timeoutMs: plan.timeoutMs }, (reply) => {
      if (reply.type !== 'begun') return done();
      const txId = reply.txId;
      w.planned(txId, index);
      w.at(w.now + 1, () => {
        const capability = this.#capabilities.get(txId) ?? '';
        this.#capabilities.delete(txId);
        for (const b of branches) w.enlist(b.participant, { txId, capability }, b.payload);
      });
      w.at(w.now + 10, () => {
        done();
        if (plan.initiatorAbort) {
          this.call('abort', { txId, reason: 'changed my mind' }, (r) => this.#followUp(txId, r));
        } else {
          this.call('commit', { txId, branches, timeoutMs: plan.timeoutMs, waitForCompletion: plan.waitForCompletion }, (r) => this.#followUp(txId, r));
        }
      });
    });
  }

  /** A call that left the outcome unknown is followed by a status read (P13). */
  #followUp(txId: string, reply: CoordinatorReply): void {
    if (reply.type === 'committed') this.stats.committed++;
    else if (reply.type === 'aborted' || (reply.type === 'error' && reply.error.code === ErrorCode.TX_ABORTED)) this.stats.aborted++;
    else if (reply.type === 'error' && (reply.error.code === ErrorCode.UNAVAILABLE || reply.error.code === ErrorCode.OUTCOME_UNKNOWN)) {
      this.stats.unknown++;
      this.#arrivalsLeft++;
      this.#world.at(this.#world.now + 50, () => {
        this.#arrivalsLeft--;
        this.get(txId);
      });
    } else this.stats.errors++;
  }

  /** Reads `txId`'s state (the checker hears the answer). */
  get(txId: string): void {
    this.call('getTransaction', { txId }, () => undefined);
  }
}

function metadataString(metadata: Metadata | undefined, key: string): string | undefined {
  const v = metadata?.get(key)[0];
  return v === undefined ? undefined : typeof v === 'string' ? v : v.toString('utf8');
}

function errorReply(status: CallStatus | AttemptFailure): CoordinatorReply {
  const code = metadataString(status.metadata, 'verdict-code') as ErrorCode | undefined;
  const txId = metadataString(status.metadata, 'verdict-tx-id');
  return { type: 'error', error: { code: code ?? ErrorCode.INTERNAL, message: status.details ?? '', ...(txId ? { txId } : {}) } };
}

function successReply(method: Method, response: unknown): CoordinatorReply {
  const r = response as { txId?: string; deadlineUnixMs?: number; transaction?: Parameters<typeof viewFromWire>[0] };
  switch (method) {
    case 'begin':
      return { type: 'begun', txId: r.txId ?? '', deadline: r.deadlineUnixMs ?? 0 };
    case 'commit':
      return { type: 'committed', txId: r.txId ?? '' };
    case 'abort':
      return { type: 'aborted', txId: r.txId ?? '' };
    case 'getTransaction': {
      const view = r.transaction && viewFromWire(r.transaction);
      return view ? { type: 'transaction', view } : { type: 'error', error: { code: ErrorCode.INTERNAL, message: 'GetTransaction answered no readable transaction' } };
    }
  }
}

function txIdOfRequest(request: object): string[] {
  const txId = (request as { txId?: string }).txId;
  return txId ? [txId] : [];
}

function describeRequest(method: Method, request: object): string {
  const r = request as { txId?: string; branches?: { participant: string }[]; timeoutMs?: number; waitForCompletion?: boolean };
  switch (method) {
    case 'begin':
      return `Begin timeout=${r.timeoutMs}`;
    case 'commit':
      return `Commit ${r.txId || '(one-shot)'} branches=${(r.branches ?? []).map((b) => b.participant).join(',')} timeout=${r.timeoutMs}${r.waitForCompletion ? ' wait' : ''}`;
    case 'abort':
      return `Abort ${r.txId}`;
    case 'getTransaction':
      return `GetTransaction ${r.txId}`;
  }
}

/** A short description of a reply. */
export function describeReply(r: CoordinatorReply): string {
  switch (r.type) {
    case 'begun':
      return `begun ${r.txId}`;
    case 'committed':
      return `COMMITTED ${r.txId}`;
    case 'aborted':
      return `ABORTED ${r.txId}`;
    case 'transaction':
      return `${r.view.txId} is ${r.view.state}${r.view.outcome ? ` ${r.view.outcome}` : ''}${r.view.presumed ? ' (presumed)' : ''}`;
    case 'reserved':
      return `reserved tx-${r.epoch}-${r.firstSeq} and ${r.count - 1} more`;
    case 'error':
      return `error ${r.error.code}${r.error.txId ? ` ${r.error.txId}` : ''}: ${r.error.message}`;
  }
}

function replyTxIds(r: CoordinatorReply): string[] {
  switch (r.type) {
    case 'begun':
    case 'committed':
    case 'aborted':
      return [r.txId];
    case 'transaction':
      return [r.view.txId];
    case 'reserved':
      return [];
    case 'error':
      return r.error.txId ? [r.error.txId] : [];
  }
}
