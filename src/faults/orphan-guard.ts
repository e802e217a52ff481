// Loaded first (`--import`) by every process a ProcessCluster forks: when the parent goes away
// (its IPC channel closes), the child SIGKILLs itself instead of outliving the run that owned it.
// The channel is unref'd, so it never keeps an otherwise finished process alive.

if (process.send) {
  const orphaned = (): void => void process.kill(process.pid, 'SIGKILL');
  if (!process.connected) orphaned();
  process.on('disconnect', orphaned);
  process.channel?.unref();
}

export {};
