// `verdict coordinator` as a user runs it: a real child process that announces its address,
// serves, shuts down cleanly on SIGINT or SIGTERM, and refuses a data directory another process
// holds with one line and exit code 1.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { after, afterEach, describe, it } from 'node:test';

import { VerdictClient } from '../../src/client/index.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import { startCli, startCoordinatorCli, type CliProcess } from '../support/cli.js';
import { tempDir } from '../support/cluster.js';
import { RawSessions, type RawSession } from '../support/raw-grpc.js';

describe('verdict coordinator', () => {
  const dir = tempDir('verdict-cli-');
  const running: CliProcess[] = [];
  let n = 0;
  const dataDir = (): string => join(dir.path, `coordinator-${++n}`);

  afterEach(() => {
    for (const cli of running.splice(0)) cli.kill();
  });
  after(() => dir.cleanup());

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`prints "listening on" with the real port, serves, and exits 0 on ${signal}`, async () => {
      const { cli, address } = await startCoordinatorCli(dataDir());
      running.push(cli);
      assert.match(address, /^127\.0\.0\.1:[1-9]\d*$/);

      // It serves: a well-formed id it never issued is TX_NOT_FOUND, an answer only it can give.
      const client = new VerdictClient(address);
      try {
        await assert.rejects(client.get('tx-99-1'), (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.TX_NOT_FOUND);
      } finally {
        client.close();
      }

      cli.child.kill(signal);
      assert.deepEqual(await cli.exited, { code: 0, signal: null });
      assert.equal(cli.stdout(), `listening on ${address}\n`, 'stdout carries only the address line');
    });
  }

  it('takes --max-participant-names: a hello under a name beyond it is refused RESOURCE_EXHAUSTED', async () => {
    const { cli, address } = await startCoordinatorCli(dataDir(), ['--max-participant-names', '1']);
    running.push(cli);
    const sessions = new RawSessions(address);
    try {
      const hello = (participant: string): RawSession => {
        const s = sessions.open();
        s.call.write({ hello: { participant }, votes: [], acks: [], inquiries: [], enlists: [] });
        return s;
      };
      const first = hello('first-name');
      await first.until('the welcome', () => first.frames.some((f) => f.welcome !== undefined));
      const e = await hello('second-name').final();
      assert.equal(e.code, Status.RESOURCE_EXHAUSTED);
      assert.match(e.details, /knows 1 participant names \(limit 1\)/);
      assert.equal(e.metadata.get('verdict-code')[0], 'LIMIT_EXCEEDED');
    } finally {
      sessions.close();
    }
  });

  it('refuses a data directory in use with one line on stderr and exit code 1', async () => {
    const shared = dataDir();
    const { cli: first } = await startCoordinatorCli(shared);
    running.push(first);

    const second = startCli(['coordinator', '--listen', '127.0.0.1:0', '--data', shared]);
    running.push(second);
    assert.deepEqual(await second.exited, { code: 1, signal: null });
    const lines = second.stderr().trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line, no stack trace: ${second.stderr()}`);
    assert.match(lines[0] ?? '', /^verdict: .*in use by another process/);
    assert.ok(lines[0]?.includes(shared), 'the message names the directory');
    assert.equal(second.stdout(), '');

    // The first one is unharmed.
    first.child.kill('SIGTERM');
    assert.deepEqual(await first.exited, { code: 0, signal: null });
  });

  it('rejects a malformed --listen with one line and exit code 1', async () => {
    const cli = startCli(['coordinator', '--listen', 'nowhere', '--data', dataDir()]);
    running.push(cli);
    assert.deepEqual(await cli.exited, { code: 1, signal: null });
    assert.match(cli.stderr(), /^verdict: option '--listen <host:port>' argument 'nowhere' is invalid\. expected HOST:PORT.*\n$/);
  });
});
