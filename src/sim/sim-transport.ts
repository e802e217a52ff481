// The simulated transport under the transport seam: participant sessions and initiators' unary
// calls between simulated processes. It has only the failures a gRPC stream over TCP can have:
// a frame is delayed, never dropped, duplicated or reordered within its stream; a partition holds
// frames until it heals, or until the keepalive timeout closes the session at both ends; a process
// crash resets its sessions (its peer learns at once, or at the keepalive timeout when the crash
// was a power loss or the link is cut); a paused process lets its sessions time out. Every frame
// is encoded with the wire codec and checked against the message limit, as gRPC would.
// With a coordinator group, every member is an address of its own: a member that does not lead
// answers NOT_LEADER (naming the leader it knows), as the production gate does, and the
// participants' production session code follows it through this transport's `redirect`.

import { EventEmitter } from 'node:events';
import { status as Status } from '@grpc/grpc-js';
import type { LeaderGate } from '../cluster/leader-gated-transport.js';
import { CoordinatorTargets } from '../common/coordinator-targets.js';
import { notLeaderStatus } from '../common/grpc-errors.js';
import type { CallStatus, ClientTransport, CoordinatorHandlers, ServerTransport, SessionClientStream, SessionServerStream } from '../common/transport.js';
import { outcomeFromWire, voteFromWire } from '../common/wire.js';
import { SessionRequest, SessionResponse } from '../gen/verdict/v1/participant.js';
import type { CoordinatorMessage, ParticipantMessage } from '../protocol/coordinator-events.js';
import type { Prng } from './prng.js';
import { COORDINATOR } from './sim-options.js';
import { describeCoordinatorMessage, describeParticipantMessage } from './trace.js';

/** What the transport needs from the world. */
export interface NetWorld {
  readonly now: number;
  readonly prng: Prng;
  readonly tracing: boolean;
  /** Runs `fn` at `time` in `node`'s incarnation `inc` (deferred while paused, dropped once it died). */
  at(time: number, node: string | undefined, inc: number | undefined, fn: () => void): void;
  /** The current incarnation of `node`, or undefined while it is down. */
  incarnation(node: string): number | undefined;
  trace(text: string, txIds?: readonly string[], fault?: boolean, noise?: boolean): void;
}

/** What the checker hears from the transport. */
export interface NetObserver {
  coordinatorSent(to: string, messages: readonly CoordinatorMessage[]): void;
  participantSent(from: string, messages: readonly ParticipantMessage[]): void;
  participantReceived(to: string, messages: readonly CoordinatorMessage[]): void;
  frameOverLimit(from: string, to: string, bytes: number, limit: number): void;
  /** A replayed frame is being delivered (true) or is done (false). */
  replaying(on: boolean): void;
}

/** Transport tunables, in simulated ms and bytes. */
export interface NetConfig {
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly keepaliveMs: number;
  readonly connectTimeoutMs: number;
  readonly maxMessageBytes: number;
  /** The members of a coordinator group, by node name (none: one coordinator at COORDINATOR). */
  readonly members?: readonly string[];
}

/** The address a group member is dialled at (its node name, and the port members advertise). */
export function memberAddress(member: string): string {
  return `${member}:7070`;
}

/** What a group member serves: its gate, and its term's handlers while it has a term. */
export interface MemberServer {
  readonly inc: number;
  readonly gate: LeaderGate;
  readonly handlers: CoordinatorHandlers | undefined;
}

/** Counters of the transport. */
export interface NetworkStats {
  frames: number;
  resets: number;
  heldByPartition: number;
  keepaliveTimeouts: number;
}

/** During the fault window: longer delays, and sessions reset at random (per mille per frame). */
export interface Turbulence {
  readonly resetPerMille: number;
  readonly maxDelayMs: number;
}

/**
 * One direction of a session: a FIFO queue. Each send schedules one delivery of the queue's head
 * at its arrival time; while the link is cut the deliveries that fall due are owed, and paid once
 * it heals, so nothing ever overtakes what was sent before it.
 */
class Lane {
  last = 0;
  readonly queue: (() => void)[] = [];
  owed = 0;
  constructor(
    readonly from: string,
    readonly to: string,
  ) {}
}

/** The coordinator's end of a simulated session. */
class ServerEnd extends EventEmitter implements SessionServerStream {
  constructor(readonly link: Link) {
    super();
  }
  write(frame: SessionResponse): boolean {
    this.link.net.sendToParticipant(this.link, frame);
    return true;
  }
  end(): void {
    this.link.net.closeFrom(this.link, 'coordinator', { code: Status.OK, details: '' });
  }
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const handled = super.emit(event, ...args);
    // A handler failing its stream: the status travels to the participant.
    if (event === 'error') this.link.net.closeFrom(this.link, 'coordinator', args[0] as CallStatus);
    return handled;
  }
  /** Delivers an event from the transport (not the handler's own emit). */
  deliver(event: string, arg?: unknown): void {
    super.emit(event, arg);
  }
  getPeer(): string {
    return `sim:${this.link.participant}`;
  }
}

/** A participant's end of a simulated session. */
class ClientEnd extends EventEmitter implements SessionClientStream {
  constructor(readonly link: Link) {
    super();
  }
  write(frame: SessionRequest): boolean {
    this.link.net.sendToCoordinator(this.link, frame);
    return true;
  }
  cancel(): void {
    this.link.net.closeFrom(this.link, 'participant', { code: Status.CANCELLED, details: 'cancelled by the participant' });
  }
}

/** One session between a participant incarnation and a coordinator incarnation. */
class Link {
  server: ServerEnd | undefined;
  readonly client: ClientEnd;
  coordInc: number | undefined;
  coordOpen = false;
  clientOpen = true;
  readonly up: Lane;
  readonly down: Lane;
  constructor(
    readonly net: SimNet,
    readonly id: number,
    readonly participant: string,
    readonly partInc: number,
    /** The coordinator node dialled: COORDINATOR, or a group member. */
    readonly coordinator: string,
  ) {
    this.client = new ClientEnd(this);
    this.up = new Lane(participant, coordinator);
    this.down = new Lane(coordinator, participant);
  }
}

interface Captured {
  readonly participant: string;
  readonly frame: SessionRequest;
}

const MAX_CAPTURED = 200;

/** The whole simulated network: sessions, unary calls, partitions. */
export class SimNet {
  readonly #world: NetWorld;
  readonly #observer: NetObserver;
  readonly #config: NetConfig;
  readonly #links = new Set<Link>();
  readonly #blocked = new Map<string, number>();
  readonly #captured: Captured[] = [];
  #server: { inc: number; handlers: CoordinatorHandlers | undefined } | undefined;
  readonly #members: ReadonlySet<string>;
  readonly #memberServers = new Map<string, MemberServer>();
  #nextId = 0;
  /** The fault window's turbulence, or undefined outside it. */
  turbulence: Turbulence | undefined;
  readonly stats: NetworkStats = { frames: 0, resets: 0, heldByPartition: 0, keepaliveTimeouts: 0 };

  constructor(world: NetWorld, observer: NetObserver, config: NetConfig) {
    this.#world = world;
    this.#observer = observer;
    this.#config = config;
    this.#members = new Set(config.members ?? []);
  }

  // ---- the seams --------------------------------------------------------------------------

  /** The server transport of the coordinator incarnation `inc`. */
  serverTransport(inc: number): ServerTransport {
    return {
      serve: async (handlers) => {
        this.#server = { inc, handlers };
        return 'sim:coordinator';
      },
      close: async () => {
        if (this.#server?.inc === inc) this.#server = { inc, handlers: undefined };
      },
    };
  }

  /**
   * The client transport of participant `name`'s incarnation `inc`. With a group it holds the
   * members' addresses and the one sessions open to now, moved by `redirect` exactly as the gRPC
   * session transport moves (the same CoordinatorTargets), on the participant's own decision.
   */
  clientTransport(name: string, inc: number): ClientTransport {
    if (this.#members.size === 0) {
      return {
        openSession: () => this.#open(name, inc, COORDINATOR),
        close: () => undefined,
      };
    }
    const targets = new CoordinatorTargets([...this.#members].map(memberAddress));
    return {
      get target() {
        return targets.current;
      },
      openSession: () => this.#open(name, inc, this.memberAt(targets.current)),
      redirect: (leader) => {
        targets.moveTo(leader);
      },
      close: () => undefined,
    };
  }

  /** The member dialled at `address` (an address that names no member reaches nothing). */
  memberAt(address: string): string {
    const member = address.slice(0, address.lastIndexOf(':'));
    return this.#members.has(member) && memberAddress(member) === address ? member : `(nothing at ${address})`;
  }

  /** Group member `member`'s incarnation `inc` serves `handlers` (undefined: none) behind `gate`. */
  memberServe(member: string, inc: number, gate: LeaderGate, handlers: CoordinatorHandlers | undefined): void {
    const s = this.#memberServers.get(member);
    if (s && s.inc > inc) return;
    this.#memberServers.set(member, { inc, gate, handlers });
  }

  /** What the live incarnation of group member `member` serves; undefined while it is down. */
  memberServer(member: string): MemberServer | undefined {
    const s = this.#memberServers.get(member);
    if (!s || this.#world.incarnation(member) !== s.inc) return undefined;
    return s;
  }

  /** The handlers behind `server`'s gate now, or the NOT_LEADER status its gate answers with. */
  static gated(server: MemberServer): { handlers: CoordinatorHandlers } | { refusal: CallStatus } {
    if (server.handlers && server.gate.isLeader()) return { handlers: server.handlers };
    return { refusal: notLeaderStatus(server.gate.leaderAddress()) };
  }

  /** The handlers of the live coordinator incarnation, if it serves. */
  handlers(): { inc: number; handlers: CoordinatorHandlers } | undefined {
    const s = this.#server;
    if (!s?.handlers || this.#world.incarnation(COORDINATOR) !== s.inc) return undefined;
    return { inc: s.inc, handlers: s.handlers };
  }

  /** A delay for one message now. */
  delay(): number {
    const t = this.turbulence;
    return this.#world.prng.int(this.#config.minDelayMs, Math.max(this.#config.minDelayMs, t ? t.maxDelayMs : this.#config.maxDelayMs));
  }

  // ---- partitions -------------------------------------------------------------------------

  /** Whether `from` → `to` is cut (a group member is cut wherever the coordinator is). */
  isBlocked(from: string, to: string): boolean {
    return this.#blocked.has(`${this.#side(from)}>${this.#side(to)}`);
  }

  #side(node: string): string {
    return this.#members.has(node) ? COORDINATOR : node;
  }

  /** Cuts `from` → `to` (partitions may overlap: each block needs its unblock). */
  block(from: string, to: string): void {
    const k = `${from}>${to}`;
    this.#blocked.set(k, (this.#blocked.get(k) ?? 0) + 1);
    const keepalive = this.#world.now + this.#config.keepaliveMs;
    for (const link of this.#links) {
      if (link.participant !== from && link.participant !== to) continue;
      this.#world.at(keepalive, undefined, undefined, () => {
        if (!this.#cut(link)) return;
        this.stats.keepaliveTimeouts++;
        if (this.#world.tracing) this.#world.trace(`keepalive timeout: session ${link.id} (${link.participant}) closed at both ends`, [], true);
        this.#closeBoth(link, 'keepalive timeout (the link is cut)');
      });
    }
  }

  /** Restores `from` → `to`; frames held on it move on. */
  unblock(from: string, to: string): void {
    const k = `${from}>${to}`;
    const n = (this.#blocked.get(k) ?? 0) - 1;
    if (n > 0) this.#blocked.set(k, n);
    else this.#blocked.delete(k);
    this.#release();
  }

  /** Heals every partition. */
  healAll(): void {
    this.#blocked.clear();
    this.#release();
  }

  #cut(link: Link): boolean {
    return this.isBlocked(COORDINATOR, link.participant) || this.isBlocked(link.participant, COORDINATOR);
  }

  #release(): void {
    for (const link of this.#links) {
      for (const lane of [link.up, link.down]) {
        if (lane.owed === 0 || this.isBlocked(lane.from, lane.to)) continue;
        const owed = lane.owed;
        lane.owed = 0;
        for (let i = 0; i < owed; i++) this.#schedulePump(lane);
      }
    }
  }

  // ---- processes --------------------------------------------------------------------------

  /** `node`'s process died: its peers learn by reset, or by keepalive after a power loss or across a cut. */
  nodeDown(node: string, powerLoss: boolean): void {
    for (const link of [...this.#links]) {
      const side = node === link.coordinator ? 'coordinator' : link.participant === node ? 'participant' : undefined;
      if (!side) continue;
      const reset = !powerLoss && !this.#cut(link);
      if (side === 'coordinator') {
        if (!link.coordOpen) continue;
        link.coordOpen = false;
        if (powerLoss) clear(link.down);
        this.#notifyClient(link, { code: Status.UNAVAILABLE, details: reset ? 'connection reset: the coordinator went away' : 'keepalive timeout' }, reset);
      } else {
        if (!link.clientOpen) continue;
        link.clientOpen = false;
        if (powerLoss) clear(link.up);
        this.#notifyServer(link, reset);
      }
    }
  }

  /** `node` paused: its peers drop its sessions at the keepalive timeout unless it resumed by then. */
  paused(node: string, stillPaused: () => boolean): void {
    this.#world.at(this.#world.now + this.#config.keepaliveMs, undefined, undefined, () => {
      if (!stillPaused()) return;
      for (const link of [...this.#links]) {
        if (node !== link.coordinator && link.participant !== node) continue;
        if (!link.coordOpen && !link.clientOpen) continue;
        this.stats.keepaliveTimeouts++;
        if (this.#world.tracing) this.#world.trace(`keepalive timeout: ${node} is unresponsive; session ${link.id} closed`, [], true);
        this.#closeBoth(link, `keepalive timeout (${node} is unresponsive)`);
      }
    });
  }

  /** A hostile or buggy participant sends one of its old frames again on its live session. */
  replay(): void {
    const w = this.#world;
    if (this.#captured.length === 0) return;
    const c = w.prng.pick(this.#captured);
    const link = [...this.#links].reverse().find((l) => l.participant === c.participant && l.clientOpen && l.coordOpen);
    if (!link) {
      if (w.tracing) w.trace(`replay: no live session of ${c.participant}; nothing replayed`, [], true);
      return;
    }
    if (w.tracing) w.trace(`replay: ${c.participant} sends an old frame again`, [], true);
    this.sendToCoordinator(link, c.frame, true);
  }

  // ---- sessions ---------------------------------------------------------------------------

  #open(participant: string, partInc: number, coordinator: string): SessionClientStream {
    const link = new Link(this, ++this.#nextId, participant, partInc, coordinator);
    const w = this.#world;
    if (w.incarnation(participant) !== partInc) {
      link.clientOpen = false; // A dead process dials nothing.
      return link.client;
    }
    this.#links.add(link);
    if (w.tracing) w.trace(`${participant}: dials session ${link.id}`, [], false, true);
    // The connection is set up on the lane, so that the frames written after it arrive after it.
    this.#enqueue(link.up, () => {
      if (!link.clientOpen) return;
      const server = this.#sessionServer(coordinator);
      if (!server) {
        this.#notifyClient(link, { code: Status.UNAVAILABLE, details: 'connection refused' }, false, 0);
        return;
      }
      if ('refusal' in server) {
        if (w.tracing) w.trace(`${coordinator}: session ${link.id} from ${participant} refused: ${server.refusal.details ?? ''}`, [], false, true);
        this.#notifyClient(link, server.refusal, false, 0);
        return;
      }
      link.coordInc = server.inc;
      link.coordOpen = true;
      link.server = new ServerEnd(link);
      if (w.tracing) w.trace(`${coordinator}: session ${link.id} from ${participant} accepted`, [], false, true);
      server.handlers.session(link.server);
    });
    w.at(w.now + this.#config.connectTimeoutMs, participant, partInc, () => {
      if (link.coordInc !== undefined || !link.clientOpen) return;
      if (w.tracing) w.trace(`${participant}: connect timeout on session ${link.id}`, [], false, true);
      link.clientOpen = false;
      this.#links.delete(link);
      link.client.emit('error', { code: Status.UNAVAILABLE, details: 'connect timeout' });
    });
    return link.client;
  }

  /** Who takes a new session dialled to `coordinator`: its handlers, its NOT_LEADER refusal, or no one (refused). */
  #sessionServer(coordinator: string): { inc: number; handlers: CoordinatorHandlers } | { refusal: CallStatus } | undefined {
    if (coordinator === COORDINATOR) return this.handlers();
    const server = this.memberServer(coordinator);
    if (!server) return undefined;
    const gated = SimNet.gated(server);
    return 'handlers' in gated ? { inc: server.inc, handlers: gated.handlers } : gated;
  }

  /** Sends a participant's frame on its session. */
  sendToCoordinator(link: Link, frame: SessionRequest, replay = false): void {
    if (!link.clientOpen) return;
    const bytes = SessionRequest.encode(frame).finish();
    if (this.#overLimit(link, link.participant, COORDINATOR, bytes.length)) return;
    const messages = participantMessages(frame);
    if (!replay) {
      this.#observer.participantSent(link.participant, messages);
      if (this.#captured.length >= MAX_CAPTURED) this.#captured.shift();
      if (messages.length > 0) this.#captured.push({ participant: link.participant, frame });
    }
    this.#turbulence(link);
    const copy = SessionRequest.decode(bytes);
    if (this.#world.tracing && messages.length > 0) this.#world.trace(`${link.participant} → coordinator  ${messages.map(describeParticipantMessage).join('; ')}${replay ? '  [replayed]' : ''}`, txIdsOf(messages));
    this.#enqueue(link.up, () => {
      if (!link.coordOpen || !link.server) return;
      if (replay) this.#observer.replaying(true);
      try {
        link.server.deliver('data', copy);
      } finally {
        if (replay) this.#observer.replaying(false);
      }
    });
  }

  /** Sends a coordinator's frame on a session. */
  sendToParticipant(link: Link, frame: SessionResponse): void {
    if (!link.coordOpen) return;
    const bytes = SessionResponse.encode(frame).finish();
    if (this.#overLimit(link, COORDINATOR, link.participant, bytes.length)) return;
    const messages = coordinatorMessages(frame);
    this.#observer.coordinatorSent(link.participant, messages);
    this.#turbulence(link);
    const copy = SessionResponse.decode(bytes);
    if (this.#world.tracing && messages.length > 0) this.#world.trace(`coordinator → ${link.participant}  ${messages.map(describeCoordinatorMessage).join('; ')}`, txIdsOf(messages));
    this.#enqueue(link.down, () => {
      if (!link.clientOpen) return;
      this.#observer.participantReceived(link.participant, messages);
      link.client.emit('data', copy);
    });
  }

  /** One end closes (ends, fails or cancels the stream); the other learns after the frames before it. */
  closeFrom(link: Link, side: 'coordinator' | 'participant', status: CallStatus): void {
    if (side === 'coordinator') {
      if (!link.coordOpen) return;
      link.coordOpen = false;
      this.#notifyClient(link, status, true);
    } else {
      if (!link.clientOpen) return;
      link.clientOpen = false;
      this.#notifyServer(link, true);
    }
  }

  #closeBoth(link: Link, why: string): void {
    const wasServer = link.coordOpen;
    const wasClient = link.clientOpen;
    link.coordOpen = false;
    link.clientOpen = false;
    clear(link.up);
    clear(link.down);
    this.#links.delete(link);
    const w = this.#world;
    if (wasServer && link.server) {
      const server = link.server;
      w.at(w.now, link.coordinator, link.coordInc, () => server.deliver('cancelled'));
    }
    if (wasClient) w.at(w.now, link.participant, link.partInc, () => link.client.emit('error', { code: Status.UNAVAILABLE, details: why }));
  }

  /** The participant learns that the coordinator's end closed (out of order: after `afterMs`, the keepalive by default). */
  #notifyClient(link: Link, status: CallStatus, inOrder: boolean, afterMs = this.#config.keepaliveMs): void {
    const deliver = (): void => {
      if (!link.clientOpen) return;
      link.clientOpen = false;
      this.#links.delete(link);
      if (status.code === Status.OK) link.client.emit('end');
      else link.client.emit('error', { code: status.code, details: status.details ?? '', metadata: status.metadata });
    };
    if (inOrder) this.#enqueue(link.down, deliver, true);
    else this.#world.at(this.#world.now + afterMs, link.participant, link.partInc, deliver);
  }

  /** The coordinator learns that the participant's end closed. */
  #notifyServer(link: Link, inOrder: boolean): void {
    const server = link.server;
    if (!server) {
      this.#links.delete(link);
      return; // Never accepted: nothing to tell.
    }
    const deliver = (): void => {
      link.coordOpen = false;
      this.#links.delete(link);
      server.deliver('cancelled');
    };
    if (inOrder) this.#enqueue(link.up, deliver, true);
    else this.#world.at(this.#world.now + this.#config.keepaliveMs, link.coordinator, link.coordInc, deliver);
  }

  /** Queues `deliver` on `lane`: it runs after a delay, behind everything sent before on it. */
  #enqueue(lane: Lane, deliver: () => void, closing = false): void {
    lane.queue.push(deliver);
    if (!closing && this.isBlocked(lane.from, lane.to)) this.stats.heldByPartition++;
    this.#schedulePump(lane);
  }

  #schedulePump(lane: Lane): void {
    const w = this.#world;
    const at = Math.max(w.now + this.delay(), lane.last);
    lane.last = at;
    // Not tied to the receiver's incarnation: a pump must never be lost while its queue holds a
    // frame (each delivery checks that its session is still open at both ends).
    w.at(at, lane.to, undefined, () => {
      if (lane.queue.length === 0) return;
      if (this.isBlocked(lane.from, lane.to)) {
        lane.owed++;
        return;
      }
      this.stats.frames++;
      (lane.queue.shift() as () => void)();
    });
  }

  /** During the fault window a session resets now and then (a broken connection). */
  #turbulence(link: Link): void {
    const t = this.turbulence;
    if (!t || !this.#world.prng.chance(t.resetPerMille / 1000)) return;
    this.stats.resets++;
    if (this.#world.tracing) this.#world.trace(`connection reset: session ${link.id} (${link.participant})`, [], true);
    // The frame being written and everything after it is lost; both ends learn at once.
    this.#closeBoth(link, 'connection reset');
  }

  #overLimit(link: Link, from: string, to: string, bytes: number): boolean {
    if (bytes <= this.#config.maxMessageBytes) return false;
    this.#observer.frameOverLimit(from, to, bytes, this.#config.maxMessageBytes);
    this.#closeBoth(link, `Sent message larger than max (${bytes} vs. ${this.#config.maxMessageBytes})`);
    return true;
  }
}

/** The protocol messages of a participant's frame (for the checker and the trace). */
export function participantMessages(frame: SessionRequest): ParticipantMessage[] {
  const out: ParticipantMessage[] = [];
  for (const v of frame.votes) {
    const vote = voteFromWire(v.vote);
    if (vote) out.push({ type: 'vote', txId: v.txId, vote, reason: v.reason });
  }
  for (const a of frame.acks) {
    const outcome = outcomeFromWire(a.outcome);
    if (outcome) out.push({ type: 'ack', txId: a.txId, outcome });
  }
  for (const q of frame.inquiries) out.push({ type: 'inquiry', txId: q.txId });
  for (const e of frame.enlists) out.push({ type: 'enlist', requestId: e.requestId, txId: e.txId, payload: e.payload });
  return out;
}

/** The protocol messages of a coordinator's frame. */
export function coordinatorMessages(frame: SessionResponse): CoordinatorMessage[] {
  const out: CoordinatorMessage[] = [];
  for (const p of frame.prepares) out.push({ type: 'prepare', txId: p.txId, payload: p.payload, deadline: p.deadlineUnixMs, onePhase: p.onePhase });
  for (const d of frame.decisions) {
    const outcome = outcomeFromWire(d.outcome);
    if (outcome) out.push({ type: 'decision', txId: d.txId, outcome });
  }
  for (const q of frame.outcomeQueries) out.push({ type: 'outcome-query', txId: q.txId });
  for (const r of frame.enlistResults) out.push({ type: 'enlist-result', requestId: r.requestId, ...(r.code !== 0 ? { error: { code: 'INTERNAL', message: r.message } } : {}) } as CoordinatorMessage);
  return out;
}

/** Drops everything queued on `lane` (the connection is gone). */
function clear(lane: Lane): void {
  lane.queue.splice(0);
  lane.owed = 0;
}

function txIdsOf(messages: readonly (CoordinatorMessage | ParticipantMessage)[]): string[] {
  const out: string[] = [];
  for (const m of messages) if ('txId' in m && !out.includes(m.txId)) out.push(m.txId);
  return out;
}
