// Failpoints: the specification syntax, arming from code, and the CLI listing.

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import {
  armedFailpoints,
  armFailpoint,
  disarmFailpoint,
  failpoint,
  FAILPOINTS,
  parseFailpointSpec,
} from '../../src/common/failpoints.js';
import { ErrorCode, VerdictError } from '../../src/errors.js';
import { startCli } from '../support/cli.js';

describe('failpoints', () => {
  afterEach(() => disarmFailpoint());

  it('parses crash, error and pause actions, with an optional starting hit', () => {
    assert.deepEqual(parseFailpointSpec('coordinator.after-commit-record=crash, participant.before-ack=pause:250@3,participant.after-vote-sent=error'), [
      { name: 'coordinator.after-commit-record', action: { kind: 'crash' }, fromHit: 1 },
      { name: 'participant.before-ack', action: { kind: 'pause', ms: 250 }, fromHit: 3 },
      { name: 'participant.after-vote-sent', action: { kind: 'error' }, fromHit: 1 },
    ]);
    assert.deepEqual(parseFailpointSpec(''), []);
  });

  it('refuses unknown names and malformed actions with INVALID_ARGUMENT', () => {
    for (const spec of ['nope=crash', 'coordinator.after-votes', 'coordinator.after-votes=explode', 'coordinator.after-votes=pause', 'coordinator.after-votes=crash@x']) {
      assert.throws(
        () => parseFailpointSpec(spec),
        (e: unknown) => e instanceof VerdictError && e.code === ErrorCode.INVALID_ARGUMENT,
        spec,
      );
    }
  });

  it('does nothing when disarmed, throws when armed with error, from the given hit on', () => {
    failpoint('coordinator.before-end-record');
    armFailpoint('coordinator.before-end-record', { kind: 'error', message: 'boom' }, 2);
    assert.deepEqual(armedFailpoints(), ['coordinator.before-end-record']);
    failpoint('coordinator.before-end-record'); // hit 1: not yet
    assert.throws(() => failpoint('coordinator.before-end-record'), /boom/);
    failpoint('coordinator.after-votes'); // another point is unaffected
    disarmFailpoint('coordinator.before-end-record');
    failpoint('coordinator.before-end-record');
  });

  it('pauses the whole process for the given time', () => {
    armFailpoint('participant.before-ack', { kind: 'pause', ms: 60 });
    const start = performance.now();
    failpoint('participant.before-ack');
    assert.ok(performance.now() - start >= 55, 'the pause held the thread');
  });

  it('are listed one a line by `verdict failpoints`', async () => {
    const cli = startCli(['failpoints']);
    const { code } = await cli.exited;
    assert.equal(code, 0);
    for (const name of Object.keys(FAILPOINTS)) assert.match(cli.stdout(), new RegExp(`^${name.replace(/\./g, '\\.')} `, 'm'));
  });

  it('make a start fail with one clear line when VERDICT_FAILPOINTS is malformed', async () => {
    const cli = startCli(['coordinator', '--listen', '127.0.0.1:0', '--data', '/nonexistent-never-opened'], { VERDICT_FAILPOINTS: 'nope=crash' });
    const { code } = await cli.exited;
    assert.equal(code, 1);
    assert.equal(cli.stderr().trim(), 'verdict: VERDICT_FAILPOINTS: unknown failpoint "nope" (see: verdict failpoints)');
  });
});
