// `npx verdict …` runs the CLI as npm → `sh -c` → node. On SIGTERM npm forwards the signal to the
// shell, which dies without passing it on, and npm exits: the CLI (a coordinator holding its port
// and data directory) would live on with init as its parent. So when npm exec launched us, losing
// our parent means the run was stopped, and we stop as if the SIGTERM had reached us. Other
// launches keep their parent-independence (`verdict coordinator &` in a script that then exits).

/** How often the parent is checked, in ms (a getppid call; the timer never keeps the process alive). */
const PARENT_POLL_INTERVAL_MS = 200;

/** Whether npm exec (npx) started this process, directly or through its shell. */
export function launchedByNpmExec(env: NodeJS.ProcessEnv = process.env): boolean {
  return env['npm_command'] === 'exec';
}

/**
 * When npm exec launched this process, sends it SIGTERM once its parent is gone (it was
 * re-parented), so that its shutdown path runs. Returns a function that stops the watch.
 */
export function stopWithLauncher(env: NodeJS.ProcessEnv = process.env): () => void {
  if (!launchedByNpmExec(env)) return () => undefined;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, PARENT_POLL_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
