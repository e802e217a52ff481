// Leadership of a coordinator group through an etcd lease. The leader is whoever created the key
// `<prefix>leader` (value: its node id and advertised address) under a lease it keeps alive; the
// key vanishes with the lease. A member that finds the key free creates it in one transaction
// (create revision 0 → put), so two members can never both succeed; the create revision it got is
// the fence that every decision-log write compares against (see etcd-decision-store.ts).
//
// A leader believes it leads only until its lease could have expired by its own clock: the time
// it *sent* the last successful keep-alive plus the TTL etcd granted. A leader paused past that
// (SIGSTOP, a long GC pause) stops answering as leader the moment it runs again, before it learns
// anything from etcd; etcd refuses its writes in any case, since a new leader's key has another
// create revision.

import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Clock, Timer } from '../common/clock.js';
import { mutant } from '../common/mutants.js';
import type { EtcdClient, EtcdLease } from './etcd-client.js';
import type { LeaderFence } from './etcd-decision-store.js';

/** How often a follower tries to take the leader key, in ms (and reads who holds it). */
export const DEFAULT_CAMPAIGN_INTERVAL_MS = 250;
/** Keep-alives sent per lease TTL. */
const KEEPALIVES_PER_TTL = 3;
/** Deadline of one campaign or keep-alive call, in ms. */
const CALL_TIMEOUT_MS = 2_000;

/** Where a member stands: following (campaigning), leading, or closed. */
export type LeadershipState = 'following' | 'leading' | 'closed';

/** What an EtcdLeadership tells its member. */
export interface LeadershipEvents {
  /** This member now leads; every write must carry `fence`. */
  leading: [fence: LeaderFence];
  /** This member no longer leads (its lease expired or could have): stop acting as leader now. */
  lost: [why: string];
}

/** Options of an EtcdLeadership. */
export interface LeadershipOptions {
  /** The etcd client (shared with the member's decision store; not closed here). */
  readonly client: EtcdClient;
  /** The cluster prefix (ends with `/`). */
  readonly prefix: string;
  /** This member's id (unique in the group). */
  readonly nodeId: string;
  /** The `host:port` clients reach this member at. */
  readonly advertise: string;
  /** Lease TTL in whole seconds (etcd's unit; at least 1). */
  readonly leaseTtlS: number;
  /** The clock seam: campaign and keep-alive timers, and the local validity deadline. */
  readonly clock: Clock;
  /** Where elections and losses are logged. */
  readonly logger: Logger;
  /** How often a follower tries to take the key, in ms. */
  readonly campaignIntervalMs?: number;
}

/** The value stored in the leader key. */
interface LeaderValue {
  readonly nodeId: string;
  readonly advertise: string;
}

/** One member's part in the election. */
export class EtcdLeadership extends EventEmitter<LeadershipEvents> {
  readonly #o: LeadershipOptions;
  readonly #key: string;
  readonly #intervalMs: number;
  #state: LeadershipState = 'following';
  #lease: EtcdLease | undefined;
  #leaseId: string | undefined;
  /** When the current lease was granted (the grant's send time), for renewing a follower's lease. */
  #leaseSentAt = 0;
  #leaseTtlMs = 0;
  /** Until when this member may believe it leads (local clock). */
  #validUntil = 0;
  #timer: Timer | undefined;
  #validity: Timer | undefined;
  #leader: string | undefined;
  #term = 0;

  /** A member that campaigns once `start` is called; throws RangeError for a lease under 1 s. */
  constructor(options: LeadershipOptions) {
    super();
    if (!Number.isInteger(options.leaseTtlS) || options.leaseTtlS < 1) throw new RangeError(`the lease TTL must be a whole number of seconds ≥ 1, not ${options.leaseTtlS}`);
    this.#o = options;
    this.#key = `${options.prefix}leader`;
    this.#intervalMs = options.campaignIntervalMs ?? DEFAULT_CAMPAIGN_INTERVAL_MS;
  }

  /** Where this member stands. */
  get state(): LeadershipState {
    return this.#state;
  }

  /** The full etcd key of the leader. */
  get key(): string {
    return this.#key;
  }

  /** The leader's advertised `host:port`, when known (this member's own while it leads). */
  get leaderAddress(): string | undefined {
    return this.#state === 'leading' ? this.#o.advertise : this.#leader;
  }

  /** Whether this member leads now: elected, and its lease cannot have expired by its own clock. */
  isLeader(): boolean {
    return this.#state === 'leading' && (this.#o.clock.now() < this.#validUntil || mutant('leader-outlives-lease'));
  }

  /**
   * Starts campaigning; resolves after the first attempt (won, lost to a known leader, or failed
   * to reach etcd), so that a follower names the leader from its first answer when it can.
   */
  start(): Promise<void> {
    return this.#tick();
  }

  /**
   * Gives up leading (or the lease of a failed term) and campaigns again: the lease is revoked,
   * so the key frees at once when etcd can be reached, or when the lease expires otherwise.
   */
  async stepDown(why: string): Promise<void> {
    if (this.#state === 'closed') return;
    this.#lose(why);
    await this.#dropLease();
    if (this.#state === 'following') this.#schedule(this.#intervalMs);
  }

  /** Stops campaigning and revokes the lease (idempotent). */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#lose('closing');
    this.#state = 'closed';
    if (this.#timer) this.#o.clock.clearTimer(this.#timer);
    await this.#dropLease();
  }

  #schedule(ms: number): void {
    if (this.#timer) this.#o.clock.clearTimer(this.#timer);
    this.#timer = this.#o.clock.setTimer(() => void this.#tick(), ms);
  }

  #deadline(): { deadline: Date } {
    return { deadline: new Date(this.#o.clock.now() + CALL_TIMEOUT_MS) };
  }

  async #tick(): Promise<void> {
    const term = this.#term;
    const campaigning = this.#state === 'following';
    try {
      if (campaigning) await this.#campaign();
      else if (this.#state === 'leading') await this.#keepAlive(term);
    } catch (e) {
      this.#o.logger.debug({ err: e, state: this.#state }, 'etcd call failed');
      if (this.#state === 'following') await this.#dropLease();
    }
    if (this.#state === 'closed') return;
    // A term that ended meanwhile was rescheduled by whoever ended it; a term this tick won goes on here.
    if (term !== this.#term && !(campaigning && this.#state === 'leading' && this.#term === term + 1)) return;
    this.#schedule(this.#state === 'leading' ? this.#leaseTtlMs / KEEPALIVES_PER_TTL : this.#intervalMs);
  }

  /** One attempt at taking the leader key; otherwise learns who holds it. */
  async #campaign(): Promise<void> {
    const clock = this.#o.clock;
    // A follower's lease is never kept alive: a fresh one before the old could lapse.
    if (this.#lease && clock.now() > this.#leaseSentAt + this.#leaseTtlMs / 2) await this.#dropLease();
    let lease = this.#lease;
    if (!lease) {
      const sentAt = clock.now();
      lease = this.#o.client.lease(this.#o.leaseTtlS, { autoKeepAlive: false, ...this.#deadline() });
      lease.on('lost', () => undefined);
      this.#lease = lease;
      this.#leaseId = await lease.grant();
      this.#leaseSentAt = sentAt;
      this.#leaseTtlMs = this.#o.leaseTtlS * 1000;
    }
    // Ticks can overlap (a call that hung past the campaign interval, a step-down rescheduling): one
    // whose lease another tick is still granting has none to campaign with, and one whose lease was
    // dropped or replaced meanwhile must not lead, since it would keep alive a lease its key is not
    // under (the key goes with the dropped lease). Found by the simulator (etcd quorum lost, then back).
    const leaseId = this.#leaseId;
    if (leaseId === undefined) return;
    const value: LeaderValue = { nodeId: this.#o.nodeId, advertise: this.#o.advertise };
    const client = this.#o.client;
    const raw = JSON.stringify(value);
    const res = await client
      .if(this.#key, 'Create', '==', 0)
      .then(client.put(this.#key).value(raw).lease(leaseId))
      .else(client.get(this.#key))
      .options(this.#deadline())
      .commit();
    if (this.#state !== 'following' || this.#lease !== lease || this.#leaseId !== leaseId) return;
    if (res.succeeded) {
      const fence: LeaderFence = { key: this.#key, createRevision: res.header.revision, value: raw };
      this.#state = 'leading';
      this.#term++;
      this.#setValidUntil(this.#leaseSentAt + this.#leaseTtlMs);
      this.#o.logger.info({ nodeId: this.#o.nodeId, revision: fence.createRevision, leaseId: this.#leaseId }, 'elected leader of the coordinator group');
      this.emit('leading', fence);
      return;
    }
    const kv = res.responses[0]?.response_range?.kvs?.[0];
    this.#leader = kv ? parseLeader(kv.value)?.advertise : undefined;
  }

  /** Renews the lease; a lease etcd no longer has, or one that could have lapsed, ends the term. */
  async #keepAlive(term: number): Promise<void> {
    const lease = this.#lease;
    if (!lease) return this.#lose('no lease');
    const sentAt = this.#o.clock.now();
    let ttlS: number;
    try {
      const res = await lease.keepaliveOnce(this.#deadline());
      ttlS = Number(res.TTL);
    } catch (e) {
      // An expired lease is reported as an error by the client; a timeout leaves the validity timer to decide.
      if ((e as Error).name === 'EtcdLeaseInvalidError' && term === this.#term) this.#lose('etcd says the lease expired');
      throw e;
    }
    if (term !== this.#term) return;
    if (!(ttlS > 0)) return this.#lose('etcd says the lease expired');
    this.#setValidUntil(sentAt + ttlS * 1000);
  }

  #setValidUntil(at: number): void {
    this.#validUntil = at;
    if (this.#validity) this.#o.clock.clearTimer(this.#validity);
    const term = this.#term;
    this.#validity = this.#o.clock.setTimer(() => {
      if (term === this.#term && this.#state === 'leading' && !this.isLeader()) this.#lose('the lease may have expired (no keep-alive answered within its TTL)');
    }, Math.max(0, at - this.#o.clock.now()));
  }

  #lose(why: string): void {
    if (this.#validity) this.#o.clock.clearTimer(this.#validity);
    this.#validUntil = 0;
    if (this.#state !== 'leading') return;
    this.#state = 'following';
    this.#term++;
    this.#leader = undefined;
    this.#o.logger.warn({ nodeId: this.#o.nodeId, why }, 'no longer the leader of the coordinator group');
    this.emit('lost', why);
  }

  async #dropLease(): Promise<void> {
    const lease = this.#lease;
    this.#lease = undefined;
    this.#leaseId = undefined;
    if (!lease) return;
    try {
      await lease.revoke(this.#deadline());
    } catch (e) {
      this.#o.logger.debug({ err: e }, 'revoking a lease failed; it expires by itself');
    }
  }
}

function parseLeader(raw: Buffer): LeaderValue | undefined {
  try {
    const v = JSON.parse(raw.toString('utf8')) as Partial<LeaderValue>;
    return typeof v.advertise === 'string' && typeof v.nodeId === 'string' ? { nodeId: v.nodeId, advertise: v.advertise } : undefined;
  } catch {
    return undefined;
  }
}
