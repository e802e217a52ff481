// CPU time of processes the bench did not fork itself (the etcd members of a `--group` run), read
// from /proc: they cannot report over IPC as bench children do. Linux only; elsewhere the figure
// is unknown (NaN), never a guess.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times, when `getconf` cannot say (Linux's usual value). */
const DEFAULT_CLOCK_TICKS_PER_S = 100;

let ticksPerS: number | undefined;

function clockTicksPerS(): number {
  if (ticksPerS === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(out.stdout?.trim());
    ticksPerS = out.status === 0 && Number.isSafeInteger(n) && n > 0 ? n : DEFAULT_CLOCK_TICKS_PER_S;
  }
  return ticksPerS;
}

/**
 * User + system CPU time of the processes `pids` together so far, in µs (to /proc's resolution,
 * usually 10 ms). NaN when one of them cannot be read (gone, or not Linux).
 */
export function processesCpuUs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return Number.NaN;
    }
    // The command name (2nd field) is in parentheses and may hold spaces: count from after it.
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks * 1_000_000) / clockTicksPerS();
}
