// Gids: what they encode, what they refuse, and that recovery's prefix matches only its own.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatGid, gidPrefix, MAX_GID_BYTES, txIdOfGid } from '../../src/postgres/index.js';

describe('gids', () => {
  it('encode the cluster, the participant and the tx id', () => {
    const prefix = gidPrefix('prod-eu', 'bank_a');
    assert.equal(prefix, 'verdict1:prod-eu:bank_a:');
    assert.equal(formatGid(prefix, 'tx-12-345'), 'verdict1:prod-eu:bank_a:tx-12-345');
    assert.equal(txIdOfGid(prefix, 'verdict1:prod-eu:bank_a:tx-12-345'), 'tx-12-345');
  });

  it("do not take another participant's or cluster's gids for their own", () => {
    const prefix = gidPrefix('prod', 'bank');
    assert.equal(txIdOfGid(prefix, 'verdict1:prod:bank-2:tx-1-1'), undefined);
    assert.equal(txIdOfGid(prefix, 'verdict1:prod:bankx:tx-1-1'), undefined);
    assert.equal(txIdOfGid(prefix, 'verdict1:prodx:bank:tx-1-1'), undefined);
    assert.equal(txIdOfGid(prefix, 'verdict1:prod:bank:tx-1-1:extra'), undefined);
    assert.equal(txIdOfGid(prefix, 'someone-else'), undefined);
  });

  it('refuse characters that would need quoting and names that are too long', () => {
    for (const cluster of ['', 'Prod', "a'b", 'a:b', 'a b', 'x'.repeat(33)]) {
      assert.throws(() => gidPrefix(cluster, 'bank'), { code: 'INVALID_ARGUMENT' }, cluster);
    }
    for (const name of ['', 'Bank', "a'b", 'a:b', 'x'.repeat(65)]) {
      assert.throws(() => gidPrefix('prod', name), { code: 'INVALID_ARGUMENT' }, name);
    }
    const prefix = gidPrefix('prod', 'bank');
    for (const txId of ['', "tx-1-1'", 'tx-1-1; --', 'tx-0-1', 'tx-1-1\u0000']) {
      assert.throws(() => formatGid(prefix, txId), { code: 'INVALID_ARGUMENT' }, txId);
    }
  });

  it('stay within PostgreSQL limit of 200 bytes at the longest names', () => {
    const gid = formatGid(gidPrefix('c'.repeat(32), 'p'.repeat(64)), 'tx-999999999999999-999999999999999');
    assert.ok(Buffer.byteLength(gid) <= MAX_GID_BYTES, `${Buffer.byteLength(gid)} bytes`);
  });
});
