// The shop's one message: an order, as every branch of its transaction carries it. Each service
// reads the part it owns (orders: the order; inventory: sku and quantity; payments: customer and
// amount).

/** One order. `orderId` is the initiator's; the transaction id is the coordinator's. */
export interface Order {
  readonly orderId: string;
  readonly customer: string;
  readonly sku: string;
  readonly qty: number;
  /** What the customer pays, in cents: qty × the catalog price. */
  readonly amount: number;
}

/** The catalog: price in cents and the stock each SKU starts with. */
export const CATALOG: Readonly<Record<string, { readonly price: number; readonly stock: number }>> = {
  widget: { price: 1_000, stock: 12 },
  gadget: { price: 2_500, stock: 4 },
  gizmo: { price: 400, stock: 20 },
};

/** What each customer's account starts with, in cents. */
export const WALLETS: Readonly<Record<string, number>> = {
  alice: 20_000,
  bob: 3_000,
  carol: 8_000,
};

/** The order as branch payload bytes. */
export function encodeOrder(order: Order): Buffer {
  return Buffer.from(JSON.stringify(order), 'utf8');
}

/** The order in a branch payload; throws (a NO vote in prepare) when it is not one. */
export function decodeOrder(payload: Uint8Array): Order {
  const o = JSON.parse(Buffer.from(payload).toString('utf8')) as Partial<Order>;
  if (typeof o.orderId !== 'string' || typeof o.customer !== 'string' || typeof o.sku !== 'string' || !Number.isSafeInteger(o.qty) || !Number.isSafeInteger(o.amount) || (o.qty ?? 0) < 1 || (o.amount ?? -1) < 0) {
    throw new Error('the payload is not an order');
  }
  return o as Order;
}
