// Waiting, for a bounded time, until a grpc-js channel to one member of a coordinator group has a
// working connection. grpc-js has no connect timeout: a call to a frozen process (whose kernel
// still accepts TCP connections but whose HTTP/2 handshake never completes) waits for its own
// deadline. Both SDKs ask here first, with a group, and go to the next address on 'timeout'.

import { systemClock } from './clock.js';
import { connectivityState as ConnectivityState, Metadata, status as Status, type Client, type ServiceError } from '@grpc/grpc-js';

/** The channel of a grpc-js client (the interface, not grpc-js's own class of that name). */
export type ClientChannel = ReturnType<Client['getChannel']>;

/**
 * How waiting for a channel ended: `ready` (connected: send), `failed` (the connection attempt
 * failed, or the channel is closed: a call now fails at once, before anything is sent), or
 * `timeout` (still connecting at the deadline: the peer may be frozen or blackholed).
 */
export type ChannelWait = 'ready' | 'failed' | 'timeout';

/**
 * Calls `done` once `channel` is connected, its attempt failed, or `deadlineMs` (Unix ms) passed,
 * starting a connection when it is idle. Synchronous when the channel is already connected.
 */
export function whenChannelReady(channel: ClientChannel, deadlineMs: number, done: (result: ChannelWait) => void): void {
  const step = (): void => {
    let state: ConnectivityState;
    try {
      state = channel.getConnectivityState(true);
    } catch {
      done('failed');
      return;
    }
    if (state === ConnectivityState.READY) return done('ready');
    if (state === ConnectivityState.TRANSIENT_FAILURE || state === ConnectivityState.SHUTDOWN) return done('failed');
    if (systemClock.now() >= deadlineMs) return done('timeout');
    try {
      channel.watchConnectivityState(state, deadlineMs, (error) => (error ? done('timeout') : step()));
    } catch {
      done('failed');
    }
  };
  step();
}

/** Marks the error of a call that was never sent because its connection did not open in time. */
const NEVER_SENT = Symbol('verdict.neverSent');

/**
 * The UNAVAILABLE error of a call or session that was not sent because no connection to
 * `address` opened within `timeoutMs`: like grpc-js's own "No connection established", it
 * provably never reached the coordinator.
 */
export function connectTimeoutError(address: string, timeoutMs: number): ServiceError {
  const details = `No connection established to ${address} within ${timeoutMs} ms (the coordinator may be frozen or unreachable)`;
  return Object.assign(new Error(`${Status.UNAVAILABLE} UNAVAILABLE: ${details}`), { code: Status.UNAVAILABLE, details, metadata: new Metadata(), [NEVER_SENT]: true });
}

/** Whether `e` is a `connectTimeoutError`. */
export function isConnectTimeout(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { [NEVER_SENT]?: boolean })[NEVER_SENT] === true;
}
