// The whole shop end to end, in one command: a coordinator and the three services as separate
// processes, an initiator placing orders (some must abort: out of stock, insufficient funds), then
// the books, checked from each service's HTTP endpoint. Exits 1 when the books do not balance.
//
//   node --import tsx examples/shop/shop.ts [--orders 60] [--concurrency 8] [--seed 7] [--keep-data]

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { VerdictClient } from '../../src/index.js';
import { SERVICES, type ServiceName } from './hooks.js';
import { placeOrders, type OrderResult } from './initiator.js';
import { CATALOG, WALLETS, type Order } from './order.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** How long a process may take to print its ready line, in ms. */
const START_TIMEOUT_MS = 30_000;
/** How long the services may take to apply the last outcomes before the books are read, in ms. */
const SETTLE_TIMEOUT_MS = 15_000;

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '8' },
    seed: { type: 'string', default: '7' },
    'keep-data': { type: 'boolean', default: false },
  },
});
const count = Number(values.orders);
const concurrency = Number(values.concurrency);
const seed = Number(values.seed);
if (![count, concurrency, seed].every((n) => Number.isSafeInteger(n) && n >= 1) || count < 2) {
  console.error('shop: --orders (at least 2), --concurrency and --seed take positive integers');
  process.exit(2);
}

/** A process started by the shop, and the first stdout line that matched. */
function start(args: readonly string[], ready: RegExp): { child: ChildProcess; line: Promise<RegExpMatchArray> } {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const line = new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')}: not ready within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const m = out.match(ready);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited (${code}) before it was ready`));
    });
  });
  return { child, line };
}

/** A small deterministic PRNG (mulberry32), so that a seed replays the same orders. */
function prng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Two orders that must abort, then random ones that run the stock and the wallets dry. */
function makeOrders(n: number): Order[] {
  const random = prng(seed);
  const skus = Object.keys(CATALOG);
  const customers = Object.keys(WALLETS);
  const order = (i: number, customer: string, sku: string, qty: number): Order => ({ orderId: `o-${i}`, customer, sku, qty, amount: qty * (CATALOG[sku]?.price ?? 0) });
  const gadgets = CATALOG['gadget']?.stock ?? 0;
  const orders = [order(1, 'alice', 'gadget', gadgets + 1), order(2, 'bob', 'gadget', 2)];
  for (let i = 3; i <= n; i++) {
    orders.push(order(i, customers[Math.floor(random() * customers.length)] ?? 'alice', skus[Math.floor(random() * skus.length)] ?? 'widget', 1 + Math.floor(random() * 3)));
  }
  return orders;
}

async function stateOf(url: string): Promise<{ inDoubt: number; state: Record<string, unknown> }> {
  const res = await fetch(`${url}/state`);
  if (!res.ok) throw new Error(`${url}/state answered ${res.status}`);
  return (await res.json()) as { inDoubt: number; state: Record<string, unknown> };
}

/** Reads the three services' states once every outcome is applied (no holds, nothing in doubt). */
async function settledStates(urls: Record<ServiceName, string>): Promise<Record<ServiceName, Record<string, unknown>>> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const states = await Promise.all(SERVICES.map((s) => stateOf(urls[s])));
    const settled = states.every((s) => s.inDoubt === 0 && !Object.keys(s.state).some((k) => k.startsWith('hold/')));
    if (settled || Date.now() > deadline) return Object.fromEntries(SERVICES.map((s, i) => [s, states[i]?.state ?? {}])) as Record<ServiceName, Record<string, unknown>>;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Checks the books against what the initiator was told; returns the problems found. */
function audit(results: readonly OrderResult[], books: Record<ServiceName, Record<string, unknown>>): string[] {
  const problems: string[] = [];
  const committed = results.filter((r) => r.outcome === 'committed');
  for (const service of SERVICES) {
    const holds = Object.keys(books[service]).filter((k) => k.startsWith('hold/'));
    if (holds.length > 0) problems.push(`${service} still holds ${holds.length} prepared orders`);
  }
  // Orders: exactly the committed ones are recorded.
  const recorded = Object.keys(books.orders).filter((k) => k.startsWith('order/')).map((k) => k.slice('order/'.length)).sort();
  const expected = committed.map((r) => r.order.orderId).sort();
  if (recorded.join() !== expected.join()) problems.push(`orders records ${recorded.length} orders, the initiator was told ${expected.length} committed`);
  // Inventory: stock went down by exactly what committed orders took, never below zero.
  for (const [sku, { stock }] of Object.entries(CATALOG)) {
    const sold = committed.filter((r) => r.order.sku === sku).reduce((n, r) => n + r.order.qty, 0);
    const left = books.inventory[`stock/${sku}`];
    if (left !== stock - sold) problems.push(`stock of ${sku} is ${String(left)}, expected ${stock} - ${sold} sold = ${stock - sold}`);
    if (typeof left === 'number' && left < 0) problems.push(`stock of ${sku} is negative: ${left}`);
  }
  // Payments: every wallet went down by exactly what its committed orders cost; what was paid
  // equals what was sold.
  for (const [customer, start] of Object.entries(WALLETS)) {
    const spent = committed.filter((r) => r.order.customer === customer).reduce((n, r) => n + r.order.amount, 0);
    const left = books.payments[`balance/${customer}`];
    if (left !== start - spent) problems.push(`${customer} has ${String(left)}, expected ${start} - ${spent} = ${start - spent}`);
    if (typeof left === 'number' && left < 0) problems.push(`${customer} is overdrawn: ${left}`);
  }
  const paid = Object.entries(books.payments).filter(([k]) => k.startsWith('paid/')).reduce((n, [, v]) => n + (v as { amount: number }).amount, 0);
  const sales = committed.reduce((n, r) => n + r.order.amount, 0);
  if (paid !== sales) problems.push(`payments received ${paid}, the committed orders cost ${sales}`);
  // The shop must have refused something for each reason.
  const reasons = results.flatMap((r) => (r.outcome === 'aborted' ? [r.reason] : []));
  for (const why of ['out of stock', 'insufficient funds']) if (!reasons.some((r) => r.includes(why))) problems.push(`no order aborted for "${why}"`);
  return problems;
}

const dir = mkdtempSync(join(tmpdir(), 'verdict-shop-'));
const children: ChildProcess[] = [];
let problems: string[] = [];
try {
  const coordinator = start(['src/cli/main.ts', 'coordinator', '--listen', '127.0.0.1:0', '--data', join(dir, 'coordinator'), '--log-level', 'warn'], /^listening on (\S+)$/m);
  children.push(coordinator.child);
  const address = (await coordinator.line)[1] ?? '';
  const services = SERVICES.map((s) => start(['examples/shop/service.ts', s, '--coordinator', address, '--data', join(dir, s)], /^ready (\S+) (\S+)$/m));
  children.push(...services.map((s) => s.child));
  const urls = Object.fromEntries(await Promise.all(services.map(async (s) => (await s.line).slice(1, 3)))) as Record<ServiceName, string>;
  console.log(`shop: coordinator ${address}; ${SERVICES.map((s) => `${s} ${urls[s]}/state`).join(', ')}`);

  const client = new VerdictClient(address);
  const orders = makeOrders(count);
  let placed: Awaited<ReturnType<typeof placeOrders>>;
  try {
    // The two orders that must abort go first, alone; then the rest, concurrently.
    const first = await placeOrders(client, orders.slice(0, 2), 1);
    const rest = await placeOrders(client, orders.slice(2), concurrency);
    placed = { results: [...first.results, ...rest.results], lockRetries: first.lockRetries + rest.lockRetries };
  } finally {
    client.close();
  }
  const { results, lockRetries } = placed;
  const aborted = results.flatMap((r) => (r.outcome === 'aborted' ? [r.reason] : []));
  const byReason = (why: string): number => aborted.filter((r) => r.includes(why)).length;
  console.log(
    `placed ${results.length} orders: ${results.length - aborted.length} committed, ${aborted.length} aborted ` +
      `(out of stock ${byReason('out of stock')}, insufficient funds ${byReason('insufficient funds')}); ${lockRetries} lock-conflict retries`,
  );
  const books = await settledStates(urls);
  for (const sku of Object.keys(CATALOG)) console.log(`  stock ${sku}: ${CATALOG[sku]?.stock} -> ${String(books.inventory[`stock/${sku}`])}`);
  for (const customer of Object.keys(WALLETS)) console.log(`  wallet ${customer}: ${WALLETS[customer]} -> ${String(books.payments[`balance/${customer}`])}`);
  problems = audit(results, books);
} catch (e) {
  problems = [`the shop failed: ${(e as Error).message}`];
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)));
  if (problems.length === 0 && !values['keep-data']) rmSync(dir, { recursive: true, force: true });
  else console.log(`data kept in ${dir}`);
}
for (const p of problems) console.log(`PROBLEM: ${p}`);
console.log(problems.length === 0 ? 'books balance: yes' : 'books balance: NO');
process.exitCode = problems.length === 0 ? 0 : 1;
