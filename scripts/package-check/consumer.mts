// A TypeScript consumer of the installed package under a strict compiler: `strict`,
// `exactOptionalPropertyTypes`, `noPropertyAccessFromIndexSignature`, and library checking on,
// so the shipped .d.ts files are checked too. `@ts-expect-error` lines prove that the types are
// real (an `any` would make them fail as unused).
import {
  Coordinator,
  ErrorCode,
  Outcome,
  Participant,
  TxState,
  VerdictClient,
  VerdictError,
  type AppStore,
  type CoordinatorOptions,
  type ParticipantHooks,
  type TxView,
} from 'verdict';
import { assertNoViolations, runChaos, type ChaosParticipant, type RunChaosOptions } from 'verdict/testing';

function ledgerHooks(store: () => AppStore): ParticipantHooks {
  return {
    prepare(txId, payload, { batch, deadline, signal }) {
      const { amount } = JSON.parse(Buffer.from(payload).toString()) as { amount: number };
      if (signal.aborted || deadline < Date.now()) return { vote: 'no', reason: 'too late' };
      batch.put(`hold/${txId}`, amount);
      return amount > 0 ? 'yes' : 'read-only';
    },
    async commit(txId, { batch }) {
      batch.put(`applied/${txId}`, await store().get(`hold/${txId}`));
      batch.del(`hold/${txId}`);
    },
    abort(txId, { batch }) {
      batch.del(`hold/${txId}`);
    },
  };
}

export async function run(address: string): Promise<TxView> {
  const options: CoordinatorOptions = { listen: '127.0.0.1:0', dataDir: './data/coordinator' };
  const coordinator = await Coordinator.start(options);
  coordinator.on('decided', (txId, outcome) => void `${txId} ${outcome}`);

  const ledger: Participant = await Participant.start({
    name: 'ledger',
    coordinator: address,
    dataDir: './data/ledger',
    hooks: ledgerHooks(() => ledger.store),
  });
  await ledger.ready();

  const client = new VerdictClient(address, { streamCommits: true });
  const tx = await client.begin({ timeoutMs: 5_000 });
  try {
    await client.commit(tx.txId, [{ participant: 'ledger', payload: JSON.stringify({ amount: 5 }) }], { waitForCompletion: true });
  } catch (e) {
    if (e instanceof VerdictError && e.code === ErrorCode.TX_ABORTED) console.log('aborted:', e.reason);
    else if (e instanceof VerdictError && e.code === ErrorCode.OUTCOME_UNKNOWN) console.log('unknown yet:', await client.get(tx.txId));
    else throw e;
  }
  const view = await client.get(tx.txId);
  if (view.state === TxState.ENDED && view.outcome === Outcome.COMMITTED) console.log(view.branches.map((b) => b.participant));

  // @ts-expect-error: a vote is 'yes', 'no' or 'read-only'
  const wrong: ParticipantHooks = { ...ledgerHooks(() => ledger.store), prepare: () => 'maybe' };
  void wrong;
  // @ts-expect-error: exactOptionalPropertyTypes: an optional option cannot be set to undefined
  await Participant.start({ name: 'x', coordinator: address, dataDir: './x', hooks: ledgerHooks(() => ledger.store), logger: undefined });

  client.close();
  await ledger.close();
  await coordinator.close();
  return view;
}

export async function chaos(): Promise<void> {
  const participant: ChaosParticipant = { name: 'ledger-a', createHooks: ({ store }) => ledgerHooks(() => store) };
  const options: RunChaosOptions = { participants: [participant, { ...participant, name: 'ledger-b' }], duration: 1_000, seed: 1, faults: ['kill'] };
  const report = await runChaos(options);
  assertNoViolations(report);
}
