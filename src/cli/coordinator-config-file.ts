// `--config FILE` of `verdict coordinator`: the JSON schema (zod) and its loader. Each key is a
// flag's name in camelCase and takes the flag's syntax (durations like "30s", addresses
// "HOST:PORT"); unknown keys are refused; every error names the file and the field.

import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ErrorCode, VerdictError } from '../errors.js';
import { LOG_LEVELS, parseAddress, parseDuration, parseEtcdEndpointArgument } from './cli-arguments.js';
import { DURATION_BOUNDS } from './coordinator-config.js';

/** A zod string checked by a CLI parser (the file takes the flag's syntax). */
const parsed = <T>(parse: (value: string) => T) =>
  z.string().transform((value, ctx) => {
    try {
      return parse(value);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });
const count = z.number().int().positive();
const durationOf = (key: string) => parsed((v) => parseDuration(v, DURATION_BOUNDS[key]));

/** The schema of `--config FILE`: every key optional, unknown keys refused. */
export const COORDINATOR_CONFIG_SCHEMA = z.strictObject({
  listen: parsed(parseAddress).optional(),
  data: z.string().min(1).optional(),
  logLevel: z.enum(LOG_LEVELS).optional(),
  metrics: parsed(parseAddress).optional(),
  tlsCert: z.string().min(1).optional(),
  tlsKey: z.string().min(1).optional(),
  tlsCa: z.string().min(1).optional(),
  tokens: z.string().min(1).optional(),
  insecure: z.boolean().optional(),
  maxLiveTransactions: count.optional(),
  maxReservedTxIds: count.optional(),
  maxLivePerClient: count.optional(),
  maxPendingPerClient: count.optional(),
  maxSessions: count.optional(),
  maxParticipantNames: count.optional(),
  maxLookupsPerSession: count.optional(),
  maxPayloadBytes: count.optional(),
  maxPayloadBytesInMemory: count.optional(),
  maxMessageBytes: count.optional(),
  unregisteredGrace: durationOf('unregisteredGrace').optional(),
  defaultTimeout: durationOf('defaultTimeout').optional(),
  maxTimeout: durationOf('maxTimeout').optional(),
  maxBranches: count.optional(),
  retryInitial: durationOf('retryInitial').optional(),
  retryMax: durationOf('retryMax').optional(),
  attentionAfterAttempts: count.optional(),
  maxCall: durationOf('maxCall').optional(),
  keepalive: durationOf('keepalive').optional(),
  keepaliveTimeout: durationOf('keepaliveTimeout').optional(),
  retention: durationOf('retention').optional(),
  gcInterval: durationOf('gcInterval').optional(),
  groupCommit: z.boolean().optional(),
  frameBatching: z.boolean().optional(),
  etcd: z.array(parsed(parseEtcdEndpointArgument)).min(1).optional(),
  nodeId: z.string().min(1).optional(),
  advertise: parsed(parseAddress).optional(),
  etcdPrefix: z.string().min(1).optional(),
  leaseTtl: parsed((v) => parseDuration(v, { minMs: 1_000, maxMs: 600_000 })).optional(),
  etcdCa: z.string().min(1).optional(),
  etcdCert: z.string().min(1).optional(),
  etcdKey: z.string().min(1).optional(),
  etcdUser: z.string().min(1).optional(),
  // The password itself is no key: a config file is read by more people than a secrets file.
  etcdPasswordFile: z.string().min(1).optional(),
});
/** What a config file may set. */
export type CoordinatorConfigFile = z.output<typeof COORDINATOR_CONFIG_SCHEMA>;

/** Reads and validates `file`; errors (INVALID_ARGUMENT) name the file and the field. */
export function loadCoordinatorConfig(file: string): CoordinatorConfigFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `--config ${file}: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `--config ${file}: not JSON: ${(e as Error).message}`, { cause: e });
  }
  const result = COORDINATOR_CONFIG_SCHEMA.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') return `unknown field ${issue.keys.map((k) => JSON.stringify([...issue.path, k].join('.'))).join(', ')}`;
      return issue.path.length > 0 ? `field ${JSON.stringify(issue.path.join('.'))}: ${issue.message}` : issue.message;
    });
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `--config ${file}: ${problems.join('; ')}`);
  }
  return result.data;
}

