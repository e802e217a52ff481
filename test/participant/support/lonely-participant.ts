// A process that runs nothing but a Participant (for the keepProcessAlive test): it prints
// `started` once the participant runs, `connected` at every session, and closes the participant
// once connected, then prints `closed`. Argument: JSON { address, dataDir, keepProcessAlive }.
import { Participant } from '../../../src/participant/participant.js';

const { address, dataDir, keepProcessAlive } = JSON.parse(process.argv[2] ?? '{}') as { address: string; dataDir: string; keepProcessAlive: boolean };
const participant = await Participant.start({
  name: 'lonely',
  coordinator: address,
  dataDir,
  hooks: { prepare: () => 'yes', commit: () => undefined, abort: () => undefined },
  reconnect: { initialMs: 20, maxMs: 100 },
  keepProcessAlive,
});
participant.once('connected', () => {
  process.stdout.write('connected\n');
  void participant.close().then(() => process.stdout.write('closed\n'));
});
process.stdout.write('started\n');
