// Identifiers: transaction ids carry the coordinator epoch that issued them, which is what lets a
// restarted coordinator presume abort for ids it no longer remembers. Every id that crosses the
// wire is checked against a strict pattern before it reaches a key, a map or a log line.

/** The longest transaction id accepted, in characters. */
export const MAX_TX_ID_LENGTH = 40;
/** The longest participant name accepted, in characters. */
export const MAX_PARTICIPANT_NAME_LENGTH = 64;

const TX_ID_PATTERN = /^tx-([1-9][0-9]{0,14})-([1-9][0-9]{0,14})$/;
const PARTICIPANT_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** A parsed transaction id: the epoch of the coordinator that issued it and its sequence number. */
export interface TxIdParts {
  readonly epoch: number;
  readonly seq: number;
}

/** Formats the id of the `seq`-th transaction issued in `epoch`. */
export function formatTxId(epoch: number, seq: number): string {
  return `tx-${epoch}-${seq}`;
}

/** Parses a transaction id; returns `undefined` for anything malformed. */
export function parseTxId(txId: string): TxIdParts | undefined {
  if (txId.length > MAX_TX_ID_LENGTH) return undefined;
  const m = TX_ID_PATTERN.exec(txId);
  if (!m) return undefined;
  const epoch = Number(m[1]);
  const seq = Number(m[2]);
  if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(seq)) return undefined;
  return { epoch, seq };
}

/** Orders transaction ids by (epoch, seq); malformed ids sort first. */
export function compareTxIds(a: string, b: string): number {
  const pa = parseTxId(a);
  const pb = parseTxId(b);
  if (!pa || !pb) return pa ? 1 : pb ? -1 : 0;
  return pa.epoch - pb.epoch || pa.seq - pb.seq;
}

/** Explains why `txId` is not a valid transaction id, or returns `undefined` when it is. */
export function txIdProblem(txId: string): string | undefined {
  if (txId === '') return 'tx id is empty';
  if (parseTxId(txId) === undefined) {
    return `tx id ${JSON.stringify(txId.slice(0, MAX_TX_ID_LENGTH + 8))} is malformed (expected tx-<epoch>-<seq>)`;
  }
  return undefined;
}

/** Explains why `name` is not a valid participant name, or returns `undefined` when it is. */
export function participantNameProblem(name: string): string | undefined {
  if (name === '') return 'participant name is empty';
  if (name.length > MAX_PARTICIPANT_NAME_LENGTH || !PARTICIPANT_NAME_PATTERN.test(name)) {
    return `participant name ${JSON.stringify(name.slice(0, MAX_PARTICIPANT_NAME_LENGTH + 8))} is invalid (lowercase letters, digits, '.', '_' and '-', at most ${MAX_PARTICIPANT_NAME_LENGTH} characters, starting with a letter or digit)`;
  }
  return undefined;
}

/** The longest idempotency key accepted, in characters. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;
const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** Explains why `key` is not a valid idempotency key, or returns `undefined` when it is. */
export function idempotencyKeyProblem(key: string): string | undefined {
  if (key === '') return 'idempotency key is empty';
  if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH || !IDEMPOTENCY_KEY_PATTERN.test(key)) {
    return `idempotency key ${JSON.stringify(key.slice(0, MAX_IDEMPOTENCY_KEY_LENGTH + 8))} is invalid (letters, digits, '.', '_', ':' and '-', 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters)`;
  }
  return undefined;
}

/**
 * The idempotency key as the coordinator keeps it: scoped to the initiator that used it, so that
 * two initiators choosing the same key never meet. `owner` is empty when callers are not
 * authenticated (then every caller is the same initiator).
 */
export function scopedIdempotencyKey(owner: string | undefined, key: string): string {
  return `${owner ?? ''}\n${key}`;
}
