// The shop's initiator: places orders, each one transaction over the three services. An order
// that a service refuses (out of stock, insufficient funds) aborts everywhere; one that lost a
// lock race (another order held the same stock or wallet) is placed again.

import { setTimeout as sleep } from 'node:timers/promises';
import { isLockConflictAbort, TransactionAbortedError, type VerdictClient } from '../../src/index.js';
import { encodeOrder, type Order } from './order.js';

/** How often an order that lost a lock race is tried again. */
const MAX_LOCK_RETRIES = 50;
/** Backoff step between those tries, in ms (times the attempt number). */
const LOCK_RETRY_STEP_MS = 5;

/** What became of one order. */
export type OrderResult =
  | { readonly order: Order; readonly outcome: 'committed'; readonly txId: string }
  | { readonly order: Order; readonly outcome: 'aborted'; readonly reason: string };

/** Places one order: commits it over orders, inventory and payments, retrying lock-conflict aborts. */
export async function placeOrder(client: VerdictClient, order: Order, stats: { lockRetries: number }): Promise<OrderResult> {
  const payload = encodeOrder(order);
  for (let attempt = 1; ; attempt++) {
    try {
      const { txId } = await client.transact(
        [
          { participant: 'orders', payload },
          { participant: 'inventory', payload },
          { participant: 'payments', payload },
        ],
        { waitForCompletion: true },
      );
      return { order, outcome: 'committed', txId };
    } catch (e) {
      if (isLockConflictAbort(e) && attempt < MAX_LOCK_RETRIES) {
        stats.lockRetries++;
        await sleep(LOCK_RETRY_STEP_MS * attempt);
        continue;
      }
      if (e instanceof TransactionAbortedError) return { order, outcome: 'aborted', reason: e.reason ?? e.message };
      throw e;
    }
  }
}

/** Places `orders` with at most `concurrency` in flight; results in the orders' order. */
export async function placeOrders(client: VerdictClient, orders: readonly Order[], concurrency: number): Promise<{ results: OrderResult[]; lockRetries: number }> {
  const stats = { lockRetries: 0 };
  const results: OrderResult[] = new Array<OrderResult>(orders.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < orders.length) {
      const i = next++;
      results[i] = await placeOrder(client, orders[i] as Order, stats);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, orders.length) }, worker));
  return { results, lockRetries: stats.lockRetries };
}
