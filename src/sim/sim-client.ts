// The simulated initiators: they run the scenario's workload against the coordinator as unary
// calls would (an answer, an error, "outcome unknown" after the call deadline, UNAVAILABLE when
// the coordinator dies), and read the outcome back later when a call left it unknown.

import type { CoordinatorReply, InitiatorRequest } from '../protocol/coordinator-events.js';
import { ErrorCode } from '../protocol/types.js';
import { participantNames, type Scenario, type TxPlan } from './scenario.js';

/** What the initiators need from the world. */
export interface ClientWorld {
  readonly now: number;
  readonly maxCallMs: number;
  readonly tracing: boolean;
  /** Runs `fn` at `time` at the coordinator's node (deferred while it is paused). */
  atCoordinator(time: number, fn: () => void): void;
  /** Runs `fn` at `time` on the initiator's side. */
  at(time: number, fn: () => void): void;
  /** Hands a request to the coordinator process; false when it is down. */
  dispatch(request: InitiatorRequest): boolean;
  /** Enlists `participant` in `txId`; false when it cannot (down or not connected). */
  enlist(participant: number, txId: string): boolean;
  trace(text: string, txIds?: readonly string[]): void;
  /** The transaction `requestId` created belongs to plan `plan`. */
  requestFor(requestId: number, plan: number): void;
  reply(requestId: number, reply: CoordinatorReply): void;
}

interface Pending {
  readonly onReply: (reply: CoordinatorReply) => void;
}

const UNAVAILABLE: CoordinatorReply = { type: 'error', error: { code: ErrorCode.UNAVAILABLE, message: 'the coordinator is unreachable' } };

/** Runs the workload and tracks the calls in flight. */
export class SimClient {
  readonly #world: ClientWorld;
  readonly #scenario: Scenario;
  readonly #pending = new Map<number, Pending>();
  #nextRequestId = 0;
  #arrivalsLeft: number;
  /** Counters of the answers the initiators got. */
  readonly stats = { committed: 0, aborted: 0, unknown: 0, errors: 0 };

  constructor(world: ClientWorld, scenario: Scenario) {
    this.#world = world;
    this.#scenario = scenario;
    this.#arrivalsLeft = scenario.txs.length;
  }

  /** Schedules every planned transaction. */
  start(): void {
    this.#scenario.txs.forEach((plan, i) => this.#world.at(plan.at, () => this.#startTx(plan, i)));
  }

  /** Whether the workload is over: every transaction started and every call answered. */
  get idle(): boolean {
    return this.#arrivalsLeft === 0 && this.#pending.size === 0;
  }

  /** The coordinator died: calls in flight fail with UNAVAILABLE (their outcome is unknown). */
  coordinatorDown(): void {
    for (const [id, p] of [...this.#pending]) {
      this.#pending.delete(id);
      this.#settle(id, p, UNAVAILABLE);
    }
  }

  /** The coordinator answered `requestId`. */
  onReply(requestId: number, reply: CoordinatorReply): void {
    const p = this.#pending.get(requestId);
    if (!p) return;
    this.#pending.delete(requestId);
    this.#settle(requestId, p, reply);
  }

  /** Sends a request; `onReply` gets the answer, whatever it is. Returns the request id. */
  request(request: DistributiveOmit<InitiatorRequest, 'requestId'>, onReply: (reply: CoordinatorReply) => void, plan?: number): number {
    const w = this.#world;
    const requestId = ++this.#nextRequestId;
    const p: Pending = { onReply };
    this.#pending.set(requestId, p);
    if (plan !== undefined) w.requestFor(requestId, plan);
    const full = { ...request, requestId } as InitiatorRequest;
    if (w.tracing) w.trace(`initiator → coordinator  ${describeRequest(full)}`, 'txId' in full && full.txId ? [full.txId] : []);
    w.atCoordinator(w.now, () => {
      if (!this.#pending.has(requestId)) return;
      if (!w.dispatch(full)) {
        this.#pending.delete(requestId);
        this.#settle(requestId, p, UNAVAILABLE);
      }
    });
    w.at(w.now + w.maxCallMs, () => {
      if (!this.#pending.delete(requestId)) return;
      this.#settle(requestId, p, { type: 'error', error: { code: ErrorCode.OUTCOME_UNKNOWN, message: `no outcome within ${w.maxCallMs} ms` } });
    });
    return requestId;
  }

  #settle(requestId: number, p: Pending, reply: CoordinatorReply): void {
    const w = this.#world;
    if (w.tracing) w.trace(`coordinator → initiator  #${requestId} ${describeReply(reply)}`, replyTxIds(reply));
    w.reply(requestId, reply);
    p.onReply(reply);
  }

  #startTx(plan: TxPlan, index: number): void {
    const w = this.#world;
    const names = plan.branches.map((b) => b.participant);
    const branches = () => plan.branches.map((b) => ({ participant: this.#name(b.participant), payload: new TextEncoder().encode(`t${index}`) }));
    const done = (): void => {
      this.#arrivalsLeft--;
    };
    if (plan.style === 'one-shot') {
      this.request({ type: 'commit', txId: '', branches: branches(), timeoutMs: plan.timeoutMs, waitForCompletion: plan.waitForCompletion }, () => undefined, index);
      done();
      return;
    }
    this.request(
      { type: 'begin', timeoutMs: plan.timeoutMs },
      (reply) => {
        if (reply.type !== 'begun') return done();
        const txId = reply.txId;
        w.at(w.now + 1, () => {
          for (const p of names) w.enlist(p, txId);
        });
        w.at(w.now + 10, () => {
          done();
          if (plan.initiatorAbort) {
            this.request({ type: 'abort', txId, reason: 'changed my mind' }, (r) => this.#followUp(txId, r));
          } else {
            this.request({ type: 'commit', txId, branches: branches(), timeoutMs: plan.timeoutMs, waitForCompletion: plan.waitForCompletion }, (r) => this.#followUp(txId, r));
          }
        });
      },
      index,
    );
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
        this.request({ type: 'get', txId }, () => undefined);
      });
    } else this.stats.errors++;
  }

  #name(index: number): string {
    return participantNameAt(this.#scenario, index);
  }
}


function participantNameAt(scenario: Scenario, index: number): string {
  const names = participantNames(scenario);
  return names[index % names.length] as string;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function describeRequest(r: InitiatorRequest): string {
  switch (r.type) {
    case 'begin':
      return `#${r.requestId} Begin timeout=${r.timeoutMs}`;
    case 'commit':
      return `#${r.requestId} Commit ${r.txId || '(one-shot)'} branches=${r.branches.map((b) => b.participant).join(',')} timeout=${r.timeoutMs}${r.waitForCompletion ? ' wait' : ''}`;
    case 'abort':
      return `#${r.requestId} Abort ${r.txId}`;
    case 'get':
      return `#${r.requestId} GetTransaction ${r.txId}`;
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
    case 'error':
      return r.error.txId ? [r.error.txId] : [];
  }
}
