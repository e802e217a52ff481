// `verdict coordinator`: runs the coordinator until SIGINT or SIGTERM. Prints exactly one line on
// stdout, `listening on HOST:PORT`, once it serves (scripts and tests parse it); logs go to stderr.
// The coordinator itself (gRPC, LevelDB, pino) is imported only when the command runs.

import { Option, type Command } from 'commander';
import {
  DEFAULT_COORDINATOR_DATA_DIR,
  DEFAULT_LISTEN,
  DEFAULT_MAX_LIVE_PER_CLIENT,
  DEFAULT_MAX_LOOKUPS_PER_SESSION,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_PARTICIPANT_NAMES,
  DEFAULT_MAX_PENDING_PER_CLIENT,
  DEFAULT_MAX_SESSIONS,
} from '../coordinator/coordinator-options.js';
import type { CoordinatorSecurityOptions } from '../coordinator/security-options.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { DEFAULT_COORDINATOR_MACHINE_CONFIG } from '../protocol/coordinator-machine.js';
import { durationParser, formatDuration, parseAddress, parseLogLevel, parsePositiveInt, type LogLevel } from './cli-arguments.js';

/** Flags of `verdict coordinator`. */
export interface CoordinatorCommandOptions {
  readonly listen: string;
  readonly data: string;
  readonly logLevel?: LogLevel;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly tlsCa?: string;
  readonly tokens?: string;
  readonly insecure?: boolean;
  readonly maxLiveTransactions: number;
  readonly maxReservedTxIds: number;
  readonly maxLivePerClient: number;
  readonly maxPendingPerClient: number;
  readonly maxSessions: number;
  readonly maxParticipantNames: number;
  readonly maxLookupsPerSession: number;
  readonly maxPayloadBytes: number;
  readonly maxPayloadBytesInMemory: number;
  readonly maxMessageBytes: number;
  readonly unregisteredGrace: number;
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
    .option('--tls-cert <file>', 'serve TLS with this certificate (PEM); reloaded on SIGHUP')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM); reloaded on SIGHUP')
    .option('--tls-ca <file>', 'require client certificates signed by this CA; their SAN URI is the identity')
    .option('--tokens <file>', 'bearer tokens, one "verdict://<role>/<name> <token>" per line')
    .option('--insecure', 'allow a non-loopback --listen without TLS and client authentication')
    .option('--max-live-transactions <n>', 'live transactions in all', parsePositiveInt, DEFAULT_COORDINATOR_MACHINE_CONFIG.maxLiveTransactions)
    .option('--max-reserved-tx-ids <n>', 'reserved transaction ids not yet used, in all', parsePositiveInt, DEFAULT_COORDINATOR_MACHINE_CONFIG.maxReservedTxIds)
    .option('--max-live-per-client <n>', 'transactions one client connection may have begun and not finished', parsePositiveInt, DEFAULT_MAX_LIVE_PER_CLIENT)
    .option('--max-pending-per-client <n>', 'unanswered calls per client connection', parsePositiveInt, DEFAULT_MAX_PENDING_PER_CLIENT)
    .option('--max-sessions <n>', 'live participant sessions', parsePositiveInt, DEFAULT_MAX_SESSIONS)
    .option('--max-participant-names <n>', 'distinct participant names one coordinator run remembers (a new name beyond it is refused)', parsePositiveInt, DEFAULT_MAX_PARTICIPANT_NAMES)
    .option('--max-lookups-per-session <n>', "log reads in flight for one session's inquiries", parsePositiveInt, DEFAULT_MAX_LOOKUPS_PER_SESSION)
    .option('--max-payload-bytes <n>', 'bytes of one branch payload', parsePositiveInt, DEFAULT_COORDINATOR_MACHINE_CONFIG.maxPayloadBytes)
    .option('--max-payload-bytes-in-memory <n>', 'branch payload bytes all live transactions hold together', parsePositiveInt, DEFAULT_COORDINATOR_MACHINE_CONFIG.maxPayloadBytesInMemory)
    .option('--max-message-bytes <n>', 'largest gRPC message received or sent', parsePositiveInt, DEFAULT_MAX_MESSAGE_BYTES)
    .addOption(
      new Option('--unregistered-grace <duration>', 'how long a branch waits for a participant that never registered before it aborts')
        .argParser(durationParser())
        .default(DEFAULT_COORDINATOR_MACHINE_CONFIG.unregisteredGraceMs, formatDuration(DEFAULT_COORDINATOR_MACHINE_CONFIG.unregisteredGraceMs)),
    )
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
  let coordinator: Awaited<ReturnType<typeof Coordinator.start>> | undefined;
  const reload = (): void => {
    try {
      coordinator?.reloadCertificates();
    } catch (e) {
      logger.error({ err: e }, 'SIGHUP: the TLS files were not reloaded; the old ones stay in use');
    }
  };
  try {
    if (options.maxPayloadBytes + 1024 > options.maxMessageBytes) {
      throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `--max-payload-bytes ${options.maxPayloadBytes} does not fit in a message of --max-message-bytes ${options.maxMessageBytes} (leave 1024 bytes for the rest of the message)`);
    }
    coordinator = await Coordinator.start({
      ...securityOptions(options),
      listen: options.listen,
      dataDir: options.data,
      logger,
      maxMessageBytes: options.maxMessageBytes,
      protocol: {
        maxLiveTransactions: options.maxLiveTransactions,
        maxReservedTxIds: options.maxReservedTxIds,
        maxPayloadBytes: options.maxPayloadBytes,
        maxPayloadBytesInMemory: options.maxPayloadBytesInMemory,
        unregisteredGraceMs: options.unregisteredGrace,
      },
      limits: {
        maxLivePerClient: options.maxLivePerClient,
        maxPendingPerClient: options.maxPendingPerClient,
        maxSessions: options.maxSessions,
        maxParticipantNames: options.maxParticipantNames,
        maxLookupsPerSession: options.maxLookupsPerSession,
      },
    });
    coordinator.once('error', stop);
    if (options.tlsCert) process.on('SIGHUP', reload);
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
    process.removeListener('SIGHUP', reload);
  }
}

/** The coordinator's security options from the flags; TLS flags go together. */
function securityOptions(options: CoordinatorCommandOptions): CoordinatorSecurityOptions {
  const { tlsCert, tlsKey, tlsCa } = options;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, '--tls-cert and --tls-key go together');
  if (tlsCa !== undefined && tlsCert === undefined) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, '--tls-ca needs --tls-cert and --tls-key');
  return {
    ...(tlsCert !== undefined && tlsKey !== undefined ? { tls: { certFile: tlsCert, keyFile: tlsKey, ...(tlsCa !== undefined ? { caFile: tlsCa } : {}) } } : {}),
    ...(options.tokens !== undefined ? { tokensFile: options.tokens } : {}),
    ...(options.insecure ? { insecure: true } : {}),
  };
}
