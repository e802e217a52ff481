// Options and hook types of the participant SDK.

import type { ClientSecurityOptions } from '../common/tls.js';
import {
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
  DEFAULT_RECONNECT_INITIAL_MS,
  DEFAULT_RECONNECT_MAX_MS,
  type KeepaliveOptions,
  type ReconnectOptions,
} from '../common/connection-options.js';
import type { Clock } from '../common/clock.js';
import type { LogStorage } from '../common/level-errors.js';
import type { Logger } from '../common/logger.js';
import type { ClientTransport } from '../common/transport.js';
import type { ParticipantEffect, ParticipantInput } from '../protocol/participant-events.js';
import type { ParticipantMachineConfig } from '../protocol/participant-machine.js';
import type { Vote } from '../protocol/types.js';
import type { LockMode } from './lock-manager.js';

/** First reconnect delay, in ms. */
export const RECONNECT_INITIAL_MS = DEFAULT_RECONNECT_INITIAL_MS;
/** Longest reconnect delay, in ms. */
export const RECONNECT_MAX_MS = DEFAULT_RECONNECT_MAX_MS;
/** How long `enlist` waits for the coordinator's answer, in ms. */
export const ENLIST_TIMEOUT_MS = 10_000;
/** How long records of finished transactions are kept, in ms (default 24 h). */
export const DEFAULT_PARTICIPANT_RETENTION_MS = 24 * 60 * 60 * 1000;
/** How often expired records are dropped, in ms. */
export const PARTICIPANT_GC_INTERVAL_MS = 60_000;
/** Keepalive ping interval on the session, in ms. */
export const SESSION_KEEPALIVE_MS = DEFAULT_KEEPALIVE_INTERVAL_MS;
/** Keepalive ping timeout on the session, in ms. */
export const SESSION_KEEPALIVE_TIMEOUT_MS = DEFAULT_KEEPALIVE_TIMEOUT_MS;
export type { KeepaliveOptions, ReconnectOptions } from '../common/connection-options.js';

/** Options of `Participant.ready`. */
export interface ReadyOptions {
  /**
   * Rejects with UNAVAILABLE when no session is up within this many ms (default: waits as long as
   * it takes). A refusal rejects at once whatever the timeout: ALREADY_CONNECTED when another
   * session holds the name, UNAUTHENTICATED or PERMISSION_DENIED when the identity is refused,
   * LIMIT_EXCEEDED when the coordinator is at a limit. The participant keeps trying either way.
   */
  readonly timeoutMs?: number;
}

/** The largest frame the participant sends: the coordinator's default receive limit, in bytes. */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;

/**
 * Writes a hook stages into the participant's application store. They are written atomically
 * with the participant's own log record for the transaction (PREPARED for `prepare`, the outcome
 * for `commit` and `abort`), so a crash never leaves one without the other: a commit hook whose
 * writes go through here takes effect exactly once, even if it runs again after a crash.
 */
export interface StagedWrites {
  /** Stages a put of a JSON-serialisable value. */
  put(key: string, value: unknown): void;
  /** Stages a delete. */
  del(key: string): void;
}

/** What every hook receives. */
export interface HookContext {
  /** Aborted at the prepare deadline (prepare) or when the participant closes. */
  readonly signal: AbortSignal;
  /** Absolute deadline in ms (prepare: the vote's deadline; commit/abort: none, `Infinity`). */
  readonly deadline: number;
  /** Writes to apply atomically with this step's log record. */
  readonly batch: StagedWrites;
  /**
   * Reads `key` as this transaction sees it: its own staged write (`batch`) when it staged one,
   * else the committed value in the store (undefined when absent). In `commit` and `abort` that
   * includes what `prepare` staged. Reading a key is safe only under a lock this transaction
   * took on it in `prepare`: the value then cannot change until the outcome is applied.
   */
  get(key: string): Promise<unknown>;
}

/** Context of the prepare hook. */
export interface PrepareContext extends HookContext {
  /** True when this participant is the only branch: a YES commits at once (commit runs next). */
  readonly onePhase: boolean;
  /**
   * Locks `key` for this transaction (`exclusive` by default) until its outcome is applied:
   * released once the commit or abort batch is written, kept with the PREPARED record and taken
   * again at start-up while the transaction is in doubt. When another transaction holds the key
   * in a conflicting mode, it waits only if every such holder's outcome is already decided here
   * and being applied (bounded by this prepare's deadline); otherwise it does not wait. Either
   * way a lock not granted rejects with a LockConflictError (code LOCK_CONFLICT) and the vote is
   * NO with reason `lock conflict`, whatever the hook returns afterwards. Take the locks before
   * reading the keys they guard. Callable only while the hook runs.
   */
  lock(key: string, mode?: LockMode): Promise<void>;
}

/** A prepare hook's answer: a vote, or a NO with its reason. */
export type PrepareResult = Vote | { readonly vote: Vote; readonly reason?: string };

/**
 * The application's hooks. After `prepare` votes YES, exactly one of `commit` or `abort` follows
 * (possibly after a restart). After a NO (or a throw, which is a NO), `abort` follows. After
 * READ_ONLY, neither. `commit` and `abort` are retried until they return without throwing.
 * Hooks of different transactions run concurrently; `commit` and `abort` run with the locks
 * `prepare` took still held (see "Writing hooks" in the README).
 */
export interface ParticipantHooks {
  /** Takes the locks, checks, stages the prepared state, and votes. A throw is a NO vote. */
  prepare(txId: string, payload: Uint8Array, ctx: PrepareContext): PrepareResult | Promise<PrepareResult>;
  /** Applies a committed transaction (its locks still held); retried until it returns. */
  commit(txId: string, ctx: HookContext): void | Promise<void>;
  /** Undoes what prepare staged (its locks still held); retried until it returns. */
  abort(txId: string, ctx: HookContext): void | Promise<void>;
}

/** What a participant needs to enlist: the transaction's id and the capability `begin()` returned for it. */
export interface EnlistInvitation {
  readonly txId: string;
  readonly capability: string;
}

/** Options of `Participant.start`. */
export interface ParticipantOptions extends ClientSecurityOptions {
  /** This participant's name (lowercase letters, digits, '.', '_', '-'; at most 64). */
  readonly name: string;
  /**
   * The coordinator's `host:port`, or the addresses of a coordinator group's members. With a
   * group, the session goes to the leader: a member that does not lead answers NOT_LEADER (naming
   * the leader when it knows it) and the participant moves there; an address that cannot be
   * reached is left for the next one. Moves wait the reconnect backoff: never a busy loop.
   */
  readonly coordinator: string | readonly string[];
  /** Reconnect backoff (default 100 ms doubling to 5 s, jittered). */
  readonly reconnect?: ReconnectOptions;
  /** Keepalive pings on the session (default every 10 s, 5 s to answer). */
  readonly keepalive?: KeepaliveOptions;
  /** How long `enlist` waits for the coordinator's answer, in ms (default 10,000). */
  readonly enlistTimeoutMs?: number;
  /**
   * Whether the participant keeps its process alive until `close()` (default true), like a
   * server does: a process that runs only a participant stays up while it reconnects to a
   * coordinator that is down. False: it never holds the process by itself (its timers are
   * unref'd), so a process whose other work is done may exit while the participant reconnects.
   */
  readonly keepProcessAlive?: boolean;
  /** Directory of the participant's own log and application store. */
  readonly dataDir: string;
  /** The application's prepare / commit / abort hooks. */
  readonly hooks: ParticipantHooks;
  /** Protocol tunables (inquiry interval, hook retry delays). */
  readonly protocol?: Partial<ParticipantMachineConfig>;
  /**
   * How long records of finished transactions are kept, in ms (default 24 h): they answer
   * repeated messages and the coordinator's questions about one-phase commits. Keep it longer
   * than any coordinator outage you plan for.
   */
  readonly retentionMs?: number;
  /** Group commit of forced writes (default on). */
  readonly groupCommit?: boolean;
  /**
   * Votes and acks queued in one event-loop turn leave as one stream frame (default on); off
   * writes every message as its own frame. Off is only for measuring what batching buys.
   */
  readonly frameBatching?: boolean;
  /** The largest session frame to send, in bytes (keep it under the coordinator's message limit). */
  readonly maxFrameBytes?: number;
  /** Logger; defaults to pino at VERDICT_LOG_LEVEL (warn). */
  readonly logger?: Logger;
  /** The clock seam (time, timers, deferral, jitter). Default: the system clock. */
  readonly clock?: Clock;
  /** The storage seam: where the log and store live. Default: LevelDB in `dataDir`. */
  readonly storage?: LogStorage;
  /** The transport seam: how sessions reach the coordinator. Default: gRPC to `coordinator` (with `tls` and `token`). */
  readonly transport?: ClientTransport;
  /** Sees every protocol step (diagnostics, tracing, the simulator's checker); must not throw. */
  readonly observer?: ParticipantObserver;
}

/** A watcher of a participant's protocol steps. It observes; it never changes what happens. */
export interface ParticipantObserver {
  /** One step: the input (undefined for recovery) and the effects the machine asked for. */
  step?(input: ParticipantInput | undefined, effects: readonly ParticipantEffect[]): void;
}
