// A small HTTP server for Prometheus scrapes: GET /metrics answers the registry's text format.
// Bound on its own port (`--metrics HOST:PORT`), never on the gRPC one.

import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { ErrorCode, VerdictError } from '../errors.js';

/** A listening metrics endpoint. */
export interface MetricsServer {
  /** `host:port` served (the real port when 0 was asked). */
  readonly address: string;
  /** Stops serving; idempotent. */
  close(): Promise<void>;
}

/**
 * Serves `registry` at `http://<listen>/metrics`. Rejects (UNAVAILABLE) when the address cannot be
 * bound, before anything else starts.
 */
export function serveMetrics(listen: string, registry: Registry): Promise<MetricsServer> {
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(listen.slice(colon + 1));
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`cannot collect metrics: ${(e as Error).message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new VerdictError(ErrorCode.UNAVAILABLE, `cannot serve metrics on ${listen}: ${e.message}`, { cause: e })));
    server.listen(port, host, () => {
      const bound = server.address();
      const actual = typeof bound === 'object' && bound ? bound.port : port;
      let closing: Promise<void> | undefined;
      resolve({
        address: `${listen.slice(0, colon)}:${actual}`,
        close: () =>
          (closing ??= new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          })),
      });
    });
  });
}
