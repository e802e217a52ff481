// Deliberately wrong variants of the protocol, expressed in the simulated shells and never in
// src/protocol: each one reproduces a known way to break two-phase commit (a shell that acks a
// forced write early, a lookup that guesses, a retry loop that gives up...). The simulator must
// catch every one of them: that is the proof that the properties bite.

import type { ProfileName } from './scenario.js';

/** A mutant: what it breaks and which property should catch it. */
export interface Mutant {
  readonly name: MutantName;
  readonly description: string;
  /** The property expected to fail first (others may fail too). */
  readonly expected: string;
  /** The scenario profile that exercises it best (what `--mutant` uses unless told otherwise). */
  readonly profile: ProfileName;
}

/** Names of the mutants. */
export const MUTANT_NAMES = [
  'commit-before-durable',
  'commit-record-unforced',
  'yes-before-prepared-durable',
  'unknown-tx-committed',
  'retry-gives-up',
  'duplicate-commit-applied-twice',
  'unstaged-commit-effects',
  'no-vote-read-as-yes',
  'forget-commit-early',
  'participant-unilateral-abort',
  'epoch-not-bumped',
  'no-abort-tombstone',
] as const;
/** A mutant's name. */
export type MutantName = (typeof MUTANT_NAMES)[number];

/** Every mutant, in the order `--list-mutants` prints them. */
export const MUTANTS: readonly Mutant[] = [
  {
    name: 'commit-before-durable',
    description: 'the coordinator shell reports the forced COMMIT record as persisted before the disk synced it, so Commit leaves early',
    expected: 'P5',
    profile: 'all',
  },
  {
    name: 'commit-record-unforced',
    description: 'the coordinator shell writes the COMMIT record without fsync (a power loss can take it back after Commit left)',
    expected: 'P5',
    profile: 'power',
  },
  {
    name: 'yes-before-prepared-durable',
    description: 'the participant shell reports the forced PREPARED record as persisted before the disk synced it, so YES leaves early',
    expected: 'P7',
    profile: 'all',
  },
  {
    name: 'unknown-tx-committed',
    description: 'a decision-log lookup that finds nothing answers COMMITTED instead of presuming abort',
    expected: 'P4',
    profile: 'all',
  },
  {
    name: 'retry-gives-up',
    description: 'the coordinator shell drops phase-2 retry timers after 2 attempts, so a lost ack is never re-asked',
    expected: 'P10',
    profile: 'lossy',
  },
  {
    name: 'duplicate-commit-applied-twice',
    description: 'the participant shell applies the business effect again when a Commit arrives for a transaction it already committed',
    expected: 'P8',
    profile: 'network',
  },
  {
    name: 'unstaged-commit-effects',
    description: 'the commit hook writes its business effect straight to the store instead of staging it with the COMMITTED record',
    expected: 'P8',
    profile: 'all',
  },
  {
    name: 'no-vote-read-as-yes',
    description: 'the coordinator edge reads a NO vote as YES (an ambiguous status read as success, DTM #535)',
    expected: 'P4',
    profile: 'all',
  },
  {
    name: 'forget-commit-early',
    description: 'the coordinator shell deletes the COMMIT record as soon as the decision is sent, before every participant acknowledged',
    expected: 'P12',
    profile: 'all',
  },
  {
    name: 'participant-unilateral-abort',
    description: 'a participant that cannot reach the coordinator aborts its in-doubt transactions on its own',
    expected: 'P6',
    profile: 'partition',
  },
  {
    name: 'epoch-not-bumped',
    description: 'the coordinator restarts with the same epoch, so it hands out transaction ids again',
    expected: 'P4',
    profile: 'crash',
  },
  {
    name: 'no-abort-tombstone',
    description: 'an Abort that arrives before the Prepare leaves no tombstone, so the late Prepare still votes YES',
    expected: 'P9',
    profile: 'reorder',
  },
];

/** Whether `name` names a mutant. */
export function isMutantName(name: string): name is MutantName {
  return (MUTANT_NAMES as readonly string[]).includes(name);
}

/** How many phase-2 retries the `retry-gives-up` mutant allows per transaction. */
export const RETRY_GIVES_UP_AFTER = 2;
