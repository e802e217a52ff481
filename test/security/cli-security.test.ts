// The coordinator CLI's security: certificate rotation on SIGHUP without dropping sessions,
// bearer tokens, and the refusal to serve a non-loopback address in the clear.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { VerdictClient } from '../../src/client/index.js';
import { createDevPki, issueCertificate, type DevPki } from '../../src/common/dev-certs.js';
import { ErrorCode } from '../../src/errors.js';
import { Participant } from '../../src/participant/index.js';
import { startCli, startCoordinatorCli, type CliProcess } from '../support/cli.js';
import { recordingHooks, tempDir, testLogger, waitFor } from '../support/cluster.js';
import { clientTls, codeOf, servedSerial, under } from './support.js';

describe('verdict coordinator security flags', () => {
  const dir = tempDir('verdict-cli-security-');
  let pki: DevPki;
  const started: CliProcess[] = [];

  before(async () => {
    pki = await createDevPki(under(dir.path, 'pki'));
  });

  after(() => {
    for (const c of started) c.kill();
    dir.cleanup();
  });

  it('reloads the certificate on SIGHUP: live sessions stay, new connections get the new certificate', async () => {
    // The coordinator serves copies, so that the test can replace them.
    const certFile = under(dir.path, 'served.pem');
    const keyFile = under(dir.path, 'served.key');
    copyFileSync(pki.coordinator.cert, certFile);
    copyFileSync(pki.coordinator.key, keyFile);
    const { cli, address } = await startCoordinatorCli(under(dir.path, 'data-rotate'), [
      '--tls-cert', certFile, '--tls-key', keyFile, '--tls-ca', pki.ca.cert, '--log-level', 'info',
    ]);
    started.push(cli);
    const calls = recordingHooks('yes').calls;
    const bank = await Participant.start({
      name: 'bank-a',
      coordinator: address,
      dataDir: under(dir.path, 'bank-rotate'),
      hooks: recordingHooks('yes', calls).hooks,
      logger: testLogger,
      tls: clientTls(pki.ca, await pki.identity('participant', 'bank-a')),
    });
    const client = new VerdictClient(address, { tls: clientTls(pki.ca, await pki.identity('initiator', 'alice')) });
    try {
      await bank.ready();
      let disconnects = 0;
      bank.on('disconnected', () => disconnects++);
      const oldSerial = await servedSerial(address, readFileSync(pki.ca.cert));

      const renewed = await issueCertificate(under(dir.path, 'renewed'), { kind: 'coordinator', hosts: ['127.0.0.1', 'localhost'] }, { ca: pki.ca });
      writeFileSync(certFile, readFileSync(renewed.cert));
      writeFileSync(keyFile, readFileSync(renewed.key));
      cli.child.kill('SIGHUP');
      await waitFor('the reload', () => cli.stderr().includes('TLS certificates reloaded'));

      const newSerial = await servedSerial(address, readFileSync(pki.ca.cert));
      assert.notEqual(newSerial, oldSerial);
      // The session opened before the reload carries a transaction after it.
      await client.transact([{ participant: 'bank-a', payload: 'after rotation' }]);
      assert.equal(disconnects, 0);
      assert.equal(bank.state, 'connected');
      assert.ok(calls.some((c) => c.payload === 'after rotation'));

      // A broken key is refused and the working certificate stays.
      writeFileSync(keyFile, 'not a key');
      cli.child.kill('SIGHUP');
      await waitFor('the refusal', () => cli.stderr().includes('were not reloaded'));
      assert.equal(await servedSerial(address, readFileSync(pki.ca.cert)), newSerial);
    } finally {
      client.close();
      await bank.close();
    }
  });

  it('takes bearer tokens from a file: a wrong one is UNAUTHENTICATED, the right one is an identity', async () => {
    const tokensFile = under(dir.path, 'tokens');
    const good = 'a'.repeat(20) + 'correct-horse-battery';
    writeFileSync(tokensFile, `# initiators\nverdict://initiator/alice ${good}\n`);
    const { cli, address } = await startCoordinatorCli(under(dir.path, 'data-tokens'), ['--tls-cert', pki.coordinator.cert, '--tls-key', pki.coordinator.key, '--tokens', tokensFile]);
    started.push(cli);
    const tls = clientTls(pki.ca);
    const wrong = new VerdictClient(address, { tls, token: `${good.slice(0, -1)}X` });
    const none = new VerdictClient(address, { tls });
    const right = new VerdictClient(address, { tls, token: good });
    try {
      assert.equal(await codeOf(wrong.begin()), ErrorCode.UNAUTHENTICATED);
      assert.equal(await codeOf(none.begin()), ErrorCode.UNAUTHENTICATED);
      const begun = await right.begin();
      assert.equal((await right.get(begun.txId)).owner, 'verdict://initiator/alice');
      assert.equal(await codeOf(wrong.get(begun.txId)), ErrorCode.UNAUTHENTICATED);
      await right.abort(begun.txId);
      assert.ok(!cli.stderr().includes(good), 'the token never reaches a log');
    } finally {
      for (const c of [wrong, none, right]) c.close();
    }
  });

  it('refuses to serve a non-loopback address without TLS and client authentication, unless --insecure', async () => {
    // Refused before anything is bound or opened: no socket is ever made on 0.0.0.0 here.
    const data = under(dir.path, 'data-open');
    const refusal = /^verdict: refusing to serve 0\.0\.0\.0:0 without TLS and client authentication: .*--insecure\n$/;
    const refused = startCli(['coordinator', '--listen', '0.0.0.0:0', '--data', data]);
    const tlsOnly = startCli(['coordinator', '--listen', '0.0.0.0:0', '--data', data, '--tls-cert', pki.coordinator.cert, '--tls-key', pki.coordinator.key]);
    started.push(refused, tlsOnly);
    assert.equal((await refused.exited).code, 1);
    assert.match(refused.stderr(), refusal);
    assert.equal((await tlsOnly.exited).code, 1, 'TLS without client authentication is refused too');
    assert.match(tlsOnly.stderr(), refusal);
    assert.equal(existsSync(data), false, 'nothing was opened or written');

    // Accepted with --insecure. It really binds 0.0.0.0, so it runs in a network namespace of its
    // own whose only interface is loopback (`unshare --net`, as root like CI): nothing outside
    // this test can reach it.
    const insecure = startCli(['coordinator', '--listen', '0.0.0.0:0', '--data', data, '--insecure'], {}, ['unshare', '--net']);
    started.push(insecure);
    await insecure.waitForLine(/^listening on 0\.0\.0\.0:\d+$/);
    insecure.child.kill('SIGTERM');
    assert.equal((await insecure.exited).code, 0);
    assert.equal(insecure.stderr().includes('refusing'), false);
  });
});
