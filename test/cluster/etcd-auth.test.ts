// A coordinator group member on an etcd with user/password authentication (`auth enable`): the
// member signs in as a user whose role may read and write only the group's prefix, its password
// from a file or the environment; a wrong password fails the start with one line.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Etcd3, Range } from 'etcd3';

import { CoordinatorGroupMember } from '../../src/cluster/index.js';
import { EtcdCluster } from '../../src/faults/etcd-cluster.js';
import { fixedPort } from '../../src/faults/process-cluster.js';
import { startCli } from '../support/cli.js';
import { tempDir, testLogger, waitFor } from '../support/cluster.js';

const PREFIX = '/authed/';
const USER = 'verdict-group';

describe('a group member on etcd with user/password authentication', { timeout: 120_000 }, () => {
  const dir = tempDir('verdict-etcd-auth-');
  const password = randomBytes(24).toString('base64url');
  const passwordFile = join(dir.path, 'etcd-password');
  let etcd: EtcdCluster;

  before(async () => {
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    etcd = await EtcdCluster.start(1);
    const admin = new Etcd3(etcd.clientOptions());
    try {
      await admin.role('root').create();
      await admin.user('root').create(randomBytes(24).toString('base64url'));
      await admin.user('root').addRole('root');
      const role = await admin.role('verdict-group').create();
      await role.grant({ permission: 'Readwrite', range: Range.prefix(PREFIX) });
      await admin.user(USER).create(password);
      await admin.user(USER).addRole('verdict-group');
      await admin.auth.authEnable();
    } finally {
      admin.close();
    }
  });
  after(async () => {
    await etcd?.stop();
    dir.cleanup();
  });

  it('signs in with the password and leads', async () => {
    const member = await CoordinatorGroupMember.start({
      etcd: etcd.hosts,
      etcdAuth: { username: USER, password },
      nodeId: 'c1',
      advertise: `127.0.0.1:${await fixedPort()}`,
      etcdPrefix: PREFIX,
      leaseTtlS: 1,
      logger: testLogger,
    });
    try {
      await waitFor('the member to lead', () => member.state === 'leading', 20_000);
    } finally {
      await member.close();
    }
  });

  it('the CLI reads the password from --etcd-password-file or VERDICT_ETCD_PASSWORD, and a wrong one fails the start with one line', async () => {
    const base = ['coordinator', '--etcd', etcd.endpoints, '--node-id', 'c2', '--etcd-prefix', PREFIX, '--lease-ttl', '1s', '--etcd-user', USER];
    for (const [what, args, env] of [
      ['file', ['--etcd-password-file', passwordFile], {}],
      ['environment', [], { VERDICT_ETCD_PASSWORD: password }],
    ] as const) {
      const cli = startCli([...base, '--advertise', `127.0.0.1:${await fixedPort()}`, ...args], env);
      try {
        await cli.waitForLine(/^listening on /, 20_000);
      } catch (e) {
        assert.fail(`${what}: ${(e as Error).message}`);
      } finally {
        cli.kill();
        await cli.exited;
      }
    }
    const wrong = startCli([...base, '--advertise', `127.0.0.1:${await fixedPort()}`], { VERDICT_ETCD_PASSWORD: `${password}x` });
    const exit = await wrong.exited;
    const lines = wrong.stderr().trimEnd().split('\n');
    assert.equal(exit.code, 1, wrong.stderr());
    assert.equal(lines.length, 1, `one line: ${wrong.stderr()}`);
    assert.match(lines[0] ?? '', /^verdict: cannot use etcd at http:\/\/127\.0\.0\.1:\d+: .*authentication failed/i);
    assert.doesNotMatch(wrong.stderr(), new RegExp(password), 'the password is never printed');
  });
});
