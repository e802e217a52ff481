// The CLI's logger: pino to stderr (stdout carries the command's own output), at the level of
// `--log-level`, else VERDICT_LOG_LEVEL, else the command's default. Imported only by the
// commands that run something, so that `--help` does not load pino.

import { pino, type Logger } from 'pino';
import { ErrorCode, VerdictError } from '../errors.js';
import { isLogLevel, LOG_LEVELS, type LogLevel } from './cli-arguments.js';

/** Creates the CLI's logger. `flag` wins over VERDICT_LOG_LEVEL, which wins over `fallback`. */
export function cliLogger(flag: LogLevel | undefined, fallback: LogLevel): Logger {
  const env = process.env['VERDICT_LOG_LEVEL'];
  if (flag === undefined && env !== undefined && env !== '' && !isLogLevel(env)) {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `VERDICT_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got ${env})`);
  }
  const level = flag ?? (env ? (env as LogLevel) : fallback);
  // Synchronous: the last lines before an exit are the ones that explain it.
  return pino({ name: 'verdict', level }, pino.destination({ fd: 2, sync: true }));
}
