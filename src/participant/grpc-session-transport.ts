// The participant's production transport: grpc-js clients whose session streams keep the
// connection alive with keepalive pings (how a dead or paused coordinator is detected), one per
// coordinator address, and the address sessions open to now (a group's leader, when it has one).

import { COMMON_CHANNEL_OPTIONS } from '../common/channel-options.js';
import { CoordinatorTargets } from '../common/coordinator-targets.js';
import { clientChannel, type ClientSecurityOptions } from '../common/tls.js';
import type { ClientTransport, SessionClientStream } from '../common/transport.js';
import { ParticipantServiceClient } from '../gen/verdict/v1/participant.js';
import { connectionChannelOptions, type KeepaliveOptions, type ReconnectOptions } from '../common/connection-options.js';

/** Options of the gRPC session transport. */
export interface GrpcSessionTransportOptions extends ClientSecurityOptions {
  readonly keepalive?: KeepaliveOptions;
  readonly reconnect?: ReconnectOptions;
}

/** Sessions to the coordinator at one of `addresses` (`host:port`) over gRPC. */
export class GrpcSessionTransport implements ClientTransport {
  readonly #targets: CoordinatorTargets;
  readonly #clients = new Map<string, ParticipantServiceClient>();
  readonly #options: GrpcSessionTransportOptions;

  constructor(addresses: readonly string[], options: GrpcSessionTransportOptions = {}) {
    this.#targets = new CoordinatorTargets(addresses);
    this.#options = options;
  }

  get target(): string {
    return this.#targets.current;
  }

  openSession(): SessionClientStream {
    const address = this.#targets.current;
    let client = this.#clients.get(address);
    if (!client) {
      const channel = clientChannel(this.#options);
      client = new ParticipantServiceClient(address, channel.credentials, {
        ...channel.options,
        ...COMMON_CHANNEL_OPTIONS,
        ...connectionChannelOptions(this.#options.reconnect, this.#options.keepalive),
      });
      this.#clients.set(address, client);
    }
    return client.session();
  }

  redirect(leader: string | undefined): void {
    const before = this.#targets.current;
    const now = this.#targets.moveTo(leader);
    // A leader named from outside the configured list is dialled only while it is the target.
    if (before !== now && !this.#targets.configured(before)) {
      this.#clients.get(before)?.close();
      this.#clients.delete(before);
    }
  }

  close(): void {
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }
}
