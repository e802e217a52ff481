// `verdict coordinator`: runs the coordinator until SIGINT or SIGTERM. Prints exactly one line on
// stdout, `listening on HOST:PORT`, once it serves (scripts and tests parse it); logs go to stderr.
// The coordinator itself (gRPC, LevelDB, pino) is imported only when the command runs.

import type { Command } from 'commander';
import { DEFAULT_COORDINATOR_DATA_DIR, DEFAULT_LISTEN } from '../coordinator/coordinator-options.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { parseAddress, parseLogLevel, type LogLevel } from './cli-arguments.js';

/** Flags of `verdict coordinator`. */
export interface CoordinatorCommandOptions {
  readonly listen: string;
  readonly data: string;
  readonly logLevel?: LogLevel;
}

const SHUTDOWN_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** Adds `coordinator` to `program`. */
export function addCoordinatorCommand(program: Command): void {
  program
    .command('coordinator')
    .description('run the transaction coordinator until SIGINT or SIGTERM')
    .option('--listen <host:port>', 'address to serve on; port 0 picks a free one', parseAddress, DEFAULT_LISTEN)
    .option('--data <dir>', 'directory of the decision log', DEFAULT_COORDINATOR_DATA_DIR)
    .option('--log-level <level>', 'log level on stderr (default: VERDICT_LOG_LEVEL, else info)', parseLogLevel)
    .action((options: CoordinatorCommandOptions) => runCoordinator(options));
}

/**
 * Starts the coordinator and resolves once it has shut down after a signal. A first signal closes
 * it cleanly; a second one, while closing, ends the process at once (the signal's default).
 * Rejects with the start error (DATA_DIR_LOCKED, LOG_CORRUPT, …) or when the coordinator stops
 * on its own after an internal failure.
 */
export async function runCoordinator(options: CoordinatorCommandOptions): Promise<void> {
  const [{ Coordinator }, { cliLogger }] = await Promise.all([import('../coordinator/index.js'), import('./cli-logger.js')]);
  const logger = cliLogger(options.logLevel, 'info');
  let resolveStopped!: (why: NodeJS.Signals | Error) => void;
  const stopped = new Promise<NodeJS.Signals | Error>((resolve) => (resolveStopped = resolve));
  const unlisten = (): void => {
    for (const signal of SHUTDOWN_SIGNALS) process.removeListener(signal, stop);
  };
  // Only the first signal is ours: without a listener, the next one ends the process at once.
  const stop = (why: NodeJS.Signals | Error): void => {
    unlisten();
    resolveStopped(why);
  };
  // Listening before the start: a signal during recovery still ends in a clean close.
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, stop);
  try {
    const coordinator = await Coordinator.start({ listen: options.listen, dataDir: options.data, logger });
    coordinator.once('error', stop);
    console.log(`listening on ${coordinator.address}`);
    const why = await stopped;
    if (why instanceof Error) {
      await coordinator.close();
      // A failing log is a known stop with its own message; anything else is a bug.
      if (why instanceof VerdictError) throw why;
      throw new VerdictError(ErrorCode.INTERNAL, `the coordinator stopped after an unexpected error: ${why.message}`, { cause: why });
    }
    logger.info({ signal: why }, 'shutting down');
    await coordinator.close();
  } finally {
    unlisten();
  }
}
