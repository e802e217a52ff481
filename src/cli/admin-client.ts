// The CLI's AdminService client: the connection flags every admin command shares (coordinator
// address, TLS files, bearer token) and the three calls as promises that fail with VerdictError.

import { readFileSync } from 'node:fs';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { fromServiceError } from '../common/grpc-errors.js';
import { clientChannel, type ClientSecurityOptions } from '../common/tls.js';
import { ErrorCode, VerdictError } from '../errors.js';
import {
  AdminServiceClient,
  type InspectTransactionResponse,
  type ListParticipantsResponse,
  type ListTransactionsRequest,
  type ListTransactionsResponse,
} from '../gen/verdict/v1/admin.js';

/** How long one admin call may take, in ms. */
export const ADMIN_CALL_TIMEOUT_MS = 10_000;

/** The connection flags of the admin commands. */
export interface AdminConnectionOptions {
  readonly coordinator: string;
  readonly tlsCa?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly tokenFile?: string;
}

function readFlagFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `${flag} ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** The security options from the flags (the token also from VERDICT_TOKEN); TLS flags go together. */
export function adminSecurity(options: AdminConnectionOptions): ClientSecurityOptions {
  const { tlsCa, tlsCert, tlsKey, tokenFile } = options;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, '--tls-cert and --tls-key go together');
  if (tlsCert !== undefined && tlsCa === undefined) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, '--tls-cert needs --tls-ca (the CA that signed the coordinator)');
  const envToken = process.env['VERDICT_TOKEN'];
  if (tokenFile !== undefined && envToken) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, '--token-file and VERDICT_TOKEN conflict: give one');
  const token = tokenFile !== undefined ? readFlagFile('--token-file', tokenFile).toString('utf8').trim() : envToken || undefined;
  return {
    ...(tlsCa !== undefined
      ? { tls: { ca: readFlagFile('--tls-ca', tlsCa), ...(tlsCert !== undefined && tlsKey !== undefined ? { cert: readFlagFile('--tls-cert', tlsCert), key: readFlagFile('--tls-key', tlsKey) } : {}) } }
      : {}),
    ...(token !== undefined ? { token } : {}),
  };
}

/** AdminService over one channel; `close()` when done. */
export class AdminClient {
  readonly #client: AdminServiceClient;

  /** Dials `options.coordinator` with the TLS files and token of the flags (read now; errors are INVALID_ARGUMENT). */
  constructor(options: AdminConnectionOptions) {
    const { credentials, options: channelOptions } = clientChannel(adminSecurity(options));
    this.#client = new AdminServiceClient(options.coordinator, credentials, channelOptions);
  }

  /** InspectTransaction: one transaction, live or finished. */
  inspect(txId: string): Promise<InspectTransactionResponse> {
    return this.#call((deadline, cb) => this.#client.inspectTransaction({ txId }, new Metadata(), { deadline }, cb), txId);
  }

  /** ListTransactions: live transactions matching `request`. */
  list(request: ListTransactionsRequest): Promise<ListTransactionsResponse> {
    return this.#call((deadline, cb) => this.#client.listTransactions(request, new Metadata(), { deadline }, cb));
  }

  /** ListParticipants: the live participant sessions. */
  participants(): Promise<ListParticipantsResponse> {
    return this.#call((deadline, cb) => this.#client.listParticipants({}, new Metadata(), { deadline }, cb));
  }

  /** Closes the channel. */
  close(): void {
    this.#client.close();
  }

  #call<T>(start: (deadline: Date, cb: (e: ServiceError | null, res?: T) => void) => unknown, txId?: string): Promise<T> {
    return new Promise((resolve, reject) => {
      start(new Date(Date.now() + ADMIN_CALL_TIMEOUT_MS), (e, res) => {
        if (e) reject(fromServiceError(e, txId !== undefined ? { txId } : {}));
        else if (res === undefined) reject(new VerdictError(ErrorCode.INTERNAL, 'the coordinator sent an empty answer'));
        else resolve(res);
      });
    });
  }
}
