// Structured logging. Library code logs through a pino logger handed in by the embedder, or a
// default one whose level comes from VERDICT_LOG_LEVEL (default: warn).

import { pino, type Logger } from 'pino';

export type { Logger };

/** Creates the default logger (to stderr). */
export function defaultLogger(name: string): Logger {
  return pino({ name, level: process.env['VERDICT_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
}
