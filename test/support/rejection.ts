// The error a promise rejects with, when it must reject with a VerdictError.
import assert from 'node:assert/strict';
import { VerdictError } from '../../src/errors.js';

/** Resolves to the VerdictError `p` rejects with; fails the test when `p` resolves or rejects with anything else. */
export async function rejection(p: Promise<unknown>): Promise<VerdictError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof VerdictError, `expected a VerdictError, got ${String(e)}`);
    return e;
  }
  assert.fail('the call did not fail');
}
