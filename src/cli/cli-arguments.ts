// Parsers for the CLI's option values: each turns a bad value into commander's one-line
// "argument is invalid" error instead of letting it reach the code that would use it. Every
// command takes durations in one syntax (`parseDuration`) and shows its defaults in it.

import { InvalidArgumentError } from 'commander';
import { parseEtcdEndpoint } from '../cluster/group-member-options.js';

/** A `HOST:PORT` address (port 0 lets the system pick one). */
export function parseAddress(value: string): string {
  const colon = value.lastIndexOf(':');
  const host = value.slice(0, colon);
  const port = value.slice(colon + 1);
  if (colon <= 0 || host === '[]' || !/^\d{1,5}$/.test(port) || Number(port) > 65_535) {
    throw new InvalidArgumentError('expected HOST:PORT, e.g. 127.0.0.1:7070');
  }
  return value;
}

/** One etcd endpoint: `HOST:PORT`, `http://HOST:PORT` or `https://HOST:PORT`. */
export function parseEtcdEndpointArgument(value: string): string {
  const endpoint = parseEtcdEndpoint(value);
  if (!endpoint) throw new InvalidArgumentError('expected HOST:PORT, http://HOST:PORT or https://HOST:PORT');
  return endpoint.scheme ? `${endpoint.scheme}://${parseAddress(endpoint.hostPort)}` : parseAddress(endpoint.hostPort);
}

/** An integer ≥ 1. */
export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** Levels `--log-level` accepts. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Whether `value` is one of `LOG_LEVELS`. */
export const isLogLevel = (value: string): value is LogLevel => (LOG_LEVELS as readonly string[]).includes(value);

/** Parses `--log-level`. */
export function parseLogLevel(value: string): LogLevel {
  if (!isLogLevel(value)) throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`);
  return value;
}

/** Milliseconds per duration unit. */
const DURATION_UNITS_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
type DurationUnit = keyof typeof DURATION_UNITS_MS;
/** The longest duration any flag takes, in ms. */
export const MAX_DURATION_MS = 24 * 3_600_000;

/** Bounds of one duration flag, in ms (inclusive). */
export interface DurationBounds {
  readonly minMs?: number;
  readonly maxMs?: number;
}

/**
 * Parses a duration: a number and a unit, `500ms`, `30s`, `2m`, `1h` or `1.5s`; `0` alone is
 * zero. A number without a unit is refused rather than guessed: the CLI once read such numbers
 * as seconds in one command and as milliseconds in another. Returns milliseconds.
 */
export function parseDuration(value: string, bounds: DurationBounds = {}): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m || (m[2] === undefined && Number(m[1]) !== 0)) {
    throw new InvalidArgumentError('expected a duration with a unit, e.g. 500ms, 30s, 2m or 1h');
  }
  const ms = Math.round(Number(m[1]) * DURATION_UNITS_MS[(m[2] ?? 'ms') as DurationUnit]);
  const min = bounds.minMs ?? 0;
  const max = bounds.maxMs ?? MAX_DURATION_MS;
  if (ms < min || ms > max) throw new InvalidArgumentError(`expected a duration from ${formatDuration(min)} to ${formatDuration(max)}`);
  return ms;
}

/** A commander parser for a duration flag within `bounds` (in ms). */
export function durationParser(bounds: DurationBounds = {}): (value: string) => number {
  return (value) => parseDuration(value, bounds);
}

/** Milliseconds in the syntax `parseDuration` reads, in the largest unit that keeps it whole: 30000 → `30s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const unit of ['h', 'm', 's'] as const) {
    if (ms % DURATION_UNITS_MS[unit] === 0) return `${ms / DURATION_UNITS_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}
