// The throwaway PKI that `--tls` of demo, chaos and bench and the harness's `tls` make: a
// coordinator on its server files requires client certificates, refuses plaintext and
// certificate-less clients, and knows each client by the identity its certificate names.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { VerdictClient } from '../../src/client/index.js';
import { clientTlsFromDir, createThrowawayTls, type ThrowawayTls } from '../../src/common/throwaway-tls.js';
import { Coordinator } from '../../src/coordinator/index.js';
import { ErrorCode } from '../../src/errors.js';
import { tempDir, testLogger } from '../support/cluster.js';
import { codeOf } from './support.js';

describe('throwaway TLS', () => {
  const dir = tempDir('verdict-throwaway-tls-');
  let tls: ThrowawayTls;
  let coordinator: Coordinator;
  const clients: VerdictClient[] = [];
  const client = (options: ConstructorParameters<typeof VerdictClient>[1]): VerdictClient => {
    const c = new VerdictClient(coordinator.address, { callTimeoutMs: 5_000, ...options });
    clients.push(c);
    return c;
  };

  before(async () => {
    tls = await createThrowawayTls();
    coordinator = await Coordinator.start({ listen: '127.0.0.1:0', dataDir: `${dir.path}/coordinator`, logger: testLogger, tls: tls.serverFiles });
  });

  after(async () => {
    for (const c of clients) c.close();
    await coordinator?.close();
    await tls?.remove();
    dir.cleanup();
  });

  it('serves mutual TLS: a client with its certificate is known by it, plaintext and certificate-less clients are refused', async () => {
    const alice = client(await tls.client('initiator', 'alice'));
    const { txId } = await alice.begin();
    assert.equal((await alice.get(txId)).owner, 'verdict://initiator/alice');

    assert.equal(await codeOf(client({}).begin()), ErrorCode.UNAVAILABLE, 'plaintext');
    assert.equal(await codeOf(client({ tls: { ca: clientTlsFromDir(tls.dir, 'initiator', 'alice').ca } }).begin()), ErrorCode.UNAVAILABLE, 'no client certificate');
    // The files a child process reads from the directory are the same identity.
    const again = client({ tls: clientTlsFromDir(tls.dir, 'initiator', 'alice') });
    await again.abort(txId);
    assert.equal((await alice.get(txId)).outcome, 'aborted');
  });

  it('passes the coordinator flags of its files, and removes only a directory it made', async () => {
    assert.deepEqual(tls.coordinatorArgs, ['--tls-cert', tls.serverFiles.certFile, '--tls-key', tls.serverFiles.keyFile, '--tls-ca', tls.serverFiles.caFile]);
    const given = await createThrowawayTls(`${dir.path}/given`);
    await given.remove();
    assert.ok(existsSync(given.serverFiles.certFile), 'a directory the caller gave stays');
    const own = await createThrowawayTls();
    await own.remove();
    assert.ok(!existsSync(own.dir));
  });
});
