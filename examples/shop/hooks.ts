// The three services' hooks, written by the pattern of the README's "Writing hooks": lock every
// key you will read or write in prepare, read it with ctx.get after the lock, refuse what cannot
// be done (a NO vote with a reason), stage a hold; in commit read the hold and apply it; in abort
// drop it. The locks are held until the outcome is written, so no other order can read or change
// a stock level or a balance between the check and the write.

import type { ParticipantHooks } from '../../src/index.js';
import { CATALOG, decodeOrder, WALLETS, type Order } from './order.js';

/** The shop's services, by participant name. */
export const SERVICES = ['orders', 'inventory', 'payments'] as const;
/** A service. */
export type ServiceName = (typeof SERVICES)[number];

/** What a service stores at its first start (key → value). */
export function seed(service: ServiceName): Record<string, unknown> {
  switch (service) {
    case 'orders':
      return {};
    case 'inventory':
      return Object.fromEntries(Object.entries(CATALOG).map(([sku, { stock }]) => [`stock/${sku}`, stock]));
    case 'payments':
      return Object.fromEntries(Object.entries(WALLETS).map(([customer, cents]) => [`balance/${customer}`, cents]));
  }
}

const hold = (txId: string): string => `hold/${txId}`;

/** Orders: records each placed order, once. */
const orders: ParticipantHooks = {
  async prepare(txId, payload, { lock, get, batch }) {
    const order = decodeOrder(payload);
    await lock(`order/${order.orderId}`, 'exclusive');
    if ((await get(`order/${order.orderId}`)) !== undefined) return { vote: 'no', reason: `order ${order.orderId} was already placed` };
    batch.put(hold(txId), order);
    return 'yes';
  },
  async commit(txId, { get, batch }) {
    const order = (await get(hold(txId))) as Order | undefined;
    if (order) batch.put(`order/${order.orderId}`, { ...order, txId });
    batch.del(hold(txId));
  },
  abort(txId, { batch }) {
    batch.del(hold(txId));
  },
};

/** Inventory: takes the ordered quantity out of stock, or votes NO "out of stock". */
const inventory: ParticipantHooks = {
  async prepare(txId, payload, { lock, get, batch }) {
    const { sku, qty } = decodeOrder(payload);
    await lock(`stock/${sku}`, 'exclusive');
    const stock = (await get(`stock/${sku}`)) as number | undefined;
    if (stock === undefined) return { vote: 'no', reason: `unknown sku ${sku}` };
    if (stock < qty) return { vote: 'no', reason: `out of stock: ${sku} has ${stock}, the order wants ${qty}` };
    batch.put(hold(txId), { sku, qty });
    return 'yes';
  },
  async commit(txId, { get, batch }) {
    const h = (await get(hold(txId))) as { sku: string; qty: number } | undefined;
    if (h) batch.put(`stock/${h.sku}`, ((await get(`stock/${h.sku}`)) as number) - h.qty);
    batch.del(hold(txId));
  },
  abort(txId, { batch }) {
    batch.del(hold(txId));
  },
};

/** Payments: debits the customer, or votes NO "insufficient funds"; records each payment received. */
const payments: ParticipantHooks = {
  async prepare(txId, payload, { lock, get, batch }) {
    const { customer, amount } = decodeOrder(payload);
    await lock(`balance/${customer}`, 'exclusive');
    const balance = (await get(`balance/${customer}`)) as number | undefined;
    if (balance === undefined) return { vote: 'no', reason: `unknown customer ${customer}` };
    if (balance < amount) return { vote: 'no', reason: `insufficient funds: ${customer} has ${balance}, the order costs ${amount}` };
    batch.put(hold(txId), { customer, amount });
    return 'yes';
  },
  async commit(txId, { get, batch }) {
    const h = (await get(hold(txId))) as { customer: string; amount: number } | undefined;
    if (h) {
      batch.put(`balance/${h.customer}`, ((await get(`balance/${h.customer}`)) as number) - h.amount);
      // One key per payment, not a running total: a total would be one lock every order contends for.
      batch.put(`paid/${txId}`, h);
    }
    batch.del(hold(txId));
  },
  abort(txId, { batch }) {
    batch.del(hold(txId));
  },
};

/** The hooks of `service`. */
export function hooksOf(service: ServiceName): ParticipantHooks {
  return { orders, inventory, payments }[service];
}
