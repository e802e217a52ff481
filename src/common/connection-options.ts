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

/** Reconnect backoff: doubling from `initialMs` to `maxMs`, jittered. */
export interface ReconnectOptions {
  /** First delay, in ms (default 100). */
  readonly initialMs?: number;
  /**
   * Longest delay, in ms (default 5,000). Keep it short: it bounds how long a client stays away
   * from a coordinator that came back (grpc-js's own default is 120 s).
   */
  readonly maxMs?: number;
}

/** HTTP/2 keepalive pings: how a dead, paused or blackholed coordinator is noticed. */
export interface KeepaliveOptions {
  /** Interval between pings, in ms (default 10,000). */
  readonly intervalMs?: number;
  /** How long a ping may go unanswered before the connection is dropped, in ms (default 5,000). */
  readonly timeoutMs?: number;
}

/** Explains which reconnect or keepalive option is out of range, if one is. */
export function connectionOptionsProblem(options: { readonly reconnect?: ReconnectOptions | undefined; readonly keepalive?: KeepaliveOptions | undefined }): string | undefined {
  const checks: [string, number | undefined][] = [
    ['reconnect.initialMs', options.reconnect?.initialMs],
    ['reconnect.maxMs', options.reconnect?.maxMs],
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

/** The grpc-js channel options for `reconnect` and `keepalive` (defaults filled in). */
export function connectionChannelOptions(reconnect: ReconnectOptions = {}, keepalive: KeepaliveOptions = {}): Record<string, number> {
  return {
    'grpc.keepalive_time_ms': keepalive.intervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS,
    'grpc.keepalive_timeout_ms': keepalive.timeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.initial_reconnect_backoff_ms': reconnect.initialMs ?? DEFAULT_RECONNECT_INITIAL_MS,
    'grpc.max_reconnect_backoff_ms': reconnect.maxMs ?? DEFAULT_RECONNECT_MAX_MS,
  };
}
