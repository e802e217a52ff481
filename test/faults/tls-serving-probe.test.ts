// The probe chaos group runs use to say that every member served mutual TLS: it tells a coordinator
// that requires client certificates from one that only serves TLS, from a plaintext one, and from
// one whose certificate does not name the address dialled.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { issueCertificate } from '../../src/common/dev-certs.js';
import { createThrowawayTls, type ThrowawayTls } from '../../src/common/throwaway-tls.js';
import type { ClientTlsOptions } from '../../src/common/tls.js';
import { Coordinator } from '../../src/coordinator/index.js';
import { probeTlsServing, TlsServing } from '../../src/faults/tls-serving-probe.js';
import { tempDir, testLogger } from '../support/cluster.js';

describe('probeTlsServing', () => {
  const dir = tempDir('verdict-tls-probe-');
  let tls: ThrowawayTls;
  let client: ClientTlsOptions;
  const coordinators: Coordinator[] = [];
  const start = async (name: string, security: Partial<Parameters<typeof Coordinator.start>[0]>): Promise<string> => {
    const c = await Coordinator.start({ listen: '127.0.0.1:0', dataDir: `${dir.path}/${name}`, logger: testLogger, ...security });
    coordinators.push(c);
    return c.address;
  };

  before(async () => {
    tls = await createThrowawayTls(`${dir.path}/tls`);
    const security = await tls.client('initiator', 'probe');
    assert.ok(security.tls);
    client = security.tls;
  });

  after(async () => {
    for (const c of coordinators) await c.close();
    dir.cleanup();
  });

  it('finds mutual TLS where client certificates are required', async () => {
    const address = await start('mutual', { tls: tls.serverFiles });
    assert.deepEqual(await probeTlsServing(address, client), { serving: TlsServing.MUTUAL });
  });

  it('finds a server that accepts a handshake without a client certificate', async () => {
    const address = await start('server-only', { tls: { certFile: tls.serverFiles.certFile, keyFile: tls.serverFiles.keyFile } });
    assert.equal((await probeTlsServing(address, client)).serving, TlsServing.CERTIFICATE_OPTIONAL);
  });

  it('fails a plaintext server, and one whose certificate does not name the address dialled', async () => {
    const plaintext = await start('plaintext', {});
    assert.equal((await probeTlsServing(plaintext, client)).serving, TlsServing.FAILED);
    const elsewhere = await issueCertificate(`${dir.path}/tls`, { kind: 'server', name: 'elsewhere', hosts: ['localhost'] });
    const address = await start('elsewhere', { tls: { certFile: elsewhere.cert, keyFile: elsewhere.key, caFile: tls.serverFiles.caFile } });
    const probe = await probeTlsServing(address, client);
    assert.equal(probe.serving, TlsServing.FAILED);
    assert.match(probe.detail ?? '', /ERR_TLS_CERT_ALTNAME_INVALID/);
  });
});
