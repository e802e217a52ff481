// A reader that stops early (`verdict failpoints | head -1`) closes the pipe under the CLI's
// stdout. The CLI then exits quietly, with exit code 0 and nothing on stderr, never with an
// EPIPE stack trace. Each child here gets a stdout pipe whose reading end is closed before the
// child writes anything, so every write it makes fails with EPIPE.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { ROOT } from '../support/cli.js';

interface Ended {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/** Runs `node ...args` from the repository root with the reading end of its stdout closed at once. */
async function runIntoClosedPipe(args: readonly string[]): Promise<Ended> {
  const child = spawn(process.execPath, [...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  // Closed before the child has even loaded its first module: all of its output hits EPIPE.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stderr };
}

describe('a closed stdout pipe', () => {
  it('verdict failpoints (from source) exits 0 with nothing on stderr', async () => {
    const ended = await runIntoClosedPipe(['--import', 'tsx', 'src/cli/main.ts', 'failpoints']);
    assert.deepEqual(ended, { code: 0, signal: null, stderr: '' });
  });

  it('verdict failpoints (the built bin) exits 0 with nothing on stderr', async () => {
    const ended = await runIntoClosedPipe([join('bin', 'verdict.js'), 'failpoints']);
    assert.deepEqual(ended, { code: 0, signal: null, stderr: '' });
  });

  it('verdict --help exits 0 with nothing on stderr', async () => {
    const ended = await runIntoClosedPipe(['--import', 'tsx', 'src/cli/main.ts', '--help']);
    assert.deepEqual(ended, { code: 0, signal: null, stderr: '' });
  });

  // Writes spread over several turns of the event loop are what crashed without the handler
  // (the EPIPE of one write surfaces as an 'error' event after the turn): this child writes one
  // line per turn, like a command that prints as it goes.
  const writer = (guarded: boolean): string[] => [
    '--import',
    'tsx',
    '--input-type=module',
    '-e',
    [
      guarded ? "const { exitQuietlyOnBrokenPipe } = await import('./src/cli/broken-pipe.ts'); exitQuietlyOnBrokenPipe(process.stdout);" : '',
      'for (let i = 0; i < 20; i++) { console.log(`line ${i}`); await new Promise((r) => setImmediate(r)); }',
      'process.exitCode = 3;',
    ].join('\n'),
  ];

  it('a command printing over many turns dies with an EPIPE stack without the handler (the failure being prevented)', async () => {
    const ended = await runIntoClosedPipe(writer(false));
    assert.notEqual(ended.code, 0);
    assert.match(ended.stderr, /EPIPE/);
  });

  it('with exitQuietlyOnBrokenPipe, the same command exits at its first failed write, quietly', async () => {
    const ended = await runIntoClosedPipe(writer(true));
    // Exit code 0: it stopped at the first broken write, before setting 3 at the end.
    assert.deepEqual(ended, { code: 0, signal: null, stderr: '' });
  });
});
