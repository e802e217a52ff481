// The coordinator's gRPC health service says NOT_SERVING while the decision log is being
// recovered and SERVING after; calls in that window are answered UNAVAILABLE. Server reflection
// lists and describes every service, so grpcurl can call them. The port is bound before the log
// is opened: an address in use leaves the epoch as it was.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { credentials, loadPackageDefinition, makeClientConstructor, status as Status, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';

import { VerdictClient } from '../../src/client/index.js';
import { levelStorage, type LogStorage } from '../../src/common/level-errors.js';
import { Coordinator } from '../../src/coordinator/index.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import { startCli, startCoordinatorCli } from '../support/cli.js';
import { freePort, Gate, tempDir, testLogger, waitFor } from '../support/cluster.js';

type HealthClient = Client & {
  check(req: { service: string }, cb: (e: ServiceError | null, res?: { status: string }) => void): void;
  watch(req: { service: string }): NodeJS.EventEmitter & { cancel(): void };
};

function healthClient(address: string): HealthClient {
  const Ctor = makeClientConstructor(healthService, 'grpc.health.v1.Health');
  return new Ctor(address, credentials.createInsecure()) as unknown as HealthClient;
}

function check(client: HealthClient, service = ''): Promise<string> {
  return new Promise((resolve, reject) => client.check({ service }, (e, res) => (e ? reject(e) : resolve(res?.status ?? ''))));
}

const REFLECTION_PROTO = join(import.meta.dirname, '../../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');

/** One ServerReflectionInfo exchange: sends `request`, resolves with the first response. */
function reflect(address: string, request: Record<string, unknown>): Promise<Record<string, unknown>> {
  const pkg = loadPackageDefinition(loadSync(REFLECTION_PROTO, { keepCase: false })) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: new (a: string, c: ReturnType<typeof credentials.createInsecure>) => Client & { serverReflectionInfo(): NodeJS.ReadWriteStream & { write(m: unknown): boolean } } } } };
  };
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const call = client.serverReflectionInfo();
    call.on('data', (response: Record<string, unknown>) => {
      call.end();
      client.close();
      resolve(response);
    });
    call.on('error', (e: Error) => {
      client.close();
      reject(e);
    });
    call.write(request);
  });
}

/** A storage that opens only once `gate` opens: recovery held at its very start. */
function gatedStorage(dir: string, gate: Gate): LogStorage {
  const inner = levelStorage(dir);
  return { location: inner.location, open: async (what) => (await gate.wait(), inner.open(what)) };
}

describe('health and reflection', () => {
  const dir = tempDir('verdict-health-');
  after(() => dir.cleanup());

  it('answers NOT_SERVING and UNAVAILABLE while recovering, SERVING once it serves', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const gate = new Gate();
    const starting = Coordinator.start({ listen: address, storage: gatedStorage(join(dir.path, 'c1'), gate), logger: testLogger });
    const health = healthClient(address);
    const client = new VerdictClient(address);
    try {
      // The port is bound before the log opens: health answers (bounded poll for the bind).
      assert.equal(await waitFor('the health service to answer', () => check(health).catch(() => undefined)), 'NOT_SERVING');
      assert.equal(await check(health, 'verdict.v1.TransactionService'), 'NOT_SERVING');
      await assert.rejects(client.get('tx-1-1'), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.UNAVAILABLE);

      gate.open();
      const coordinator = await starting;
      try {
        assert.equal(await check(health), 'SERVING');
        for (const service of ['verdict.v1.TransactionService', 'verdict.v1.ParticipantService', 'verdict.v1.AdminService']) assert.equal(await check(health, service), 'SERVING');
        await assert.rejects(check(health, 'no.such.Service'), (e: ServiceError) => e.code === Status.NOT_FOUND);
        // It serves for real now.
        await assert.rejects(client.get(`tx-${coordinator.epoch}-999`), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.TX_NOT_FOUND);

        // A watcher hears NOT_SERVING as soon as a shutdown begins.
        const updates: string[] = [];
        const watch = health.watch({ service: '' });
        watch.on('data', (r: { status: string }) => updates.push(r.status));
        watch.on('error', () => undefined);
        await waitFor('the watch to report SERVING', () => updates.includes('SERVING'));
        const closing = coordinator.close();
        await waitFor('the watch to report NOT_SERVING', () => updates.at(-1) === 'NOT_SERVING');
        watch.cancel();
        await closing;
        assert.deepEqual(updates, ['SERVING', 'NOT_SERVING']);
      } finally {
        await coordinator.close();
      }
    } finally {
      gate.open();
      health.close();
      client.close();
    }
  });

  it('lists and describes its services through server reflection', async () => {
    const coordinator = await Coordinator.start({ listen: '127.0.0.1:0', dataDir: join(dir.path, 'c2'), logger: testLogger });
    try {
      const listed = await reflect(coordinator.address, { listServices: '*' });
      const names = ((listed.listServicesResponse as { service: { name: string }[] }).service ?? []).map((s) => s.name).sort();
      for (const name of ['grpc.health.v1.Health', 'verdict.v1.AdminService', 'verdict.v1.ParticipantService', 'verdict.v1.TransactionService']) assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);

      const described = await reflect(coordinator.address, { fileContainingSymbol: 'verdict.v1.AdminService' });
      const files = (described.fileDescriptorResponse as { fileDescriptorProto: Buffer[] }).fileDescriptorProto;
      assert.ok(files.length > 0);
      assert.ok(files.some((f) => Buffer.from(f).includes('ListTransactions')), 'the descriptor names the methods');

      const missing = await reflect(coordinator.address, { fileContainingSymbol: 'verdict.v1.NoSuchThing' });
      assert.equal((missing.errorResponse as { errorCode: number }).errorCode, Status.NOT_FOUND);
    } finally {
      await coordinator.close();
    }
  });

  it('leaves the epoch unchanged when its port is in use', async () => {
    const data = join(dir.path, 'c3');
    const first = await Coordinator.start({ listen: '127.0.0.1:0', dataDir: data, logger: testLogger });
    const epoch = first.epoch;
    await first.close();

    const port = await freePort();
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
    try {
      await assert.rejects(Coordinator.start({ listen: `127.0.0.1:${port}`, dataDir: data, logger: testLogger }), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.UNAVAILABLE);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
    const next = await Coordinator.start({ listen: '127.0.0.1:0', dataDir: data, logger: testLogger });
    try {
      assert.equal(next.epoch, epoch + 1, 'the refused start bumped nothing');
    } finally {
      await next.close();
    }
  });

  it('verdict coordinator: a port in use is one line, exit 1, and the epoch stays', async () => {
    const data = join(dir.path, 'c4');
    const { cli: holder, address } = await startCoordinatorCli(join(dir.path, 'c5'));
    try {
      const refused = startCli(['coordinator', '--listen', address, '--data', data]);
      assert.deepEqual(await refused.exited, { code: 1, signal: null });
      const lines = refused.stderr().trimEnd().split('\n');
      assert.equal(lines.length, 1, refused.stderr());
      assert.match(lines[0] ?? '', new RegExp(`^verdict: cannot listen on ${address.replace(/\./g, '\\.')}: `));
      assert.equal(refused.stdout(), '');
    } finally {
      holder.kill();
    }
    // The refused start never opened the log: the first real start gets epoch 1.
    const coordinator = await Coordinator.start({ listen: '127.0.0.1:0', dataDir: data, logger: testLogger });
    try {
      assert.equal(coordinator.epoch, 1);
    } finally {
      await coordinator.close();
    }
  });
});
