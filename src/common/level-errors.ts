// Opening a LevelDB directory, with its failures turned into one clear, typed error each.

import { Level } from 'level';
import { ErrorCode, VerdictError } from '../errors.js';
import type { LogDatabase } from './group-commit.js';

/**
 * The storage seam of a log: where it lives (for messages) and how to open its database. The
 * default is a LevelDB directory; the simulator passes an in-memory store under a fault layer.
 */
export interface LogStorage {
  /** Where the log lives, for messages (a directory, or a simulated disk's name). */
  readonly location: string;
  /** Opens the database; `what` names the log in errors ("decision log"). */
  open(what: string): Promise<LogDatabase>;
}

/** The storage of a log in the LevelDB directory `dir`. */
export function levelStorage(dir: string): LogStorage {
  return { location: dir, open: (what) => openLevel(dir, what) };
}

/** Opens (creating if missing) the LevelDB at `dir` with string keys and binary values. */
export async function openLevel(dir: string, what: string): Promise<LogDatabase> {
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  try {
    await db.open();
  } catch (e) {
    throw levelOpenError(e, dir, what);
  }
  return db;
}

function levelOpenError(e: unknown, dir: string, what: string): VerdictError {
  const cause = (e as { cause?: { code?: string } }).cause;
  if (cause?.code === 'LEVEL_LOCKED') {
    return new VerdictError(ErrorCode.DATA_DIR_LOCKED, `data directory ${dir} is in use by another process`, { cause: e });
  }
  if (cause?.code === 'LEVEL_CORRUPTION') {
    return new VerdictError(ErrorCode.LOG_CORRUPT, `the ${what} in ${dir} is corrupt; refusing to start (it is never repaired automatically)`, { cause: e });
  }
  const detail = (cause as { message?: string } | undefined)?.message ?? (e as Error).message;
  return new VerdictError(ErrorCode.INTERNAL, `cannot open the ${what} in ${dir}: ${detail}`, { cause: e });
}
