// Configuration of `verdict coordinator` beyond the basic flags: the tuning flags (timeouts,
// retries, keepalive, retention, group commit), `--config FILE` (JSON, validated with zod; each
// key is a flag's name in camelCase, with the flag's value syntax), and the rule that joins them:
// a flag given on the command line wins over the file, the file over the default.

import { dirname, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import {
  DEFAULT_GC_INTERVAL_MS,
  DEFAULT_KEEPALIVE_MS,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
  DEFAULT_MAX_CALL_MS,
  DEFAULT_RETENTION_MS,
} from '../coordinator/coordinator-options.js';
import { DEFAULT_COORDINATOR_MACHINE_CONFIG } from '../protocol/coordinator-machine.js';
import { durationParser, formatDuration, parsePositiveInt, type DurationBounds } from './cli-arguments.js';

/** The longest retention of finished transactions' summaries: a year, in ms. */
const MAX_RETENTION_MS = 365 * 24 * 3_600_000;
/** Bounds of the duration flags, by option key. */
export const DURATION_BOUNDS: Readonly<Record<string, DurationBounds>> = {
  unregisteredGrace: {},
  defaultTimeout: { minMs: 1 },
  maxTimeout: { minMs: 1 },
  retryInitial: { minMs: 1 },
  retryMax: { minMs: 1 },
  maxCall: { minMs: 1 },
  keepalive: { minMs: 1_000 },
  keepaliveTimeout: { minMs: 1 },
  retention: { maxMs: MAX_RETENTION_MS },
  gcInterval: { minMs: 1_000 },
};

/** Keys of the config file that name files or directories (resolved against the file's directory). */
const PATH_KEYS: ReadonlySet<string> = new Set(['data', 'tlsCert', 'tlsKey', 'tlsCa', 'tokens', 'etcdCa', 'etcdCert', 'etcdKey', 'etcdPasswordFile']);

/** The tuning flags' values (durations in ms). */
export interface CoordinatorTuningOptions {
  readonly defaultTimeout: number;
  readonly maxTimeout: number;
  readonly maxBranches: number;
  readonly retryInitial: number;
  readonly retryMax: number;
  readonly attentionAfterAttempts: number;
  readonly maxCall: number;
  readonly keepalive: number;
  readonly keepaliveTimeout: number;
  readonly retention: number;
  readonly gcInterval: number;
  readonly groupCommit: boolean;
  readonly frameBatching: boolean;
  readonly config?: string;
}

const duration = (key: string, description: string, defaultMs: number): Option =>
  new Option(`--${kebab(key)} <duration>`, description).argParser(durationParser(DURATION_BOUNDS[key])).default(defaultMs, formatDuration(defaultMs));

/** Adds the tuning flags and `--config` to `command`. */
export function addTuningOptions(command: Command): Command {
  const d = DEFAULT_COORDINATOR_MACHINE_CONFIG;
  return command
    .option('--config <file>', 'read options from this JSON file (keys are the flag names in camelCase); flags win over it')
    .addOption(duration('defaultTimeout', 'transaction timeout when a request gives none', d.defaultTimeoutMs))
    .addOption(duration('maxTimeout', 'the longest timeout a request may ask for', d.maxTimeoutMs))
    .option('--max-branches <n>', 'branches one transaction may have', parsePositiveInt, d.maxBranches)
    .addOption(duration('retryInitial', 'first delay before a decision is sent again', d.retryInitialMs))
    .addOption(duration('retryMax', 'cap of the delay between decision retries', d.retryMaxMs))
    .option('--attention-after-attempts <n>', 'delivery attempts after which a transaction is flagged as needing attention', parsePositiveInt, d.attentionAfterAttempts)
    .addOption(duration('maxCall', 'longest a call waits for an outcome before it answers OUTCOME_UNKNOWN', DEFAULT_MAX_CALL_MS))
    .addOption(duration('keepalive', 'interval of keepalive pings on connections', DEFAULT_KEEPALIVE_MS))
    .addOption(duration('keepaliveTimeout', 'how long a keepalive ping may go unanswered', DEFAULT_KEEPALIVE_TIMEOUT_MS))
    .addOption(duration('retention', 'how long summaries of finished transactions are kept for status queries', DEFAULT_RETENTION_MS))
    .addOption(duration('gcInterval', 'how often expired summaries are dropped', DEFAULT_GC_INTERVAL_MS))
    .option('--no-group-commit', 'write every forced record with its own fsync (slower; for measurements)')
    .option('--no-frame-batching', 'send every session message in its own frame (slower; for measurements)');
}

/**
 * The options the command runs with: each from the command line when given there, else from the
 * config file when it sets it, else the flag's default.
 */
export async function applyConfigFile<T extends { readonly config?: string }>(options: T, command: Command): Promise<T> {
  if (options.config === undefined) return options;
  // zod loads only when a file is given: `verdict --help` stays fast.
  const { loadCoordinatorConfig } = await import('./coordinator-config-file.js');
  const file = loadCoordinatorConfig(options.config);
  const merged: Record<string, unknown> = { ...options };
  for (const [key, value] of Object.entries(file)) {
    if (value === undefined || command.getOptionValueSource(key) === 'cli') continue;
    // A path in the file is relative to the file, wherever the command runs.
    merged[key] = PATH_KEYS.has(key) && typeof value === 'string' ? resolve(dirname(options.config), value) : value;
  }
  return merged as T;
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
