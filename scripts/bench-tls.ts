// The cost of TLS: one-shot transactions over two no-op participants, in-process, first in
// plaintext and then with mutual TLS, in the same run (this machine is shared and noisy: compare
// the two numbers of one run, not numbers across runs).
//
//   node --import tsx scripts/bench-tls.ts [seconds per mode] [in flight]

import { mkdtempSync, rmSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { VerdictClient } from '../src/client/index.js';
import { createDevPki } from '../src/common/dev-certs.js';
import type { ClientTlsOptions } from '../src/common/tls.js';
import { Coordinator } from '../src/coordinator/index.js';
import { Participant } from '../src/participant/index.js';

const SECONDS = Number(process.argv[2] ?? 5);
const IN_FLIGHT = Number(process.argv[3] ?? 64);
const WARMUP_MS = 1_000;
const logger = pino({ level: 'silent' });

async function measure(dir: string, tls: ((role: 'participant' | 'initiator', name: string) => Promise<ClientTlsOptions>) | undefined, serverTls: { certFile: string; keyFile: string; caFile: string } | undefined): Promise<number> {
  const coordinator = await Coordinator.start({ listen: '127.0.0.1:0', dataDir: join(dir, 'coordinator'), logger, ...(serverTls ? { tls: serverTls } : {}) });
  const hooks = { prepare: () => 'yes' as const, commit: () => undefined, abort: () => undefined };
  const participants = await Promise.all(
    ['bank-a', 'bank-b'].map(async (name) =>
      Participant.start({ name, coordinator: coordinator.address, dataDir: join(dir, name), hooks, logger, ...(tls ? { tls: await tls('participant', name) } : {}) }),
    ),
  );
  await Promise.all(participants.map((p) => p.ready()));
  const client = new VerdictClient(coordinator.address, { streamCommits: true, ...(tls ? { tls: await tls('initiator', 'bench') } : {}) });
  let done = 0;
  let counting = false;
  const end = Date.now() + WARMUP_MS + SECONDS * 1000;
  setTimeout(() => ((counting = true), (done = 0)), WARMUP_MS);
  const started = Date.now() + WARMUP_MS;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (Date.now() < end) {
        await client.transact([{ participant: 'bank-a', payload: 'x' }, { participant: 'bank-b', payload: 'y' }]);
        if (counting) done++;
      }
    }),
  );
  const rate = done / ((Date.now() - started) / 1000);
  client.close();
  for (const p of participants) await p.close();
  await coordinator.close();
  return rate;
}

const dir = mkdtempSync(join(tmpdir(), 'verdict-bench-tls-'));
try {
  const pki = await createDevPki(join(dir, 'pki'));
  const plain = await measure(join(dir, 'plain'), undefined, undefined);
  const ca = readFileSync(pki.ca.cert);
  const tls = async (role: 'participant' | 'initiator', name: string): Promise<ClientTlsOptions> => {
    const id = await pki.identity(role, name);
    return { ca, cert: readFileSync(id.cert), key: readFileSync(id.key) };
  };
  const secure = await measure(join(dir, 'tls'), tls, { certFile: pki.coordinator.cert, keyFile: pki.coordinator.key, caFile: pki.ca.cert });
  console.log(`plaintext ${plain.toFixed(0)} tx/s, mutual TLS ${secure.toFixed(0)} tx/s (${((secure / plain - 1) * 100).toFixed(1)}%), ${IN_FLIGHT} in flight, ${SECONDS}s each`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
