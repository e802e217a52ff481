// Which coordinator an SDK talks to: one address, or the members of a coordinator group, of which
// one leads. A member that does not lead says so (NOT_LEADER, naming the leader when it knows
// it); an SDK then moves to the named leader, or else to the next address of its list. Both SDKs
// use this one policy; the delays between moves come from their reconnect backoff.

import { ErrorCode, VerdictError } from '../errors.js';

const ADDRESS = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):[1-9][0-9]{0,4}$/;

/**
 * Checks the coordinator address (or list of a group's addresses) an SDK was given: each
 * `host:port`, at least one, no repeats. Throws INVALID_ARGUMENT naming the bad one.
 */
export function coordinatorAddresses(input: string | readonly string[]): string[] {
  const list = typeof input === 'string' ? [input] : [...input];
  if (list.length === 0) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, 'no coordinator address: pass host:port, or a list of them');
  for (const a of list) {
    if (typeof a !== 'string' || !ADDRESS.test(a) || Number(a.slice(a.lastIndexOf(':') + 1)) > 65_535) {
      throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `coordinator address ${JSON.stringify(a)} is not host:port`);
    }
  }
  if (new Set(list).size !== list.length) throw new VerdictError(ErrorCode.INVALID_ARGUMENT, `coordinator addresses repeat: ${list.join(', ')}`);
  return list;
}

/** The addresses an SDK may use, and the one it uses now. */
export class CoordinatorTargets {
  readonly #configured: readonly string[];
  /** The leader a member named that is not in the configured list, while it is the target. */
  #named: string | undefined;
  #index = 0;
  /**
   * Where trying the addresses in turn has reached. It moves only when no leader is named, so that
   * a stale hint (a follower naming a leader that is frozen or gone) cannot send the SDK back and
   * forth between two addresses while a third one leads: every address gets its turn.
   */
  #cursor = 0;
  #moves = 0;

  constructor(addresses: readonly string[]) {
    this.#configured = addresses;
  }

  /** The address calls go to now. */
  get current(): string {
    return this.#named ?? (this.#configured[this.#index] as string);
  }

  /** How many times the target moved (a new target may be a new coordinator incarnation). */
  get moves(): number {
    return this.#moves;
  }

  /** Whether `address` is one of the configured addresses (not only named by a member). */
  configured(address: string): boolean {
    return this.#configured.includes(address);
  }

  /** Whether there is more than one address to go to. */
  get group(): boolean {
    return this.#configured.length > 1;
  }

  /**
   * Moves to `leader` (named by a member that does not lead), or, without one, to the next
   * configured address in turn (never straight back to the one that just failed). Returns the new
   * target.
   */
  moveTo(leader: string | undefined): string {
    this.#moves++;
    if (leader !== undefined) {
      const i = this.#configured.indexOf(leader);
      if (i >= 0) {
        this.#index = i;
        this.#named = undefined;
      } else {
        this.#named = leader;
      }
      return this.current;
    }
    // A named leader that fails is dropped: the configured list is what the operator vouched for.
    const n = this.#configured.length;
    const failed = this.#named === undefined ? this.#index : -1;
    this.#named = undefined;
    this.#cursor = (this.#cursor + 1) % n;
    if (this.#cursor === failed && n > 1) this.#cursor = (this.#cursor + 1) % n;
    this.#index = this.#cursor;
    return this.current;
  }
}
