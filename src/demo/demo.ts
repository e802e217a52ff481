// The bank demo: K bank participants, an initiator moving random amounts between accounts at two
// different banks (some overdrawing on purpose, which must abort through a NO vote), and an audit
// of what every bank durably holds once everything settled.

import { randomBytes, randomInt } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { VerdictClient } from '../client/index.js';
import type { Logger } from '../common/logger.js';
import { createThrowawayTls } from '../common/throwaway-tls.js';
import { within } from '../common/within.js';
import { Coordinator } from '../coordinator/index.js';
import { ErrorCode, VerdictError } from '../errors.js';
import { audit, quantile, type TransferOutcome, type TransferRecord } from './audit.js';
import { Bank, encodeLeg, readLedger, type BankLedger } from './bank.js';
import { DEFAULT_ACCOUNTS, DEFAULT_INITIAL_BALANCE } from './bank-options.js';
import {
  CONNECT_TIMEOUT_MS,
  COORDINATOR_WAIT_MS,
  DEFAULT_BANKS,
  DEFAULT_CONCURRENCY,
  DEFAULT_DEMO_DATA_DIR,
  DEFAULT_TRANSFERS,
  MAX_AMOUNT,
  OVERDRAFT_RATIO,
  SETTLE_POLL_MS,
  SETTLE_TIMEOUT_MS,
  TRANSFER_CALL_TIMEOUT_MS,
  type DemoOptions,
} from './demo-options.js';

/** What a demo run did and found. */
export interface DemoReport {
  /** The coordinator used, and whether the demo embedded it. */
  readonly coordinator: string;
  readonly embedded: boolean;
  /** Whether every connection ran mutual TLS (throwaway certificates). */
  readonly tls: boolean;
  readonly banks: readonly string[];
  readonly accountsPerBank: number;
  readonly transfers: number;
  readonly concurrency: number;
  readonly committed: number;
  readonly aborted: number;
  /** Transfers whose outcome the initiator never learnt (each one is also a violation). */
  readonly unknown: number;
  /** Transfers that asked for more than any account holds (all of them must abort). */
  readonly overdrafts: number;
  /** Wall time of the transfers (not of the settling and the audit), in ms. */
  readonly elapsedMs: number;
  /** Transfers answered per second. */
  readonly throughput: number;
  /** Latency of a transfer call, from request to answer, in ms. */
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly totalBefore: number;
  readonly totalAfter: number;
  /** Every invariant that failed; empty when the run is correct. */
  readonly violations: readonly string[];
  /** The run's data directory, and whether it was kept. */
  readonly runDir: string;
  readonly dataKept: boolean;
}

/** Runs the demo and audits it. Rejects only when it cannot run (bad options, no coordinator). */
export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const transfers = positiveInt('transfers', options.transfers ?? DEFAULT_TRANSFERS);
  const concurrency = positiveInt('concurrency', options.concurrency ?? DEFAULT_CONCURRENCY);
  const bankCount = positiveInt('banks', options.banks ?? DEFAULT_BANKS);
  if (bankCount < 2) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, 'banks must be at least 2: every transfer goes between two banks');
  const accountsPerBank = positiveInt('accounts per bank', options.accountsPerBank ?? DEFAULT_ACCOUNTS);
  const initialBalance = positiveInt('initial balance', options.initialBalance ?? DEFAULT_INITIAL_BALANCE);
  const logger = options.logger;
  if (options.tls === true && options.coordinator !== undefined) {
    throw new VerdictError(ErrorCode.INVALID_ARGUMENT, 'tls makes throwaway certificates for an embedded coordinator: it cannot be used with a running coordinator');
  }

  // A fresh directory per run: the audit compares against this run's opening balances only.
  const tag = randomBytes(3).toString('hex');
  const runDir = join(resolve(options.dataDir ?? DEFAULT_DEMO_DATA_DIR), `run-${new Date().toISOString().replace(/[:.]/g, '-')}-${tag}`);
  await mkdir(runDir, { recursive: true });

  let coordinator: Coordinator | undefined;
  let client: VerdictClient | undefined;
  const banks: Bank[] = [];
  const failures: string[] = [];
  let report: DemoReport | undefined;
  try {
    // Inside the run's directory: kept with it when a check failed, removed with it otherwise.
    const tls = options.tls === true ? await createThrowawayTls(join(runDir, 'tls')) : undefined;
    if (options.coordinator === undefined) {
      coordinator = await Coordinator.start({
        listen: '127.0.0.1:0',
        dataDir: join(runDir, 'coordinator'),
        ...(logger ? { logger } : {}),
        ...(tls ? { tls: tls.serverFiles } : {}),
      });
    }
    const address = options.coordinator ?? coordinator?.address ?? '';
    for (let i = 1; i <= bankCount; i++) {
      // Names carry the run's tag: a long-running coordinator never mixes two runs' banks.
      const bank = await Bank.start({
        name: `bank-${i}-${tag}`,
        coordinator: address,
        dataDir: join(runDir, `bank-${i}`),
        accounts: accountsPerBank,
        initialBalance,
        ...(logger ? { logger } : {}),
        ...(tls ? { security: await tls.client('participant', `bank-${i}-${tag}`) } : {}),
      });
      bank.participant.on('error', (e) => failures.push(`${bank.name} stopped: ${e.message}`));
      banks.push(bank);
    }
    await within(
      Promise.all(banks.map((b) => b.ready())),
      CONNECT_TIMEOUT_MS,
      () => new VerdictError(ErrorCode.UNAVAILABLE, `the banks could not reach the coordinator at ${address} within ${CONNECT_TIMEOUT_MS / 1000} s`),
    );

    const before = await readLedgers(banks);
    const totalBefore = sumTotals(before);
    const initiator = new VerdictClient(address, {
      callTimeoutMs: TRANSFER_CALL_TIMEOUT_MS,
      ...(tls ? await tls.client('initiator', 'demo') : {}),
    });
    client = initiator;
    const records: TransferRecord[] = [];
    let started = 0;
    const worker = async (): Promise<void> => {
      while (started < transfers) {
        started++;
        records.push(await transfer(initiator, banks, totalBefore, logger));
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: Math.min(concurrency, transfers) }, worker));
    const elapsedMs = performance.now() - t0;

    // Learn the outcome of calls that ended without one first, then wait for the banks to apply.
    const resolved = await resolveUnknown(initiator, records);
    const after = await settle(banks, resolved);
    const violations = [...failures, ...audit(resolved, before, after)];
    const unknown = resolved.filter((t) => t.outcome === 'unknown');
    if (unknown.length > 0) violations.push(`${unknown.length} transfer(s) never learnt their outcome`);
    for (const bank of banks) {
      if (!bank.idle) violations.push(`${bank.name} did not settle within ${SETTLE_TIMEOUT_MS / 1000} s: ${JSON.stringify(bank.pending)}`);
    }

    const latencies = records.map((r) => r.latencyMs).sort((a, b) => a - b);
    report = {
      coordinator: address,
      embedded: coordinator !== undefined,
      tls: tls !== undefined,
      banks: banks.map((b) => b.name),
      accountsPerBank,
      transfers,
      concurrency,
      committed: resolved.filter((t) => t.outcome === 'committed').length,
      aborted: resolved.filter((t) => t.outcome === 'aborted').length,
      unknown: unknown.length,
      overdrafts: resolved.filter((t) => t.overdraft && t.outcome === 'aborted').length,
      elapsedMs,
      throughput: elapsedMs > 0 ? (records.length * 1000) / elapsedMs : 0,
      latencyMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: latencies.at(-1) ?? 0 },
      totalBefore,
      totalAfter: sumTotals(after),
      violations,
      runDir,
      dataKept: options.keepData === true || violations.length > 0,
    };
    return report;
  } finally {
    client?.close();
    for (const bank of banks) await bank.close();
    await coordinator?.close();
    // Kept when asked, or when a check failed: the logs are the evidence.
    if (!(report?.dataKept ?? options.keepData === true)) await rm(runDir, { recursive: true, force: true });
  }
}

/** Runs one random transfer between two accounts at two different banks. */
async function transfer(client: VerdictClient, banks: readonly Bank[], totalMoney: number, logger: Logger | undefined): Promise<TransferRecord> {
  const fromIndex = randomInt(banks.length);
  const toIndex = (fromIndex + 1 + randomInt(banks.length - 1)) % banks.length;
  const fromBank = banks[fromIndex] as Bank;
  const toBank = banks[toIndex] as Bank;
  const from = { bank: fromBank.name, account: pick(fromBank.accounts) };
  const to = { bank: toBank.name, account: pick(toBank.accounts) };
  // An overdraft asks for more than all the money there is, so no account can cover it.
  const overdraft = Math.random() < OVERDRAFT_RATIO;
  const amount = overdraft ? totalMoney + 1 + randomInt(MAX_AMOUNT) : 1 + randomInt(MAX_AMOUNT);
  const t0 = performance.now();
  let outcome: TransferOutcome;
  let txId: string | undefined;
  try {
    // Begin first, so that every transfer that may have started has an id to ask about later.
    // A failed Begin started nothing: wait for the coordinator (it may be restarting) and retry.
    txId = await beginWhenReachable(client);
    await client.commit(txId, [
      { participant: from.bank, payload: encodeLeg({ account: from.account, delta: -amount }) },
      { participant: to.bank, payload: encodeLeg({ account: to.account, delta: amount }) },
    ]);
    outcome = 'committed';
  } catch (e) {
    if (!(e instanceof VerdictError)) throw e;
    txId = e.txId ?? txId;
    outcome = e.code === ErrorCode.TX_ABORTED ? 'aborted' : 'unknown';
    if (outcome === 'unknown') logger?.debug({ err: e, txId }, 'transfer ended without an outcome; asking later');
  }
  return { from, to, amount, overdraft, outcome, txId, latencyMs: performance.now() - t0 };
}

/**
 * Waits until every bank is idle and its store shows every committed transfer applied and no
 * leg still held: the answer to the initiator comes once the decision is durable, before the
 * banks apply it. Returns the last ledgers read (the audit judges them if the deadline passed).
 */
async function settle(banks: readonly Bank[], records: readonly TransferRecord[]): Promise<Map<string, BankLedger>> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    if (banks.every((b) => b.idle)) {
      const ledgers = await readLedgers(banks);
      const applied = records.every(
        (t) => t.outcome !== 'committed' || (ledgers.get(t.from.bank)?.applied.has(t.txId ?? '') && ledgers.get(t.to.bank)?.applied.has(t.txId ?? '')),
      );
      if (applied && [...ledgers.values()].every((l) => l.holds.length === 0)) return ledgers;
      if (Date.now() > deadline) return ledgers;
    } else if (Date.now() > deadline) {
      return readLedgers(banks);
    }
    await delay(SETTLE_POLL_MS);
  }
}

/** Begins a transaction, waiting (bounded) while the coordinator is unreachable. */
async function beginWhenReachable(client: VerdictClient): Promise<string> {
  const deadline = Date.now() + COORDINATOR_WAIT_MS;
  for (;;) {
    try {
      return (await client.begin()).txId;
    } catch (e) {
      if (!(e instanceof VerdictError) || !e.retryable || Date.now() > deadline) throw e;
      await delay(SETTLE_POLL_MS * 10);
    }
  }
}

/**
 * Asks the coordinator the outcome of transfers whose call ended without one (it may have been
 * down), until each is decided or the settle deadline passes.
 */
async function resolveUnknown(client: VerdictClient, records: readonly TransferRecord[]): Promise<TransferRecord[]> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  return Promise.all(
    records.map(async (t) => {
      if (t.outcome !== 'unknown' || t.txId === undefined) return t;
      for (;;) {
        const view = await client.get(t.txId).catch(() => undefined);
        if (view?.outcome) return { ...t, outcome: view.outcome };
        if (Date.now() > deadline) return t;
        await delay(SETTLE_POLL_MS * 10);
      }
    }),
  );
}

async function readLedgers(banks: readonly Bank[]): Promise<Map<string, BankLedger>> {
  const out = new Map<string, BankLedger>();
  for (const bank of banks) out.set(bank.name, await readLedger(bank.participant.store));
  return out;
}

function sumTotals(ledgers: ReadonlyMap<string, BankLedger>): number {
  let total = 0;
  for (const l of ledgers.values()) total += l.total;
  return total;
}

function pick<T>(items: readonly T[]): T {
  return items[randomInt(items.length)] as T;
}

function positiveInt(what: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `${what} must be a positive integer (got ${value})`);
  return value;
}

