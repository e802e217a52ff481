// How an SDK connects to the coordinator: reconnect backoff and keepalive pings, shared by the
// participant's session and the initiator's calls, and the grpc-js channel options they become.

/** Default first reconnect delay, in ms. */
export const DEFAULT_RECONNECT_INITIAL_MS = 100;
/** Default longest reconnect delay, in ms. */
export const DEFAULT_RECONNECT_MAX_MS = 5_000;
/** Default interval between keepalive pings, in ms. */
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 10_000;
/** Default time a keepalive ping may go unanswered, in ms. */
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 5_000;
/**
 * Default interval between keepalive pings when the SDK was given a coordinator group (several
 * addresses), in ms. With the group timeout it bounds how long a frozen leader (SIGSTOP, a paused
 * VM: connections open, nothing answered) holds calls and sessions to about one default lease TTL
 * (5 s), instead of the 15 s a single coordinator, which has no other member to move to, waits.
 */
export const DEFAULT_GROUP_KEEPALIVE_INTERVAL_MS = 2_000;
/** Default time a keepalive ping may go unanswered with a coordinator group, in ms. */
export const DEFAULT_GROUP_KEEPALIVE_TIMEOUT_MS = 3_000;
/**
 * Default longest wait for a connection to one member of a coordinator group before the SDK tries
 * the next address, in ms. A frozen process's kernel still accepts TCP connections, so only a
 * bound on the HTTP/2 handshake tells it from a slow one (grpc-js sets none of its own).
 */
export const DEFAULT_GROUP_CONNECT_TIMEOUT_MS = 3_000;

/** Reconnect backoff: doubling from `initialMs` to `maxMs`, jittered. */
export interface ReconnectOptions {
  /** First delay, in ms (default 100). */
  readonly initialMs?: number;
  /**
   * Longest delay, in ms (default 5,000). Keep it short: it bounds how long a client stays away
   * from a coordinator that came back (grpc-js's own default is 120 s).
   */
  readonly maxMs?: number;
  /**
   * With several coordinator addresses only: how long a connection to one of them may take to
   * open (TCP and the HTTP/2 handshake), in ms, before a call or session that has not been sent
   * goes to the next address instead (default 3,000). A member that is frozen, or blackholed,
   * never completes the handshake. Ignored with one address: there is nowhere else to go.
   */
  readonly connectTimeoutMs?: number;
}

/**
 * HTTP/2 keepalive pings: how a dead, paused or blackholed coordinator is noticed. A dropped
 * connection ends the calls in flight on it (a commit with OUTCOME_UNKNOWN) and the session.
 */
export interface KeepaliveOptions {
  /** Interval between pings, in ms (default 10,000; 2,000 with several coordinator addresses). */
  readonly intervalMs?: number;
  /**
   * How long a ping may go unanswered before the connection is dropped, in ms (default 5,000;
   * 3,000 with several coordinator addresses).
   */
  readonly timeoutMs?: number;
}

/** Explains which reconnect or keepalive option is out of range, if one is. */
export function connectionOptionsProblem(options: { readonly reconnect?: ReconnectOptions | undefined; readonly keepalive?: KeepaliveOptions | undefined }): string | undefined {
  const checks: [string, number | undefined][] = [
    ['reconnect.initialMs', options.reconnect?.initialMs],
    ['reconnect.maxMs', options.reconnect?.maxMs],
    ['reconnect.connectTimeoutMs', options.reconnect?.connectTimeoutMs],
    ['keepalive.intervalMs', options.keepalive?.intervalMs],
    ['keepalive.timeoutMs', options.keepalive?.timeoutMs],
  ];
  for (const [name, value] of checks) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) return `${name} must be a positive integer (ms), got ${value}`;
  }
  const { initialMs, maxMs } = options.reconnect ?? {};
  if (initialMs !== undefined && maxMs !== undefined && initialMs > maxMs) return `reconnect.initialMs (${initialMs}) is above reconnect.maxMs (${maxMs})`;
  return undefined;
}

/**
 * The grpc-js channel options for `reconnect` and `keepalive` (defaults filled in: the group ones
 * when `group`, the SDK having been given several coordinator addresses).
 */
export function connectionChannelOptions(reconnect: ReconnectOptions = {}, keepalive: KeepaliveOptions = {}, group = false): Record<string, number> {
  return {
    'grpc.keepalive_time_ms': keepalive.intervalMs ?? (group ? DEFAULT_GROUP_KEEPALIVE_INTERVAL_MS : DEFAULT_KEEPALIVE_INTERVAL_MS),
    'grpc.keepalive_timeout_ms': keepalive.timeoutMs ?? (group ? DEFAULT_GROUP_KEEPALIVE_TIMEOUT_MS : DEFAULT_KEEPALIVE_TIMEOUT_MS),
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.initial_reconnect_backoff_ms': reconnect.initialMs ?? DEFAULT_RECONNECT_INITIAL_MS,
    'grpc.max_reconnect_backoff_ms': reconnect.maxMs ?? DEFAULT_RECONNECT_MAX_MS,
  };
}

/** How long a connection to one member of a group may take before the SDK tries the next, in ms. */
export function connectTimeoutMs(reconnect: ReconnectOptions = {}): number {
  return reconnect.connectTimeoutMs ?? DEFAULT_GROUP_CONNECT_TIMEOUT_MS;
}
