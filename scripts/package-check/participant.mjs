// A service embedding a Verdict participant, as an installed package's user writes it: plain
// node, ESM, `import ... from 'verdict'`. Holds each prepared amount and applies it on commit.
//   node participant.mjs COORDINATOR NAME DATA_DIR
// Prints `ready NAME` once its session is up and `committed TXID` for each commit; SIGTERM closes it.
import { Participant } from 'verdict';

const [coordinator, name, dataDir] = process.argv.slice(2);

const participant = await Participant.start({
  name,
  coordinator,
  dataDir,
  hooks: {
    prepare(txId, payload, { batch }) {
      const { amount } = JSON.parse(Buffer.from(payload).toString());
      batch.put(`hold/${txId}`, amount);
      return 'yes';
    },
    async commit(txId, { batch }) {
      batch.put(`applied/${txId}`, await participant.store.get(`hold/${txId}`));
      batch.del(`hold/${txId}`);
      console.log(`committed ${txId}`);
    },
    abort(txId, { batch }) {
      batch.del(`hold/${txId}`);
      console.log(`aborted ${txId}`);
    },
  },
});
await participant.ready();
console.log(`ready ${name}`);

process.once('SIGTERM', () => {
  participant.close().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
});
