// The participant's production transport: grpc-js clients whose session streams keep the
// connection alive with keepalive pings (how a dead or paused coordinator is detected), one per
// coordinator address, and the address sessions open to now (a group's leader, when it has one).
// With a group, a session opens only once its connection does, within `reconnect.connectTimeoutMs`:
// a frozen member never completes the handshake, and the participant then tries the next address.

import { connectivityState as ConnectivityState } from '@grpc/grpc-js';
import { COMMON_CHANNEL_OPTIONS } from '../common/channel-options.js';
import { CoordinatorTargets } from '../common/coordinator-targets.js';
import { clientChannel, type ClientSecurityOptions } from '../common/tls.js';
import type { ClientTransport, SessionClientStream } from '../common/transport.js';
import { ParticipantServiceClient } from '../gen/verdict/v1/participant.js';
import { connectionChannelOptions, connectTimeoutMs, type KeepaliveOptions, type ReconnectOptions } from '../common/connection-options.js';
import { DeferredSession } from './deferred-session.js';

/** Options of the gRPC session transport. */
export interface GrpcSessionTransportOptions extends ClientSecurityOptions {
  /** Keepalive pings (defaults: see `connectionChannelOptions`; shorter with several addresses). */
  readonly keepalive?: KeepaliveOptions;
  /** Reconnect backoff, and with several addresses the connect timeout per address. */
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

  /** The address sessions open to now. */
  get target(): string {
    return this.#targets.current;
  }

  /** Opens a session to the current target. */
  openSession(): SessionClientStream {
    const address = this.#targets.current;
    let client = this.#clients.get(address);
    if (!client) {
      const channel = clientChannel(this.#options);
      client = new ParticipantServiceClient(address, channel.credentials, {
        ...channel.options,
        ...COMMON_CHANNEL_OPTIONS,
        ...connectionChannelOptions(this.#options.reconnect, this.#options.keepalive, this.#targets.group),
      });
      this.#clients.set(address, client);
    }
    const channel = client.getChannel();
    if (!this.#targets.group || channel.getConnectivityState(true) === ConnectivityState.READY) return client.session();
    const grpc = client;
    return new DeferredSession(channel, address, connectTimeoutMs(this.#options.reconnect), () => grpc.session());
  }

  /** Sends the next sessions to `leader`, or to the next address. */
  redirect(leader: string | undefined): void {
    const before = this.#targets.current;
    const now = this.#targets.moveTo(leader);
    // A leader named from outside the configured list is dialled only while it is the target.
    if (before !== now && !this.#targets.configured(before)) {
      this.#clients.get(before)?.close();
      this.#clients.delete(before);
    }
  }

  /** Closes every client. */
  close(): void {
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }
}
