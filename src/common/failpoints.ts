// Named failpoints at every protocol step of the coordinator and the participant SDK. Off by
// default and free when off (one size check); armed from VERDICT_FAILPOINTS or from code, each
// with an action: crash (exit at once, as a SIGKILL would), pause (hang the process N ms) or
// error (throw at that point).

import { ErrorCode, VerdictError } from '../errors.js';

/** Every failpoint, with what point of the protocol it marks. */
export const FAILPOINTS = {
  'coordinator.after-prepare-sent': 'a frame carrying Prepare was written to a participant session',
  'coordinator.after-votes': 'every vote is in and the commit decision is about to be logged',
  'coordinator.before-commit-record': 'the COMMIT record is about to be written (not durable yet)',
  'coordinator.after-commit-record': 'the COMMIT record is durable; no commit message has left yet',
  'coordinator.commit-record-write-fails': 'the COMMIT record was written; arm with error to fail the write after it landed, as LevelDB can after a failed sync',
  'coordinator.between-commit-sends': 'commit messages went to some participants but not all',
  'coordinator.before-end-record': 'every participant acknowledged; the END record is about to be written',
  'participant.before-prepared-record': 'prepare voted YES; the PREPARED record is about to be written',
  'participant.after-prepared-record': 'the PREPARED record is durable; the YES vote has not been sent',
  'participant.after-vote-sent': 'the vote was handed to the session',
  'participant.before-apply-hook': 'the commit or abort hook is about to run',
  'participant.after-apply-hook': 'the commit or abort hook returned; the outcome record is not written',
  'participant.before-ack': 'the outcome record is written; the acknowledgement is about to be sent',
  'participant.after-one-phase-commit-record': 'a one-phase COMMITTED record (the decision) is durable; the vote that answers it has not been sent',
  'postgres.after-one-phase-commit-prepared': "a PostgreSQL participant's one-phase COMMIT PREPARED returned; its commit-pending key and marker are not cleared",
} as const;

/**
 * Failpoints that only a one-phase transaction or a PostgreSQL participant reaches: a cluster of
 * demo banks, whose transfers always have two branches, never does.
 */
export const ONE_PHASE_OR_POSTGRES_FAILPOINTS: ReadonlySet<FailpointName> = new Set(['participant.after-one-phase-commit-record', 'postgres.after-one-phase-commit-prepared']);

/** The name of a failpoint. */
export type FailpointName = keyof typeof FAILPOINTS;

/** What an armed failpoint does when reached. */
export type FailpointAction =
  | { readonly kind: 'crash' }
  | { readonly kind: 'pause'; readonly ms: number }
  | { readonly kind: 'error'; readonly message?: string };

interface Armed {
  readonly action: FailpointAction;
  /** Fire from this hit on (1 = the first time it is reached). */
  readonly fromHit: number;
  hits: number;
}

const armed = new Map<FailpointName, Armed>();
const ACTION_PATTERN = /^(crash|error|pause:(\d{1,7}))(?:@(\d{1,9}))?$/;

/** Whether `name` is a failpoint. */
export function isFailpointName(name: string): name is FailpointName {
  return Object.hasOwn(FAILPOINTS, name);
}

/** Arms `name` with `action`; with `fromHit` N it fires from the N-th time it is reached on. */
export function armFailpoint(name: FailpointName, action: FailpointAction, fromHit = 1): void {
  armed.set(name, { action, fromHit, hits: 0 });
}

/** Disarms `name` (or every failpoint). */
export function disarmFailpoint(name?: FailpointName): void {
  if (name) armed.delete(name);
  else armed.clear();
}

/** The armed failpoints. */
export function armedFailpoints(): FailpointName[] {
  return [...armed.keys()];
}

/**
 * Marks a protocol step. Does nothing unless `name` is armed; then crashes the process, hangs it
 * for the given time (synchronously: nothing else runs, as if the process were stopped), or throws.
 */
export function failpoint(name: FailpointName): void {
  if (armed.size === 0) return;
  const entry = armed.get(name);
  if (!entry || ++entry.hits < entry.fromHit) return;
  const { action } = entry;
  switch (action.kind) {
    case 'crash':
      process.kill(process.pid, 'SIGKILL');
      // SIGKILL is delivered at once; stop here in case it is not.
      for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1_000);
    case 'pause':
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, action.ms);
      return;
    case 'error':
      throw new VerdictError(ErrorCode.INTERNAL, action.message ?? `failpoint ${name} fired`);
  }
}

/**
 * Parses a failpoint specification: comma-separated `name=action` where action is `crash`,
 * `error` or `pause:MS`, optionally followed by `@N` to fire from the N-th hit. Throws
 * INVALID_ARGUMENT for anything else.
 */
export function parseFailpointSpec(spec: string): { name: FailpointName; action: FailpointAction; fromHit: number }[] {
  const out: { name: FailpointName; action: FailpointAction; fromHit: number }[] = [];
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const m = ACTION_PATTERN.exec(eq < 0 ? '' : part.slice(eq + 1));
    if (!isFailpointName(name)) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `unknown failpoint ${JSON.stringify(name)} (see: verdict failpoints)`);
    if (!m) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `failpoint ${name}: action must be crash, error or pause:MS, optionally @N`);
    const action: FailpointAction = m[1] === 'crash' ? { kind: 'crash' } : m[1] === 'error' ? { kind: 'error' } : { kind: 'pause', ms: Number(m[2]) };
    out.push({ name, action, fromHit: m[3] ? Math.max(1, Number(m[3])) : 1 });
  }
  return out;
}

/** Arms the failpoints named in `spec` (the VERDICT_FAILPOINTS syntax). */
export function armFailpointsFrom(spec: string): void {
  for (const { name, action, fromHit } of parseFailpointSpec(spec)) armFailpoint(name, action, fromHit);
}

/** The environment variable read at start-up. */
export const FAILPOINTS_ENV = 'VERDICT_FAILPOINTS';

let envProblem: VerdictError | undefined;
const fromEnv = process.env[FAILPOINTS_ENV];
if (fromEnv) {
  try {
    armFailpointsFrom(fromEnv);
  } catch (e) {
    // Reported by `checkFailpointEnv` (called at every start), not thrown at import time.
    envProblem = e as VerdictError;
  }
}

/** Throws INVALID_ARGUMENT when VERDICT_FAILPOINTS could not be parsed. */
export function checkFailpointEnv(): void {
  if (envProblem) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `${FAILPOINTS_ENV}: ${envProblem.message}`, { cause: envProblem });
}
