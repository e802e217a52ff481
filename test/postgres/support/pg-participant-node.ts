// A PostgreSQL ledger participant as its own process, for the crash tests: the test SIGKILLs it
// (or arms a `crash` failpoint through VERDICT_FAILPOINTS) and starts it again on the same data
// directory. Argument: a JSON object { name, coordinator, dataDir, connection, inquiryIntervalMs }.
// Prints `ready` once connected; SIGTERM closes it cleanly.

import { pino } from 'pino';
import type pg from 'pg';
import { PostgresParticipant } from '../../../src/postgres/index.js';
import { ledgerPrepare } from './ledger.js';

interface NodeConfig {
  readonly name: string;
  readonly coordinator: string;
  readonly dataDir: string;
  readonly connection: pg.PoolConfig;
  readonly inquiryIntervalMs: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as NodeConfig;
const participant = await PostgresParticipant.start({
  name: config.name,
  coordinator: config.coordinator,
  dataDir: config.dataDir,
  connection: config.connection,
  prepare: ledgerPrepare,
  protocol: { inquiryIntervalMs: config.inquiryIntervalMs, hookRetryInitialMs: 50, hookRetryMaxMs: 500 },
  logger: pino({ level: process.env.VERDICT_LOG_LEVEL ?? 'warn' }, pino.destination(2)),
});
process.once('SIGTERM', () => {
  void participant.close().then(() => process.exit(0));
});
await participant.ready();
console.log(`ready ${JSON.stringify(participant.recovery)}`);
