// The `verdict` bin is plain node running the built CLI (dist/): the process a shell or npx
// starts is the coordinator itself, and stopping the launch stops the coordinator. Under npx the
// chain is npm → sh → node, and npm's SIGTERM dies with the shell; the coordinator must still
// shut down, releasing its port and its data directory, instead of living on as an orphan.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';

import { ROOT, startCli, type CliProcess } from '../support/cli.js';
import { tempDir, waitFor } from '../support/cluster.js';

/** How long the coordinator may take to notice the end of its launch and shut down, in ms. */
const SHUTDOWN_TIMEOUT_MS = 10_000;
/** How long npx may take to start the coordinator, in ms. */
const START_TIMEOUT_MS = 30_000;

/** Whether `pid` is a live process (a zombie nobody reaped has ended). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** A launched coordinator: the launching process, and what the coordinator said about itself. */
interface Launched {
  readonly launcher: ChildProcess;
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;
  /** The pid the coordinator logged, and its address. */
  readonly pid: number;
  readonly address: string;
}

/** Starts `command args` (the bin, or npx) and waits for its "listening on" and its logged pid. */
async function launch(command: string, args: readonly string[]): Promise<Launched> {
  const launcher = spawn(command, [...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(launcher, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let out = '';
  let err = '';
  launcher.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  launcher.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  let gone = false;
  void exited.then(() => (gone = true));
  const { address, pid } = await waitFor(
    'the coordinator to listen and log its pid',
    () => {
      if (gone) throw new Error(`${command} exited before the coordinator listened; stderr: ${err}`);
      const address = /^listening on (127\.0\.0\.1:\d+)$/m.exec(out)?.[1];
      const pid = /"pid":(\d+).*"msg":"coordinator started"/.exec(err)?.[1];
      return address && pid ? { address, pid: Number(pid) } : undefined;
    },
    START_TIMEOUT_MS,
  );
  return { launcher, exited, pid, address };
}

describe('the verdict bin', () => {
  const dir = tempDir('verdict-launcher-');
  const pids: number[] = [];
  const running: CliProcess[] = [];
  let n = 0;
  const dataDir = (): string => join(dir.path, `coordinator-${++n}`);
  const coordinatorArgs = (data: string): string[] => ['coordinator', '--listen', '127.0.0.1:0', '--data', data, '--log-level', 'info'];

  afterEach(() => {
    // Whatever a failed test left behind is killed: nothing outlives the suite.
    for (const pid of pids.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL');
    for (const cli of running.splice(0)) cli.kill();
  });
  after(() => dir.cleanup());

  /** Asserts that the port and the data directory are free again: a new coordinator takes both. */
  async function assertReleased(address: string, data: string): Promise<void> {
    const second = startCli(['coordinator', '--listen', address, '--data', data, '--log-level', 'warn']);
    running.push(second);
    await second.waitForLine(new RegExp(`^listening on ${address.replace(/\./g, '\\.')}$`));
    second.child.kill('SIGTERM');
    assert.deepEqual(await second.exited, { code: 0, signal: null });
  }

  it('runs the coordinator in the process it starts (no wrapper, no tsx), which SIGTERM stops cleanly', async () => {
    const data = dataDir();
    const run = await launch(process.execPath, [join(ROOT, 'bin', 'verdict.js'), ...coordinatorArgs(data)]);
    pids.push(run.pid);
    assert.equal(run.pid, run.launcher.pid, 'the coordinator is the launched process itself');
    const cmdline = readFileSync(`/proc/${run.pid}/cmdline`, 'utf8').split('\0');
    assert.ok(!cmdline.some((arg) => arg.includes('tsx')), `plain node: ${cmdline.join(' ')}`);

    run.launcher.kill('SIGTERM');
    assert.deepEqual(await run.exited, [0, null]);
    await assertReleased(run.address, data);
  });

  it('npx verdict coordinator: SIGTERM to npx stops the coordinator, which releases its port and data directory', { timeout: 60_000 }, async () => {
    const data = dataDir();
    const run = await launch('npx', ['--no-install', 'verdict', ...coordinatorArgs(data)]);
    pids.push(run.pid);
    assert.notEqual(run.pid, run.launcher.pid, 'npx runs the coordinator as a descendant');

    run.launcher.kill('SIGTERM');
    await run.exited;
    await waitFor('the coordinator to exit after npx was stopped', () => !alive(run.pid), SHUTDOWN_TIMEOUT_MS);
    await assertReleased(run.address, data);
  });
});
