// Parsers for the CLI's option values: each turns a bad value into commander's one-line
// "argument is invalid" error instead of letting it reach the code that would use it.

import { InvalidArgumentError } from 'commander';

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

/** An integer ≥ 1. */
export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}
