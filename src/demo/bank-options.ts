// Options of the demo bank: a participant that keeps accounts in its own store.

import type { Logger } from '../common/logger.js';
import type { ParticipantMachineConfig } from '../protocol/participant-machine.js';

/** Accounts a new bank opens when its store is empty. */
export const DEFAULT_ACCOUNTS = 10;
/** Balance each new account starts with, in whole currency units. */
export const DEFAULT_INITIAL_BALANCE = 1_000;

/** Options of `Bank.start`. */
export interface BankOptions {
  /** The bank's participant name. */
  readonly name: string;
  /** The coordinator's `host:port`, or the members of a coordinator group (the SDK follows the leader). */
  readonly coordinator: string | readonly string[];
  /** Directory of the bank's participant log and account store. */
  readonly dataDir: string;
  /**
   * Accounts to open when the store has none (`"1"` … `"N"`). Ignored when the bank was seeded
   * before: the stored accounts are the truth.
   */
  readonly accounts?: number;
  /** Opening balance of each seeded account. */
  readonly initialBalance?: number;
  /** Participant protocol tunables. */
  readonly protocol?: Partial<ParticipantMachineConfig>;
  /** Logger; defaults to the participant SDK's. */
  readonly logger?: Logger;
}
