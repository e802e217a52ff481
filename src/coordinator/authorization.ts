// Who may do what on a coordinator. Callers are identified by the SAN URI of their client
// certificate or by a bearer token; then:
// - a participant session's hello must name the participant its identity names;
// - TransactionService calls need an initiator or admin identity; a transaction records its owner
//   (the initiator that began it), and only the owner or an admin may commit, abort or read it;
// - enlisting takes the capability Begin returned: an HMAC of the transaction id under a key
//   drawn at start, so it cannot be guessed or derived from the id, and needs no storage (an
//   active transaction does not outlive its coordinator incarnation).
// Every check runs before the request reaches the protocol, so a refusal writes nothing.
// Authentication is required once the coordinator asks for client certificates or has tokens;
// without either (the loopback default) only the capability check applies.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { formatIdentity, identitiesFromSubjectAltName, IdentityRole, type Identity } from '../common/identity.js';
import type { CallerContext } from '../common/transport.js';
import { ErrorCode } from '../errors.js';
import type { CoordinatorRecord, TxView } from '../protocol/coordinator-events.js';
import { txIdProblem } from '../protocol/ids.js';
import type { ProtocolError } from '../protocol/types.js';
import type { TokenStore } from './token-store.js';

/** Bytes of the key capabilities are derived under. */
const CAPABILITY_KEY_BYTES = 32;
/** Length of a capability: base64url of an HMAC-SHA256. */
const CAPABILITY_LENGTH = 43;
const BEARER = /^Bearer ([!-~]+)$/;

/** The outcome of identifying a caller: its identity (none when authentication is off) or why not. */
export type Identified = { readonly identity: Identity | undefined; readonly error?: undefined } | { readonly error: ProtocolError };

/** What the authorizer needs to find a transaction's owner. */
export interface OwnerSource {
  /** The live transaction, if it is live. */
  view(txId: string): TxView | undefined;
  /** Its END record, if it ended and is still remembered. */
  lookup(txId: string): Promise<CoordinatorRecord | undefined>;
}

const denied = (message: string, txId?: string): ProtocolError => ({ code: ErrorCode.PERMISSION_DENIED, message, ...(txId ? { txId } : {}) });
const unauthenticated = (message: string): ProtocolError => ({ code: ErrorCode.UNAUTHENTICATED, message });

/** The coordinator's authentication and authorization checks. */
export class Authorizer {
  readonly #required: boolean;
  readonly #tokens: TokenStore | undefined;
  readonly #capabilityKey = randomBytes(CAPABILITY_KEY_BYTES);

  /** `required`: every caller must present a certificate identity or a valid token. */
  constructor(options: { readonly required: boolean; readonly tokens?: TokenStore | undefined }) {
    this.#tokens = options.tokens;
    this.#required = options.required || options.tokens !== undefined;
  }

  /** An authorizer with the same rules and tokens, and a new capability key. */
  renewed(): Authorizer {
    return new Authorizer({ required: this.#required, tokens: this.#tokens });
  }

  /** Whether callers must authenticate. */
  get required(): boolean {
    return this.#required;
  }

  /** Who is calling: the certificate's identity, else the bearer token's. */
  identify(call: CallerContext): Identified {
    if (!this.#required) return { identity: undefined };
    const fromCert = identitiesFromSubjectAltName(call.getAuthContext?.().sslPeerCertificate?.subjectaltname);
    if (fromCert.length > 1) return { error: unauthenticated('the client certificate names more than one verdict:// identity') };
    if (fromCert[0]) return { identity: fromCert[0] };
    const header = call.metadata?.get('authorization')[0];
    if (header !== undefined && this.#tokens) {
      const m = BEARER.exec(typeof header === 'string' ? header : header.toString('utf8'));
      const identity = m?.[1] === undefined ? undefined : this.#tokens.lookup(m[1]);
      // The token itself never goes into a message or a log line.
      if (!identity) return { error: unauthenticated('the bearer token is not valid') };
      return { identity };
    }
    return { error: unauthenticated('no identity: present a client certificate with a verdict:// SAN URI, or a bearer token') };
  }

  /** Refuses a hello under a name the session's identity does not carry. */
  helloProblem(call: CallerContext, participant: string): ProtocolError | undefined {
    const who = this.identify(call);
    if (who.error) return who.error;
    if (!who.identity) return undefined;
    if (who.identity.role !== IdentityRole.PARTICIPANT || who.identity.name !== participant) {
      return denied(`${formatIdentity(who.identity)} may not open a session as participant ${participant}`);
    }
    return undefined;
  }

  /** Identifies a TransactionService caller: initiators and admins only. */
  initiator(call: CallerContext): Identified {
    const who = this.identify(call);
    if (who.error || !who.identity) return who;
    if (who.identity.role === IdentityRole.PARTICIPANT) return { error: denied(`${formatIdentity(who.identity)} is a participant; only initiators and admins call TransactionService`) };
    return who;
  }

  /** Why `call` may not use AdminService (admins only once callers authenticate), or nothing. */
  adminProblem(call: CallerContext): ProtocolError | undefined {
    const who = this.identify(call);
    if (who.error) return who.error;
    if (!who.identity || who.identity.role === IdentityRole.ADMIN) return undefined;
    return denied(`${formatIdentity(who.identity)} is not an admin; AdminService is for verdict://admin/<name> identities`);
  }

  /** The owner recorded for transactions `identity` begins. */
  ownerFor(identity: Identity | undefined): string | undefined {
    return identity && formatIdentity(identity);
  }

  /**
   * Calls `then` with nothing when `identity` may act on `txId`, or with the refusal: owner or
   * admin only. An id with no transaction behind it passes (the protocol answers it, and there is
   * nothing to protect); a transaction without an owner (begun while authentication was off) is
   * for admins only. Synchronous when the transaction is live.
   */
  checkTransaction(identity: Identity | undefined, txId: string, owners: OwnerSource, then: (error: ProtocolError | undefined) => void): void {
    if (!identity || identity.role === IdentityRole.ADMIN || txId === '' || txIdProblem(txId) !== undefined) return then(undefined);
    const me = formatIdentity(identity);
    const verdict = (exists: boolean, owner: string | undefined): ProtocolError | undefined =>
      !exists || owner === me ? undefined : denied(`transaction ${txId} belongs to ${owner ?? 'no recorded initiator'}, not to ${me}`, txId);
    const view = owners.view(txId);
    if (view) return then(verdict(true, view.owner));
    owners.lookup(txId).then(
      (record) => then(verdict(record !== undefined, record?.owner)),
      (e: unknown) => then({ code: ErrorCode.INTERNAL, message: `cannot read the decision log: ${(e as Error).message}`, txId }),
    );
  }

  /** The capability to enlist in `txId`. */
  capability(txId: string): string {
    return createHmac('sha256', this.#capabilityKey).update(txId, 'utf8').digest('base64url');
  }

  /** Whether `capability` is the one `begin` gave for `txId`; compared in constant time. */
  verifyCapability(txId: string, capability: string): boolean {
    // Lengths are public (every capability has the same one); only equal lengths are compared.
    if (Buffer.byteLength(capability, 'utf8') !== CAPABILITY_LENGTH) return false;
    return timingSafeEqual(Buffer.from(this.capability(txId), 'utf8'), Buffer.from(capability, 'utf8'));
  }
}
