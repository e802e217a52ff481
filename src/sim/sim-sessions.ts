// Simulated participant sessions: the long-lived stream a participant dials to the coordinator.
// A session is open at each end separately. An end learns that the other closed it from a reset
// (fast, when the peer's machine is still up and reachable) or from a keepalive timeout (a power
// loss, a partition, a paused peer), as with gRPC over TCP.

import type { CoordinatorMessage, ParticipantMessage } from '../protocol/coordinator-events.js';
import { COORDINATOR } from './sim-options.js';
import type { SimNetwork, WorldClock } from './sim-network.js';
import { describeCoordinatorMessage, describeParticipantMessage } from './trace.js';

/** The coordinator process as the sessions see it. */
export interface CoordinatorEndpoint {
  readonly epoch: number;
  /** Whether the coordinator accepts a session for `participant` (false: one is already live). */
  acceptHello(sessionId: number, participant: string): boolean;
  onConnected(sessionId: number, participant: string): void;
  onFrame(sessionId: number, participant: string, messages: readonly ParticipantMessage[]): void;
  onSessionClosed(sessionId: number): void;
}

/** A participant process as the sessions see it. */
export interface ParticipantEndpoint {
  onWelcome(sessionId: number, epoch: number): void;
  onRefused(sessionId: number): void;
  onFrame(sessionId: number, messages: readonly CoordinatorMessage[]): void;
  onSessionClosed(sessionId: number): void;
}

/** How the sessions find the live processes. */
export interface SessionProcesses {
  coordinator(): CoordinatorEndpoint | undefined;
  participant(name: string): ParticipantEndpoint | undefined;
  isPaused(node: string): boolean;
  /** Runs the delivery of a replayed frame (so that the checker knows). */
  replaying(fn: () => void): void;
}

type Side = 'coordinator' | 'participant';

interface Session {
  readonly id: number;
  readonly participant: string;
  coord: 'none' | 'open' | 'closed';
  part: 'connecting' | 'open' | 'closed';
}

/** A frame captured for replay faults. */
interface Captured {
  readonly participant: string;
  readonly toCoordinator: boolean;
  readonly messages: readonly (CoordinatorMessage | ParticipantMessage)[];
}

const MAX_CAPTURED = 400;

/** Every session ever opened, and the transport of their frames. */
export class SimSessions {
  readonly #world: WorldClock;
  readonly #net: SimNetwork;
  readonly #procs: SessionProcesses;
  readonly #keepaliveMs: number;
  readonly #enlistInOrder: boolean;
  readonly #sessions = new Map<number, Session>();
  readonly #captured: Captured[] = [];
  #nextId = 0;

  /**
   * With `enlistInOrder`, frames carrying Enlist or EnlistResult are never duplicated, replayed
   * or reordered (see SimConfig.enlistInOrder for why).
   */
  constructor(world: WorldClock, net: SimNetwork, procs: SessionProcesses, keepaliveMs: number, enlistInOrder: boolean) {
    this.#world = world;
    this.#net = net;
    this.#procs = procs;
    this.#keepaliveMs = keepaliveMs;
    this.#enlistInOrder = enlistInOrder;
  }

  #ordered(messages: readonly (CoordinatorMessage | ParticipantMessage)[]): boolean {
    return this.#enlistInOrder && messages.some((m) => m.type === 'enlist' || m.type === 'enlist-result');
  }

  /** A participant dials: a new session, with its hello on the way. */
  open(participant: string): number {
    const s: Session = { id: ++this.#nextId, participant, coord: 'none', part: 'connecting' };
    this.#sessions.set(s.id, s);
    this.#net.transmit(
      participant,
      COORDINATOR,
      () => `Hello session=${s.id}`,
      [],
      `s${s.id}>c`,
      () => (this.#procs.coordinator() ? (s.part === 'closed' ? 'the dialer gave up' : undefined) : 'coordinator down'),
      () => this.#onHello(s),
    );
    return s.id;
  }

  #onHello(s: Session): void {
    const coordinator = this.#procs.coordinator();
    // A stream is opened once: a duplicated hello is not a second stream.
    if (!coordinator || s.coord !== 'none') return;
    if (!coordinator.acceptHello(s.id, s.participant)) {
      s.coord = 'closed';
      this.#net.transmit(COORDINATOR, s.participant, () => `Refused session=${s.id} (name in use)`, [], `s${s.id}<c`, () => this.#partCheck(s, true), () => {
        s.part = 'closed';
        this.#procs.participant(s.participant)?.onRefused(s.id);
      });
      return;
    }
    s.coord = 'open';
    const epoch = coordinator.epoch;
    this.#net.transmit(COORDINATOR, s.participant, () => `Welcome session=${s.id} epoch=${epoch}`, [], `s${s.id}<c`, () => this.#partCheck(s, true), () => {
      s.part = 'open';
      this.#procs.participant(s.participant)?.onWelcome(s.id, epoch);
    });
    coordinator.onConnected(s.id, s.participant);
  }

  #partCheck(s: Session, welcome: boolean): string | undefined {
    if (!this.#procs.participant(s.participant)) return `${s.participant} down`;
    if (welcome ? s.part !== 'connecting' : s.part !== 'open') return 'session closed';
    return undefined;
  }

  /** Sends a frame from the coordinator on session `id`. */
  sendToParticipant(id: number, messages: readonly CoordinatorMessage[], replay = false): void {
    const s = this.#sessions.get(id);
    if (!s || s.coord !== 'open') return;
    const ordered = this.#ordered(messages);
    if (!replay && !ordered) this.#capture({ participant: s.participant, toCoordinator: false, messages });
    this.#net.transmit(
      COORDINATOR,
      s.participant,
      () => messages.map(describeCoordinatorMessage).join('; '),
      txIdsOf(messages),
      `s${s.id}<c`,
      () => this.#partCheck(s, false),
      () => this.#deliver(replay, () => this.#procs.participant(s.participant)?.onFrame(s.id, messages)),
      ordered,
    );
  }

  /** Sends a frame from a participant on session `id`. */
  sendToCoordinator(id: number, messages: readonly ParticipantMessage[], replay = false): void {
    const s = this.#sessions.get(id);
    if (!s || s.part === 'closed') return;
    const ordered = this.#ordered(messages);
    if (!replay && !ordered) this.#capture({ participant: s.participant, toCoordinator: true, messages });
    this.#net.transmit(
      s.participant,
      COORDINATOR,
      () => messages.map(describeParticipantMessage).join('; '),
      txIdsOf(messages),
      `s${s.id}>c`,
      () => (!this.#procs.coordinator() ? 'coordinator down' : s.coord !== 'open' ? 'session closed' : undefined),
      () => this.#deliver(replay, () => this.#procs.coordinator()?.onFrame(s.id, s.participant, messages)),
      ordered,
    );
  }

  /** One end closes the session itself (a connect timeout, a refused hello); the peer learns it. */
  closeBy(id: number, side: Side): void {
    const s = this.#sessions.get(id);
    if (!s) return;
    this.#closeSide(s, side, false);
    this.#propagate(s, side, true);
  }

  /** A node's process died: its ends close silently; peers learn by reset or keepalive. */
  nodeDown(node: string, powerLoss: boolean): void {
    for (const s of this.#sessions.values()) {
      const side: Side | undefined = node === COORDINATOR ? 'coordinator' : s.participant === node ? 'participant' : undefined;
      if (!side || (side === 'coordinator' ? s.coord !== 'open' : s.part === 'closed')) continue;
      this.#closeSide(s, side, false);
      this.#propagate(s, side, !powerLoss);
    }
  }

  /** A partition began: sessions across a cut link die at the keepalive timeout unless healed by then. */
  partitioned(): void {
    const at = this.#world.now + this.#keepaliveMs;
    for (const s of this.#liveSessions()) {
      if (!this.#cut(s)) continue;
      this.#world.at(at, undefined, () => {
        if (!this.#cut(s)) return;
        if (this.#world.tracing) this.#world.trace(`keepalive timeout: session ${s.id} (${s.participant}) closed at both ends`, [], true);
        this.#closeSide(s, 'coordinator', true);
        this.#closeSide(s, 'participant', true);
      });
    }
  }

  /** A node paused (SIGSTOP): its peers drop its sessions at the keepalive timeout. */
  paused(node: string, stillPaused: () => boolean): void {
    this.#world.at(this.#world.now + this.#keepaliveMs, undefined, () => {
      if (!stillPaused()) return;
      for (const s of this.#liveSessions()) {
        const side: Side | undefined = node === COORDINATOR ? 'coordinator' : s.participant === node ? 'participant' : undefined;
        if (!side) continue;
        const other: Side = side === 'coordinator' ? 'participant' : 'coordinator';
        if (this.#world.tracing) this.#world.trace(`keepalive timeout: ${node} is unresponsive; session ${s.id} closed by ${other === 'coordinator' ? COORDINATOR : s.participant}`, [], true);
        this.#closeSide(s, other, true);
        // The paused end reads the reset when it resumes.
        this.#world.at(this.#world.now + this.#net.quietDelay(), node, () => this.#closeSide(s, side, true));
      }
    });
  }

  /** Delivers a random captured frame again on the live session between the same ends. */
  replay(): void {
    const w = this.#world;
    if (this.#captured.length === 0) return;
    const c = w.prng.pick(this.#captured);
    const live = [...this.#sessions.values()].filter((s) => s.participant === c.participant && s.coord === 'open' && s.part === 'open');
    const s = live[live.length - 1];
    if (!s) {
      if (w.tracing) w.trace(`replay: no live session with ${c.participant}; nothing replayed`, [], true);
      return;
    }
    if (w.tracing) w.trace(`replay of an old frame ${c.toCoordinator ? `${c.participant} → ${COORDINATOR}` : `${COORDINATOR} → ${c.participant}`}`, txIdsOf(c.messages), true);
    if (c.toCoordinator) this.sendToCoordinator(s.id, c.messages as ParticipantMessage[], true);
    else this.sendToParticipant(s.id, c.messages as CoordinatorMessage[], true);
  }

  #deliver(replay: boolean, fn: () => void): void {
    if (replay) this.#procs.replaying(fn);
    else fn();
  }

  #capture(c: Captured): void {
    if (this.#captured.length >= MAX_CAPTURED) this.#captured.splice(0, 1);
    this.#captured.push(c);
  }

  #liveSessions(): Session[] {
    return [...this.#sessions.values()].filter((s) => s.coord === 'open' || s.part !== 'closed');
  }

  #cut(s: Session): boolean {
    return this.#net.isBlocked(COORDINATOR, s.participant) || this.#net.isBlocked(s.participant, COORDINATOR);
  }

  #closeSide(s: Session, side: Side, notify: boolean): void {
    if (side === 'coordinator') {
      const wasOpen = s.coord === 'open';
      s.coord = 'closed';
      if (wasOpen && notify) this.#procs.coordinator()?.onSessionClosed(s.id);
    } else {
      const wasOpen = s.part !== 'closed';
      s.part = 'closed';
      if (wasOpen && notify) this.#procs.participant(s.participant)?.onSessionClosed(s.id);
    }
  }

  /** The peer of `closed` learns of the close: by reset after a network delay, or at the keepalive timeout. */
  #propagate(s: Session, closed: Side, reset: boolean): void {
    const other: Side = closed === 'coordinator' ? 'participant' : 'coordinator';
    const from = closed === 'coordinator' ? COORDINATOR : s.participant;
    const to = closed === 'coordinator' ? s.participant : COORDINATOR;
    if (other === 'coordinator' ? s.coord !== 'open' : s.part === 'closed') return;
    const viaReset = reset && !this.#net.isBlocked(from, to);
    const at = this.#world.now + (viaReset ? this.#net.quietDelay() : this.#keepaliveMs);
    this.#world.at(at, to, () => {
      if (this.#world.tracing && (other === 'coordinator' ? s.coord === 'open' : s.part !== 'closed')) {
        this.#world.trace(`${to}: session ${s.id} closed by its peer (${viaReset ? 'reset' : 'keepalive timeout'})`);
      }
      this.#closeSide(s, other, true);
    });
  }
}

function txIdsOf(messages: readonly (CoordinatorMessage | ParticipantMessage)[]): string[] {
  const out: string[] = [];
  for (const m of messages) if ('txId' in m && !out.includes(m.txId)) out.push(m.txId);
  return out;
}
