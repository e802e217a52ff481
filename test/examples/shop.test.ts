// The shop example as its README runs it: one command starts a coordinator and the three services
// as processes, places orders (some of which must abort for each reason) and checks the books.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';

import { ROOT } from '../support/cli.js';

describe('examples/shop', () => {
  it('runs end to end: orders commit and abort for the right reasons, and the books balance', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/shop/shop.ts', '--orders', '30', '--concurrency', '4', '--seed', '11'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, `stdout: ${out}\nstderr: ${err}`);
    assert.match(out, /^shop: coordinator 127\.0\.0\.1:\d+; orders http:\/\/127\.0\.0\.1:\d+\/state, inventory http:\/\/127\.0\.0\.1:\d+\/state, payments http:\/\/127\.0\.0\.1:\d+\/state$/m);
    const m = /^placed 30 orders: (\d+) committed, (\d+) aborted \(out of stock (\d+), insufficient funds (\d+)\); \d+ lock-conflict retries$/m.exec(out);
    assert.ok(m, out);
    const [committed, aborted, outOfStock, noFunds] = m.slice(1).map(Number) as [number, number, number, number];
    assert.equal(committed + aborted, 30);
    assert.ok(committed > 0, 'some orders commit');
    assert.ok(outOfStock > 0 && noFunds > 0, 'orders abort for both reasons');
    assert.equal(outOfStock + noFunds, aborted, 'no order aborted for any other reason');
    assert.doesNotMatch(out, /PROBLEM/);
    assert.match(out, /^books balance: yes$/m);
  });
});
