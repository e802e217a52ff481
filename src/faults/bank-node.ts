// Child-process entry of a process cluster (forked with `--import tsx`): runs one demo `Bank` on
// a data directory and reports over the IPC channel (started, connected, every finished
// transaction) and answers status requests. SIGTERM closes the bank and exits 0; failpoints come
// from VERDICT_FAILPOINTS, read when the participant SDK loads, so they hold for this process only.
//
//   bank-node --name bank-1 --coordinator 127.0.0.1:7070[,HOST:PORT...] --data DIR [--accounts N]
//             [--initial-balance B] [--inquiry-interval-ms MS] [--log-level LEVEL]

import './orphan-guard.js';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Bank } from '../demo/bank.js';
import type { BankNodeMessage, BankNodeRequest } from './bank-node-ipc.js';

function send(message: BankNodeMessage): void {
  if (process.connected) process.send?.(message);
}

/** Sends a last message, then exits once it has left (an exit right away could drop it). */
function sendAndExit(message: BankNodeMessage, code: number): void {
  const exit = (): never => process.exit(code);
  if (process.connected && process.send) process.send(message, undefined, undefined, exit);
  else exit();
}

function integer(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new Error(`--${what} must be a non-negative integer (got ${value})`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      name: { type: 'string' },
      coordinator: { type: 'string' },
      data: { type: 'string' },
      accounts: { type: 'string' },
      'initial-balance': { type: 'string' },
      'inquiry-interval-ms': { type: 'string' },
      'log-level': { type: 'string' },
    },
    strict: true,
  });
  const { name, coordinator, data } = values;
  if (!name || !coordinator || !data) throw new Error('--name, --coordinator and --data are required');
  const accounts = integer(values.accounts, 'accounts');
  const initialBalance = integer(values['initial-balance'], 'initial-balance');
  const inquiryIntervalMs = integer(values['inquiry-interval-ms'], 'inquiry-interval-ms');

  const level = values['log-level'] ?? process.env['VERDICT_LOG_LEVEL'] ?? 'warn';
  const logger = pino({ name, level }, pino.destination({ fd: 2, sync: true }));
  const starting = Bank.start({
    name,
    // A comma-separated list names the members of a coordinator group.
    coordinator: coordinator.includes(',') ? coordinator.split(',') : coordinator,
    dataDir: data,
    logger,
    ...(accounts !== undefined ? { accounts } : {}),
    ...(initialBalance !== undefined ? { initialBalance } : {}),
    ...(inquiryIntervalMs !== undefined ? { protocol: { inquiryIntervalMs } } : {}),
  });
  // A SIGTERM during the start still ends in a clean close, once the bank is open.
  process.once('SIGTERM', () => {
    starting
      .then((b) => b.close())
      .then(
        () => process.exit(0),
        (e: unknown) => sendAndExit({ type: 'failed', message: `${name} did not close cleanly: ${(e as Error)?.message ?? String(e)}` }, 1),
      );
  });
  const bank = await starting;
  const { participant } = bank;
  participant.on('error', (e) => sendAndExit({ type: 'failed', message: `${name} stopped: ${e.message}` }, 1));
  participant.on('finished', (txId, outcome) => send({ type: 'finished', txId, outcome }));
  participant.on('connected', () => send({ type: 'connected', epoch: participant.coordinatorEpoch }));
  participant.on('disconnected', () => send({ type: 'disconnected' }));
  process.on('message', (request: BankNodeRequest) => {
    if (request.type !== 'status') return;
    const { holds, unsettled, inDoubt } = bank.pending;
    const epoch = participant.state === 'connected' ? participant.coordinatorEpoch : 0;
    send({ type: 'status', requestId: request.requestId, inDoubt, holds, unsettled, epoch });
  });
  send({ type: 'started' });
  // The session may have come up while the accounts were loading, before the listener above.
  if (participant.state === 'connected') send({ type: 'connected', epoch: participant.coordinatorEpoch });
}

if (!process.send) {
  process.stderr.write('bank-node is started by a process cluster (child_process.fork), not by hand\n');
  process.exit(2);
}
// The SDK's timers do not keep a process alive (a service has its own server for that), so while
// the session reconnects nothing would: the IPC channel does, until SIGTERM or the parent goes.
process.channel?.ref();
main().catch((e: unknown) => sendAndExit({ type: 'failed', message: `bank did not start: ${(e as Error)?.message ?? String(e)}` }, 1));
