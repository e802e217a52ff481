// The lock manager, as a specification: random sequences of lock requests, releases, prepares and
// restarts (fast-check), checked against a model after every step.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { armMutants } from '../../src/common/mutants.js';
import { LockConflictError, LockManager, LockMode, isLockConflictAbort, type HeldLock } from '../../src/participant/lock-manager.js';
import { ErrorCode, TransactionAbortedError, VerdictError } from '../../src/errors.js';

const TXS = ['t1', 't2', 't3', 't4'];
const KEYS = ['a', 'b', 'c'];

type Op =
  | { readonly type: 'acquire'; readonly tx: string; readonly key: string; readonly mode: LockMode }
  | { readonly type: 'release'; readonly tx: string }
  | { readonly type: 'prepare'; readonly tx: string }
  | { readonly type: 'restart' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ type: fc.constant('acquire' as const), tx: fc.constantFrom(...TXS), key: fc.constantFrom(...KEYS), mode: fc.constantFrom(LockMode.SHARED, LockMode.EXCLUSIVE) }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('release' as const), tx: fc.constantFrom(...TXS) }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('prepare' as const), tx: fc.constantFrom(...TXS) }) },
  { weight: 1, arbitrary: fc.constant({ type: 'restart' as const }) },
);

/** What the model says `tx` may be granted: no other holder in a conflicting mode. */
function conflicts(model: Map<string, Map<string, LockMode>>, tx: string, key: string, mode: LockMode): boolean {
  for (const [other, locks] of model) {
    if (other === tx) continue;
    const held = locks.get(key);
    if (held && (held === LockMode.EXCLUSIVE || mode === LockMode.EXCLUSIVE)) return true;
  }
  return false;
}

/** The manager's table agrees with the model, and its safety invariants hold. */
function checkTable(locks: LockManager, model: Map<string, Map<string, LockMode>>): void {
  for (const key of KEYS) {
    const holders = locks.holdersOf(key);
    const expected = [...model].filter(([, m]) => m.has(key));
    if (expected.length === 0) {
      assert.equal(holders, undefined, `nobody holds ${key}`);
      continue;
    }
    assert.ok(holders);
    assert.deepEqual([...holders.txIds].sort(), expected.map(([tx]) => tx).sort(), `holders of ${key}`);
    assert.equal(new Set(holders.txIds).size, holders.txIds.length, `each holder of ${key} once`);
    // Two exclusive holders never coexist; a shared holder never coexists with an exclusive one.
    if (holders.mode === LockMode.EXCLUSIVE) assert.equal(holders.txIds.length, 1, `${key} is exclusive with ${holders.txIds.join(', ')}`);
    for (const [tx, m] of expected) assert.ok(m.get(key) === holders.mode, `${tx} holds ${key} ${m.get(key)}, the key is ${holders.mode}`);
  }
  for (const tx of TXS) {
    const mine = model.get(tx);
    assert.deepEqual(
      [...locks.locksOf(tx)].sort((x, y) => x.key.localeCompare(y.key)),
      [...(mine ?? new Map())].map(([key, mode]) => ({ key, mode })).sort((x, y) => x.key.localeCompare(y.key)),
      `locks of ${tx}`,
    );
  }
}

describe('lock manager', () => {
  it('grants what does not conflict, refuses at once what does, releases each lock exactly once, and keeps prepared locks across a restart', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        let locks = new LockManager();
        // The model: what each live transaction holds; prepared ones keep theirs as recorded.
        const model = new Map<string, Map<string, LockMode>>();
        const prepared = new Map<string, readonly HeldLock[]>();
        const acquired = new Map<string, number>();
        const released = new Map<string, number>();
        for (const op of ops) {
          switch (op.type) {
            case 'acquire': {
              if (prepared.has(op.tx)) break; // the SDK takes locks only while the prepare hook runs
              const expectRefused = conflicts(model, op.tx, op.key, op.mode);
              const result = locks.acquire(op.tx, op.key, op.mode);
              // No wait: the answer is there at once, never a promise of one.
              assert.equal(typeof (result as unknown as { then?: unknown }).then, 'undefined');
              assert.equal(result.granted, !expectRefused, `${op.tx} ${op.mode} ${op.key}`);
              if (!result.granted) {
                assert.ok(result.holders.length > 0 && !result.holders.includes(op.tx));
                break;
              }
              const mine = model.get(op.tx) ?? new Map<string, LockMode>();
              const before = mine.get(op.key);
              if (!before) acquired.set(`${op.tx}/${op.key}`, (acquired.get(`${op.tx}/${op.key}`) ?? 0) + 1);
              mine.set(op.key, before === LockMode.EXCLUSIVE ? LockMode.EXCLUSIVE : op.mode);
              model.set(op.tx, mine);
              break;
            }
            case 'release': {
              const out = locks.release(op.tx);
              const expected = model.get(op.tx) ?? new Map();
              assert.deepEqual(new Set(out.map((l) => l.key)), new Set(expected.keys()), `released locks of ${op.tx}`);
              for (const l of out) released.set(`${op.tx}/${l.key}`, (released.get(`${op.tx}/${l.key}`) ?? 0) + 1);
              assert.deepEqual(locks.release(op.tx), [], 'a second release releases nothing');
              model.delete(op.tx);
              prepared.delete(op.tx);
              break;
            }
            case 'prepare':
              // What the PREPARED record keeps.
              if (model.has(op.tx)) prepared.set(op.tx, locks.locksOf(op.tx));
              break;
            case 'restart': {
              // Memory is lost; only the prepared transactions' recorded locks come back.
              locks = new LockManager();
              for (const tx of [...model.keys()]) {
                if (!prepared.has(tx)) {
                  // A transaction that was still preparing died with the process: its locks
                  // went with it (they were never released, and never will be).
                  for (const key of model.get(tx)!.keys()) released.set(`${tx}/${key}`, (released.get(`${tx}/${key}`) ?? 0) + 1);
                  model.delete(tx);
                }
              }
              for (const [tx, held] of prepared) locks.restore(tx, held);
              break;
            }
          }
          checkTable(locks, model);
        }
        // Finish everything: every lock ever granted is released exactly once.
        for (const tx of TXS) for (const l of locks.release(tx)) released.set(`${tx}/${l.key}`, (released.get(`${tx}/${l.key}`) ?? 0) + 1);
        for (const [lock, n] of acquired) assert.equal(released.get(lock), n, `${lock} released ${released.get(lock) ?? 0} times, acquired ${n}`);
        for (const [lock, n] of released) assert.equal(acquired.get(lock), n, `${lock} released without being acquired`);
        assert.equal(locks.lockedKeys, 0);
        assert.equal(locks.holders, 0);
      }),
      { numRuns: 500 },
    );
  });

  it('upgrades a shared lock held alone to exclusive, and refuses to upgrade a shared one another reader holds', () => {
    const locks = new LockManager();
    assert.ok(locks.acquire('t1', 'k', LockMode.SHARED).granted);
    assert.ok(locks.acquire('t1', 'k', LockMode.EXCLUSIVE).granted);
    assert.deepEqual(locks.holdersOf('k'), { mode: LockMode.EXCLUSIVE, txIds: ['t1'] });
    assert.ok(locks.acquire('t1', 'k', LockMode.SHARED).granted, 'a weaker request changes nothing');
    assert.deepEqual(locks.holdersOf('k'), { mode: LockMode.EXCLUSIVE, txIds: ['t1'] });
    assert.ok(locks.acquire('t2', 'j', LockMode.SHARED).granted);
    assert.ok(locks.acquire('t3', 'j', LockMode.SHARED).granted);
    assert.deepEqual(locks.acquire('t2', 'j', LockMode.EXCLUSIVE), { granted: false, holders: ['t3'] });
  });

  it('refuses to restore two prepared transactions that hold one key exclusively (the log is not what the SDK wrote)', () => {
    const locks = new LockManager();
    locks.restore('t1', [{ key: 'k', mode: LockMode.EXCLUSIVE }]);
    assert.throws(
      () => locks.restore('t2', [{ key: 'k', mode: LockMode.SHARED }]),
      (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.LOG_CORRUPT,
    );
  });

  it('the lock-conflicts-ignored mutant breaks exclusivity (the property above would catch it)', () => {
    armMutants('lock-conflicts-ignored');
    try {
      const locks = new LockManager();
      assert.ok(locks.acquire('t1', 'k', LockMode.EXCLUSIVE).granted);
      assert.ok(locks.acquire('t2', 'k', LockMode.EXCLUSIVE).granted);
      assert.equal(locks.holdersOf('k')?.txIds.length, 2);
    } finally {
      armMutants();
    }
  });

  it('names a lock-conflict abort by its code and the SDK reason, and nothing else', () => {
    const conflict = new LockConflictError('t1', 'k', LockMode.EXCLUSIVE, ['t0']);
    assert.equal(conflict.code, ErrorCode.LOCK_CONFLICT);
    assert.equal(conflict.reason, 'lock conflict');
    assert.ok(isLockConflictAbort(new TransactionAbortedError('aborted', { reason: 'participant bank-a voted NO: lock conflict' })));
    assert.ok(!isLockConflictAbort(new TransactionAbortedError('aborted', { reason: 'participant bank-a voted NO: insufficient funds' })));
    assert.ok(!isLockConflictAbort(new VerdictError(ErrorCode.UNAVAILABLE, 'x', { reason: 'participant bank-a voted NO: lock conflict' })));
  });
});
