// A reader that stops early (`verdict failpoints | head -1`) closes the pipe under stdout. That
// is the reader's choice, not a failure of the command: the CLI exits at once and quietly, with
// the exit code it had so far, instead of dying on an unhandled EPIPE with a stack trace.

/** Makes an EPIPE on `stream` end the process quietly; any other stream error stays fatal. */
export function exitQuietlyOnBrokenPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  });
}
