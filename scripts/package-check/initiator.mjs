// An initiator, as an installed package's user writes it: commits one transaction with a branch
// at every named participant, then reads it back. Prints one JSON line: the commit's answer and
// the coordinator's view of the transaction.
//   node initiator.mjs COORDINATOR NAME...
import { VerdictClient } from 'verdict';

const [coordinator, ...participants] = process.argv.slice(2);
const client = new VerdictClient(coordinator);
try {
  const branches = participants.map((participant, i) => ({ participant, payload: JSON.stringify({ amount: i + 1 }) }));
  const result = await client.transact(branches, { waitForCompletion: true });
  const view = await client.get(result.txId);
  console.log(JSON.stringify({ result, state: view.state, outcome: view.outcome, acknowledged: view.branches.map((b) => b.acknowledged) }));
} finally {
  client.close();
}
