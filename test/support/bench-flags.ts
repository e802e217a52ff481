// Test support: `verdict bench`'s flag parsing on its own, for tests of refused flags.

import { Command } from 'commander';
import { configureBenchCommand } from '../../src/bench/index.js';

/**
 * Parses `args` as `verdict bench` would and returns what it threw (undefined when nothing).
 * Only for flags that are refused: flags that parse run the bench.
 */
export async function parseBenchFlags(args: readonly string[]): Promise<unknown> {
  const command = configureBenchCommand(new Command('bench'))
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, outputError: () => undefined });
  try {
    await command.parseAsync([...args], { from: 'user' });
    return undefined;
  } catch (e) {
    return e;
  }
}
