// The SDKs as a new user meets them (issue 15, "SDK behaviour"): ready({ timeoutMs }) says
// UNAVAILABLE or ALREADY_CONNECTED instead of hanging; reconnect backoff, keepalive and the enlist
// and call timeouts are options, checked when given; keepProcessAlive decides whether a process
// that runs only a participant stays up while it reconnects.
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Server, ServerCredentials, status as Status, type ServerDuplexStream } from '@grpc/grpc-js';

import { VerdictClient } from '../../src/client/client.js';
import { connectionChannelOptions, connectTimeoutMs } from '../../src/common/connection-options.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import { ParticipantServiceService, type SessionRequest, type SessionResponse } from '../../src/gen/verdict/v1/participant.js';
import { Participant } from '../../src/participant/participant.js';
import { childExecArgv } from '../../src/runtime/child-module.js';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { freePort, recordingHooks, tempDir, testLogger, uniqueName, waitFor } from '../support/cluster.js';
import { rejection } from '../support/rejection.js';

const LONELY = new URL('./support/lonely-participant.ts', import.meta.url).pathname;
/** A bound on anything that should take well under a second. */
const BOUND_MS = 15_000;

/**
 * A ParticipantService that welcomes every session and then answers nothing (or, with `refuse`,
 * ends every session at its hello with UNAVAILABLE); counts hellos.
 */
async function silentCoordinator({ refuse = false } = {}): Promise<{ address: string; hellos: () => number; close: () => void }> {
  const server = new Server();
  let hellos = 0;
  server.addService(ParticipantServiceService, {
    session: (call: ServerDuplexStream<SessionRequest, SessionResponse>) => {
      call.on('error', () => undefined);
      call.on('data', (frame: SessionRequest) => {
        if (!frame.hello) return;
        hellos++;
        if (refuse) return call.emit('error', { code: Status.UNAVAILABLE, details: 'not now' });
        call.write({ welcome: { epoch: 1 }, prepares: [], decisions: [], enlistResults: [], outcomeQueries: [] });
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { address: `127.0.0.1:${port}`, hellos: () => hellos, close: () => server.forceShutdown() };
}

describe('SDK behaviour', () => {
  const dir = tempDir('verdict-sdk-');
  const closers: (() => unknown)[] = [];

  after(async () => {
    for (const close of closers.reverse()) await close();
    dir.cleanup();
  });

  async function start(name: string, coordinator: string, extra: Partial<Parameters<typeof Participant.start>[0]> = {}): Promise<Participant> {
    const p = await Participant.start({ name, coordinator, dataDir: join(dir.path, name), hooks: recordingHooks().hooks, logger: testLogger, ...extra });
    closers.push(() => p.close());
    return p;
  }

  describe('ready({ timeoutMs })', () => {
    let coordinator: Coordinator;

    before(async () => {
      coordinator = await Coordinator.start({ listen: '127.0.0.1:0', dataDir: join(dir.path, 'coordinator'), logger: testLogger });
      closers.push(() => coordinator.close());
    });

    it('rejects with UNAVAILABLE when nothing answers at the address, naming it, and keeps trying', async () => {
      const port = await freePort();
      const p = await start(uniqueName('lost'), `127.0.0.1:${port}`, { reconnect: { initialMs: 20, maxMs: 100 } });
      const started = Date.now();
      const e = await rejection(p.ready({ timeoutMs: 300 }));
      assert.equal(e.code, ErrorCode.UNAVAILABLE);
      assert.match(e.message, new RegExp(`could not connect to the coordinator at 127\\.0\\.0\\.1:${port} within 300 ms \\(\\d+ attempts; last: .+\\); it keeps trying$`));
      assert.ok(Date.now() - started < BOUND_MS);
      assert.equal(p.state, 'connecting');
      // It kept trying: a coordinator that comes up on that address gets its session.
      const late = await Coordinator.start({ listen: `127.0.0.1:${port}`, dataDir: join(dir.path, 'late'), logger: testLogger });
      closers.push(() => late.close());
      await p.ready({ timeoutMs: BOUND_MS });
      assert.equal(p.coordinatorEpoch, late.epoch);
    });

    it('rejects at once with ALREADY_CONNECTED when another session holds the name, with or without a timeout', async () => {
      const name = uniqueName('twin');
      const first = await start(name, coordinator.address);
      await first.ready({ timeoutMs: BOUND_MS });
      const twin = await Participant.start({ name, coordinator: coordinator.address, dataDir: join(dir.path, `${name}-twin`), hooks: recordingHooks().hooks, logger: testLogger });
      closers.push(() => twin.close());
      const started = Date.now();
      const e = await rejection(twin.ready({ timeoutMs: 60_000 }));
      assert.equal(e.code, ErrorCode.ALREADY_CONNECTED);
      assert.match(e.message, new RegExp(`refused participant ${name}: participant ${name} already has a live session`));
      assert.ok(Date.now() - started < BOUND_MS, 'waited for the timeout instead of the refusal');
      // A later ready() without a timeout does not hang either.
      assert.equal((await rejection(twin.ready())).code, ErrorCode.ALREADY_CONNECTED);
      // Once the name is free, the twin's retries get the session.
      await first.close();
      await waitFor('the twin to connect', () => twin.state === 'connected', BOUND_MS);
      await twin.ready();
    });

    it('refuses a negative timeout with INVALID_ARGUMENT', async () => {
      const p = await start(uniqueName('neg'), coordinator.address);
      assert.equal((await rejection(p.ready({ timeoutMs: -1 }))).code, ErrorCode.INVALID_ARGUMENT);
    });
  });

  describe('connection options', () => {
    it('maps reconnect and keepalive options to the grpc-js channel options (defaults: 100 ms to 5 s, pings every 10 s, 5 s to answer)', () => {
      assert.deepEqual(connectionChannelOptions(), {
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.keepalive_permit_without_calls': 1,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 5_000,
      });
      assert.deepEqual(connectionChannelOptions({ initialMs: 7, maxMs: 70 }, { intervalMs: 3_000, timeoutMs: 900 }), {
        'grpc.keepalive_time_ms': 3_000,
        'grpc.keepalive_timeout_ms': 900,
        'grpc.keepalive_permit_without_calls': 1,
        'grpc.initial_reconnect_backoff_ms': 7,
        'grpc.max_reconnect_backoff_ms': 70,
      });
    });

    it('pings more often with a coordinator group (every 2 s, 3 s to answer), so that a frozen leader is left within about a lease', () => {
      const group = connectionChannelOptions({}, {}, true);
      assert.equal(group['grpc.keepalive_time_ms'], 2_000);
      assert.equal(group['grpc.keepalive_timeout_ms'], 3_000);
      assert.equal(connectionChannelOptions({}, { intervalMs: 700, timeoutMs: 900 }, true)['grpc.keepalive_time_ms'], 700);
      assert.equal(connectTimeoutMs(), 3_000);
      assert.equal(connectTimeoutMs({ connectTimeoutMs: 250 }), 250);
    });

    it('refuses out-of-range options in both SDKs with INVALID_ARGUMENT naming the option', async () => {
      const bad = [
        [{ reconnect: { initialMs: 0 } }, /reconnect\.initialMs must be a positive integer/],
        [{ reconnect: { initialMs: 500, maxMs: 100 } }, /reconnect\.initialMs \(500\) is above reconnect\.maxMs \(100\)/],
        [{ keepalive: { intervalMs: 1.5 } }, /keepalive\.intervalMs must be a positive integer/],
        [{ keepalive: { timeoutMs: -3 } }, /keepalive\.timeoutMs must be a positive integer/],
        [{ reconnect: { connectTimeoutMs: 0 } }, /reconnect\.connectTimeoutMs must be a positive integer/],
      ] as const;
      for (const [options, message] of bad) {
        assert.throws(() => new VerdictClient('127.0.0.1:1', options), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.INVALID_ARGUMENT && message.test(e.message));
        await assert.rejects(start(uniqueName('bad'), '127.0.0.1:1', options), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.INVALID_ARGUMENT && message.test(e.message));
      }
      await assert.rejects(start(uniqueName('bad'), '127.0.0.1:1', { enlistTimeoutMs: 0 }), /enlistTimeoutMs must be a positive integer/);
    });

    it('reconnects on the backoff it is given: twenty attempts at 10-50 ms take well under the 75 s the defaults would', async () => {
      const refusing = await silentCoordinator({ refuse: true });
      closers.push(() => refusing.close());
      const p = await start(uniqueName('quick'), refusing.address, { reconnect: { initialMs: 10, maxMs: 50 } });
      await waitFor('twenty hellos', () => refusing.hellos() >= 20, BOUND_MS);
      assert.equal(p.state, 'connecting');
    });

    it('gives up an enlist after enlistTimeoutMs when the coordinator never answers it', async () => {
      const silent = await silentCoordinator();
      closers.push(() => silent.close());
      const p = await start(uniqueName('patient'), silent.address, { enlistTimeoutMs: 200 });
      await p.ready({ timeoutMs: BOUND_MS });
      const started = Date.now();
      const e = await rejection(p.enlist({ txId: 'tx-1-1', capability: 'x'.repeat(43) }));
      assert.equal(e.code, ErrorCode.UNAVAILABLE);
      assert.equal(e.message, 'no answer to enlist in tx-1-1 within 200 ms');
      assert.ok(Date.now() - started < BOUND_MS);
    });
  });

  describe('keepProcessAlive', () => {
    function lonely(address: string, keepProcessAlive: boolean): { child: ChildProcess; lines: string[]; exited: Promise<number | null> } {
      const child = fork(LONELY, [JSON.stringify({ address, dataDir: join(dir.path, `lonely-${keepProcessAlive}-${Date.now()}`), keepProcessAlive })], {
        execArgv: childExecArgv(),
        stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
        env: { ...process.env, VERDICT_LOG_LEVEL: 'silent' },
      });
      const lines: string[] = [];
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      closers.push(() => child.exitCode === null && child.kill('SIGKILL'));
      return { child, lines, exited };
    }

    it('keeps a process that runs only a participant alive while it reconnects (default), and lets it go after close(); false lets it exit', async () => {
      const port = await freePort();
      const address = `127.0.0.1:${port}`;
      const kept = lonely(address, true);
      const loose = lonely(address, false);
      await waitFor('both children to start', () => kept.lines.includes('started') && loose.lines.includes('started'), BOUND_MS);
      // Nothing listens: the unheld one has nothing left to do and exits on its own.
      assert.equal(await loose.exited, 0);
      assert.ok(!loose.lines.includes('connected'));
      // The held one outlived it, still reconnecting: a coordinator coming up gets its session.
      assert.equal(kept.child.exitCode, null, 'the kept process exited');
      const coordinator = await Coordinator.start({ listen: address, dataDir: join(dir.path, 'for-lonely'), logger: testLogger });
      closers.push(() => coordinator.close());
      await waitFor('the kept participant to connect', () => kept.lines.includes('connected'), BOUND_MS);
      // close() releases the process: it exits by itself.
      assert.equal(await kept.exited, 0);
      assert.ok(kept.lines.includes('closed'));
    });
  });
});
