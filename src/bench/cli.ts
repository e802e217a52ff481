// `npm run bench`: the bench command as a program of its own. A bad flag or a failed run ends
// as one line on stderr and exit code 1.

import { Command, CommanderError } from 'commander';
import { configureBenchCommand } from './bench-command.js';

/** How long the process may take to exit by itself once the run is done, in ms. */
const EXIT_GRACE_MS = 2_000;

async function main(argv: readonly string[]): Promise<number> {
  const program = configureBenchCommand(new Command('bench'))
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help') return 0;
      process.stderr.write(`bench: ${e.message.replace(/^error: /, '')}\n`);
      return 1;
    }
    const cause = e instanceof Error && e.cause instanceof Error ? ` (${e.cause.message})` : '';
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}${cause}\n`);
    return 1;
  }
}

const code = await main(process.argv);
process.exitCode = code;
setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
