// Who is calling: an identity is a role and a name, written as a URI
// (`verdict://participant/bank-a`). Client certificates carry it as a SAN URI; bearer tokens map
// to it. This module only parses and formats: deciding what an identity may do lives in
// src/coordinator/authorization.ts.

import { participantNameProblem } from '../protocol/ids.js';

/** The roles an identity can have. */
export const IdentityRole = {
  /** A participant service: may open a session under its own name only. */
  PARTICIPANT: 'participant',
  /** An initiator: may begin transactions and act on the ones it owns. */
  INITIATOR: 'initiator',
  /** An operator: may act on any transaction. */
  ADMIN: 'admin',
} as const;
/** A role. */
export type IdentityRole = (typeof IdentityRole)[keyof typeof IdentityRole];

/** An authenticated caller. */
export interface Identity {
  readonly role: IdentityRole;
  readonly name: string;
}

const URI_PREFIX = 'verdict://';
const ROLES: ReadonlySet<string> = new Set(Object.values(IdentityRole));

/** `verdict://<role>/<name>`. */
export function formatIdentity(identity: Identity): string {
  return `${URI_PREFIX}${identity.role}/${identity.name}`;
}

/** Parses `verdict://<role>/<name>`; undefined for anything else (names follow the participant-name rules). */
export function parseIdentity(uri: string): Identity | undefined {
  if (!uri.startsWith(URI_PREFIX)) return undefined;
  const rest = uri.slice(URI_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const role = rest.slice(0, slash);
  const name = rest.slice(slash + 1);
  if (!ROLES.has(role) || participantNameProblem(name) !== undefined) return undefined;
  return { role: role as IdentityRole, name };
}

/**
 * The Verdict identities named by a certificate's subjectAltName, in Node's rendering
 * (`URI:verdict://participant/a, DNS:localhost`; values with a comma or quote are JSON-quoted,
 * and our names never contain one, so a quoted value is skipped rather than unquoted).
 */
export function identitiesFromSubjectAltName(subjectAltName: string | undefined): Identity[] {
  if (!subjectAltName) return [];
  const found: Identity[] = [];
  for (const entry of subjectAltName.split(', ')) {
    if (!entry.startsWith('URI:')) continue;
    const identity = parseIdentity(entry.slice(4));
    if (identity) found.push(identity);
  }
  return found;
}
