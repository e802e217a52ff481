// What a coordinator group member is built over, when not the production etcd3 client and gRPC
// server: the simulator passes its simulated etcd and its in-memory network here, so that the
// member that ships (its terms, its gate, its stepping down) is the member that is tested.

import type { ServerTransport } from '../common/transport.js';
import type { EtcdClient } from './etcd-client.js';
import type { LeaderFence } from './etcd-decision-store.js';
import type { LeaderGate } from './leader-gated-transport.js';

/** The server a member serves its terms through: bound for the member's life, gated on its leadership. */
export interface MemberTransport extends ServerTransport {
  /** Binds (before any election: followers answer NOT_LEADER); resolves to `host:port`. */
  bind(): Promise<string>;
  /** Unbinds: calls get up to `graceMs` to finish, then are cut. */
  shutdown(graceMs: number): Promise<void>;
  /** Calls answered NOT_LEADER so far. */
  readonly notLeaderAnswers: number;
}

/** The seams of `CoordinatorGroupMember.start`; production leaves them out. */
export interface GroupMemberSeams {
  /** The etcd client (default: an `Etcd3` over `options.etcd`); the member closes it. */
  readonly client: EtcdClient & { close(): void };
  /** Makes the member's server around its gate (default: a gRPC `LeaderGatedTransport`). */
  transport(gate: LeaderGate): MemberTransport;
  /**
   * The etcd client the decision store of the term that `fence` begins writes through (default:
   * `client`). The simulator hands each term a client of its own, so that its fencing check knows
   * which term sent a write, even one sent after the same member was elected again.
   */
  termClient?(fence: LeaderFence): EtcdClient;
}
