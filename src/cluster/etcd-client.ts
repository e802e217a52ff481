// The etcd seam: exactly the part of the `etcd3` client that leadership (leadership.ts) and the
// decision store (etcd-decision-store.ts) call, as structural types. Production passes an `Etcd3`
// (it satisfies these types as it is: coordinator-group-member.ts hands one over unchanged); the
// simulator passes a linearizable store with leases on its virtual clock. Nothing here decides
// anything: the fencing and the lease logic stay in the two modules that use the seam.
//
// The shapes follow etcd3's builders (`client.if(...).then(...).commit()`), so that the code
// using them reads as etcd3 code and needs no adapter on the production path.

/** Per-call options: every call the cluster code makes carries an absolute deadline. */
export interface EtcdCallOptions {
  readonly deadline?: Date | number;
}

/** Options of a lease: the cluster code keeps its leases alive itself. */
export interface EtcdLeaseOptions extends EtcdCallOptions {
  readonly autoKeepAlive?: boolean;
}

/** A key-value pair as a range read returns it (revisions are decimal strings, as etcd3 gives them). */
export interface EtcdKeyValue {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly create_revision: string;
}

/** What a range read answers. */
export interface EtcdRangeResult {
  readonly kvs: readonly EtcdKeyValue[];
  readonly more: boolean;
}

/** What a transaction answers: whether its comparisons held, the revision, and the branch's answers. */
export interface EtcdTxnResult {
  readonly succeeded: boolean;
  readonly header: { readonly revision: string };
  readonly responses: ReadonlyArray<{ readonly response_range?: { readonly kvs?: readonly EtcdKeyValue[] } | null }>;
}

/** One operation inside a transaction (a put, a delete or a read, as the client's builders make them). */
export type EtcdOperation = object;

/** A put being built. */
export interface EtcdPutBuilder {
  value(value: string | Buffer): EtcdPutBuilder;
  lease(leaseId: string): EtcdPutBuilder;
}

/** A delete being built. */
export interface EtcdDeleteBuilder {
  key(key: string | Buffer): EtcdDeleteBuilder;
}

/** A read of one key. */
export interface EtcdGetBuilder {
  options(options: EtcdCallOptions): EtcdGetBuilder;
  buffer(): Promise<Buffer | null>;
  exec(): Promise<EtcdRangeResult>;
}

/** A read of a key range. */
export interface EtcdRangeBuilder {
  inRange(range: { readonly start: string; readonly end: string }): EtcdRangeBuilder;
  sort(target: 'Key', order: 'Ascend'): EtcdRangeBuilder;
  limit(count: number): EtcdRangeBuilder;
  options(options: EtcdCallOptions): EtcdRangeBuilder;
  exec(): Promise<EtcdRangeResult>;
}

/** The comparison columns and operators the cluster code uses. */
export type EtcdCompareTarget = 'Create' | 'Value';
/** A comparison operator. */
export type EtcdComparator = '==' | '>';

/** A transaction being built: comparisons, then the operations of each branch. */
export interface EtcdTxnBuilder {
  and(key: string | Buffer, column: EtcdCompareTarget, cmp: EtcdComparator, value: string | Buffer | number): EtcdTxnBuilder;
  then(...ops: EtcdOperation[]): EtcdTxnBuilder;
  else(...ops: EtcdOperation[]): EtcdTxnBuilder;
  options(options: EtcdCallOptions): EtcdTxnBuilder;
  commit(): Promise<EtcdTxnResult>;
}

/** A lease: granted once, kept alive one call at a time, revoked. */
export interface EtcdLease {
  /** The client reports a lease it lost; the cluster code learns that from its own calls instead. */
  on(event: 'lost', listener: (error: Error) => void): unknown;
  /** Grants the lease; resolves to its id. */
  grant(): Promise<string>;
  /**
   * One keep-alive; resolves to the TTL etcd granted, in seconds (≤ 0: the lease is gone), or
   * rejects with an error named `EtcdLeaseInvalidError` when etcd no longer knows the lease.
   */
  keepaliveOnce(options?: EtcdCallOptions): Promise<{ readonly TTL: string }>;
  /** Revokes the lease: its keys are deleted at once. */
  revoke(options?: EtcdCallOptions): Promise<void>;
}

/** What the cluster code needs from etcd: leases, reads, and transactions with comparisons. */
export interface EtcdClient {
  lease(ttlS: number, options?: EtcdLeaseOptions): EtcdLease;
  if(key: string | Buffer, column: EtcdCompareTarget, cmp: EtcdComparator, value: string | Buffer | number): EtcdTxnBuilder;
  put(key: string | Buffer): EtcdPutBuilder;
  get(key: string | Buffer): EtcdGetBuilder;
  getAll(): EtcdRangeBuilder;
  delete(): EtcdDeleteBuilder;
}
