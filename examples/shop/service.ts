// One shop service as its own process: a Participant with its own store (seeded at first start)
// and a small HTTP endpoint, GET /state, that shows what the store holds.
//
//   node --import tsx examples/shop/service.ts <orders|inventory|payments> --coordinator HOST:PORT --data DIR [--http HOST:PORT]
//
// Prints one line, `ready <name> http://HOST:PORT`, once its session is up; SIGTERM closes it.

import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Participant } from '../../src/index.js';
import { hooksOf, seed, SERVICES, type ServiceName } from './hooks.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { coordinator: { type: 'string' }, data: { type: 'string' }, http: { type: 'string', default: '127.0.0.1:0' } },
});
const name = positionals[0] as ServiceName;
if (!SERVICES.includes(name) || !values.coordinator || !values.data) {
  console.error(`usage: service.ts <${SERVICES.join('|')}> --coordinator HOST:PORT --data DIR [--http HOST:PORT]`);
  process.exit(2);
}

const participant = await Participant.start({
  name,
  coordinator: values.coordinator,
  dataDir: values.data,
  hooks: hooksOf(name),
  logger: pino({ level: process.env['VERDICT_LOG_LEVEL'] ?? 'warn' }, pino.destination(2)),
});

// Seeding: written straight to the store before any transaction can touch it, and only once (the
// marker is in the same batch), so a restarted service keeps its state.
if ((await participant.store.get('meta/seeded')) === undefined) {
  const initial = Object.entries(seed(name)).map(([key, value]) => ({ type: 'put' as const, key, value }));
  await participant.store.batch([...initial, { type: 'put', key: 'meta/seeded', value: true }]);
}

/** The store's committed values (holds of prepared orders included), without the seed marker. */
async function state(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for await (const [key, value] of participant.store.iterator()) if (key !== 'meta/seeded') out[key] = value;
  return out;
}

const server = createServer((req, res) => {
  if (req.method !== 'GET' || req.url !== '/state') {
    res.writeHead(404).end();
    return;
  }
  state().then(
    (s) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ service: name, inDoubt: participant.inDoubt().length, state: s })),
    (e: unknown) => res.writeHead(500).end(String(e)),
  );
});
const [host, port] = [values.http.slice(0, values.http.lastIndexOf(':')), Number(values.http.slice(values.http.lastIndexOf(':') + 1))];
await new Promise<void>((resolve) => server.listen(port, host, resolve));
const address = server.address();
await participant.ready();
console.log(`ready ${name} http://${host}:${typeof address === 'object' && address ? address.port : port}`);

process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void participant.close();
});
