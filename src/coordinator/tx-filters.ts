// Which live transactions count as in doubt: shared by the admin service's filter and the
// in-doubt gauge, so that both always agree.

import type { TxView } from '../protocol/coordinator-events.js';

/**
 * Whether a live transaction has a participant that voted YES and has not acknowledged the
 * outcome, or is a one-phase commit whose outcome only its participant knows.
 */
export function isInDoubt(view: TxView): boolean {
  return view.state === 'in-doubt' || view.branches.some((b) => b.vote === 'yes' && !b.acknowledged);
}
