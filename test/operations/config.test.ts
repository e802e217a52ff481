// `verdict coordinator --config FILE`: every option can come from a JSON file; the file is
// validated (errors name the field, one line); flags given on the command line win over it;
// contradictory values (flags or file) are refused with one line.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';

import { VerdictClient } from '../../src/client/index.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import { startCli, startCoordinatorCli, type CliProcess } from '../support/cli.js';
import { tempDir } from '../support/cluster.js';

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'resolved';
  } catch (e) {
    if (e instanceof VerdictError) return e.code;
    throw e;
  }
};

describe('verdict coordinator --config', () => {
  const dir = tempDir('verdict-config-');
  const running: CliProcess[] = [];
  let n = 0;
  const file = (content: unknown): string => {
    const path = join(dir.path, `config-${++n}.json`);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };
  afterEach(() => {
    for (const cli of running.splice(0)) cli.kill();
  });
  after(() => dir.cleanup());

  /** Three branches at participants that never registered: what the limits answer. */
  async function threeBranches(address: string): Promise<string> {
    const client = new VerdictClient(address);
    try {
      return await codeOf(client.transact([{ participant: 'p-one' }, { participant: 'p-two' }, { participant: 'p-three' }]));
    } finally {
      client.close();
    }
  }

  it('takes the options from the file', async () => {
    const config = file({ data: join(dir.path, 'data-file'), maxBranches: 2, unregisteredGrace: '0s', retention: '48h', groupCommit: false, logLevel: 'warn' });
    const cli = startCli(['coordinator', '--listen', '127.0.0.1:0', '--config', config]);
    running.push(cli);
    const [, address] = await cli.waitForLine(/^listening on (127\.0\.0\.1:\d+)$/);
    assert.equal(await threeBranches(address ?? ''), ErrorCode.INVALID_ARGUMENT, 'maxBranches 2 from the file refuses three branches');
  });

  it('reads a relative path in the file against the file, not the working directory', async () => {
    const config = file({ data: 'relative-data', logLevel: 'warn' });
    const cli = startCli(['coordinator', '--listen', '127.0.0.1:0', '--config', config]);
    running.push(cli);
    await cli.waitForLine(/^listening on /);
    assert.ok(existsSync(join(dir.path, 'relative-data')), 'the data directory is next to the file');
  });

  it('lets a flag on the command line win over the file', async () => {
    const config = file({ maxBranches: 2, unregisteredGrace: '0s' });
    const { cli, address } = await startCoordinatorCli(join(dir.path, 'data-override'), ['--config', config, '--max-branches', '3']);
    running.push(cli);
    // Three branches pass the limit; nobody registered them, so they abort at once (grace 0s from the file).
    assert.equal(await threeBranches(address), ErrorCode.TX_ABORTED);
  });

  const refusals: [string, unknown, RegExp][] = [
    ['an unknown field', { maxBranchez: 2 }, /: unknown field "maxBranchez"$/],
    ['a value of the wrong type', { maxBranches: '2' }, /: field "maxBranches": Invalid input: expected number, received string$/],
    ['a zero count', { maxSessions: 0 }, /: field "maxSessions": Too small/],
    ['a duration without a unit', { retention: '3600' }, /: field "retention": expected a duration with a unit/],
    ['a malformed address', { metrics: 'nowhere' }, /: field "metrics": expected HOST:PORT/],
    ['a log level it does not know', { logLevel: 'loud' }, /: field "logLevel": /],
    ['text that is not JSON', '{ "maxBranches": ', /: not JSON: /],
    ['a JSON array', [1, 2], /: Invalid input: expected object, received array$/],
  ];
  for (const [what, content, message] of refusals) {
    it(`refuses ${what} with one line naming it, before anything is opened`, async () => {
      const config = file(content);
      const cli = startCli(['coordinator', '--listen', '127.0.0.1:0', '--data', join(dir.path, 'never'), '--config', config]);
      running.push(cli);
      assert.deepEqual(await cli.exited, { code: 1, signal: null });
      const lines = cli.stderr().trimEnd().split('\n');
      assert.equal(lines.length, 1, cli.stderr());
      assert.ok(lines[0]?.startsWith(`verdict: --config ${config}`), lines[0]);
      assert.match(lines[0] ?? '', message);
      assert.equal(cli.stdout(), '');
      assert.equal(existsSync(join(dir.path, 'never')), false, 'no data directory was created');
    });
  }

  it('refuses a missing file with one line', async () => {
    const cli = startCli(['coordinator', '--config', join(dir.path, 'missing.json')]);
    running.push(cli);
    assert.deepEqual(await cli.exited, { code: 1, signal: null });
    assert.match(cli.stderr(), /^verdict: --config .*missing\.json: ENOENT.*\n$/);
  });

  it('refuses contradictory flags with one line', async () => {
    const timeouts = startCli(['coordinator', '--listen', '127.0.0.1:0', '--data', join(dir.path, 'never'), '--default-timeout', '2m', '--max-timeout', '1m']);
    running.push(timeouts);
    assert.deepEqual(await timeouts.exited, { code: 1, signal: null });
    assert.equal(timeouts.stderr(), 'verdict: --default-timeout 2m is longer than --max-timeout 1m\n');

    const retries = startCli(['coordinator', '--listen', '127.0.0.1:0', '--data', join(dir.path, 'never'), '--retry-initial', '20s', '--retry-max', '10s']);
    running.push(retries);
    assert.deepEqual(await retries.exited, { code: 1, signal: null });
    assert.equal(retries.stderr(), 'verdict: --retry-initial 20s is longer than --retry-max 10s\n');

    // The same check covers a value from the file against one from a flag.
    const config = file({ retryMax: '10s' });
    const settled = startCli(['coordinator', '--listen', '127.0.0.1:0', '--data', join(dir.path, 'never'), '--config', config, '--retry-initial', '11s']);
    running.push(settled);
    assert.deepEqual(await settled.exited, { code: 1, signal: null });
    assert.equal(settled.stderr(), 'verdict: --retry-initial 11s is longer than --retry-max 10s\n');
  });

  it("takes a group member's etcd keys, paths against the file, and checks its endpoints", async () => {
    const group = { nodeId: 'c1', advertise: '127.0.0.1:7999', logLevel: 'warn' };
    const relative = startCli(['coordinator', '--config', file({ ...group, etcd: ['https://127.0.0.1:1'], etcdCa: 'etcd-ca.pem' })]);
    running.push(relative);
    assert.equal((await relative.exited).code, 1);
    assert.equal(relative.stderr(), `verdict: cannot read the etcd TLS file ${join(dir.path, 'etcd-ca.pem')}: ENOENT: no such file or directory, open '${join(dir.path, 'etcd-ca.pem')}'\n`);
    const badEndpoint = file({ ...group, etcd: ['ftp://127.0.0.1:1'] });
    const refused = startCli(['coordinator', '--config', badEndpoint]);
    running.push(refused);
    assert.equal((await refused.exited).code, 1);
    assert.match(refused.stderr(), /^verdict: --config .*: field "etcd\.0": expected HOST:PORT, http:\/\/HOST:PORT or https:\/\/HOST:PORT\n$/);
  });
});
