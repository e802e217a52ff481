// `npm run fuzz -- --runs N --seed S`: the descriptor-driven wire fuzzer against a fresh
// coordinator on 127.0.0.1 (see test/fuzz/wire-fuzz.ts). Exit 1 with the finding and its seed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runWireFuzz } from '../test/fuzz/wire-fuzz.js';

const { values } = parseArgs({ options: { runs: { type: 'string' }, seed: { type: 'string' } } });
const runs = Number(values.runs ?? 10_000);
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
if (!Number.isSafeInteger(runs) || runs < 1 || !Number.isSafeInteger(seed)) {
  console.error('usage: npm run fuzz -- [--runs N] [--seed S]');
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), 'verdict-fuzz-'));
const began = performance.now();
console.log(`fuzz: ${runs} runs, seed ${seed}`);
try {
  const { byStatus } = await runWireFuzz({ runs, seed, dataDir: dir, onProgress: (n) => console.log(`  … ${n} runs`) });
  console.log(`fuzz: ${runs} runs clean in ${((performance.now() - began) / 1000).toFixed(1)} s; answers by gRPC status: ${JSON.stringify(byStatus)}`);
} catch (e) {
  console.error(`fuzz: finding (replay: npm run fuzz -- --runs ${runs} --seed ${seed}):\n${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
