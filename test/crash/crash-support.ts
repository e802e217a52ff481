// Shared by the crash tests: the seed (VERDICT_CRASH_SEED, or a fresh one that every failure
// prints), a directory per run (removed when the run passed, kept with its logs when it failed),
// and a lock that keeps crash test files from running at the same time as each other: the runner
// runs two files at once, and two crash files on two cores would mostly measure each other.

import assert from 'node:assert/strict';
import { createHash, randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { formatReport, type CrashRunReport } from '../../src/faults/crash-run.js';
import { FAILPOINTS, ONE_PHASE_OR_POSTGRES_FAILPOINTS, type FailpointName } from '../../src/common/failpoints.js';
import { Prng } from '../../src/sim/prng.js';

/** The environment variable that fixes the seed of a crash test run. */
export const SEED_ENV = 'VERDICT_CRASH_SEED';

/** How long a crash test file waits for another one to finish, in ms. */
const LOCK_WAIT_MS = 10 * 60_000;
/** How often the lock is tried again meanwhile, in ms. */
const LOCK_POLL_MS = 200;
/** Age after which a lock file without a pid is taken for a leftover, in ms. */
const STALE_EMPTY_LOCK_MS = 5_000;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The seed of this run: VERDICT_CRASH_SEED when set, else a fresh one. */
export function crashSeed(): number {
  const fixed = process.env[SEED_ENV];
  if (fixed === undefined || fixed === '') return randomInt(1, 2 ** 31);
  const seed = Number(fixed);
  if (!Number.isSafeInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new Error(`${SEED_ENV} must be an integer in [0, 2^32), got ${fixed}`);
  return seed;
}

/** A fresh directory for one run. */
export function runDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `verdict-crash-${label.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}-`));
}

/** A stable 32-bit hash of `text` (to derive per-scenario choices from the seed). */
export function hash32(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32LE(0);
}

/** The failpoints a cluster of demo banks reaches (not the one-phase and PostgreSQL ones). */
export function bankClusterFailpoints(): FailpointName[] {
  return (Object.keys(FAILPOINTS) as FailpointName[]).filter((f) => !ONE_PHASE_OR_POSTGRES_FAILPOINTS.has(f));
}

/** The banks of a default process cluster. */
export const BANKS = ['bank-1', 'bank-2', 'bank-3'] as const;
/** The highest hit a failpoint is armed to fire at: later hits find more transactions in flight. */
const MAX_FROM_HIT = 3;

/**
 * Where and from which hit `failpoint` fires in a run of `seed`: the coordinator's on the
 * coordinator, a participant's on a bank; both drawn from the seed and the failpoint's name.
 */
export function arming(seed: number, failpoint: FailpointName): { process: string; fromHit: number } {
  const rng = new Prng((seed ^ hash32(failpoint)) >>> 0);
  const fromHit = rng.int(1, MAX_FROM_HIT);
  return { process: failpoint.startsWith('coordinator.') ? 'coordinator' : rng.pick(BANKS), fromHit };
}

/**
 * Fails with the whole report (seed first, how to reproduce, every violation) when the run found
 * violations, keeping its directory; removes the directory when it passed.
 */
export function assertClean(report: CrashRunReport): void {
  if (report.violations.length === 0) {
    rmSync(report.dir, { recursive: true, force: true });
    return;
  }
  assert.fail(`${formatReport(report)}\n  reproduce with: ${SEED_ENV}=${report.seed} npm test -- test/crash`);
}

/**
 * Takes this checkout's crash-suite lock (waiting, bounded, while another crash file holds it)
 * and returns its release. A lock left by a dead process is taken over.
 */
export async function exclusiveCrashSuite(): Promise<() => void> {
  const lock = join(tmpdir(), `verdict-crash-suite-${hash32(ROOT).toString(16)}.lock`);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return () => {
        if (readHolder(lock) === process.pid) rmSync(lock, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = readHolder(lock);
    if (holder === undefined) continue; // Released meanwhile.
    // A lock being written has no pid yet; one that stays empty was left half-written.
    const stale = holder > 0 ? !isAlive(holder) : Date.now() - mtimeMs(lock) > STALE_EMPTY_LOCK_MS;
    if (stale) {
      rmSync(lock, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`another crash test (pid ${holder}) held ${lock} for more than ${LOCK_WAIT_MS / 60_000} minutes`);
    await delay(LOCK_POLL_MS);
  }
}

/** The pid in the lock (0 when it has none yet), or undefined when there is no lock. */
function readHolder(lock: string): number | undefined {
  try {
    const pid = Number(readFileSync(lock, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : 0;
  } catch {
    return undefined;
  }
}

function mtimeMs(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return Date.now();
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
