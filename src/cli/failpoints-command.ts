// `verdict failpoints`: lists the named failpoints, one line each, and how to arm them.

import type { Command } from 'commander';
import { FAILPOINTS, FAILPOINTS_ENV } from '../common/failpoints.js';

/** Adds `verdict failpoints` to `program`. */
export function addFailpointsCommand(program: Command): void {
  program
    .command('failpoints')
    .description('list the failpoints that can be armed in the coordinator and the participant SDK')
    .action(() => {
      const width = Math.max(...Object.keys(FAILPOINTS).map((n) => n.length));
      for (const [name, what] of Object.entries(FAILPOINTS)) console.log(`${name.padEnd(width)}  ${what}`);
      console.log();
      console.log(`Arm with ${FAILPOINTS_ENV}="name=action,..." where action is crash, error or pause:MS,`);
      console.log(`optionally followed by @N to fire from the N-th time the point is reached.`);
      console.log(`Example: ${FAILPOINTS_ENV}=coordinator.after-commit-record=crash verdict coordinator`);
    });
}
