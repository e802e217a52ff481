// Test support: the real `verdict` CLI as a child process, with its output collected, a wait for
// a line on stdout (bounded, never a sleep), and its exit as a promise.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** The repository root, where `src/cli/main.ts` lives. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A running CLI process. */
export interface CliProcess {
  readonly child: ChildProcess;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` on a stdout line; rejects on exit or timeout. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves when the process exits. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends SIGKILL unless it has exited. */
  kill(): void;
}

/**
 * Runs `node --import tsx src/cli/main.ts ...args` from the repository root; with `launcher`,
 * through that command first (e.g. `['unshare', '--net']`, which execs node in place).
 */
export function startCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, launcher: readonly string[] = []): CliProcess {
  const [command, ...rest] = [...launcher, process.execPath, '--import', 'tsx', 'src/cli/main.ts', ...args] as [string, ...string[]];
  const child = spawn(command, rest, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));

  const waitForLine = (pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        for (const line of out.split('\n')) {
          const match = line.match(pattern);
          if (match) {
            done();
            resolve(match);
            return true;
          }
        }
        return false;
      };
      const onExit = (): void => {
        if (check()) return;
        done();
        reject(new Error(`the CLI exited before printing ${pattern}; stderr: ${err}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; stdout: ${out}; stderr: ${err}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        child.stdout?.off('data', check);
        child.off('exit', onExit);
      };
      if (check()) return;
      child.stdout?.on('data', check);
      child.once('exit', onExit);
    });

  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitForLine,
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Starts `verdict coordinator` on 127.0.0.1:0 and resolves with it and its address. */
export async function startCoordinatorCli(dataDir: string, extra: readonly string[] = []): Promise<{ cli: CliProcess; address: string }> {
  const cli = startCli(['coordinator', '--listen', '127.0.0.1:0', '--data', dataDir, '--log-level', 'warn', ...extra]);
  try {
    const [, address] = await cli.waitForLine(/^listening on (127\.0\.0\.1:\d+)$/);
    return { cli, address: address as string };
  } catch (e) {
    cli.kill();
    throw e;
  }
}
