// Options of the coordinator process.

import { COMMON_CHANNEL_OPTIONS } from '../common/channel-options.js';
import type { Clock } from '../common/clock.js';
import type { DecisionStore } from './decision-store.js';
import type { LogStorage } from '../common/level-errors.js';
import type { Logger } from '../common/logger.js';
import type { ServerTransport } from '../common/transport.js';
import type { CoordinatorEffect, CoordinatorInput, CoordinatorRecord, TxState } from '../protocol/coordinator-events.js';
import type { CoordinatorMachineConfig } from '../protocol/coordinator-machine.js';
import type { CoordinatorSecurity } from './security.js';
import type { CoordinatorSecurityOptions } from './security-options.js';

/** Default listen address. */
export const DEFAULT_LISTEN = '127.0.0.1:7070';
/** Default data directory. */
export const DEFAULT_COORDINATOR_DATA_DIR = './data/coordinator';
/** Longest a unary call may wait for an outcome before it answers "outcome unknown", in ms. */
export const DEFAULT_MAX_CALL_MS = 120_000;
/** Largest gRPC message accepted, in bytes (branch payloads are limited separately). */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Interval of keepalive pings on participant sessions, in ms: how dead peers are detected. */
export const DEFAULT_KEEPALIVE_MS = 10_000;
/** How long a keepalive ping may go unanswered before the session is dropped, in ms. */
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 5_000;
/**
 * The shortest interval between client keepalive pings the server tolerates, in ms. The SDKs ping
 * every 2 s when given a coordinator group, and may be tuned below that; a gRPC server that polices
 * pings (C-core by default: 5 minutes without calls) answers a faster client GOAWAY too_many_pings.
 */
export const MIN_CLIENT_PING_INTERVAL_MS = 500;
/** How long END summaries of finished transactions are kept for status queries, in ms. */
export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;
/** How often expired summaries are garbage-collected, in ms. */
export const DEFAULT_GC_INTERVAL_MS = 60_000;
/** The most summaries dropped in one garbage-collection batch. */
export const GC_BATCH_SIZE = 10_000;
/** Default of `limits.maxPendingPerClient`: unanswered unary calls one client connection may have. */
export const DEFAULT_MAX_PENDING_PER_CLIENT = 10_000;
/** Default of `limits.maxLivePerClient`: transactions one client connection may have begun and not finished. */
export const DEFAULT_MAX_LIVE_PER_CLIENT = 10_000;
/** Default of `limits.maxSessions`: live participant sessions. */
export const DEFAULT_MAX_SESSIONS = 1_000;
/**
 * Default of `limits.maxParticipantNames`: distinct participant names that had a session with one
 * coordinator incarnation.
 */
export const DEFAULT_MAX_PARTICIPANT_NAMES = 10_000;
/** Default of `limits.maxLookupsPerSession`: log reads one session's votes and inquiries may have in flight. */
export const DEFAULT_MAX_LOOKUPS_PER_SESSION = 1_000;

/**
 * What one client or participant may hold, so that none can take the coordinator from the others.
 * Each refusal is RESOURCE_EXHAUSTED with `verdict-code: LIMIT_EXCEEDED` (an extra lookup is
 * dropped instead: the participant asks again) and a log line.
 */
export interface CoordinatorLimits {
  /** Unanswered unary calls per client connection. */
  readonly maxPendingPerClient?: number;
  /** Transactions begun (Begin) and not yet finished, per client connection. */
  readonly maxLivePerClient?: number;
  /** Live participant sessions (each with a distinct participant name). */
  readonly maxSessions?: number;
  /**
   * Distinct participant names that had a session with this coordinator incarnation. They are
   * remembered until a restart (so that a branch naming a participant that is briefly away waits
   * for it, while a typo aborts after the unregistered grace); a hello under a new name beyond
   * the limit is refused. Names already known reconnect freely.
   */
  readonly maxParticipantNames?: number;
  /** Log reads in flight for one participant session's votes and inquiries. */
  readonly maxLookupsPerSession?: number;
}

/** How long `close()` lets calls finish before cutting them, in ms. */
export const DEFAULT_CLOSE_GRACE_MS = 2_000;

/** The gRPC server options of a coordinator started with `options` (shared with the benchmark's echo). */
export function coordinatorServerOptions(options: Pick<CoordinatorOptions, 'maxMessageBytes' | 'keepaliveMs' | 'keepaliveTimeoutMs'> = {}): Record<string, number> {
  const maxMessage = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  return {
    ...COMMON_CHANNEL_OPTIONS,
    'grpc.max_receive_message_length': maxMessage,
    'grpc.max_send_message_length': maxMessage,
    'grpc.keepalive_time_ms': options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS,
    'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS,
    // Clients' pings are how they notice a frozen coordinator: permit them, with or without calls.
    // grpc-js 1.14 servers do not police pings at all; these keep that true on a server that does.
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': MIN_CLIENT_PING_INTERVAL_MS,
    'grpc.http2.max_ping_strikes': 0,
    'grpc.max_concurrent_streams': 1_000,
  };
}

/** Options of `Coordinator.start`. */
export interface CoordinatorOptions extends CoordinatorSecurityOptions {
  /** `host:port` to listen on; port 0 picks a free one. Default `127.0.0.1:7070`. */
  readonly listen?: string;
  /** Directory of the decision log. Default `./data/coordinator`. */
  readonly dataDir?: string;
  /** Protocol tunables (timeouts, limits, retry delays); the epoch is managed by the log. */
  readonly protocol?: Partial<Omit<CoordinatorMachineConfig, 'epoch'>>;
  /** Longest a unary call waits for an outcome, in ms. */
  readonly maxCallMs?: number;
  /** Largest gRPC message accepted, in bytes. */
  readonly maxMessageBytes?: number;
  /** Keepalive ping interval on sessions, in ms. */
  readonly keepaliveMs?: number;
  /** Keepalive ping timeout, in ms. */
  readonly keepaliveTimeoutMs?: number;
  /**
   * How long a finished transaction's summary is kept, in ms (default 24 h). After it, status
   * queries answer FORGOTTEN for it. Recovery never depends on summaries: only on open decisions.
   */
  readonly retentionMs?: number;
  /** How often expired summaries are dropped, in ms (default 60 s). */
  readonly gcIntervalMs?: number;
  /** Group commit of forced writes (default on); off writes every record on its own. */
  readonly groupCommit?: boolean;
  /**
   * Messages queued for a participant in one event-loop turn leave as one stream frame (default
   * on); off writes every message as its own frame. Off is only for measuring what batching buys.
   */
  readonly frameBatching?: boolean;
  /** Logger; defaults to pino at VERDICT_LOG_LEVEL (warn). */
  readonly logger?: Logger;
  /** The clock seam (time, timers, deferral, jitter). Default: the system clock. */
  readonly clock?: Clock;
  /** The storage seam: where the decision log lives. Default: LevelDB in `dataDir`. */
  readonly storage?: LogStorage;
  /**
   * The decision store under the log, instead of `storage`/`dataDir`: a store shared by a group of
   * coordinators (see `CoordinatorGroupMember`), or a simulated one. The coordinator closes it.
   */
  readonly decisionStore?: DecisionStore;
  /** The transport seam: how the coordinator is reached. Default: a gRPC server on `listen`. */
  readonly transport?: ServerTransport;
  /**
   * Security already built (see `coordinatorSecurity`) and shared with `transport`, instead of
   * `tls`, `tokensFile` and `insecure`: a coordinator group member builds it once for its port, so
   * that its terms authenticate exactly as its server does and a reload reaches both.
   */
  readonly security?: CoordinatorSecurity;
  /** Sees every protocol step (diagnostics, tracing, the simulator's checker); must not throw. */
  readonly observer?: CoordinatorObserver;
  /**
   * Per-client and per-session limits (defaults in `DEFAULT_MAX_*`). The global ones are protocol
   * tunables: `protocol.maxLiveTransactions`, `protocol.maxPayloadBytesInMemory`.
   */
  readonly limits?: CoordinatorLimits;
}

/** A watcher of the coordinator's protocol steps. It observes; it never changes what happens. */
export interface CoordinatorObserver {
  /** Recovery read `open` from the log and resumed `live`. */
  recovered?(open: readonly CoordinatorRecord[], live: readonly string[]): void;
  /** One step: the input (undefined for recovery), the effects asked for, the tx's state before it. */
  step?(input: CoordinatorInput | undefined, effects: readonly CoordinatorEffect[], before: TxState | undefined): void;
  /**
   * One step without the state before it (cheaper than `step`: no view is built). Metrics use it.
   * Not called for recovery's effects.
   */
  effects?(input: CoordinatorInput, effects: readonly CoordinatorEffect[]): void;
}
