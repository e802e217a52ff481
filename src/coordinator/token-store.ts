// Bearer tokens, for deployments without client certificates: a file maps each token to an
// identity. Tokens are never logged and never kept in the clear: the store holds their SHA-256
// digests, and a lookup hashes the presented token and compares it with every digest with
// `timingSafeEqual`, without stopping at a match. The time a lookup takes therefore depends on
// neither the presented token's content or length (it is hashed to 32 bytes first) nor on which
// entry, if any, matched.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseIdentity, type Identity } from '../common/identity.js';
import { ErrorCode, VerdictError } from '../errors.js';

/** Shortest token accepted in a tokens file: a guessable token is no credential. */
export const MIN_TOKEN_LENGTH = 32;

interface Entry {
  readonly digest: Buffer;
  readonly identity: Identity;
}

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

/** Identities by bearer token. */
export class TokenStore {
  readonly #entries: readonly Entry[];

  private constructor(entries: readonly Entry[]) {
    this.#entries = entries;
  }

  /**
   * Reads a tokens file: one `verdict://<role>/<name> <token>` per line; blank lines and lines
   * starting with `#` are skipped. Errors name the line, never the token.
   */
  static fromFile(path: string): TokenStore {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `cannot read the tokens file: ${(e as Error).message}`, { cause: e });
    }
    return TokenStore.parse(text, path);
  }

  /** Parses the text of a tokens file (see `fromFile`). */
  static parse(text: string, source = 'tokens'): TokenStore {
    const entries: Entry[] = [];
    const seen = new Set<string>();
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const fields = line.split(/\s+/);
      const identity = fields.length === 2 ? parseIdentity(fields[0] ?? '') : undefined;
      const token = fields[1] ?? '';
      if (!identity) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `${source} line ${i + 1}: expected "verdict://<role>/<name> <token>"`);
      if (token.length < MIN_TOKEN_LENGTH) {
        throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `${source} line ${i + 1}: the token is shorter than ${MIN_TOKEN_LENGTH} characters`);
      }
      const d = digest(token);
      const hex = d.toString('hex');
      if (seen.has(hex)) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `${source} line ${i + 1}: the same token appears twice`);
      seen.add(hex);
      entries.push({ digest: d, identity });
    });
    if (entries.length === 0) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `${source} has no tokens`);
    return new TokenStore(entries);
  }

  /** How many tokens the store holds. */
  get size(): number {
    return this.#entries.length;
  }

  /** The identity of `token`, or undefined. Constant-time: see the module comment. */
  lookup(token: string): Identity | undefined {
    const presented = digest(token);
    let found: Identity | undefined;
    for (const entry of this.#entries) {
      // No early exit: every entry is compared, whatever matched before.
      const match = timingSafeEqual(presented, entry.digest);
      if (match) found = entry.identity;
    }
    return found;
  }
}
