// A member of a coordinator group that does not lead, as small as it gets: a gRPC server on
// 127.0.0.1 that answers every call and every stream with UNAVAILABLE, `verdict-code: NOT_LEADER`
// and, when it knows one, `verdict-leader: host:port`. It counts what it refused.
import { Server, ServerCredentials, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { notLeaderStatus } from '../../../src/common/grpc-errors.js';
import { ParticipantServiceService } from '../../../src/gen/verdict/v1/participant.js';
import { TransactionServiceService } from '../../../src/gen/verdict/v1/transaction.js';

/** A fake follower: `leader()` decides what it names (undefined: it knows no leader). */
export class FakeFollower {
  readonly #server = new Server();
  /** Calls refused, by method name. */
  readonly refused = new Map<string, number>();
  address = '';

  private constructor(readonly leader: () => string | undefined) {}

  /** Starts one on a free port of 127.0.0.1. */
  static async start(leader: () => string | undefined): Promise<FakeFollower> {
    const f = new FakeFollower(leader);
    const unary =
      (method: string) =>
      (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): void => {
        f.#count(method);
        callback(notLeaderStatus(f.leader()));
      };
    const stream =
      (method: string) =>
      (call: ServerDuplexStream<unknown, unknown>): void => {
        f.#count(method);
        call.on('error', () => undefined);
        call.emit('error', notLeaderStatus(f.leader()));
      };
    f.#server.addService(TransactionServiceService, {
      begin: unary('Begin'),
      commit: unary('Commit'),
      abort: unary('Abort'),
      getTransaction: unary('GetTransaction'),
      reserveTxIds: unary('ReserveTxIds'),
      commitStream: stream('CommitStream'),
    });
    f.#server.addService(ParticipantServiceService, { session: stream('Session') });
    const port = await new Promise<number>((resolve, reject) =>
      f.#server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    f.address = `127.0.0.1:${port}`;
    return f;
  }

  /** Every call and stream it refused. */
  get total(): number {
    let n = 0;
    for (const v of this.refused.values()) n += v;
    return n;
  }

  close(): void {
    this.#server.forceShutdown();
  }

  #count(method: string): void {
    this.refused.set(method, (this.refused.get(method) ?? 0) + 1);
  }
}
