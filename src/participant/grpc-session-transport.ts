// The participant's production transport: a grpc-js client whose session streams keep the
// connection alive with keepalive pings (how a dead or paused coordinator is detected).

import { COMMON_CHANNEL_OPTIONS } from '../common/channel-options.js';
import { clientChannel, type ClientSecurityOptions } from '../common/tls.js';
import type { ClientTransport, SessionClientStream } from '../common/transport.js';
import { ParticipantServiceClient } from '../gen/verdict/v1/participant.js';
import { RECONNECT_INITIAL_MS, RECONNECT_MAX_MS, SESSION_KEEPALIVE_MS, SESSION_KEEPALIVE_TIMEOUT_MS } from './participant-options.js';

/** Sessions to the coordinator at `address` (`host:port`) over gRPC. */
export class GrpcSessionTransport implements ClientTransport {
  readonly #client: ParticipantServiceClient;

  constructor(address: string, security: ClientSecurityOptions = {}) {
    const channel = clientChannel(security);
    this.#client = new ParticipantServiceClient(address, channel.credentials, {
      ...channel.options,
      ...COMMON_CHANNEL_OPTIONS,
      'grpc.keepalive_time_ms': SESSION_KEEPALIVE_MS,
      'grpc.keepalive_timeout_ms': SESSION_KEEPALIVE_TIMEOUT_MS,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': RECONNECT_INITIAL_MS,
      'grpc.max_reconnect_backoff_ms': RECONNECT_MAX_MS,
    });
  }

  openSession(): SessionClientStream {
    return this.#client.session();
  }

  close(): void {
    this.#client.close();
  }
}
