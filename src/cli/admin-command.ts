// `verdict tx get ID`, `verdict tx list` and `verdict participants`: an operator's read-only view
// of a running coordinator through its AdminService. Human tables by default, `--json` for
// scripts. gRPC is loaded only when a command runs.

import { Option, type Command } from 'commander';
import { DEFAULT_LISTEN } from '../coordinator/coordinator-options.js';
import { ErrorCode, VerdictError } from '../errors.js';
import type { TxView } from '../protocol/coordinator-events.js';
import type { AdminClient, AdminConnectionOptions } from './admin-client.js';
import type { ParticipantRow } from './admin-format.js';
import { parseAddress, parsePositiveInt } from './cli-arguments.js';

/** Values of `tx list --state`. */
export const TX_LIST_STATES = ['open', 'in-doubt', 'needs-attention'] as const;
/** A value of `tx list --state`. */
export type TxListState = (typeof TX_LIST_STATES)[number];
/** The most `tx list --limit` takes (the service's own limit). */
const MAX_LIMIT = 10_000;

interface OutputOptions extends AdminConnectionOptions {
  readonly json?: boolean;
}

interface ListOptions extends OutputOptions {
  readonly state: TxListState;
  readonly participant?: string;
  readonly limit: number;
}

/** Adds the flags that reach a coordinator to `command`. */
function withConnection(command: Command): Command {
  return command
    .option('--coordinator <host:port>', 'the coordinator to ask', parseAddress, DEFAULT_LISTEN)
    .option('--tls-ca <file>', 'dial TLS, trusting this CA (PEM)')
    .option('--tls-cert <file>', 'client certificate (PEM) with a verdict://admin/<name> SAN URI')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option('--token-file <file>', 'a bearer token (of an admin identity) read from this file; or set VERDICT_TOKEN')
    .option('--json', 'print JSON instead of a table');
}

function parseLimit(value: string): number {
  const n = parsePositiveInt(value);
  if (n > MAX_LIMIT) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `--limit ${n} is over ${MAX_LIMIT}`);
  return n;
}

/** Adds `tx` (with `get` and `list`) and `participants` to `program`. */
export function addAdminCommands(program: Command): void {
  const tx = program.command('tx').description("inspect a running coordinator's transactions (AdminService)");
  withConnection(tx.command('get').description('show one transaction, live or finished').argument('<id>', 'the transaction id')).action((id: string, options: OutputOptions) =>
    withClient(options, async (client, { viewFromWire }) => {
      const { transaction } = await client.inspect(id);
      const view = transaction && viewFromWire(transaction);
      if (!view) throw new VerdictError(ErrorCode.INTERNAL, `the coordinator described ${id} in a form this CLI does not know`);
      const { formatTransaction } = await import('./admin-format.js');
      write(options.json ? json(view) : formatTransaction(view));
    }),
  );
  withConnection(
    tx
      .command('list')
      .description('list live transactions, oldest first')
      .addOption(new Option('--state <state>', 'which ones').choices(TX_LIST_STATES).default('open'))
      .option('--participant <name>', 'only those with a branch at this participant')
      .option('--limit <n>', `at most this many (1 to ${MAX_LIMIT})`, parseLimit, 100),
  ).action((options: ListOptions) =>
    withClient(options, async (client, { viewFromWire, TransactionFilter }) => {
      const filter = { open: TransactionFilter.TRANSACTION_FILTER_OPEN, 'in-doubt': TransactionFilter.TRANSACTION_FILTER_IN_DOUBT, 'needs-attention': TransactionFilter.TRANSACTION_FILTER_NEEDS_ATTENTION }[options.state];
      const res = await client.list({ filter, participant: options.participant ?? '', limit: options.limit });
      const views = res.transactions.map(viewFromWire).filter((v): v is TxView => v !== undefined);
      const { formatTransactionList } = await import('./admin-format.js');
      write(options.json ? json({ transactions: views, matched: res.matched }) : formatTransactionList(views, res.matched));
    }),
  );
  withConnection(program.command('participants').description("list a running coordinator's participant sessions (AdminService)")).action((options: OutputOptions) =>
    withClient(options, async (client) => {
      const res = await client.participants();
      const rows: ParticipantRow[] = res.participants.map((p) => ({
        participant: p.participant,
        peer: p.peer,
        connectedSince: new Date(p.connectedSinceUnixMs).toISOString(),
        transactionsInFlight: p.transactionsInFlight,
      }));
      const { formatParticipants } = await import('./admin-format.js');
      write(options.json ? json(rows) : formatParticipants(rows));
    }),
  );
}

const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;
const write = (text: string): void => void process.stdout.write(text);

type Loaded = typeof import('../common/wire.js') & typeof import('../gen/verdict/v1/admin.js');

/** Runs `body` with a client, closed after. */
async function withClient(options: AdminConnectionOptions, body: (client: AdminClient, loaded: Loaded) => Promise<void>): Promise<void> {
  const [{ AdminClient }, wire, admin] = await Promise.all([import('./admin-client.js'), import('../common/wire.js'), import('../gen/verdict/v1/admin.js')]);
  // Node warns (DEP0123) when TLS dials an IP address, which grpc-js does for a 127.0.0.1 target:
  // a command's output is its answer or one error line, never a runtime's deprecation notes.
  process.noDeprecation = true;
  const client = new AdminClient(options);
  try {
    await body(client, { ...wire, ...admin });
  } finally {
    client.close();
  }
}
