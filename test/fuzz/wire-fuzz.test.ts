// The descriptor-driven fuzzer (test/fuzz/wire-fuzz.ts) in `npm test`: a few hundred seeded runs
// against a real coordinator on 127.0.0.1. `npm run fuzz -- --runs 10000` runs the long form.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { tempDir } from '../support/cluster.js';
import { runWireFuzz, wireMethods } from './wire-fuzz.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

describe('wire fuzzing from the proto descriptors', () => {
  const dir = tempDir('verdict-fuzz-');
  after(() => dir.cleanup());

  it('derives its calls from every method of the wire contract', () => {
    const names = wireMethods().map((m) => `${m.parent.name}.${m.name}`);
    assert.deepEqual(names.sort(), ['ParticipantService.Session', 'TransactionService.Abort', 'TransactionService.Begin', 'TransactionService.Commit', 'TransactionService.CommitStream', 'TransactionService.GetTransaction', 'TransactionService.ReserveTxIds']);
  });

  it(`keeps the coordinator up, answers only documented statuses, and writes nothing for a rejected request [${RUNS} runs]`, async () => {
    const { runs, byStatus } = await runWireFuzz({ runs: RUNS, seed: 20261206, dataDir: dir.path });
    assert.equal(runs, RUNS);
    // The runs reach both sides of the gate: accepted calls and refused ones.
    assert.ok((byStatus[0] ?? 0) > 0, `no call was accepted: ${JSON.stringify(byStatus)}`);
    assert.ok((byStatus[3] ?? 0) > 0, `no call was refused as INVALID_ARGUMENT: ${JSON.stringify(byStatus)}`);
  });
});
