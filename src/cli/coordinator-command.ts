// `verdict coordinator`: runs the coordinator until SIGINT or SIGTERM. Prints exactly one line on
// stdout, `listening on HOST:PORT`, once it serves (scripts and tests parse it); logs go to stderr.
// With `--etcd` it runs one member of a coordinator group instead (see README "Running a
// coordinator group"): the line comes once the port is bound, whether the member leads or not. A
// member takes the single coordinator's security flags (TLS, tokens, --insecure; SIGHUP reloads
// the TLS files) and its own for etcd (TLS, client certificate, user and password).
// The coordinator itself (gRPC, LevelDB, etcd, pino) is imported only when the command runs.

import { readFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { EtcdCredentials, EtcdTlsFiles } from '../cluster/etcd-connection.js';
import { DEFAULT_ETCD_PREFIX, DEFAULT_LEASE_TTL_S } from '../cluster/group-member-options.js';
import {
  DEFAULT_COORDINATOR_DATA_DIR,
  DEFAULT_LISTEN,
  DEFAULT_MAX_LIVE_PER_CLIENT,
  DEFAULT_MAX_LOOKUPS_PER_SESSION,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_PARTICIPANT_NAMES,
  DEFAULT_MAX_PENDING_PER_CLIENT,
  DEFAULT_MAX_SESSIONS,
  type CoordinatorOptions,
} from '../coordinator/coordinator-options.js';
import type { CoordinatorSecurityOptions } from '../coordinator/security-options.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { DEFAULT_COORDINATOR_MACHINE_CONFIG } from '../protocol/coordinator-machine.js';
import { addTuningOptions, applyConfigFile, type CoordinatorTuningOptions } from './coordinator-config.js';
import type { MetricsEndpoint } from './metrics-endpoint.js';
import { durationParser, formatDuration, parseAddress, parseEtcdEndpointArgument, parseLogLevel, parsePositiveInt, type LogLevel } from './cli-arguments.js';

/** Flags of `verdict coordinator`. */
export interface CoordinatorCommandOptions extends CoordinatorTuningOptions {
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
  readonly metrics?: string;
  /** Cluster mode: etcd endpoints. */
  readonly etcd?: readonly string[];
  readonly nodeId?: string;
  readonly advertise?: string;
  readonly etcdPrefix: string;
  readonly leaseTtl: number;
  /** Cluster mode: the CA of etcd's certificates (TLS to etcd). */
  readonly etcdCa?: string;
  /** Cluster mode: this member's etcd client certificate. */
  readonly etcdCert?: string;
  /** Cluster mode: the key of `etcdCert`. */
  readonly etcdKey?: string;
  /** Cluster mode: etcd's user (the password comes from `etcdPasswordFile` or VERDICT_ETCD_PASSWORD). */
  readonly etcdUser?: string;
  /** Cluster mode: the file holding the etcd user's password. */
  readonly etcdPasswordFile?: string;
  /** Which flags were given on the command line or in the config file (not defaults), for refusing conflicting ones. */
  readonly given?: ReadonlySet<string>;
}

/** The shortest and longest lease TTL accepted, in ms (etcd counts leases in whole seconds). */
const LEASE_TTL_BOUNDS_MS = { minMs: 1_000, maxMs: 600_000 } as const;

const SHUTDOWN_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
/** The environment variable that may carry the etcd password (never a flag: command lines are visible to every local user). */
export const ETCD_PASSWORD_ENV = 'VERDICT_ETCD_PASSWORD';

/** Adds `coordinator` to `program`. */
export function addCoordinatorCommand(program: Command): void {
  const command = program
    .command('coordinator')
    .description('run the transaction coordinator until SIGINT or SIGTERM')
    .option('--listen <host:port>', 'address to serve on; port 0 picks a free one', parseAddress, DEFAULT_LISTEN)
    .option('--data <dir>', 'directory of the decision log', DEFAULT_COORDINATOR_DATA_DIR)
    .option('--log-level <level>', 'log level on stderr (default: VERDICT_LOG_LEVEL, else info)', parseLogLevel)
    .option('--tls-cert <file>', 'serve TLS with this certificate (PEM); reloaded on SIGHUP')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM); reloaded on SIGHUP')
    .option('--tls-ca <file>', 'require client certificates signed by this CA; their SAN URI is the identity')
    .option('--tokens <file>', 'bearer tokens, one "verdict://<role>/<name> <token>" per line')
    .option('--insecure', 'allow a non-loopback --listen without TLS and client authentication (with --etcd: and plaintext etcd off loopback)')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics', parseAddress)
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
    .option('--etcd <endpoint,...>', 'run as one member of a coordinator group whose decision log is in this etcd cluster (host:port, or http:// or https:// URLs)', parseEndpoints)
    .option('--node-id <id>', "with --etcd: this member's id, unique in the group")
    .option('--advertise <host:port>', 'with --etcd: the address clients reach this member at (followers name the leader by it)', parseAddress)
    .option('--etcd-prefix <prefix>', "with --etcd: the group's key prefix in etcd", DEFAULT_ETCD_PREFIX)
    .addOption(
      new Option('--lease-ttl <duration>', "with --etcd: the leader's lease, in whole seconds: how long a dead or paused leader can leave the group without one")
        .argParser(durationParser(LEASE_TTL_BOUNDS_MS))
        .default(DEFAULT_LEASE_TTL_S * 1000, formatDuration(DEFAULT_LEASE_TTL_S * 1000)),
    )
    .option('--etcd-ca <file>', "with --etcd: reach etcd over TLS, trusting this CA (PEM) for etcd's certificates")
    .option('--etcd-cert <file>', 'with --etcd: the client certificate (PEM) this member presents to etcd (--client-cert-auth)')
    .option('--etcd-key <file>', 'with --etcd: the private key of --etcd-cert (PEM)')
    .option('--etcd-user <name>', `with --etcd: etcd's user; the password comes from --etcd-password-file or ${ETCD_PASSWORD_ENV}`)
    .option('--etcd-password-file <file>', "with --etcd-user: a file holding the etcd user's password");
  addTuningOptions(command);
  command.action(async (flags: CoordinatorCommandOptions, self: Command) => {
    const options = await applyConfigFile(flags, self);
    const given = new Set(Object.keys(options).filter((name) => self.getOptionValueSource(name) === 'cli' || (options as unknown as Record<string, unknown>)[name] !== (flags as unknown as Record<string, unknown>)[name]));
    return options.etcd || options.nodeId !== undefined || options.advertise !== undefined ? runGroupMember({ ...options, given }) : runCoordinator(options);
  });
}

/** `endpoint,endpoint,...` (at least one; see `parseEtcdEndpointArgument`). */
function parseEndpoints(value: string): string[] {
  const list = value.split(',').map((v) => v.trim());
  if (list.length === 0 || list.some((v) => v === '')) throw new InvalidArgumentError('expected HOST:PORT[,HOST:PORT...]');
  return list.map(parseEtcdEndpointArgument);
}

/** Flags that only a group member takes. */
const ONLY_IN_CLUSTER_MODE = [
  ['etcdCa', '--etcd-ca'],
  ['etcdCert', '--etcd-cert'],
  ['etcdKey', '--etcd-key'],
  ['etcdUser', '--etcd-user'],
  ['etcdPasswordFile', '--etcd-password-file'],
] as const;

const bad = (message: string): never => {
  throw new VerdictError(ErrorCode.INVALID_ARGUMENT, message);
};

/** What a group member takes from the flags besides the tuning and its security as a server. */
interface GroupFlags {
  readonly etcd: readonly string[];
  readonly nodeId: string;
  readonly advertise: string;
  readonly leaseTtlS: number;
  readonly etcdTls?: EtcdTlsFiles;
  readonly etcdAuth?: EtcdCredentials;
}

/** The group member's options from the flags; conflicting or missing flags are refused with one line. */
function groupOptions(options: CoordinatorCommandOptions): GroupFlags {
  if (!options.etcd) return bad('--node-id and --advertise run a member of a coordinator group: they need --etcd');
  if (options.given?.has('data')) bad('--data cannot be used with --etcd: a coordinator group keeps its decision log in etcd');
  if (options.nodeId === undefined) bad("--etcd needs --node-id (this member's id, unique in the group)");
  if (options.advertise === undefined) bad('--etcd needs --advertise (the host:port clients reach this member at)');
  if (options.leaseTtl % 1000 !== 0) bad(`--lease-ttl ${formatDuration(options.leaseTtl)} is not a whole number of seconds (etcd's unit)`);
  const { etcdCa, etcdCert, etcdKey } = options;
  if ((etcdCert === undefined) !== (etcdKey === undefined)) bad('--etcd-cert and --etcd-key go together');
  if (etcdCert !== undefined && etcdCa === undefined) bad("--etcd-cert needs --etcd-ca (the CA that signed etcd's certificates)");
  const etcdTls = etcdCa === undefined ? undefined : { caFile: etcdCa, ...(etcdCert !== undefined && etcdKey !== undefined ? { certFile: etcdCert, keyFile: etcdKey } : {}) };
  const etcdAuth = etcdCredentials(options);
  return {
    etcd: options.etcd,
    nodeId: options.nodeId as string,
    advertise: options.advertise as string,
    leaseTtlS: options.leaseTtl / 1000,
    ...(etcdTls ? { etcdTls } : {}),
    ...(etcdAuth ? { etcdAuth } : {}),
  };
}

/** etcd's user and password: the password from --etcd-password-file or VERDICT_ETCD_PASSWORD (exactly one), never from a flag. */
function etcdCredentials(options: CoordinatorCommandOptions): EtcdCredentials | undefined {
  const env = process.env[ETCD_PASSWORD_ENV];
  const file = options.etcdPasswordFile;
  if (options.etcdUser === undefined) {
    if (file !== undefined) bad('--etcd-password-file needs --etcd-user');
    return undefined;
  }
  if (file !== undefined && env) bad(`--etcd-password-file and ${ETCD_PASSWORD_ENV} conflict: give one`);
  let password: string;
  if (file !== undefined) {
    try {
      // One trailing newline is the file's, not the password's.
      password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      return bad(`--etcd-password-file: ${(e as Error).message}`);
    }
  } else if (env) password = env;
  else return bad(`--etcd-user ${options.etcdUser} needs its password in --etcd-password-file or ${ETCD_PASSWORD_ENV}`);
  if (password === '') bad(`the etcd password of --etcd-user ${options.etcdUser} is empty`);
  return { username: options.etcdUser, password };
}

/**
 * Runs one member of a coordinator group until SIGINT or SIGTERM. A member that loses its
 * leadership steps down and keeps running as a follower; only a signal (or a failure to start)
 * ends it.
 */
export async function runGroupMember(options: CoordinatorCommandOptions): Promise<void> {
  const group = groupOptions(options);
  const security = securityOptions(options);
  checkTuning(options);
  const [{ CoordinatorGroupMember }, { cliLogger }, { routeGrpcLogs }] = await Promise.all([import('../cluster/index.js'), import('./cli-logger.js'), import('./grpc-log.js')]);
  const logger = cliLogger(options.logLevel, 'info');
  routeGrpcLogs(logger);
  // Node warns (DEP0123) when TLS dials an IP address, which grpc-js does for an etcd endpoint
  // such as 127.0.0.1: stderr carries the member's logs and its one error line, never runtime notes.
  process.noDeprecation = true;
  let resolveStopped!: (why: NodeJS.Signals) => void;
  const stopped = new Promise<NodeJS.Signals>((resolve) => (resolveStopped = resolve));
  const stop = (why: NodeJS.Signals): void => {
    for (const signal of SHUTDOWN_SIGNALS) process.removeListener(signal, stop);
    resolveStopped(why);
  };
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, stop);
  let member: Awaited<ReturnType<typeof CoordinatorGroupMember.start>> | undefined;
  const reload = (): void => {
    try {
      member?.reloadCertificates();
    } catch (e) {
      logger.error({ err: e }, 'SIGHUP: the TLS files were not reloaded; the old ones stay in use');
    }
  };
  try {
    member = await CoordinatorGroupMember.start({
      ...group,
      ...security,
      ...(options.given?.has('listen') ? { listen: options.listen } : {}),
      etcdPrefix: options.etcdPrefix,
      logger,
      coordinator: tuning(options),
    });
    if (options.tlsCert) process.on('SIGHUP', reload);
    console.log(`listening on ${member.address}`);
    const why = await stopped;
    logger.info({ signal: why }, 'shutting down');
    await member.close();
  } finally {
    for (const signal of SHUTDOWN_SIGNALS) process.removeListener(signal, stop);
    process.removeListener('SIGHUP', reload);
  }
}

/** Refuses values that contradict each other, with one line. */
function checkTuning(options: CoordinatorCommandOptions): void {
  if (options.maxPayloadBytes + 1024 > options.maxMessageBytes) {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `--max-payload-bytes ${options.maxPayloadBytes} does not fit in a message of --max-message-bytes ${options.maxMessageBytes} (leave 1024 bytes for the rest of the message)`);
  }
  if (options.retryInitial > options.retryMax) {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `--retry-initial ${formatDuration(options.retryInitial)} is longer than --retry-max ${formatDuration(options.retryMax)}`);
  }
  if (options.defaultTimeout > options.maxTimeout) {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `--default-timeout ${formatDuration(options.defaultTimeout)} is longer than --max-timeout ${formatDuration(options.maxTimeout)}`);
  }
}

/** The coordinator's protocol, limits and transport tunables from the flags (a single coordinator and a group member alike). */
function tuning(options: CoordinatorCommandOptions): Omit<CoordinatorOptions, 'listen' | 'dataDir' | 'storage' | 'decisionStore' | 'transport' | 'logger' | 'clock'> {
  return {
    maxMessageBytes: options.maxMessageBytes,
    maxCallMs: options.maxCall,
    keepaliveMs: options.keepalive,
    keepaliveTimeoutMs: options.keepaliveTimeout,
    retentionMs: options.retention,
    gcIntervalMs: options.gcInterval,
    groupCommit: options.groupCommit,
    frameBatching: options.frameBatching,
    protocol: {
      maxLiveTransactions: options.maxLiveTransactions,
      maxReservedTxIds: options.maxReservedTxIds,
      maxPayloadBytes: options.maxPayloadBytes,
      maxPayloadBytesInMemory: options.maxPayloadBytesInMemory,
      unregisteredGraceMs: options.unregisteredGrace,
      defaultTimeoutMs: options.defaultTimeout,
      maxTimeoutMs: options.maxTimeout,
      maxBranches: options.maxBranches,
      retryInitialMs: options.retryInitial,
      retryMaxMs: options.retryMax,
      attentionAfterAttempts: options.attentionAfterAttempts,
    },
    limits: {
      maxLivePerClient: options.maxLivePerClient,
      maxPendingPerClient: options.maxPendingPerClient,
      maxSessions: options.maxSessions,
      maxParticipantNames: options.maxParticipantNames,
      maxLookupsPerSession: options.maxLookupsPerSession,
    },
  };
}

/**
 * Starts the coordinator and resolves once it has shut down after a signal. A first signal closes
 * it cleanly; a second one, while closing, ends the process at once (the signal's default).
 * Rejects with the start error (DATA_DIR_LOCKED, LOG_CORRUPT, …) or when the coordinator stops
 * on its own after an internal failure.
 */
export async function runCoordinator(options: CoordinatorCommandOptions): Promise<void> {
  for (const [key, flag] of ONLY_IN_CLUSTER_MODE) if (options.given?.has(key) || options[key] !== undefined) bad(`${flag} needs --etcd (it configures a coordinator group's connection to etcd)`);
  const [{ Coordinator }, { cliLogger }, { routeGrpcLogs }] = await Promise.all([import('../coordinator/index.js'), import('./cli-logger.js'), import('./grpc-log.js')]);
  const logger = cliLogger(options.logLevel, 'info');
  routeGrpcLogs(logger);
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
  let endpoint: MetricsEndpoint | undefined;
  try {
    checkTuning(options);
    if (options.metrics !== undefined) endpoint = await (await import('./metrics-endpoint.js')).startMetricsEndpoint(options.metrics);
    coordinator = await Coordinator.start({
      ...securityOptions(options),
      listen: options.listen,
      dataDir: options.data,
      logger,
      ...(endpoint ? { observer: endpoint.metrics.observer } : {}),
      ...tuning(options),
    });
    coordinator.once('error', stop);
    if (endpoint) {
      endpoint.metrics.attach(coordinator);
      logger.info({ metrics: `http://${endpoint.server.address}/metrics` }, 'serving metrics');
    }
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
    await endpoint?.server.close();
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
