// Test support: the coordinator driven through the generated gRPC clients, without the SDKs, so
// that a test sends exactly the (bad) input it means and sees exactly the status that comes back.
// Unary calls are promisified; a session stream is driven by hand and records every frame.

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Client, credentials, Metadata, type ChannelCredentials, type ClientDuplexStream, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import type { Outcome, Vote } from '../../src/gen/verdict/v1/common.js';
import {
  ParticipantServiceClient,
  type Decision,
  type EnlistResult,
  type Prepare,
  type SessionRequest,
  type SessionResponse,
} from '../../src/gen/verdict/v1/participant.js';
import {
  TransactionServiceClient,
  type AbortRequest,
  type AbortResponse,
  type BeginRequest,
  type BeginResponse,
  type CommitRequest,
  type CommitResponse,
  type CommitStreamRequest,
  type CommitStreamResponse,
  type GetTransactionResponse,
  type ReserveTxIdsRequest,
  type ReserveTxIdsResponse,
  type StreamedCommitResult,
} from '../../src/gen/verdict/v1/transaction.js';

/** Deadline of every raw unary call, in ms: a hung call fails the test instead of hanging it. */
export const RAW_CALL_TIMEOUT_MS = 10_000;
/** Longest a test waits for an expected session frame or status, in ms. */
export const RAW_WAIT_TIMEOUT_MS = 10_000;

const deadline = (): Date => new Date(Date.now() + RAW_CALL_TIMEOUT_MS);

/** The TransactionService through its generated client: every field as given, nothing checked. */
export class RawTransactions {
  readonly client: TransactionServiceClient;
  readonly #streams: RawCommitStream[] = [];

  /** `ownConnection`: a connection of its own, not shared with other clients of this process. */
  constructor(address: string, { ownConnection = false }: { ownConnection?: boolean } = {}) {
    this.client = new TransactionServiceClient(address, credentials.createInsecure(), ownConnection ? { 'grpc.use_local_subchannel_pool': 1 } : {});
  }

  begin(req: Partial<BeginRequest> = {}): Promise<BeginResponse> {
    return new Promise((resolve, reject) => {
      this.client.begin({ timeoutMs: 0, ...req }, new Metadata(), { deadline: deadline() }, (e, res) => (e ? reject(e) : resolve(res)));
    });
  }

  reserveTxIds(req: Partial<ReserveTxIdsRequest> = {}): Promise<ReserveTxIdsResponse> {
    return new Promise((resolve, reject) => {
      this.client.reserveTxIds({ count: 1, ...req }, new Metadata(), { deadline: deadline() }, (e, res) => (e ? reject(e) : resolve(res)));
    });
  }

  commit(req: Partial<CommitRequest> = {}): Promise<CommitResponse> {
    const full: CommitRequest = { txId: '', branches: [], timeoutMs: 0, waitForCompletion: false, idempotencyKey: '', ...req };
    return new Promise((resolve, reject) => {
      this.client.commit(full, new Metadata(), { deadline: deadline() }, (e, res) => (e ? reject(e) : resolve(res)));
    });
  }

  abort(req: Partial<AbortRequest> = {}): Promise<AbortResponse> {
    return new Promise((resolve, reject) => {
      this.client.abort({ txId: '', reason: '', ...req }, new Metadata(), { deadline: deadline() }, (e, res) => (e ? reject(e) : resolve(res)));
    });
  }

  /** A CommitStream with nothing sent yet (cancelled by `close` if still open). */
  commitStream(): RawCommitStream {
    const s = new RawCommitStream(this.client);
    this.#streams.push(s);
    return s;
  }

  get(txId: string): Promise<GetTransactionResponse> {
    return new Promise((resolve, reject) => {
      this.client.getTransaction({ txId }, new Metadata(), { deadline: deadline() }, (e, res) => (e ? reject(e) : resolve(res)));
    });
  }

  close(): void {
    for (const s of this.#streams) s.cancel();
    this.client.close();
  }
}

/**
 * Sends `bytes` as the request of `method` (e.g. `/verdict.v1.TransactionService/Commit`) with an
 * identity serializer, and resolves with the status the server answers.
 */
export function rawBytesCall(address: string, method: string, bytes: Uint8Array): Promise<ServiceError | Buffer> {
  const client = new Client(address, credentials.createInsecure());
  return new Promise<ServiceError | Buffer>((resolve) => {
    client.makeUnaryRequest(
      method,
      (b: Uint8Array) => Buffer.from(b),
      (b: Buffer) => b,
      bytes,
      new Metadata(),
      { deadline: deadline() },
      (e, res) => resolve(e ?? res ?? Buffer.alloc(0)),
    );
  }).finally(() => client.close());
}

/** Asserts that `promise` fails with gRPC status `code` and details matching `details`; returns the error. */
export async function expectStatus(promise: Promise<unknown>, code: number, details: RegExp): Promise<ServiceError> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) assert.fail(`expected status ${code} (${String(details)}), but the call succeeded with ${JSON.stringify(outcome.value)}`);
  const e = outcome.error as ServiceError;
  assert.equal(typeof e?.code, 'number', `expected a gRPC ServiceError, got ${String(outcome.error)}`);
  assert.equal(e.code, code, `expected status ${code}, got ${e.code}: ${e.details}`);
  assert.match(e.details, details);
  return e;
}

/** A metadata value as text (binary `-bin` values decoded as UTF-8), or undefined. */
export function metadataText(e: ServiceError, key: string): string | undefined {
  const v = e.metadata?.get(key)[0];
  return v === undefined ? undefined : Buffer.isBuffer(v) ? v.toString('utf8') : v;
}

const emptyFrame = (): SessionRequest => ({ hello: undefined, votes: [], acks: [], inquiries: [], enlists: [] });

/**
 * A bidi stream driven by hand: every frame received is kept in order, and the final status is
 * kept once it comes. A failed stream emits 'error' and then 'status': the status carries
 * everything needed.
 */
export class RawDuplex<Req, Res> {
  readonly call: ClientDuplexStream<Req, Res>;
  readonly frames: Res[] = [];
  #final: StatusObject | undefined;
  readonly #changed = new EventEmitter();

  constructor(call: ClientDuplexStream<Req, Res>) {
    this.#changed.setMaxListeners(0);
    this.call = call;
    this.call.on('data', (frame: Res) => {
      this.frames.push(frame);
      this.#changed.emit('change');
    });
    this.call.on('error', () => undefined);
    this.call.on('status', (s: StatusObject) => {
      this.#final = s;
      this.#changed.emit('change');
    });
  }

  /** Whether the stream has ended (with any status). */
  get ended(): boolean {
    return this.#final !== undefined;
  }

  /**
   * Resolves with `find()`'s first truthy value, re-checked at every frame received. Rejects when
   * the stream ends first or after `timeoutMs`.
   */
  until<T>(what: string, find: () => T | undefined | null | false, timeoutMs = RAW_WAIT_TIMEOUT_MS): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): boolean => {
        const value = find();
        if (value) {
          finish();
          resolve(value);
          return true;
        }
        if (this.#final) {
          finish();
          reject(new Error(`the stream ended (status ${this.#final.code}: ${this.#final.details}) while waiting for ${what}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.#changed.off('change', check);
      };
      if (!check()) this.#changed.on('change', check);
    });
  }

  /** Waits (bounded) for the stream's final status. */
  final(timeoutMs = RAW_WAIT_TIMEOUT_MS): Promise<StatusObject> {
    return this.until('the end of the stream', () => this.#final, timeoutMs);
  }

  /** Half-closes the stream and waits (bounded) for the server's final status. */
  end(): Promise<StatusObject> {
    if (!this.ended) this.call.end();
    return this.final();
  }

  /** Cancels the stream if it is still open. */
  cancel(): void {
    if (!this.ended) this.call.cancel();
  }
}

/** One participant session stream, driven by hand; every frame received is kept in order. */
export class RawSession extends RawDuplex<SessionRequest, SessionResponse> {
  constructor(client: ParticipantServiceClient) {
    super(client.session());
  }

  /** Sends one frame; absent fields are empty. */
  send(frame: Partial<SessionRequest>): void {
    this.call.write({ ...emptyFrame(), ...frame });
  }

  hello(participant: string): void {
    this.send({ hello: { participant } });
  }

  vote(txId: string, vote: Vote | number, reason = ''): void {
    this.send({ votes: [{ txId, vote: vote as Vote, reason }] });
  }

  ack(txId: string, outcome: Outcome | number): void {
    this.send({ acks: [{ txId, outcome: outcome as Outcome }] });
  }

  inquire(txId: string): void {
    this.send({ inquiries: [{ txId }] });
  }

  enlist(requestId: number, txId: string, capability: string, payload: Uint8Array = new Uint8Array()): void {
    this.send({ enlists: [{ requestId, txId, payload: Buffer.from(payload), capability }] });
  }

  get prepares(): Prepare[] {
    return this.frames.flatMap((f) => f.prepares);
  }

  get decisions(): Decision[] {
    return this.frames.flatMap((f) => f.decisions);
  }

  get enlistResults(): EnlistResult[] {
    return this.frames.flatMap((f) => f.enlistResults);
  }

  decisionsFor(txId: string): Outcome[] {
    return this.decisions.filter((d) => d.txId === txId).map((d) => d.outcome);
  }

  /** Waits for the Prepare of `txId`. */
  prepareFor(txId: string): Promise<Prepare> {
    return this.until(`a Prepare for ${txId}`, () => this.prepares.find((p) => p.txId === txId));
  }

  /** Waits until `count` decisions for `txId` arrived; returns them. */
  decisionCount(txId: string, count: number): Promise<Outcome[]> {
    return this.until(`${count} decision(s) for ${txId}`, () => {
      const d = this.decisionsFor(txId);
      return d.length >= count ? d : undefined;
    });
  }
}

/** One CommitStream, driven by hand: calls go out exactly as given, every answer frame is kept. */
export class RawCommitStream extends RawDuplex<CommitStreamRequest, CommitStreamResponse> {
  constructor(client: TransactionServiceClient) {
    super(client.commitStream());
  }

  /** Sends one frame with one call per entry; a call without `request` is sent without one. */
  send(...calls: { callId: number; request?: Partial<CommitRequest> }[]): void {
    this.call.write({
      commits: calls.map(({ callId, request }) => ({
        callId,
        request: request && { txId: '', branches: [], timeoutMs: 0, waitForCompletion: false, idempotencyKey: '', ...request },
      })),
    });
  }

  /** Every answer received, in order. */
  get results(): StreamedCommitResult[] {
    return this.frames.flatMap((f) => f.results);
  }

  /** Waits for the answer to `callId`; with `nth`, for its nth answer (an id may be reused once answered). */
  resultFor(callId: number, nth = 1): Promise<StreamedCommitResult> {
    return this.until(`answer ${nth} to call ${callId}`, () => this.results.filter((r) => r.callId === callId)[nth - 1]);
  }
}

/** Opens raw sessions on one coordinator and closes them all at once. */
export class RawSessions {
  readonly client: ParticipantServiceClient;
  readonly #open: RawSession[] = [];

  constructor(address: string, channelCredentials: ChannelCredentials = credentials.createInsecure()) {
    this.client = new ParticipantServiceClient(address, channelCredentials);
  }

  /** A stream with nothing sent yet. */
  open(): RawSession {
    const s = new RawSession(this.client);
    this.#open.push(s);
    return s;
  }

  /** A session registered as `name` (its hello answered with a welcome). */
  async connect(name: string): Promise<RawSession> {
    const s = this.open();
    s.hello(name);
    await s.until(`the welcome of ${name}`, () => s.frames[0]?.welcome);
    return s;
  }

  /** Cancels every stream still open and closes the client. */
  close(): void {
    for (const s of this.#open) s.cancel();
    this.client.close();
  }
}
