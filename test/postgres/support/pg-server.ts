// A throwaway PostgreSQL cluster for tests: initdb in a fresh temp directory owned by the
// `postgres` user (the server refuses to run as root), a free port on 127.0.0.1, prepared
// transactions enabled, stopped and removed by `stop()`. When PostgreSQL is not installed,
// scripts/ensure-postgres.sh installs Debian's package. Any failure is one line saying why:
// a suite that needs PostgreSQL fails without it, it never skips.

import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../../support/cluster.js';

const run = promisify(execFile);
const ENSURE_SCRIPT = fileURLToPath(new URL('../../../scripts/ensure-postgres.sh', import.meta.url));
/** The superuser initdb creates. */
export const PG_TEST_USER = 'verdict';
/** Attempts at finding a port nobody took between choosing it and the server binding it. */
const START_ATTEMPTS = 3;
/** How long pg_ctl waits for a start or stop, in s. */
const PG_CTL_TIMEOUT_S = 60;

/** Options of a test cluster. */
export interface PgServerOptions {
  /** `max_prepared_transactions` (default 64; 0 to test the start-up check). */
  readonly maxPreparedTransactions?: number;
}

function binDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  const path = which.stdout.trim();
  return which.status === 0 && path ? path.slice(0, path.lastIndexOf('/')) : undefined;
}

function oneLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).slice(-1)[0] ?? '';
}

/** A running throwaway PostgreSQL cluster. */
export class PgServer {
  readonly #dir: string;
  readonly #bin: string;
  readonly #asPostgres: boolean;
  readonly #maxPrepared: number;
  #port = 0;
  #admin: pg.Pool | undefined;

  private constructor(dir: string, bin: string, asPostgres: boolean, maxPrepared: number) {
    this.#dir = dir;
    this.#bin = bin;
    this.#asPostgres = asPostgres;
    this.#maxPrepared = maxPrepared;
  }

  /** Installs PostgreSQL if needed, then initialises and starts a cluster. Throws one line on failure. */
  static async start(options: PgServerOptions = {}): Promise<PgServer> {
    let bin = binDir();
    if (!bin) {
      const installed = spawnSync('bash', [ENSURE_SCRIPT], { encoding: 'utf8' });
      if (installed.status !== 0) throw new Error(`PostgreSQL could not be installed: ${oneLine(installed.stderr) || `exit ${installed.status}`}`);
      bin = binDir();
      if (!bin) throw new Error('PostgreSQL could not be started: initdb is not on this machine after installing it');
    }
    const asPostgres = userInfo().uid === 0;
    const dir = mkdtempSync(join(tmpdir(), 'verdict-pg-'));
    const server = new PgServer(dir, bin, asPostgres, options.maxPreparedTransactions ?? 64);
    try {
      if (asPostgres) {
        const pw = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
        const gw = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
        if (pw.status !== 0) throw new Error('running as root and there is no `postgres` user to run the server as');
        chownSync(dir, Number(pw.stdout.trim()), Number(gw.stdout.trim()));
      }
      await server.#exec('initdb', ['-D', server.#dataDir, '-A', 'trust', '-U', PG_TEST_USER, '--no-sync', '-E', 'UTF8', '--locale=C']);
      let lastError: unknown;
      for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
        server.#port = await freePort();
        try {
          await server.#pgCtlStart();
          lastError = undefined;
          break;
        } catch (e) {
          lastError = e;
        }
      }
      if (lastError) throw lastError;
      server.#admin = new pg.Pool({ ...server.connection('postgres'), max: 2 });
      server.#admin.on('error', () => undefined);
      return server;
    } catch (e) {
      await server.stop().catch(() => undefined);
      throw new Error(`PostgreSQL could not be started: ${oneLine((e as Error).message)}`, { cause: e });
    }
  }

  get #dataDir(): string {
    return join(this.#dir, 'db');
  }

  /** The server's port on 127.0.0.1. */
  get port(): number {
    return this.#port;
  }

  /** Connection settings for `database` as the test superuser. */
  connection(database: string): pg.PoolConfig {
    return { host: '127.0.0.1', port: this.#port, user: PG_TEST_USER, database };
  }

  /** A pool on the `postgres` database, for administration and checks. */
  get admin(): pg.Pool {
    if (!this.#admin) throw new Error('the test PostgreSQL is not running');
    return this.#admin;
  }

  /** Creates a database (the name must be a plain lowercase identifier). */
  async createDatabase(name: string): Promise<pg.PoolConfig> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`bad database name ${name}`);
    await this.admin.query(`CREATE DATABASE ${name}`);
    return this.connection(name);
  }

  /** Every prepared transaction on the server whose gid starts with `prefix` (all databases). */
  async prepared(prefix = ''): Promise<{ gid: string; database: string }[]> {
    const result = await this.admin.query<{ gid: string; database: string }>(
      'SELECT gid, database FROM pg_prepared_xacts WHERE starts_with(gid, $1) ORDER BY gid',
      [prefix],
    );
    return result.rows;
  }

  /** Stops the server with `mode` (fast: clean; immediate: like a crash, recovers from WAL) and starts it again. */
  async restart(mode: 'fast' | 'immediate'): Promise<void> {
    await this.halt(mode);
    await this.resume();
  }

  /** Stops the server with `mode`, keeping its data directory, until `resume()`. */
  async halt(mode: 'fast' | 'immediate'): Promise<void> {
    await this.#exec('pg_ctl', ['-D', this.#dataDir, '-m', mode, '-w', '-t', String(PG_CTL_TIMEOUT_S), 'stop']);
  }

  /** Starts a halted server again on the same port. */
  async resume(): Promise<void> {
    await this.#pgCtlStart();
  }

  /** Stops the server and removes its directory. Idempotent. */
  async stop(): Promise<void> {
    const admin = this.#admin;
    this.#admin = undefined;
    await admin?.end().catch(() => undefined);
    if (existsSync(join(this.#dataDir, 'postmaster.pid'))) {
      await this.#exec('pg_ctl', ['-D', this.#dataDir, '-m', 'fast', '-w', '-t', String(PG_CTL_TIMEOUT_S), 'stop']).catch(() =>
        this.#exec('pg_ctl', ['-D', this.#dataDir, '-m', 'immediate', '-w', 'stop']).catch(() => undefined),
      );
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #pgCtlStart(): Promise<void> {
    const settings = [
      `-p ${this.#port}`,
      `-k ${this.#dir}`,
      '-c listen_addresses=127.0.0.1',
      `-c max_prepared_transactions=${this.#maxPrepared}`,
      '-c max_connections=100',
    ].join(' ');
    const logFile = join(this.#dir, 'pg.log');
    try {
      await this.#exec('pg_ctl', ['-D', this.#dataDir, '-l', logFile, '-o', settings, '-w', '-t', String(PG_CTL_TIMEOUT_S), 'start']);
    } catch (e) {
      const log = existsSync(logFile) ? oneLine(readFileSync(logFile, 'utf8')) : '';
      throw new Error(log || (e as Error).message, { cause: e });
    }
  }

  async #exec(tool: string, args: string[]): Promise<void> {
    const path = join(this.#bin, tool);
    const [file, argv] = this.#asPostgres ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
    try {
      await run(file, argv, { cwd: this.#dir, timeout: (PG_CTL_TIMEOUT_S + 10) * 1000 });
    } catch (e) {
      const err = e as Error & { stderr?: string };
      throw new Error(`${tool} failed: ${oneLine(err.stderr ?? '') || err.message}`, { cause: e });
    }
  }
}
