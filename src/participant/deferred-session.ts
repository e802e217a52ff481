// A participant session whose gRPC stream opens only once the channel to its coordinator group
// member is connected, within a bound. A frozen member's kernel accepts the TCP connection and
// its HTTP/2 handshake never completes: without the bound the session would wait until the
// member runs again. Past it the session fails UNAVAILABLE as a never-sent call does, and the
// participant moves to the next address exactly as when an address cannot be reached.

import { EventEmitter } from 'node:events';
import { systemClock } from '../common/clock.js';
import { connectTimeoutError, whenChannelReady, type ClientChannel } from '../common/channel-ready.js';
import type { SessionClientStream } from '../common/transport.js';
import type { SessionRequest } from '../gen/verdict/v1/participant.js';

/** The events a session stream forwards from the gRPC stream it wraps. */
const FORWARDED = ['data', 'end', 'close', 'cancelled', 'error'] as const;

/**
 * A session stream that opens `open()` once `channel` is connected; writes made before wait with
 * it. When the channel is still connecting after `timeoutMs`, it emits the UNAVAILABLE error of
 * `connectTimeoutError` and opens nothing.
 */
export class DeferredSession extends EventEmitter implements SessionClientStream {
  #call: SessionClientStream | undefined;
  #pending: SessionRequest[] = [];
  #cancelled = false;

  constructor(channel: ClientChannel, address: string, timeoutMs: number, open: () => SessionClientStream) {
    super();
    whenChannelReady(channel, systemClock.now() + timeoutMs, (result) => {
      if (this.#cancelled) return;
      if (result === 'timeout') {
        this.#pending = [];
        this.emit('error', connectTimeoutError(address, timeoutMs));
        return;
      }
      // 'failed' opens too: grpc-js then fails the stream at once as never sent, as without a wait.
      const call = open();
      this.#call = call;
      for (const event of FORWARDED) call.on(event as 'data', (arg?: unknown) => this.emit(event, arg));
      for (const m of this.#pending) call.write(m);
      this.#pending = [];
    });
  }

  /** Sends `message` now, or once the stream opens. */
  write(message: SessionRequest): boolean {
    if (this.#call) return this.#call.write(message) !== false;
    if (!this.#cancelled) this.#pending.push(message);
    return true;
  }

  /** Drops the stream, or the wait for it. */
  cancel(): void {
    this.#cancelled = true;
    this.#pending = [];
    this.#call?.cancel();
  }
}
