// A log that cannot be read fails closed: the process refuses to start with LOG_CORRUPT and the
// log is left exactly as it was (never repaired automatically).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Level } from 'level';
import { Coordinator, ErrorCode, Participant, VerdictError } from '../../src/index.js';
import { recordingHooks, tempDir, testLogger } from '../support/cluster.js';
import { startCli } from '../support/cli.js';

const dir = tempDir();
after(() => dir.cleanup());

async function putRaw(path: string, key: string, value: Uint8Array, sublevel?: string): Promise<void> {
  const db = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  if (sublevel) await db.sublevel<string, Uint8Array>(sublevel, { valueEncoding: 'view' }).put(key, value);
  else await db.put(key, value);
  await db.close();
}

async function rawValue(path: string, key: string): Promise<Uint8Array | undefined> {
  const db = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  const value = await db.get(key);
  await db.close();
  return value;
}

const isCorrupt = (e: unknown): boolean => e instanceof VerdictError && e.code === ErrorCode.LOG_CORRUPT;

describe('a corrupt log fails closed', () => {
  it('refuses to start a coordinator whose open decision record cannot be decoded, and leaves it untouched', async () => {
    const path = join(dir.path, 'coordinator-record');
    await (await Coordinator.start({ listen: '127.0.0.1:0', dataDir: path, logger: testLogger })).close();
    const garbage = Uint8Array.from([0xff, 0xff, 0xff, 0x0f, 0x01]);
    await putRaw(path, 'open/tx-1-1', garbage);
    await assert.rejects(Coordinator.start({ listen: '127.0.0.1:0', dataDir: path, logger: testLogger }), (e: unknown) => {
      assert.ok(isCorrupt(e));
      assert.match((e as Error).message, /corrupt.*refusing to start/);
      return true;
    });
    assert.deepEqual(Buffer.from((await rawValue(path, 'open/tx-1-1')) ?? []), Buffer.from(garbage), 'never repaired');
    // Nothing was written either (the directory is free again, so this read works).
    assert.equal(Buffer.from((await rawValue(path, 'meta/epoch')) ?? []).toString(), '1', 'the epoch was not bumped by the refused start');
  });

  it('refuses a coordinator whose epoch record is unreadable, with one line from the CLI', async () => {
    const path = join(dir.path, 'coordinator-epoch');
    await putRaw(path, 'meta/epoch', Buffer.from('not a number'));
    const cli = startCli(['coordinator', '--listen', '127.0.0.1:0', '--data', path]);
    const { code } = await cli.exited;
    assert.equal(code, 1);
    const lines = cli.stderr().trim().split('\n');
    assert.equal(lines.length, 1, cli.stderr());
    assert.match(lines[0] ?? '', /^verdict: the decision log in .* is corrupt: the epoch record is unreadable/);
    assert.doesNotMatch(cli.stdout(), /listening on/);
  });

  it('refuses to start a participant whose prepared record cannot be decoded', async () => {
    const path = join(dir.path, 'participant');
    await putRaw(path, 'tx-1-1', Uint8Array.from([0x08, 0x63]), 'prepared');
    const { hooks } = recordingHooks();
    await assert.rejects(Participant.start({ name: 'corrupt-p', coordinator: '127.0.0.1:1', dataDir: path, hooks, logger: testLogger }), isCorrupt);
  });
});
