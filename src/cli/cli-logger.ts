// The CLI's logger: pino to stderr (stdout carries the command's own output), at the level of
// `--log-level`, else VERDICT_LOG_LEVEL, else the command's default.

import { InvalidArgumentError } from 'commander';
import { pino, type Logger } from 'pino';
import { ErrorCode, VerdictError } from '../errors.js';

/** Levels `--log-level` accepts. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

const isLevel = (value: string): value is LogLevel => (LOG_LEVELS as readonly string[]).includes(value);

/** Parses `--log-level`. */
export function parseLogLevel(value: string): LogLevel {
  if (!isLevel(value)) throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`);
  return value;
}

/** Creates the CLI's logger. `flag` wins over VERDICT_LOG_LEVEL, which wins over `fallback`. */
export function cliLogger(flag: LogLevel | undefined, fallback: LogLevel): Logger {
  const env = process.env['VERDICT_LOG_LEVEL'];
  if (flag === undefined && env !== undefined && env !== '' && !isLevel(env)) {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `VERDICT_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got ${env})`);
  }
  const level = flag ?? (env ? (env as LogLevel) : fallback);
  // Synchronous: the last lines before an exit are the ones that explain it.
  return pino({ name: 'verdict', level }, pino.destination({ fd: 2, sync: true }));
}
