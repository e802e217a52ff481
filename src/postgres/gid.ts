// Global transaction ids (gids) of prepared transactions. A gid names the Verdict cluster, the
// participant and the transaction, so that recovery lists exactly its own entries of
// `pg_prepared_xacts` and leaves every other application's (and every other participant's) alone.
// Every part is checked against a strict pattern: a gid is written into SQL as a literal
// (`COMMIT PREPARED` takes no parameters), so it may only hold characters that need no quoting.

import { participantNameProblem, parseTxId, txIdProblem } from '../protocol/ids.js';
import { PostgresErrorCode, PostgresParticipantError } from './postgres-errors.js';

/** The first part of every gid this package writes (with the format version). */
export const GID_PREFIX = 'verdict1';
/** PostgreSQL's limit on a gid, in bytes (GIDSIZE is 200, terminator included). */
export const MAX_GID_BYTES = 199;
/** The longest cluster id accepted, in characters. */
export const MAX_CLUSTER_ID_LENGTH = 32;

const CLUSTER_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const SEPARATOR = ':';

/** Explains why `cluster` is not a valid cluster id, or returns undefined when it is. */
export function clusterIdProblem(cluster: string): string | undefined {
  if (!CLUSTER_PATTERN.test(cluster)) {
    return `cluster id ${JSON.stringify(cluster.slice(0, MAX_CLUSTER_ID_LENGTH + 8))} is invalid (lowercase letters, digits, '_' and '-', at most ${MAX_CLUSTER_ID_LENGTH} characters, starting with a letter or digit)`;
  }
  return undefined;
}

/**
 * The prefix shared by every gid of `participant` in `cluster`: `verdict1:<cluster>:<participant>:`.
 * Throws INVALID_ARGUMENT for a malformed cluster id or participant name.
 */
export function gidPrefix(cluster: string, participant: string): string {
  const problem = clusterIdProblem(cluster) ?? participantNameProblem(participant);
  if (problem) throw new PostgresParticipantError(PostgresErrorCode.INVALID_ARGUMENT, problem, { participant });
  return `${GID_PREFIX}${SEPARATOR}${cluster}${SEPARATOR}${participant}${SEPARATOR}`;
}

/** The gid of `txId` under `prefix` (from `gidPrefix`). Throws INVALID_ARGUMENT when it cannot be formed. */
export function formatGid(prefix: string, txId: string): string {
  const problem = txIdProblem(txId);
  if (problem) throw new PostgresParticipantError(PostgresErrorCode.INVALID_ARGUMENT, problem, { txId });
  const gid = prefix + txId;
  // Every character is ASCII (checked above), so characters are bytes.
  if (gid.length > MAX_GID_BYTES) {
    throw new PostgresParticipantError(PostgresErrorCode.INVALID_ARGUMENT, `gid ${gid} is longer than ${MAX_GID_BYTES} bytes`, { txId });
  }
  return gid;
}

/** The tx id of a gid under `prefix`, or undefined when the gid is not one of this participant's. */
export function txIdOfGid(prefix: string, gid: string): string | undefined {
  if (!gid.startsWith(prefix)) return undefined;
  const txId = gid.slice(prefix.length);
  return parseTxId(txId) === undefined ? undefined : txId;
}
