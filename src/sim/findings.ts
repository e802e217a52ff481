// Protocol problems the simulator found that are not fixed yet. Each one is kept out of ordinary
// runs by a SimConfig switch, so that the properties stay green for everything else; `--expose`
// turns the switch back and the recorded seed reproduces the failure.

import type { ProfileName } from './scenario.js';
import type { SimConfig } from './sim-options.js';

/** A known, unfixed finding. */
export interface Finding {
  readonly id: string;
  readonly title: string;
  /** The config that lets the simulator reach it again. */
  readonly expose: Partial<SimConfig>;
  /** A seed (and profile) that fails with it exposed. */
  readonly seed: number;
  readonly profile: ProfileName;
}

/** Every known finding. */
export const FINDINGS: readonly Finding[] = [
  {
    id: 'F1',
    title:
      'a late or duplicated EnlistResult makes the participant re-create a finished transaction as enlisted: it inquires forever, ignoring the Commit it is told as premature (seed 9000905, profile all), and after GC the presumed abort it draws overwrites its COMMITTED record with ABORTED',
    expose: { enlistInOrder: false },
    seed: 48,
    profile: 'network',
  },
  {
    id: 'F2',
    title:
      'a read-only vote keeps no record, so a duplicated or replayed Prepare runs the prepare hook again; if it now answers NO (or misses the deadline) the participant logs ABORTED for a committed transaction',
    expose: { stableReadOnlyHooks: false },
    seed: 2249,
    profile: 'network',
  },
  {
    id: 'F3',
    title:
      'a 2PC transaction in which every branch voted READ_ONLY is reported COMMITTED with nothing forced; a power loss takes its END summary and GetTransaction then answers ABORTED (presumed)',
    expose: { lenientAllReadOnly: false },
    seed: 5396,
    profile: 'power',
  },
];

/** The config with the switches of `ids` (or every finding, for 'all') turned back. */
export function exposeFindings(config: SimConfig, ids: readonly string[]): SimConfig {
  let out = config;
  for (const f of FINDINGS) if (ids.includes('all') || ids.includes(f.id)) out = { ...out, ...f.expose };
  return out;
}
