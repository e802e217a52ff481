// grpc-js writes its own diagnostics to stderr in a format of its own (an `E No address added…`
// line before our error about the same thing). The CLI routes them into its pino logger at debug:
// every failure that matters reaches the user as Verdict's own error, once.

import { logVerbosity, setLogger, setLogVerbosity } from '@grpc/grpc-js';
import type { Logger } from 'pino';

/** Sends grpc-js's log lines to `logger` (debug, component `grpc`). */
export function routeGrpcLogs(logger: Logger): void {
  const grpc = logger.child({ component: 'grpc' });
  setLogger({ error: (...args: unknown[]) => grpc.debug(args.map(String).join(' ')) } as unknown as Console);
  setLogVerbosity(grpc.isLevelEnabled('debug') ? logVerbosity.DEBUG : logVerbosity.ERROR);
}
