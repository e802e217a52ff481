// One member of a coordinator group on etcd. Every member binds its port and campaigns for the
// leader key; the leader runs a Coordinator over the decision log in etcd, guarded by its
// leadership, and the others answer every call NOT_LEADER with the leader's address.
//
// A term ends when the lease is lost (or could have lapsed by this member's clock) or when the
// coordinator stops itself (a refused or failed decision-log write: never a decision). The member
// then steps down in-process: the term's coordinator is closed as at a crash (waiting callers hear
// OUTCOME_UNKNOWN), the lease is revoked, and it campaigns again as a follower. Nothing of a term
// survives into the next one; a new term starts exactly like a restart (epoch bumped with a
// compare-and-swap, open records loaded and re-driven), and no local file is ever read.

import { EventEmitter } from 'node:events';
import { systemClock, type Clock } from '../common/clock.js';
import { defaultLogger, type Logger } from '../common/logger.js';
import { Coordinator } from '../coordinator/coordinator.js';
import { coordinatorServerOptions } from '../coordinator/coordinator-options.js';
import { ErrorCode, VerdictError } from '../errors.js';
import type { EtcdClient } from './etcd-client.js';
import { EtcdDecisionStore, type LeaderFence } from './etcd-decision-store.js';
import { DEFAULT_ETCD_PREFIX, DEFAULT_LEASE_TTL_S, type GroupMemberOptions } from './group-member-options.js';
import type { GroupMemberSeams, MemberTransport } from './group-member-seams.js';
import { LeaderGatedTransport } from './leader-gated-transport.js';
import { EtcdLeadership } from './leadership.js';

/** How long calls get to finish when a member closes, in ms. */
const CLOSE_GRACE_MS = 2_000;
const HOST_PORT = /^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/;
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Where a member stands: following, starting a term (recovering), leading, or closed. */
export type GroupMemberState = 'following' | 'starting' | 'leading' | 'closed';

/** What a member tells its embedder. */
export interface GroupMemberEvents {
  /** This member leads and serves, as the coordinator of `epoch`. */
  leading: [epoch: number];
  /** This member stopped leading (or failed to start a term), and campaigns again. */
  following: [why: string];
}

/**
 * A member of a coordinator group on etcd.
 *
 * ```ts
 * const member = await CoordinatorGroupMember.start({
 *   etcd: ['127.0.0.1:2379'], nodeId: 'c1', advertise: '127.0.0.1:7070',
 * });
 * member.on('leading', (epoch) => console.log('leading as epoch', epoch));
 * await member.close();
 * ```
 */
export class CoordinatorGroupMember extends EventEmitter<GroupMemberEvents> {
  readonly #options: GroupMemberOptions;
  readonly #client: EtcdClient & { close(): void };
  readonly #termClient: GroupMemberSeams['termClient'];
  readonly #prefix: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #leadership: EtcdLeadership;
  readonly #transport: MemberTransport;
  #state: GroupMemberState = 'following';
  #coordinator: Coordinator | undefined;
  #term = 0;
  #address = '';
  #closing: Promise<void> | undefined;

  private constructor(options: GroupMemberOptions, client: EtcdClient & { close(): void }, transport?: GroupMemberSeams['transport'], termClient?: GroupMemberSeams['termClient']) {
    super();
    this.#termClient = termClient;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? defaultLogger('verdict')).child({ component: 'group-member', nodeId: options.nodeId });
    const prefix = options.etcdPrefix ?? DEFAULT_ETCD_PREFIX;
    this.#prefix = prefix.endsWith('/') ? prefix : `${prefix}/`;
    this.#client = client;
    this.#leadership = new EtcdLeadership({
      client: this.#client,
      prefix: this.#prefix,
      nodeId: options.nodeId,
      advertise: options.advertise,
      leaseTtlS: options.leaseTtlS ?? DEFAULT_LEASE_TTL_S,
      clock: this.#clock,
      logger: this.#log,
      ...(options.campaignIntervalMs !== undefined ? { campaignIntervalMs: options.campaignIntervalMs } : {}),
    });
    const gate = { isLeader: () => this.#state === 'leading' && this.#leadership.isLeader(), leaderAddress: () => this.#leadership.leaderAddress };
    this.#transport = transport ? transport(gate) : new LeaderGatedTransport(options.listen ?? options.advertise, gate, coordinatorServerOptions(options.coordinator));
  }

  /**
   * Validates the options, binds the port and starts campaigning. Fails with INVALID_ARGUMENT or
   * UNAVAILABLE (port in use). `seams` replace the etcd client and the gRPC server (the simulator's).
   */
  static async start(options: GroupMemberOptions, seams?: GroupMemberSeams): Promise<CoordinatorGroupMember> {
    checkOptions(options);
    // Loaded here, not with the package: the etcd client compiles its protos at import (about 0.5 s).
    const client = seams?.client ?? new (await import('etcd3')).Etcd3({ hosts: options.etcd.map((h) => `http://${h}`) });
    const member = new CoordinatorGroupMember(options, client, seams?.transport, seams?.termClient?.bind(seams));
    try {
      member.#address = await member.#transport.bind();
    } catch (e) {
      member.#client.close();
      throw e;
    }
    member.#leadership.on('leading', (fence) => void member.#lead(fence));
    member.#leadership.on('lost', (why) => void member.#stepDown(`leadership lost: ${why}`));
    await member.#leadership.start();
    member.#log.info({ address: member.#address, advertise: options.advertise, prefix: member.#prefix }, 'coordinator group member started');
    return member;
  }

  /** The `host:port` bound. */
  get address(): string {
    return this.#address;
  }

  /** Where this member stands. */
  get state(): GroupMemberState {
    return this.#state;
  }

  /** The leader's advertised address, when known (this member's own while it leads). */
  get leaderAddress(): string | undefined {
    return this.#leadership.leaderAddress;
  }

  /** The coordinator of the current term, while this member leads. */
  get coordinator(): Coordinator | undefined {
    return this.#coordinator;
  }

  /** Calls answered NOT_LEADER so far. */
  get notLeaderAnswers(): number {
    return this.#transport.notLeaderAnswers;
  }

  async #lead(fence: LeaderFence): Promise<void> {
    if (this.#state === 'closed') return;
    const term = ++this.#term;
    this.#state = 'starting';
    const o = this.#options;
    const store = new EtcdDecisionStore({
      client: this.#termClient?.(fence) ?? this.#client,
      prefix: this.#prefix,
      fence,
      clock: this.#clock,
      ...(o.maxOpsPerTxn !== undefined ? { maxOpsPerTxn: o.maxOpsPerTxn } : {}),
      ...(o.etcdCallTimeoutMs !== undefined ? { callTimeoutMs: o.etcdCallTimeoutMs } : {}),
    });
    let coordinator: Coordinator;
    try {
      coordinator = await Coordinator.start({ ...o.coordinator, decisionStore: store, transport: this.#transport, logger: this.#log, clock: this.#clock });
    } catch (e) {
      this.#log.error({ err: e }, 'starting the coordinator of a new term failed');
      if (term === this.#term) await this.#stepDown(`starting the coordinator failed: ${(e as Error).message}`);
      return;
    }
    if (term !== this.#term || (this.#state as GroupMemberState) === 'closed') {
      await coordinator.close();
      return;
    }
    coordinator.on('error', (e) => void this.#stepDown(`the coordinator stopped: ${e.message}`));
    this.#coordinator = coordinator;
    this.#state = 'leading';
    this.#log.info({ epoch: coordinator.epoch }, 'leading the coordinator group');
    this.emit('leading', coordinator.epoch);
  }

  async #stepDown(why: string): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'following') {
      if (this.#state === 'following') await this.#leadership.stepDown(why);
      return;
    }
    this.#term++;
    this.#state = 'following';
    const coordinator = this.#coordinator;
    this.#coordinator = undefined;
    this.#log.warn({ why }, 'stepping down to follower');
    await coordinator?.close();
    await this.#leadership.stepDown(why);
    this.emit('following', why);
  }

  /** Stops: the term's coordinator closes, the lease is revoked, the port unbinds (idempotent). */
  close(): Promise<void> {
    this.#closing ??= this.#doClose();
    return this.#closing;
  }

  async #doClose(): Promise<void> {
    this.#state = 'closed';
    this.#term++;
    const coordinator = this.#coordinator;
    this.#coordinator = undefined;
    await coordinator?.close();
    await this.#leadership.close();
    await this.#transport.shutdown(CLOSE_GRACE_MS);
    this.#client.close();
  }
}

function checkOptions(o: GroupMemberOptions): void {
  const bad = (message: string): never => {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, message);
  };
  if (o.etcd.length === 0) bad('at least one etcd endpoint is needed');
  for (const h of o.etcd) if (!HOST_PORT.test(h)) bad(`etcd endpoint ${JSON.stringify(h)} is not host:port`);
  if (!NODE_ID.test(o.nodeId)) bad(`node id ${JSON.stringify(o.nodeId)} must be 1-64 letters, digits, '.', '_' or '-'`);
  if (!HOST_PORT.test(o.advertise) || o.advertise.endsWith(':0')) bad(`advertised address ${JSON.stringify(o.advertise)} must be host:port with a fixed port`);
  if (o.listen !== undefined && !HOST_PORT.test(o.listen)) bad(`listen address ${JSON.stringify(o.listen)} is not host:port`);
  const ttl = o.leaseTtlS ?? DEFAULT_LEASE_TTL_S;
  if (!Number.isInteger(ttl) || ttl < 1) bad(`the lease TTL must be a whole number of seconds ≥ 1, not ${ttl}`);
  const prefix = o.etcdPrefix ?? DEFAULT_ETCD_PREFIX;
  if (!prefix.startsWith('/') || /[\0\n]/.test(prefix)) bad(`the etcd prefix ${JSON.stringify(prefix)} must start with '/'`);
}
