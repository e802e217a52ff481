// The mutants the simulator hunts: each a named switch inside the production coordinator or
// participant (src/common/mutants.ts), armed for one run. The simulator must catch every one, and
// with the property the mutant breaks: that is the proof that the properties bite on the code
// users run.

import { MUTANT_NAMES, MUTANT_SWITCHES, type MutantName } from '../common/mutants.js';
import type { PropertyId } from './checker.js';
import type { ProfileName } from './scenario.js';

export { isMutantName, MUTANT_NAMES, type MutantName } from '../common/mutants.js';

/** A mutant: what it breaks and which property catches it. */
export interface Mutant {
  readonly name: MutantName;
  readonly description: string;
  /** The properties a run may report first when it catches the mutant (the first is the main one). */
  readonly expected: readonly PropertyId[];
  /** The scenario profile that exercises it best (what `--mutant` uses unless told otherwise). */
  readonly profile: ProfileName;
}

const CATCH: Record<MutantName, { readonly expected: readonly PropertyId[]; readonly profile: ProfileName }> = {
  'commit-before-durable': { expected: ['P5'], profile: 'all' },
  'commit-record-unforced': { expected: ['P5'], profile: 'power' },
  'commit-write-unsynced': { expected: ['P5', 'P7'], profile: 'all' },
  'abort-on-failed-commit-write': { expected: ['P20'], profile: 'disk' },
  'yes-before-prepared-durable': { expected: ['P7'], profile: 'all' },
  'yes-before-prepared-synced': { expected: ['P7'], profile: 'all' },
  'ack-before-outcome-synced': { expected: ['P7'], profile: 'all' },
  'unknown-tx-committed': { expected: ['P4', 'P2'], profile: 'all' },
  'retry-gives-up': { expected: ['P10', 'P13'], profile: 'lossy' },
  'duplicate-commit-applied-twice': { expected: ['P8'], profile: 'lossy' },
  'unstaged-commit-effects': { expected: ['P8', 'P10'], profile: 'all' },
  'no-vote-read-as-yes': { expected: ['P3', 'P4', 'P1', 'P18'], profile: 'all' },
  'forget-commit-early': { expected: ['P12'], profile: 'all' },
  'participant-unilateral-abort': { expected: ['P6'], profile: 'partition' },
  'epoch-not-bumped': { expected: ['P4'], profile: 'crash' },
  'frame-over-limit': { expected: ['P17'], profile: 'network' },
  'lock-conflicts-ignored': { expected: ['P21'], profile: 'calm' },
  'decision-write-unfenced': { expected: ['P23'], profile: 'ha' },
  'decision-write-fenced-per-node': { expected: ['P23'], profile: 'ha' },
  'leader-outlives-lease': { expected: ['P24'], profile: 'ha' },
};

/** Every mutant, in the order `--list-mutants` prints them. */
export const MUTANTS: readonly Mutant[] = MUTANT_NAMES.map((name) => ({ name, description: MUTANT_SWITCHES[name], ...CATCH[name] }));
