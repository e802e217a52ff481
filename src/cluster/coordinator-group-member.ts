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
//
// Security is the member's, not a term's: its TLS files and tokens are read once at start (the
// TLS files again on `reloadCertificates()`), its port serves them whether it leads or not, and
// each term's coordinator gets them with a fresh capability key (security.ts `renewedSecurity`).

import { EventEmitter } from 'node:events';
import { systemClock, type Clock } from '../common/clock.js';
import { defaultLogger, type Logger } from '../common/logger.js';
import { Coordinator } from '../coordinator/coordinator.js';
import { coordinatorServerOptions, DEFAULT_LISTEN } from '../coordinator/coordinator-options.js';
import { coordinatorSecurity, renewedSecurity, type CoordinatorSecurity } from '../coordinator/security.js';
import { ErrorCode, VerdictError } from '../errors.js';
import type { EtcdClient } from './etcd-client.js';
import { etcdClientOptions, firstLine } from './etcd-connection.js';
import { EtcdDecisionStore, type LeaderFence } from './etcd-decision-store.js';
import { DEFAULT_ETCD_PREFIX, DEFAULT_LEASE_TTL_S, parseEtcdEndpoint, type GroupMemberOptions } from './group-member-options.js';
import type { GroupMemberSeams, MemberTransport } from './group-member-seams.js';
import { LeaderGatedTransport } from './leader-gated-transport.js';
import { EtcdLeadership } from './leadership.js';

/** How long calls get to finish when a member closes, in ms. */
const CLOSE_GRACE_MS = 2_000;
/** Deadline of the one etcd read a member makes at start to check it can use etcd, in ms (default of `etcdCallTimeoutMs`). */
const ETCD_CHECK_TIMEOUT_MS = 5_000;
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
  readonly #security: CoordinatorSecurity;
  #state: GroupMemberState = 'following';
  #coordinator: Coordinator | undefined;
  #term = 0;
  #address = '';
  #closing: Promise<void> | undefined;

  private constructor(
    options: GroupMemberOptions,
    security: CoordinatorSecurity,
    client: EtcdClient & { close(): void },
    transport?: GroupMemberSeams['transport'],
    termClient?: GroupMemberSeams['termClient'],
  ) {
    super();
    this.#termClient = termClient;
    this.#options = options;
    this.#security = security;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? defaultLogger('verdict')).child({ component: 'group-member', nodeId: options.nodeId });
    this.#prefix = prefixOf(options);
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
    this.#transport = transport
      ? transport(gate)
      : new LeaderGatedTransport(options.listen ?? options.advertise, gate, coordinatorServerOptions(options.coordinator), { credentials: security.credentials, authorizer: security.authorizer });
  }

  /**
   * Validates the options, reads the TLS files and tokens (refusing to serve off loopback without
   * TLS and client authentication, unless `insecure`), checks that etcd answers one read with the
   * connection settings given, binds the port and starts campaigning. Fails with INVALID_ARGUMENT,
   * or UNAVAILABLE (etcd refused the connection or did not answer; port in use). `seams` replace
   * the etcd client and the gRPC server (the simulator's).
   */
  static async start(options: GroupMemberOptions, seams?: GroupMemberSeams): Promise<CoordinatorGroupMember> {
    checkOptions(options);
    // Before anything connects: a refused configuration changes nothing. (A transport seam has no
    // address of its own to police, as for a single coordinator.)
    const security = coordinatorSecurity(seams?.transport ? DEFAULT_LISTEN : (options.listen ?? options.advertise), options);
    const client = seams?.client ?? (await CoordinatorGroupMember.#connect(options));
    const member = new CoordinatorGroupMember(options, security, client, seams?.transport, seams?.termClient?.bind(seams));
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

  /**
   * An etcd3 client with the options' endpoints, TLS and credentials, once it has answered one read
   * (of the leader key): a certificate etcd refuses, a wrong password or an unreachable etcd fail
   * the start here, with etcd's reason, rather than leave a member campaigning in vain.
   */
  static async #connect(options: GroupMemberOptions): Promise<EtcdClient & { close(): void }> {
    const settings = etcdClientOptions({
      etcd: options.etcd,
      ...(options.etcdTls ? { tls: options.etcdTls } : {}),
      ...(options.etcdAuth ? { auth: options.etcdAuth } : {}),
      ...(options.insecure ? { insecure: true } : {}),
    });
    // Loaded here, not with the package: the etcd client compiles its protos at import (about 0.5 s).
    const client = new (await import('etcd3')).Etcd3(settings);
    const timeoutMs = options.etcdCallTimeoutMs ?? ETCD_CHECK_TIMEOUT_MS;
    try {
      await client.get(`${prefixOf(options)}leader`).options({ deadline: new Date((options.clock ?? systemClock).now() + timeoutMs) }).buffer();
    } catch (e) {
      client.close();
      throw new VerdictError(ErrorCode.UNAVAILABLE, `cannot use etcd at ${settings.hosts.toString()}: ${firstLine((e as Error).message)}`, { cause: e });
    }
    return client;
  }

  /**
   * Reads the TLS certificate, key and CA files again (SIGHUP in the CLI): new connections to this
   * member get them, leading or not; open ones keep theirs. Throws INVALID_ARGUMENT and keeps the
   * old ones when the files are unusable, or when the member serves no TLS.
   */
  reloadCertificates(): void {
    const certificates = this.#security.certificates;
    if (!certificates) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, 'this member does not serve TLS: there are no certificates to reload');
    certificates.reload();
    this.#log.info({ reloads: certificates.reloads }, 'TLS certificates reloaded');
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
      coordinator = await Coordinator.start({ ...o.coordinator, decisionStore: store, transport: this.#transport, security: renewedSecurity(this.#security), logger: this.#log, clock: this.#clock });
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
  for (const h of o.etcd) if (!parseEtcdEndpoint(h)) bad(`etcd endpoint ${JSON.stringify(h)} is not host:port, http://host:port or https://host:port`);
  if (!NODE_ID.test(o.nodeId)) bad(`node id ${JSON.stringify(o.nodeId)} must be 1-64 letters, digits, '.', '_' or '-'`);
  if (!HOST_PORT.test(o.advertise) || o.advertise.endsWith(':0')) bad(`advertised address ${JSON.stringify(o.advertise)} must be host:port with a fixed port`);
  if (o.listen !== undefined && !HOST_PORT.test(o.listen)) bad(`listen address ${JSON.stringify(o.listen)} is not host:port`);
  const ttl = o.leaseTtlS ?? DEFAULT_LEASE_TTL_S;
  if (!Number.isInteger(ttl) || ttl < 1) bad(`the lease TTL must be a whole number of seconds ≥ 1, not ${ttl}`);
  const prefix = o.etcdPrefix ?? DEFAULT_ETCD_PREFIX;
  if (!prefix.startsWith('/') || /[\0\n]/.test(prefix)) bad(`the etcd prefix ${JSON.stringify(prefix)} must start with '/'`);
}

/** The group's etcd prefix, with its trailing `/`. */
function prefixOf(o: GroupMemberOptions): string {
  const prefix = o.etcdPrefix ?? DEFAULT_ETCD_PREFIX;
  return prefix.endsWith('/') ? prefix : `${prefix}/`;
}
