// The fault proxy on a small TCP echo server: each mode does what it says, one way or both.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { FaultProxy } from '../../src/faults/fault-proxy.js';

/** Bounded wait for `check`, polling. */
async function until(what: string, check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

describe('fault proxy', () => {
  let echo: Server;
  let proxy: FaultProxy;
  /** Bytes the echo server received, across connections. */
  let received = '';

  before(async () => {
    echo = createServer((s) =>
      s.on('data', (d: Buffer) => {
        received += d.toString();
        s.write(d);
      }).on('error', () => undefined),
    );
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    const port = (echo.address() as { port: number }).port;
    proxy = await FaultProxy.start({ target: `127.0.0.1:${port}`, name: 'echo' });
  });

  after(async () => {
    await proxy.close();
    echo.close();
  });

  async function connect(): Promise<{ socket: Socket; data: () => string; closed: () => string | undefined }> {
    const [host, port] = proxy.address.split(':');
    const socket = createConnection({ host, port: Number(port) });
    let data = '';
    let closed: string | undefined;
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.on('error', (e: NodeJS.ErrnoException) => (closed = e.code ?? e.message));
    socket.on('close', () => (closed ??= 'closed'));
    await once(socket, 'connect');
    return { socket, data: () => data, closed: () => closed };
  }

  it('passes bytes both ways', async () => {
    proxy.heal();
    const c = await connect();
    c.socket.write('hello');
    await until('the echo', () => c.data() === 'hello');
    c.socket.destroy();
  });

  it('delays every chunk by the given time, in order', async () => {
    proxy.set({ kind: 'delay', ms: 150 }, 'up');
    const c = await connect();
    const t0 = Date.now();
    c.socket.write('a');
    c.socket.write('b');
    await until('the delayed echo', () => c.data() === 'ab');
    assert.ok(Date.now() - t0 >= 140, `echo came after ${Date.now() - t0} ms`);
    proxy.heal();
    c.socket.destroy();
  });

  it('holds bytes in a blackhole and delivers them at heal; one direction only', async () => {
    received = '';
    proxy.set({ kind: 'blackhole' }, 'down');
    const c = await connect();
    c.socket.write('ping');
    await until('the server to receive', () => received === 'ping');
    await delay(100);
    assert.equal(c.data(), '', 'nothing comes back while the down direction is blackholed');
    proxy.heal();
    await until('held bytes after heal', () => c.data() === 'ping');
    c.socket.destroy();
  });

  it('drops bytes, then resets a connection that lost bytes when healed', async () => {
    received = '';
    proxy.set({ kind: 'drop' }, 'both');
    const c = await connect();
    c.socket.write('lost');
    await delay(100);
    assert.equal(received, '');
    assert.ok(proxy.stats.bytesDropped >= 4);
    proxy.heal();
    await until('the reset', () => c.closed() !== undefined);
    // New connections work again.
    const d = await connect();
    d.socket.write('again');
    await until('the echo', () => d.data() === 'again');
    d.socket.destroy();
  });

  it('resets every live connection with an RST', async () => {
    proxy.heal();
    const c = await connect();
    c.socket.write('x');
    await until('the echo', () => c.data() === 'x');
    assert.equal(proxy.resetAll(), 1);
    await until('the reset', () => c.closed() !== undefined);
    assert.equal(c.closed(), 'ECONNRESET');
  });
});
