// A participant whose branches are PostgreSQL transactions. The prepare hook runs the user's SQL
// in a transaction of its own on a pool connection, adds a commit marker and ends it with
// PREPARE TRANSACTION; the outcome is COMMIT PREPARED or ROLLBACK PREPARED. Built on the
// participant SDK: the SDK's log records the vote, the coordinator decides, PostgreSQL holds the
// prepared work and its locks (see "PostgreSQL participants" in README.md).

import pg from 'pg';
import { failpoint } from '../common/failpoints.js';
import { defaultLogger, type Logger } from '../common/logger.js';
import { Participant, type InDoubtTransaction } from '../participant/participant.js';
import type { EnlistInvitation, HookContext, PrepareContext, PrepareResult } from '../participant/participant-options.js';
import { Outcome } from '../protocol/types.js';
import { formatGid, gidPrefix, txIdOfGid } from './gid.js';
import { isDatabaseError, PostgresErrorCode, PostgresParticipantError, SQLSTATE_UNDEFINED_OBJECT } from './postgres-errors.js';
import {
  DEFAULT_CLUSTER_ID,
  DEFAULT_MARKER_TABLE,
  DEFAULT_POOL_SIZE,
  FINISH_RETRY_INITIAL_MS,
  FINISH_RETRY_MAX_MS,
  IsolationLevel,
  type PostgresParticipantOptions,
  type PostgresPrepare,
  type PostgresTransaction,
} from './postgres-participant-options.js';
import { checkServer, markerTableProblem } from './server-requirements.js';

/** Keys of the application store under which one-phase commits wait for their COMMIT PREPARED. */
const ONE_PHASE_KEY_PREFIX = 'verdict-postgres/commit-pending/';
const ISOLATION_LEVELS: ReadonlySet<string> = new Set(Object.values(IsolationLevel));

/** What recovery found at start-up. */
export interface PostgresRecoveryReport {
  /** Prepared transactions of ours without a PREPARED record in the SDK's log: rolled back. */
  readonly rolledBack: readonly string[];
  /** One-phase commits decided before the crash whose COMMIT PREPARED had not run: committed. */
  readonly committed: readonly string[];
  /** Prepared transactions held in doubt: the SDK asks the coordinator for their outcome. */
  readonly inDoubt: readonly string[];
}

/**
 * A participant whose branches run in PostgreSQL.
 *
 * ```ts
 * const accounts = await PostgresParticipant.start({
 *   name: 'accounts',
 *   coordinator: '127.0.0.1:7070',
 *   dataDir: './data/accounts',
 *   connection: { host: '127.0.0.1', port: 5432, database: 'bank', user: 'bank' },
 *   async prepare(sql, txId, payload) {
 *     const { account, delta } = JSON.parse(Buffer.from(payload).toString());
 *     await sql.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [delta, account]);
 *   },
 * });
 * ```
 */
export class PostgresParticipant {
  readonly #participant: Participant;
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #userPrepare: PostgresPrepare;
  readonly #prefix: string;
  readonly #markerTable: string;
  readonly #isolation: IsolationLevel;
  readonly #log: Logger;
  /** Opened once start-up recovery is done: no hook touches PostgreSQL before. */
  readonly #recovered: Promise<void>;
  #recoveryReport: PostgresRecoveryReport = { rolledBack: [], committed: [], inDoubt: [] };
  /** Transactions prepared here in one phase, waiting for their commit hook. */
  readonly #onePhase = new Set<string>();
  #markerDeletes: string[] = [];
  #markerFlush: Promise<void> | undefined;
  readonly #background = new Set<Promise<unknown>>();
  readonly #retryTimers = new Set<NodeJS.Timeout>();
  #closing: Promise<void> | undefined;

  private constructor(
    options: PostgresParticipantOptions,
    init: { pool: pg.Pool; ownsPool: boolean; prefix: string; markerTable: string; log: Logger; recovered: Promise<void>; participant: Participant },
  ) {
    this.#participant = init.participant;
    this.#pool = init.pool;
    this.#ownsPool = init.ownsPool;
    this.#userPrepare = options.prepare;
    this.#prefix = init.prefix;
    this.#markerTable = init.markerTable;
    this.#isolation = options.isolationLevel ?? IsolationLevel.READ_COMMITTED;
    this.#log = init.log;
    this.#recovered = init.recovered;
  }

  /**
   * Checks the server, starts the participant SDK and recovers: every prepared transaction of
   * this participant without a PREPARED record in the SDK's log is rolled back (it never voted
   * YES), one-phase commits decided before a crash are finished, and the rest are left in doubt
   * for the SDK to resolve with the coordinator. Hooks wait until recovery is done.
   */
  static async start(options: PostgresParticipantOptions): Promise<PostgresParticipant> {
    if ((options.pool === undefined) === (options.connection === undefined)) {
      throw new PostgresParticipantError(PostgresErrorCode.INVALID_ARGUMENT, 'give exactly one of `pool` and `connection`', { participant: options.name });
    }
    const prefix = gidPrefix(options.cluster ?? DEFAULT_CLUSTER_ID, options.name);
    const markerTable = options.markerTable ?? DEFAULT_MARKER_TABLE;
    const tableProblem = markerTableProblem(markerTable);
    if (tableProblem) throw new PostgresParticipantError(PostgresErrorCode.INVALID_ARGUMENT, tableProblem, { participant: options.name });
    if (options.isolationLevel !== undefined && !ISOLATION_LEVELS.has(options.isolationLevel)) {
      throw new PostgresParticipantError(PostgresErrorCode.INVALID_ARGUMENT, `isolation level ${JSON.stringify(options.isolationLevel)} is not one of ${[...ISOLATION_LEVELS].join(', ')}`);
    }
    const log = (options.logger ?? defaultLogger('verdict')).child({ component: 'postgres-participant', participant: options.name });
    const ownsPool = options.pool === undefined;
    const pool = options.pool ?? new pg.Pool({ max: DEFAULT_POOL_SIZE, ...options.connection });
    // An idle connection of our own pool that the server drops (a restart) must not crash the process.
    if (ownsPool) pool.on('error', (e) => log.warn({ err: e }, 'an idle PostgreSQL connection failed'));
    let participant: Participant | undefined;
    try {
      const facts = await checkServer(pool, markerTable, options.name);
      log.debug({ ...facts }, 'PostgreSQL server checked');
      let openGate!: () => void;
      let failGate!: (e: unknown) => void;
      const recovered = new Promise<void>((resolve, reject) => {
        openGate = resolve;
        failGate = reject;
      });
      recovered.catch(() => undefined);
      const box: { self?: PostgresParticipant } = {};
      const self = (): PostgresParticipant => box.self!;
      participant = await Participant.start({
        name: options.name,
        coordinator: options.coordinator,
        dataDir: options.dataDir,
        ...(options.protocol ? { protocol: options.protocol } : {}),
        ...(options.retentionMs !== undefined ? { retentionMs: options.retentionMs } : {}),
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.tls ? { tls: options.tls } : {}),
        ...(options.token !== undefined ? { token: options.token } : {}),
        hooks: {
          prepare: (txId, payload, ctx) => self().#prepare(txId, payload, ctx),
          commit: (txId, ctx) => self().#commit(txId, ctx),
          abort: (txId, ctx) => self().#abort(txId, ctx),
        },
      });
      // Read at once, before any session frame can be handled: exactly the PREPARED records of the log.
      const inDoubt = new Set(participant.inDoubt().map((t) => t.txId));
      const instance = new PostgresParticipant(options, { pool, ownsPool, prefix, markerTable, log, recovered, participant });
      box.self = instance;
      participant.on('finished', (txId, outcome) => instance.#onFinished(txId, outcome));
      try {
        instance.#recoveryReport = await instance.#recover(inDoubt);
        openGate();
      } catch (e) {
        failGate(e);
        throw e;
      }
      return instance;
    } catch (e) {
      await participant?.close();
      if (ownsPool) await pool.end().catch(() => undefined);
      throw e;
    }
  }

  /** This participant's name. */
  get name(): string {
    return this.#participant.name;
  }

  /** The underlying participant SDK (events, state, log counters). */
  get participant(): Participant {
    return this.#participant;
  }

  /** The pool the branches run on. */
  get pool(): pg.Pool {
    return this.#pool;
  }

  /** What start-up recovery did. */
  get recovery(): PostgresRecoveryReport {
    return this.#recoveryReport;
  }

  /** The prefix of every gid of this participant (`verdict1:<cluster>:<name>:`). */
  get gidPrefix(): string {
    return this.#prefix;
  }

  /** The gid a transaction is prepared under. */
  gidOf(txId: string): string {
    return formatGid(this.#prefix, txId);
  }

  /** Resolves when the session to the coordinator is up. */
  ready(): Promise<void> {
    return this.#participant.ready();
  }

  /** Joins a transaction begun with `begin()` (pass what it returned: id and capability); `payload` is handed to `prepare`. */
  enlist(invitation: EnlistInvitation, payload?: Uint8Array): Promise<void> {
    return this.#participant.enlist(invitation, payload);
  }

  /** Transactions prepared here whose outcome is not known yet (their rows stay locked). */
  inDoubt(): InDoubtTransaction[] {
    return this.#participant.inDoubt();
  }

  /**
   * Closes the session and the SDK's log, waits for PostgreSQL work in progress, and ends the
   * pool if the participant created it. Prepared transactions stay prepared; the next start
   * finishes them. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#doClose();
    return this.#closing;
  }

  async #doClose(): Promise<void> {
    for (const t of this.#retryTimers) clearTimeout(t);
    this.#retryTimers.clear();
    await this.#participant.close();
    await Promise.allSettled([...this.#background]);
    await this.#flushMarkerDeletes().catch(() => undefined);
    if (this.#ownsPool) await this.#pool.end();
  }

  // ---- hooks --------------------------------------------------------------------------------

  async #prepare(txId: string, payload: Uint8Array, ctx: PrepareContext): Promise<PrepareResult> {
    await this.#recovered;
    const gid = formatGid(this.#prefix, txId);
    const client = await this.#pool.connect();
    let open = false;
    let broken: Error | undefined;
    try {
      await client.query(`BEGIN ISOLATION LEVEL ${this.#isolation}`);
      open = true;
      const remainingMs = Math.floor(ctx.deadline - Date.now());
      // Bound every statement (a lock wait behind another prepared transaction included) by the
      // vote's deadline: a conflict becomes a NO vote, never a wait past the deadline.
      if (Number.isFinite(remainingMs)) await client.query(`SET LOCAL statement_timeout = ${Math.max(1, remainingMs)}`);
      let usable = true;
      const sql: PostgresTransaction = {
        txId,
        gid,
        query: (text, values) => {
          if (!usable) return Promise.reject(new Error(`the transaction of ${txId} is no longer open to queries`));
          return client.query(text, values);
        },
      };
      const userCtx = {
        get signal(): AbortSignal {
          return ctx.signal;
        },
        deadline: ctx.deadline,
        onePhase: ctx.onePhase,
      };
      let result: void | PrepareResult;
      try {
        result = await this.#userPrepare(sql, txId, payload, userCtx);
      } finally {
        usable = false;
      }
      const vote = typeof result === 'object' && result !== null ? result.vote : (result ?? 'yes');
      if (vote !== 'yes') {
        await client.query('ROLLBACK');
        open = false;
        return result ?? 'no';
      }
      await client.query(`INSERT INTO ${this.#markerTable} (gid) VALUES ($1)`, [gid]);
      if (ctx.onePhase) this.#onePhase.add(txId);
      // From here the transaction no longer belongs to this connection: PostgreSQL holds it.
      open = false;
      await client.query(`PREPARE TRANSACTION '${gid}'`);
      return 'yes';
    } catch (e) {
      if (open) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          broken = rollbackError as Error;
        }
      }
      if (!isDatabaseError(e)) broken ??= e as Error;
      if (isDatabaseError(e)) return { vote: 'no', reason: `PostgreSQL ${e.code}: ${e.message}` };
      throw e;
    } finally {
      // A connection whose state is unknown is destroyed, not handed to the next branch.
      client.release(broken);
    }
  }

  async #commit(txId: string, ctx: HookContext): Promise<void> {
    await this.#recovered;
    const gid = formatGid(this.#prefix, txId);
    if (this.#onePhase.has(txId)) {
      // One phase: this participant decides, and the SDK's COMMITTED record is the decision.
      // COMMIT PREPARED runs once that record (and this key, written with it) is durable, so a
      // crash in between is finished at the next start, never answered "aborted".
      ctx.batch.put(ONE_PHASE_KEY_PREFIX + txId, gid);
      return;
    }
    await this.#resolvePrepared(gid, txId, 'commit');
  }

  async #abort(txId: string, _ctx: HookContext): Promise<void> {
    await this.#recovered;
    this.#onePhase.delete(txId);
    await this.#resolvePrepared(formatGid(this.#prefix, txId), txId, 'rollback');
  }

  /**
   * COMMIT PREPARED or ROLLBACK PREPARED. A gid that is no longer prepared is "already done" only
   * when the commit marker proves it: the marker row was inserted in the prepared transaction,
   * so it exists if and only if that transaction committed.
   */
  async #resolvePrepared(gid: string, txId: string, action: 'commit' | 'rollback'): Promise<void> {
    try {
      await this.#pool.query(`${action === 'commit' ? 'COMMIT' : 'ROLLBACK'} PREPARED '${gid}'`);
      return;
    } catch (e) {
      if (!isDatabaseError(e) || e.code !== SQLSTATE_UNDEFINED_OBJECT) throw e;
    }
    const marker = await this.#pool.query(`SELECT 1 FROM ${this.#markerTable} WHERE gid = $1`, [gid]);
    const committed = (marker.rowCount ?? 0) > 0;
    if (committed === (action === 'commit')) {
      this.#log.debug({ txId, gid, action }, 'prepared transaction already resolved (proven by the commit marker)');
      return;
    }
    const error = new PostgresParticipantError(
      PostgresErrorCode.PG_HEURISTIC_OUTCOME,
      `prepared transaction ${gid} was ${committed ? 'committed' : 'rolled back'} outside Verdict, but the outcome is ${action === 'commit' ? 'commit' : 'abort'}: atomicity is broken for ${txId}; not acknowledging`,
      { txId, participant: this.name },
    );
    this.#log.error({ txId, gid, code: error.code }, error.message);
    throw error;
  }

  // ---- after the outcome --------------------------------------------------------------------

  #onFinished(txId: string, outcome: Outcome | undefined): void {
    const onePhase = this.#onePhase.delete(txId);
    if (outcome !== Outcome.COMMITTED) return;
    const gid = formatGid(this.#prefix, txId);
    if (onePhase) return this.#finishOnePhase(txId, gid, 1);
    // The SDK's COMMITTED record is durable: the marker will never be asked for again.
    this.#deleteMarker(gid);
  }

  #finishOnePhase(txId: string, gid: string, attempt: number): void {
    if (this.#closing) return;
    this.#track(
      this.#resolvePrepared(gid, txId, 'commit')
        .then(() => {
          failpoint('postgres.after-one-phase-commit-prepared');
          return this.#participant.store.del(ONE_PHASE_KEY_PREFIX + txId);
        })
        .then(
          () => this.#deleteMarker(gid),
          (e: unknown) => {
            if (this.#closing) return;
            const delay = Math.min(FINISH_RETRY_MAX_MS, FINISH_RETRY_INITIAL_MS * 2 ** (attempt - 1));
            this.#log.warn({ txId, err: e, retryInMs: delay }, 'COMMIT PREPARED of a one-phase commit failed; retrying');
            const timer = setTimeout(() => {
              this.#retryTimers.delete(timer);
              this.#finishOnePhase(txId, gid, attempt + 1);
            }, delay);
            timer.unref();
            this.#retryTimers.add(timer);
          },
        ),
    );
  }

  #deleteMarker(gid: string): void {
    this.#markerDeletes.push(gid);
    if (this.#markerDeletes.length === 1) setImmediate(() => void this.#track(this.#flushMarkerDeletes()));
  }

  /** Deletes the queued markers in one statement; a failure leaves them to the next start's sweep. */
  async #flushMarkerDeletes(): Promise<void> {
    await this.#markerFlush;
    const gids = this.#markerDeletes;
    this.#markerDeletes = [];
    if (gids.length === 0) return;
    this.#markerFlush = this.#pool
      .query(`DELETE FROM ${this.#markerTable} WHERE gid = ANY($1::text[])`, [gids])
      .then(
        () => undefined,
        (e: unknown) => this.#log.warn({ err: e, count: gids.length }, 'could not delete commit markers; the next start removes them'),
      );
    await this.#markerFlush;
  }

  #track(p: Promise<unknown>): void {
    this.#background.add(p);
    void p.finally(() => this.#background.delete(p));
  }

  // ---- recovery -----------------------------------------------------------------------------

  async #recover(inDoubt: ReadonlySet<string>): Promise<PostgresRecoveryReport> {
    const prepared = await this.#pool.query<{ gid: string }>(
      'SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND starts_with(gid, $1)',
      [this.#prefix],
    );
    const pending = new Map<string, string>();
    for await (const [key, value] of this.#participant.store.iterator({ gte: ONE_PHASE_KEY_PREFIX, lt: `${ONE_PHASE_KEY_PREFIX}\uffff` })) {
      pending.set(key.slice(ONE_PHASE_KEY_PREFIX.length), String(value));
    }
    const rolledBack: string[] = [];
    const committed: string[] = [];
    const held: string[] = [];
    for (const { gid } of prepared.rows) {
      const txId = txIdOfGid(this.#prefix, gid);
      if (txId === undefined) {
        this.#log.warn({ gid }, 'a prepared transaction under this participant prefix has a malformed gid; left alone');
        continue;
      }
      if (inDoubt.has(txId)) {
        held.push(txId);
      } else if (pending.has(txId)) {
        // Decided here (one phase) before the crash; only COMMIT PREPARED was missing.
        await this.#resolvePrepared(gid, txId, 'commit');
        await this.#participant.store.del(ONE_PHASE_KEY_PREFIX + txId);
        pending.delete(txId);
        committed.push(txId);
      } else {
        // No PREPARED record: this participant never voted YES, so no coordinator can have
        // committed it (and a one-phase commit without its COMMITTED record was never decided).
        await this.#resolvePrepared(gid, txId, 'rollback');
        rolledBack.push(txId);
      }
    }
    // One-phase commits whose gid is gone: COMMIT PREPARED ran; the marker proves it.
    for (const [txId, gid] of pending) {
      await this.#resolvePrepared(gid, txId, 'commit');
      await this.#participant.store.del(ONE_PHASE_KEY_PREFIX + txId);
    }
    // Markers are needed only while the SDK holds a transaction in doubt.
    const keep = [...inDoubt].map((txId) => formatGid(this.#prefix, txId));
    await this.#pool.query(`DELETE FROM ${this.#markerTable} WHERE starts_with(gid, $1) AND NOT (gid = ANY($2::text[]))`, [this.#prefix, keep]);
    if (rolledBack.length + committed.length + held.length > 0) {
      this.#log.info({ rolledBack, committed, inDoubt: held }, 'recovered prepared transactions');
    }
    return { rolledBack, committed, inDoubt: held };
  }
}
