// The PostgreSQL ledger participant of the crash tests as a child process (pg-participant-node.ts),
// restartable on its data directory; ready once it printed `ready <recovery report>`.

import { join } from 'node:path';
import type pg from 'pg';
import { ManagedProcess } from '../../../src/faults/managed-process.js';
import type { PostgresRecoveryReport } from '../../../src/postgres/index.js';

const CHILD_ENTRY = new URL('./pg-participant-node.ts', import.meta.url).pathname;

/** What the child runs. */
export interface PgParticipantChildConfig {
  readonly name: string;
  readonly coordinator: string;
  readonly dataDir: string;
  readonly connection: pg.PoolConfig;
  readonly inquiryIntervalMs: number;
}

/** The child for `config`, its log in `logDir` (not started). */
export function pgParticipantChild(config: PgParticipantChildConfig, logDir: string): ManagedProcess {
  return new ManagedProcess({
    name: config.name,
    entry: CHILD_ENTRY,
    args: [JSON.stringify(config)],
    logFile: join(logDir, `${config.name}.log`),
    ready: (p) =>
      new Promise<void>((resolve) => {
        const onLine = (line: string): void => {
          if (!line.startsWith('ready')) return;
          p.off('line', onLine);
          resolve();
        };
        p.on('line', onLine);
      }),
  });
}

/** The recovery report the child's last incarnation printed when it became ready. */
export function lastRecovery(child: ManagedProcess): PostgresRecoveryReport {
  const ready = child.stdout.findLast((l) => l.startsWith('ready')) ?? '';
  return JSON.parse(ready.slice('ready '.length)) as PostgresRecoveryReport;
}
