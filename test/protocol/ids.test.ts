// Transaction ids and participant names: the strict shapes every id must have before it reaches a
// key, a map or a log line, and the epoch an id carries (what presumed abort after a restart
// relies on).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  compareTxIds,
  formatTxId,
  MAX_PARTICIPANT_NAME_LENGTH,
  MAX_TX_ID_LENGTH,
  parseTxId,
  participantNameProblem,
  txIdProblem,
} from '../../src/protocol/ids.js';
import { backoffDelayMs } from '../../src/protocol/types.js';

describe('transaction ids', () => {
  it('carry the epoch and the sequence number that issued them', () => {
    assert.equal(formatTxId(7, 42), 'tx-7-42');
    assert.deepEqual(parseTxId('tx-7-42'), { epoch: 7, seq: 42 });
  });

  it('round-trip through format and parse, up to 15 digits per part', () => {
    for (const [epoch, seq] of [
      [1, 1],
      [3, 999],
      [123456789, 987654321],
      [999_999_999_999_999, 999_999_999_999_999],
    ] as const) {
      const id = formatTxId(epoch, seq);
      assert.ok(id.length <= MAX_TX_ID_LENGTH, `${id} is longer than the cap`);
      assert.deepEqual(parseTxId(id), { epoch, seq });
      assert.equal(txIdProblem(id), undefined);
    }
  });

  it('reject anything that is not exactly tx-<epoch>-<seq> with positive decimal parts', () => {
    const bad = [
      '',
      'tx-0-1', // epochs start at 1
      'tx-1-0', // sequence numbers start at 1
      'tx-01-1', // no leading zeros: one id, one spelling
      'tx-1-01',
      'TX-1-1',
      'tx-1',
      'tx-1-',
      'tx--1-1',
      'tx-1--1',
      'tx-1-1-1',
      'tx-1.5-1',
      'tx-1e3-1',
      'tx-+1-1',
      ' tx-1-1',
      'tx-1-1 ',
      'tx-1-1\n',
      '\ntx-1-1',
      'tx-1-1\x00',
      'tx-1-1!x',
      '../tx-1-1',
      'tx-1-1/..',
      'tx-１-1', // a full-width digit
      'tx-1000000000000000-1', // 16 digits: beyond the cap
      'tx-1-1000000000000000',
      `tx-1-${'1'.repeat(40)}`,
    ];
    for (const id of bad) {
      assert.equal(parseTxId(id), undefined, `parseTxId(${JSON.stringify(id)})`);
      assert.ok(txIdProblem(id), `txIdProblem(${JSON.stringify(id)}) should name a problem`);
    }
  });

  it('explain an empty id differently from a malformed one', () => {
    assert.equal(txIdProblem(''), 'tx id is empty');
    assert.match(txIdProblem('nope') ?? '', /"nope" is malformed \(expected tx-<epoch>-<seq>\)/);
  });

  it('quote at most a bounded prefix of a huge malformed id', () => {
    const huge = 'x'.repeat(100_000);
    const problem = txIdProblem(huge) ?? '';
    assert.ok(problem.length < 200, `the message is ${problem.length} characters`);
  });
});

describe('ordering transaction ids', () => {
  it('orders by epoch first, then by sequence number (numerically, not as text)', () => {
    assert.ok(compareTxIds('tx-1-9', 'tx-1-10') < 0);
    assert.ok(compareTxIds('tx-2-1', 'tx-1-999') > 0);
    assert.ok(compareTxIds('tx-10-1', 'tx-9-1') > 0);
    assert.equal(compareTxIds('tx-3-4', 'tx-3-4'), 0);
    assert.deepEqual(['tx-2-1', 'tx-1-10', 'tx-1-9'].sort(compareTxIds), ['tx-1-9', 'tx-1-10', 'tx-2-1']);
  });

  it('sorts malformed ids first', () => {
    assert.ok(compareTxIds('bogus', 'tx-1-1') < 0);
    assert.ok(compareTxIds('tx-1-1', '') > 0);
    assert.equal(compareTxIds('bogus', ''), 0);
  });
});

describe('participant names', () => {
  it('accept lowercase letters, digits, dot, underscore and dash, starting with a letter or digit', () => {
    for (const name of ['inventory', 'a', '0', 'pay.v2_eu-1', 'x'.repeat(MAX_PARTICIPANT_NAME_LENGTH)]) {
      assert.equal(participantNameProblem(name), undefined, name);
    }
  });

  it('reject empty, over-long, uppercase, separators, control and non-ASCII characters', () => {
    const bad = [
      'Inventory',
      '-a',
      '.a',
      '_a',
      '..',
      'a b',
      'a/b',
      '../etc',
      'a!b',
      'a\x00b',
      'a\n',
      'é',
      'x'.repeat(MAX_PARTICIPANT_NAME_LENGTH + 1),
    ];
    for (const name of bad) assert.ok(participantNameProblem(name), `participantNameProblem(${JSON.stringify(name)})`);
    assert.equal(participantNameProblem(''), 'participant name is empty');
    assert.match(participantNameProblem('A') ?? '', /participant name "A" is invalid/);
  });

  it('quote at most a bounded prefix of a huge name', () => {
    const problem = participantNameProblem('Z'.repeat(100_000)) ?? '';
    assert.ok(problem.length < 400, `the message is ${problem.length} characters`);
  });
});

describe('retry backoff', () => {
  it('doubles from the initial delay and stops at the cap', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((attempt) => backoffDelayMs(attempt, 100, 1_000)),
      [100, 200, 400, 800, 1_000, 1_000],
    );
  });

  it('treats attempts below 1 as the first and never overflows for huge attempts', () => {
    assert.equal(backoffDelayMs(0, 100, 1_000), 100);
    assert.equal(backoffDelayMs(-5, 100, 1_000), 100);
    assert.equal(backoffDelayMs(10_000, 100, 1_000), 1_000);
  });
});
