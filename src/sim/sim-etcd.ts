// The simulated etcd: one linearizable key-value store with revisions and leases on the virtual
// clock, reached by each coordinator group member through the etcd seam (src/cluster/etcd-client.ts),
// so that the production leadership and etcd decision store run over it unchanged.
//
// What it models, and why:
// - Every call travels to the store and back with a network delay; the store applies it
//   atomically at one instant (linearizable), so a compare-and-put is one step.
// - Leases expire when not kept alive by then. While the store has no quorum nothing expires, and
//   when quorum returns every lease gets a fresh TTL (etcd's new leader renews all leases): a leader
//   must not count on etcd expiring its lease on time, only on its own validity deadline.
// - A member can be cut from the store, and the store can lose quorum. A call made then fails fast
//   (UNAVAILABLE) or hangs; a hung call is answered by its deadline, and when the cut heals or
//   quorum returns it may still be applied: a failed write may have landed.
// - Ghost checks, for the checker: a decision-log write applied while its writer's term is over (the
//   leader key is gone or was created again since) is a fencing violation, whatever the write compared.

import type {
  EtcdCallOptions,
  EtcdClient,
  EtcdComparator,
  EtcdCompareTarget,
  EtcdDeleteBuilder,
  EtcdGetBuilder,
  EtcdKeyValue,
  EtcdLease,
  EtcdPutBuilder,
  EtcdRangeBuilder,
  EtcdRangeResult,
  EtcdTxnBuilder,
  EtcdTxnResult,
} from '../cluster/etcd-client.js';
import type { Prng } from './prng.js';
import type { DiskOp } from './sim-disk.js';

/** What the simulated etcd needs from the world. */
export interface EtcdWorld {
  readonly now: number;
  readonly prng: Prng;
  readonly tracing: boolean;
  /** Runs `fn` at `time` in `member`'s incarnation `inc` (dropped if it died, deferred while it is paused). */
  atMember(time: number, member: string, inc: number, fn: () => void): void;
  /** Runs `fn` at `time` inside the store (no process). */
  atStore(time: number, fn: () => void): void;
  trace(text: string, fault?: boolean): void;
  /** Decision-log operations landed (keys without the log prefix): the store is durable by quorum. */
  logLanded(ops: readonly DiskOp[]): void;
  /** A decision-log write of a member failed or was refused: it may have landed (P20). */
  logWriteFailed(member: string, ops: readonly DiskOp[]): void;
  /** A decision-log write landed from a member whose term was over. */
  fencingViolated(message: string): void;
}

/** Where a group keeps its keys in the simulated etcd. */
export interface SimEtcdLayout {
  /** The leader key (`<prefix>leader`). */
  readonly leaderKey: string;
  /** The decision log's prefix (`<prefix>log/`). */
  readonly logPrefix: string;
}

/** The term a member's client writes under: the leader key's create revision when it was elected. */
export interface MemberTerm {
  readonly createRevision: string;
}

/** Counters of the simulated etcd. */
export interface SimEtcdStats {
  calls: number;
  transactions: number;
  /** Transactions whose comparisons failed (a follower's campaign for a held key among them). */
  refused: number;
  /** Decision-log writes refused by their comparisons: a deposed leader's, fenced out. */
  logRefused: number;
  /** Calls that failed fast or hung (cut from the store, or no quorum). */
  unavailable: number;
  /** Hung calls applied after the fault healed. */
  lateApplied: number;
  leasesExpired: number;
}

interface Entry {
  readonly value: Buffer;
  readonly create: number;
  readonly lease: string | undefined;
}

interface LeaseState {
  readonly ttlMs: number;
  expiresAt: number;
}

interface Held {
  readonly member: string;
  readonly apply: () => void;
}

type Op = { readonly kind: 'put'; key: string; value: Buffer; lease: string | undefined } | { readonly kind: 'del'; key: string } | { readonly kind: 'get'; key: string };

/** Where a builder made by this store keeps the operation it describes. */
const OP = Symbol('sim-etcd operation');

interface Operation {
  readonly [OP]: Op;
}

function opOf(o: object): Op {
  const op = (o as Partial<Operation>)[OP];
  if (!op) throw new TypeError('an operation not made by this simulated etcd client');
  return op;
}

interface Compare {
  readonly key: string;
  readonly target: EtcdCompareTarget;
  readonly cmp: EtcdComparator;
  readonly value: string | Buffer | number;
}

const MIN_DELAY_MS = 1;
const MAX_DELAY_MS = 3;
/**
 * A hung call applied late is, one time in two, a straggler: applied only up to this long after
 * the fault heals (stuck on a dead connection, or in a queue inside etcd), so that calls its
 * member sent later overtake it. A straggler of an old term can land after the same member won
 * the key again: what a per-node fence lets through (P23).
 */
const STRAGGLER_MAX_MS = 3_000;
/** Error names as the etcd3 client gives them: the cluster code matches on `EtcdLeaseInvalidError`. */
const LEASE_INVALID = 'EtcdLeaseInvalidError';

function etcdError(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

const toBuffer = (v: string | Buffer): Buffer => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v);
const deadlineOf = (o: EtcdCallOptions | undefined): number | undefined => (o?.deadline === undefined ? undefined : typeof o.deadline === 'number' ? o.deadline : o.deadline.getTime());

/** A linearizable store with leases, shared by a coordinator group. */
export class SimEtcd {
  readonly #world: EtcdWorld;
  readonly #layout: SimEtcdLayout;
  readonly #kv = new Map<string, Entry>();
  readonly #leases = new Map<string, LeaseState>();
  readonly #cut = new Set<string>();
  #held: Held[] = [];
  /** Each client's term: the revision at which it last created the leader key. */
  readonly #terms = new Map<string, MemberTerm>();
  #revision = 1;
  #nextLease = 1;
  #quorum = true;
  readonly stats: SimEtcdStats = { calls: 0, transactions: 0, refused: 0, logRefused: 0, unavailable: 0, lateApplied: 0, leasesExpired: 0 };

  /** An empty store with quorum, at revision 1, keeping the group's keys where `layout` says. */
  constructor(world: EtcdWorld, layout: SimEtcdLayout) {
    this.#world = world;
    this.#layout = layout;
  }

  /** Whether the store has quorum. */
  get hasQuorum(): boolean {
    return this.#quorum;
  }

  /** Whether `member` is cut from the store. */
  isCut(member: string): boolean {
    return this.#cut.has(member);
  }

  /** The term `member`'s incarnation `inc` won last, as this store saw it (the ghost's record, not the member's). */
  termOf(member: string, inc: number): MemberTerm | undefined {
    return this.#terms.get(`${member}#${inc}`);
  }

  /** The leader key's value and create revision now (after due expiries), if any. */
  leader(): { readonly value: string; readonly createRevision: string } | undefined {
    if (this.#quorum) this.#expire();
    const e = this.#kv.get(this.#layout.leaderKey);
    return e ? { value: e.value.toString('utf8'), createRevision: String(e.create) } : undefined;
  }

  /** The store loses quorum: nothing is applied, nothing expires. */
  loseQuorum(): void {
    if (!this.#quorum) return;
    this.#expire();
    this.#quorum = false;
  }

  /** Quorum returns: every lease gets a fresh TTL, and hung calls may be applied. */
  regainQuorum(): void {
    if (this.#quorum) return;
    this.#quorum = true;
    for (const l of this.#leases.values()) l.expiresAt = this.#world.now + l.ttlMs;
    this.#release();
  }

  /** Cuts `member` from the store. */
  cut(member: string): void {
    this.#cut.add(member);
  }

  /** Heals `member`'s cut; its hung calls may be applied. */
  heal(member: string): void {
    if (this.#cut.delete(member)) this.#release();
  }

  /** Heals every fault. */
  healAll(): void {
    this.#cut.clear();
    this.regainQuorum();
    this.#release();
  }

  /**
   * The etcd client of `member`'s incarnation `inc`. Its decision-log writes are checked against
   * the leader key (the ghost fencing check) in the term it had when it sent them: `term`, or else
   * the revision at which this client last created the leader key. A client that writes for one
   * term only (a term's decision store) is given that term (`termOf` when the term begins): a
   * write it sends after the same member was elected again is then still checked as the old
   * term's, which is what a per-node rather than per-term fence lets through.
   */
  client(member: string, inc: number, term?: MemberTerm): EtcdClient {
    const who = `${member}#${inc}`;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the builders below are plain objects over this store
    const store = this;
    const call = <T>(options: EtcdCallOptions | undefined, apply: () => T, settled?: (ok: boolean) => void): Promise<T> =>
      store.#call(member, inc, deadlineOf(options), apply, settled);
    return {
      lease(ttlS, leaseOptions): EtcdLease {
        let id: string | undefined;
        return {
          on: () => undefined,
          grant: () =>
            call(leaseOptions, () => {
              id = String(store.#nextLease++);
              store.#leases.set(id, { ttlMs: ttlS * 1000, expiresAt: store.#world.now + ttlS * 1000 });
              return id;
            }),
          keepaliveOnce: (options) =>
            call(options, () => {
              const l = id === undefined ? undefined : store.#leases.get(id);
              if (!l) throw etcdError(LEASE_INVALID, `lease ${id ?? '(not granted)'} not found`);
              l.expiresAt = store.#world.now + l.ttlMs;
              return { TTL: String(l.ttlMs / 1000) };
            }),
          revoke: (options) =>
            call(options, () => {
              if (id === undefined || !store.#leases.has(id)) throw etcdError(LEASE_INVALID, `lease ${id ?? '(not granted)'} not found`);
              store.#dropLease(id);
            }),
        };
      },
      if(key, column, cmp, value): EtcdTxnBuilder {
        const compares: Compare[] = [{ key: String(key), target: column, cmp, value }];
        let success: Op[] = [];
        let failure: Op[] = [];
        let options: EtcdCallOptions | undefined;
        const txn: EtcdTxnBuilder = {
          and: (k, c, o, v) => {
            compares.push({ key: String(k), target: c, cmp: o, value: v });
            return txn;
          },
          then: (...ops) => {
            success = ops.map(opOf);
            return txn;
          },
          else: (...ops) => {
            failure = ops.map(opOf);
            return txn;
          },
          options: (o) => {
            options = o;
            return txn;
          },
          commit: () => {
            const logOps = store.#logOps(success);
            const writeTerm = term ?? store.#terms.get(who);
            const campaign = success.some((op) => op.kind === 'put' && op.key === store.#layout.leaderKey);
            let refused = false;
            return call(
              options,
              () => {
                const result = store.#txn(compares, success, failure);
                refused = !result.succeeded;
                if (refused && logOps.length > 0) store.stats.logRefused++;
                if (result.succeeded && campaign) store.#terms.set(who, { createRevision: String(store.#kv.get(store.#layout.leaderKey)?.create) });
                if (result.succeeded && logOps.length > 0) store.#landed(member, writeTerm, logOps);
                return result;
              },
              (ok) => {
                if (logOps.length > 0 && (!ok || refused)) store.#world.logWriteFailed(member, logOps);
              },
            );
          },
        };
        return txn;
      },
      put(key): EtcdPutBuilder {
        const op: Op = { kind: 'put', key: String(key), value: Buffer.alloc(0), lease: undefined };
        const builder: EtcdPutBuilder & Operation = {
          [OP]: op,
          value: (v) => {
            op.value = toBuffer(v);
            return builder;
          },
          lease: (l) => {
            op.lease = l;
            return builder;
          },
        };
        return builder;
      },
      delete(): EtcdDeleteBuilder {
        const op: Op = { kind: 'del', key: '' };
        const builder: EtcdDeleteBuilder & Operation = {
          [OP]: op,
          key: (k) => {
            op.key = String(k);
            return builder;
          },
        };
        return builder;
      },
      get(key): EtcdGetBuilder {
        const k = String(key);
        let options: EtcdCallOptions | undefined;
        const builder: EtcdGetBuilder & Operation = {
          [OP]: { kind: 'get', key: k },
          options: (o) => {
            options = o;
            return builder;
          },
          buffer: () => call(options, () => store.#kv.get(k)?.value ?? null),
          exec: () => call(options, (): EtcdRangeResult => ({ kvs: store.#keyValues([k]), more: false })),
        };
        return builder;
      },
      getAll(): EtcdRangeBuilder {
        let range = { start: '', end: '' };
        let limit = Number.POSITIVE_INFINITY;
        let options: EtcdCallOptions | undefined;
        const builder: EtcdRangeBuilder = {
          inRange: (r) => {
            range = { start: r.start, end: r.end };
            return builder;
          },
          sort: () => builder,
          limit: (n) => {
            limit = n;
            return builder;
          },
          options: (o) => {
            options = o;
            return builder;
          },
          exec: () =>
            call(options, (): EtcdRangeResult => {
              const keys = [...store.#kv.keys()].filter((k) => k >= range.start && k < range.end).sort();
              return { kvs: store.#keyValues(keys.slice(0, limit)), more: keys.length > limit };
            }),
        };
        return builder;
      },
    };
  }

  // ---- one call: there, applied at one instant, back ------------------------------------------

  #reachable(member: string): boolean {
    return this.#quorum && !this.#cut.has(member);
  }

  #delay(): number {
    return this.#world.prng.int(MIN_DELAY_MS, MAX_DELAY_MS);
  }

  #call<T>(member: string, inc: number, deadline: number | undefined, apply: () => T, settled?: (ok: boolean) => void): Promise<T> {
    const w = this.#world;
    this.stats.calls++;
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const answer = (fn: () => void, ok: boolean): void => {
        w.atMember(w.now + this.#delay(), member, inc, () => {
          if (done) return;
          done = true;
          settled?.(ok);
          fn();
        });
      };
      const run = (): void => {
        if (this.#quorum) this.#expire();
        try {
          const result = apply();
          answer(() => resolve(result), true);
        } catch (e) {
          answer(() => reject(e), true);
        }
      };
      const unavailable = (): void => {
        this.stats.unavailable++;
        if (w.prng.chance(0.5)) {
          answer(() => reject(etcdError('GRPCUnavailableError', `etcd unreachable from ${member}`)), false);
        } else {
          // Hung: the deadline answers; the request itself may still be applied when the fault heals.
          this.#held.push({ member, apply: run });
        }
      };
      if (deadline !== undefined) {
        w.atMember(Math.max(w.now, deadline), member, inc, () => {
          if (done) return;
          done = true;
          settled?.(false);
          reject(etcdError('GRPCDeadlineExceededError', 'etcd call deadline exceeded'));
        });
      }
      if (!this.#reachable(member)) return unavailable();
      w.atStore(w.now + this.#delay(), () => (this.#reachable(member) ? run() : unavailable()));
    });
  }

  /** Hung calls of reachable members: each is applied (late) or lost, at random. */
  #release(): void {
    const held = this.#held;
    this.#held = [];
    for (const h of held) {
      if (!this.#reachable(h.member)) this.#held.push(h);
      else if (this.#world.prng.chance(0.5)) {
        const straggler = this.#world.prng.chance(0.5) ? this.#world.prng.int(1, STRAGGLER_MAX_MS) : 0;
        const apply = (): void => {
          if (!this.#reachable(h.member)) {
            this.#held.push(h);
            return;
          }
          this.stats.lateApplied++;
          if (this.#world.tracing) this.#world.trace(`etcd: a hung call of ${h.member} is applied late${straggler ? ` (a straggler, ${straggler}ms after the heal)` : ''}`, true);
          h.apply();
        };
        if (straggler === 0) apply();
        else this.#world.atStore(this.#world.now + straggler, apply);
      }
    }
  }

  // ---- the store ------------------------------------------------------------------------------

  #expire(): void {
    const now = this.#world.now;
    for (const [id, l] of this.#leases) {
      if (l.expiresAt > now) continue;
      this.stats.leasesExpired++;
      if (this.#world.tracing) this.#world.trace(`etcd: lease ${id} expired`, true);
      this.#dropLease(id);
    }
  }

  #dropLease(id: string): void {
    this.#leases.delete(id);
    let changed = false;
    for (const [k, e] of this.#kv) {
      if (e.lease !== id) continue;
      if (k === this.#layout.leaderKey && this.#world.tracing) this.#world.trace(`etcd: the leader key (${e.value.toString('utf8')}, revision ${e.create}) goes with lease ${id}`, true);
      this.#kv.delete(k);
      changed = true;
    }
    if (changed) this.#revision++;
  }

  #keyValues(keys: readonly string[]): EtcdKeyValue[] {
    const out: EtcdKeyValue[] = [];
    for (const k of keys) {
      const e = this.#kv.get(k);
      if (e) out.push({ key: Buffer.from(k, 'utf8'), value: e.value, create_revision: String(e.create) });
    }
    return out;
  }

  #holds(c: Compare): boolean {
    const e = this.#kv.get(c.key);
    if (c.target === 'Create') {
      const have = e?.create ?? 0;
      const want = Number(c.value);
      return c.cmp === '==' ? have === want : have > want;
    }
    if (!e) return false;
    const order = Buffer.compare(e.value, toBuffer(typeof c.value === 'number' ? String(c.value) : c.value));
    return c.cmp === '==' ? order === 0 : order > 0;
  }

  #txn(compares: readonly Compare[], success: readonly Op[], failure: readonly Op[]): EtcdTxnResult {
    this.stats.transactions++;
    const succeeded = compares.every((c) => this.#holds(c));
    if (!succeeded) this.stats.refused++;
    const ops = succeeded ? success : failure;
    for (const op of ops) {
      if (op.kind === 'put' && op.lease !== undefined && !this.#leases.has(op.lease)) throw etcdError(LEASE_INVALID, `requested lease ${op.lease} not found`);
    }
    const writes = ops.some((op) => op.kind !== 'get');
    const revision = writes ? ++this.#revision : this.#revision;
    const responses: EtcdTxnResult['responses'][number][] = [];
    for (const op of ops) {
      if (op.kind === 'get') {
        responses.push({ response_range: { kvs: this.#keyValues([op.key]) } });
      } else if (op.kind === 'put') {
        const prev = this.#kv.get(op.key);
        this.#kv.set(op.key, { value: op.value, create: prev?.create ?? revision, lease: op.lease });
        if (op.key === this.#layout.leaderKey && this.#world.tracing) this.#world.trace(`etcd: leader key put (${op.value.toString('utf8')}) at revision ${revision} under lease ${op.lease ?? 'none'}`);
        responses.push({});
      } else {
        if (op.key === this.#layout.leaderKey && this.#world.tracing) this.#world.trace('etcd: leader key deleted', true);
        this.#kv.delete(op.key);
        responses.push({});
      }
    }
    return { succeeded, header: { revision: String(revision) }, responses };
  }

  #logOps(ops: readonly Op[]): DiskOp[] {
    const prefix = this.#layout.logPrefix;
    const out: DiskOp[] = [];
    for (const op of ops) {
      if (op.kind === 'get' || !op.key.startsWith(prefix)) continue;
      const key = op.key.slice(prefix.length);
      out.push(op.kind === 'put' ? { type: 'put', key, value: new Uint8Array(op.value) } : { type: 'del', key });
    }
    return out;
  }

  /** Decision-log operations were applied: the ghost fencing check, then the checker's view. */
  #landed(member: string, term: MemberTerm | undefined, ops: readonly DiskOp[]): void {
    const leader = this.#kv.get(this.#layout.leaderKey);
    if (!term) this.#world.fencingViolated(`${member} wrote the decision log without ever being elected`);
    else if (!leader) this.#world.fencingViolated(`a decision-log write of ${member} (term of revision ${term.createRevision}) landed while no one held the leader key`);
    else if (String(leader.create) !== term.createRevision) {
      this.#world.fencingViolated(`a decision-log write of ${member} (term of revision ${term.createRevision}) landed in the term of revision ${leader.create} (${leader.value.toString('utf8')})`);
    }
    this.#world.logLanded(ops);
  }
}
