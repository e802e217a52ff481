// Mutant switches: deliberately wrong variants of the coordinator and participant shells, each a
// named switch inside the real code path (off unless armed, like a failpoint). The simulator arms
// one at a time and must catch every one: that is the proof that its properties bite on the code
// users run. Nothing arms them in production; a disarmed check costs one size test.

/** Every mutant, with the wrong thing it makes the shell do. */
export const MUTANT_SWITCHES = {
  'commit-before-durable': 'the coordinator reports the forced COMMIT record as persisted before the write finished, so Commit leaves early',
  'commit-record-unforced': 'the coordinator writes the COMMIT record without fsync (a power loss can take it back after Commit left)',
  'commit-write-unsynced': 'the group committer never syncs: every forced write is written without fsync',
  'abort-on-failed-commit-write': 'a failed COMMIT write is read as "not written": the coordinator aborts a transaction that may have committed',
  'yes-before-prepared-durable': 'the participant reports the forced PREPARED record as persisted before the write finished, so YES leaves early',
  'yes-before-prepared-synced': 'the participant writes the PREPARED record without fsync, then votes YES',
  'ack-before-outcome-synced': 'the participant writes the outcome record without fsync, then acknowledges it',
  'unknown-tx-committed': 'a decision-log lookup that finds nothing answers COMMITTED instead of presuming abort',
  'retry-gives-up': 'the coordinator gives up re-driving a decision after 2 messages: later retries, redeliveries on reconnect and answers to inquiries are dropped',
  'duplicate-commit-applied-twice': 'the participant runs the commit hook again, and writes its effect, when a Commit arrives for a transaction it already committed',
  'unstaged-commit-effects': "the SDK applies a hook's staged writes to the store at once instead of with the outcome record",
  'no-vote-read-as-yes': 'the coordinator reads a NO vote as YES (an ambiguous status read as success, DTM #535)',
  'forget-commit-early': 'the coordinator deletes the COMMIT record as soon as the decision is made, before every participant acknowledged',
  'participant-unilateral-abort': 'a participant that cannot reach the coordinator aborts its in-doubt transactions on its own',
  'epoch-not-bumped': 'the coordinator restarts with the same epoch, so it hands out transaction ids again',
  'lock-conflicts-ignored': "the participant's lock manager grants every lock, even one another transaction holds exclusively",
  'frame-over-limit': 'session frames ignore the message size limit: everything queued in one turn leaves as one frame',
  'decision-write-unfenced': "the etcd decision store's writes compare nothing that a new leader changes: a deposed leader's write lands",
  'decision-write-fenced-per-node':
    "the etcd decision store's writes compare the leader key's value (this member's id and address) instead of its create revision: a write of an earlier term of a member lands once that member leads again",
  'leader-outlives-lease': 'a group member believes it leads until etcd tells it otherwise, past the validity deadline of its lease',
} as const;

/** A mutant's name. */
export type MutantName = keyof typeof MUTANT_SWITCHES;

/** Every mutant name, in a stable order. */
export const MUTANT_NAMES = Object.keys(MUTANT_SWITCHES) as MutantName[];

const armed = new Set<MutantName>();

/** Whether `name` names a mutant. */
export function isMutantName(name: string): name is MutantName {
  return Object.hasOwn(MUTANT_SWITCHES, name);
}

/** Arms `names` (and disarms every other mutant); with no names, disarms all. */
export function armMutants(...names: MutantName[]): void {
  armed.clear();
  for (const n of names) armed.add(n);
}

/** Whether the mutant `name` is armed. The shells call this where the mutant would change them. */
export function mutant(name: MutantName): boolean {
  return armed.size > 0 && armed.has(name);
}
