// The `verdict` command. Every failure a user can cause or fix (bad flags, a data directory in
// use, an unreadable log) ends as one line, `verdict: <message>`, and exit code 1; only a bug
// prints a stack trace. The command modules imported here only declare flags: each loads what
// it runs (gRPC, LevelDB, the bench, the chaos runner) when its action starts, so that `--help`
// and `failpoints` start fast.

import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { addBenchCommand } from '../bench/bench-command.js';
import { addAdminCommands } from './admin-command.js';
import { VerdictError } from '../errors.js';
import { exitQuietlyOnBrokenPipe } from './broken-pipe.js';
import { addCertsCommand } from './certs-command.js';
import { addChaosCommand } from './chaos-command.js';
import { addCoordinatorCommand } from './coordinator-command.js';
import { addDemoCommand } from './demo-command.js';
import { addFailpointsCommand } from './failpoints-command.js';
import { stopWithLauncher } from './launcher-watch.js';

/** Commander exits that are not failures, or that already printed what they had to say. */
const QUIET_EXITS: ReadonlySet<string> = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version']);
/** How long the process may take to exit by itself once the command is done, in ms. */
const EXIT_GRACE_MS = 2_000;

/** Builds the `verdict` program. */
export function buildProgram(): Command {
  const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };
  const program = new Command('verdict')
    .description('a distributed transaction coordinator: two-phase commit over gRPC with a LevelDB decision log')
    .version(version)
    // Errors are thrown to `main`, which prints them as one line; set before the subcommands so
    // that they inherit it.
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  addCoordinatorCommand(program);
  addDemoCommand(program);
  addFailpointsCommand(program);
  addBenchCommand(program);
  addChaosCommand(program);
  addCertsCommand(program);
  addAdminCommands(program);
  return program;
}

/** Runs the program on `argv`; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    return reportError(e);
  }
}

function reportError(e: unknown): number {
  if (e instanceof CommanderError) {
    if (QUIET_EXITS.has(e.code)) return e.exitCode;
    console.error(`verdict: ${oneLine(e.message.replace(/^error: /, ''))}`);
    return 1;
  }
  if (e instanceof VerdictError) {
    console.error(`verdict: ${oneLine(e.message)}`);
    return 1;
  }
  console.error('verdict: unexpected error (a bug; please report it):', e);
  return 1;
}

function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
}

exitQuietlyOnBrokenPipe(process.stdout);
stopWithLauncher();
const code = await main(process.argv);
process.exitCode = code;
// Normally nothing is left and the process ends now; a leaked handle must not keep it alive.
setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
