// Transaction ids reserved ahead for one-shot commits, so that the client names every transaction
// before it sends it: a call whose answer is lost still says which transaction to ask about. One
// ReserveTxIds call serves many transactions (blocks grow while they are used up quickly), and the
// next block is fetched before the current one runs out, so a busy client rarely waits for one.

import type { ServiceError } from '@grpc/grpc-js';
import { fromServiceError } from '../common/grpc-errors.js';
import { ErrorCode, VerdictError } from '../errors.js';
import type { ReserveTxIdsResponse } from '../gen/verdict/v1/transaction.js';

/** One ReserveTxIds call for `count` ids with an absolute deadline (ms). */
export type ReserveIds = (count: number, deadlineMs: number) => Promise<ReserveTxIdsResponse>;
import { formatTxId, parseTxId } from '../protocol/ids.js';

/** Ids in the first block a client reserves. */
const FIRST_BLOCK_IDS = 8;
/** The most ids one block holds (the coordinator accepts up to 1024). */
const MAX_BLOCK_IDS = 256;
/** Deadline of a ReserveTxIds call, in ms. */
const RESERVE_TIMEOUT_MS = 10_000;

interface Block {
  readonly epoch: number;
  next: number;
  readonly end: number;
  readonly size: number;
  /** By this client's clock: after it, ids of this block are not handed out any more. */
  readonly usableUntil: number;
}

/** Reserved ids of one client, handed out once each. */
export class TxIdPool {
  readonly #reserveIds: ReserveIds;
  readonly #now: () => number;
  #block: Block | undefined;
  #spare: Block | undefined;
  #fetching: Promise<Block> | undefined;
  #blockIds = FIRST_BLOCK_IDS;
  #generation = 0;
  #closed = false;

  /**
   * `reserve`: one ReserveTxIds call (to the leader, in a group), rejecting with a ServiceError or
   * a VerdictError; `now`: the client's clock in ms (every reserved block's lifetime is counted on it).
   */
  constructor(reserve: ReserveIds, now: () => number) {
    this.#reserveIds = reserve;
    this.#now = now;
  }

  /**
   * The next unused id. Synchronous (`string`) while the current block lasts, else a promise of
   * one; rejects (UNAVAILABLE, UNAUTHENTICATED, LIMIT_EXCEEDED...) only when no block can be had,
   * and then no transaction was sent.
   */
  next(): string | Promise<string> {
    if (this.#closed) return Promise.reject(new VerdictError(ErrorCode.UNAVAILABLE, 'the client is closed'));
    const id = this.#take();
    if (id !== undefined) return id;
    return this.#fetch().then(() => this.next());
  }

  /**
   * Counts the connections lost: an id taken in an earlier generation may have been reserved by
   * a coordinator incarnation that is gone (see `isStale`).
   */
  get generation(): number {
    return this.#generation;
  }

  /**
   * The connection to the coordinator was lost: it may have restarted, and a new incarnation
   * presumes every id of the old one aborted. Drops the blocks held; the next call reserves anew.
   */
  connectionLost(): void {
    this.#generation++;
    this.#block = undefined;
    this.#spare = undefined;
  }

  /**
   * Whether `txId`, taken in `generation` and refused as aborted on its first send, came from a
   * coordinator incarnation that is gone: true when a fresh reservation has a higher epoch. Then
   * the id never started anything anywhere (the incarnation that answered presumes it aborted
   * and never starts an id of an earlier epoch), and the call may be made again with a new id.
   */
  async isStale(txId: string, generation: number): Promise<boolean> {
    if (generation === this.#generation) return false;
    const epoch = parseTxId(txId)?.epoch;
    if (epoch === undefined) return false;
    this.#block = undefined;
    this.#spare = undefined;
    const block = await this.#fetch();
    return block.epoch > epoch;
  }

  /** Stops handing out ids. */
  close(): void {
    this.#closed = true;
  }

  #take(): string | undefined {
    const now = this.#now();
    for (;;) {
      const b = this.#block;
      if (b && b.next < b.end && now < b.usableUntil) {
        const id = formatTxId(b.epoch, b.next++);
        // Half used: fetch the next block now, so that it is there when this one runs out.
        if (this.#spare === undefined && this.#fetching === undefined && 2 * (b.end - b.next) <= b.size) this.#prefetch();
        return id;
      }
      if (this.#spare === undefined) return undefined;
      this.#block = this.#spare;
      this.#spare = undefined;
    }
  }

  #prefetch(): void {
    // A failed prefetch is not an error of any call: the next call that needs a block asks again.
    this.#fetch().catch(() => undefined);
  }

  #fetch(): Promise<Block> {
    this.#fetching ??= this.#reserve().then(
      (block) => {
        this.#fetching = undefined;
        if (this.#block === undefined || this.#block.next >= this.#block.end || this.#now() >= this.#block.usableUntil) this.#block = block;
        else this.#spare = block;
        // Blocks grow while they are used up: few reserve calls for a busy client, few idle ids for a quiet one.
        this.#blockIds = Math.min(MAX_BLOCK_IDS, this.#blockIds * 2);
        return block;
      },
      (e: unknown) => {
        this.#fetching = undefined;
        throw e;
      },
    );
    return this.#fetching;
  }

  #reserve(): Promise<Block> {
    const sentAt = this.#now();
    if (this.#closed) return Promise.reject(new VerdictError(ErrorCode.UNAVAILABLE, 'the client is closed'));
    return this.#reserveIds(this.#blockIds, sentAt + RESERVE_TIMEOUT_MS).then(
      (res) => {
        if (!Number.isSafeInteger(res.epoch) || !Number.isSafeInteger(res.firstSeq) || res.count < 1) {
          throw new VerdictError(ErrorCode.INTERNAL, `the coordinator reserved an unreadable block of ids (${res.epoch}, ${res.firstSeq}, ${res.count})`);
        }
        // Counted from when the request left, and only half of it: a commit sent with one of
        // these ids should reach the coordinator well before it forgets the reservation.
        return { epoch: res.epoch, next: res.firstSeq, end: res.firstSeq + res.count, size: res.count, usableUntil: sentAt + Math.floor(res.ttlMs / 2) };
      },
      // Nothing was committed by a reserve call, whatever happened to it: never OUTCOME_UNKNOWN.
      (e: unknown) => {
        throw e instanceof VerdictError ? e : fromServiceError(e as ServiceError, { outcomeUnknown: false });
      },
    );
  }
}
