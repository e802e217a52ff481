// Every command reads durations in one syntax (a number and a unit: 500ms, 30s, 2m, 1h), shows
// its defaults in that syntax in --help, and refuses a plain number (it once meant seconds in one
// command and milliseconds in another) and flags that contradict each other, with one line.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command, CommanderError, InvalidArgumentError } from 'commander';

import { configureBenchCommand } from '../../src/bench/bench-command.js';
import { addChaosCommand } from '../../src/cli/chaos-command.js';
import { formatDuration, parseDuration } from '../../src/cli/cli-arguments.js';
import { startCli } from '../support/cli.js';
import { parseBenchFlags } from '../support/bench-flags.js';

describe('durations on the command line', () => {
  for (const [text, ms] of [
    ['500ms', 500],
    ['30s', 30_000],
    ['1.5s', 1_500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['0', 0],
    ['0s', 0],
    [' 10s ', 10_000],
  ] as const) {
    it(`reads ${JSON.stringify(text)} as ${ms} ms`, () => {
      assert.equal(parseDuration(text), ms);
    });
  }

  for (const text of ['30', '1.5', '10 s', '-1s', '1d', 's', '', 'ten seconds', '1e3ms']) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      assert.throws(() => parseDuration(text), (e: unknown) => e instanceof InvalidArgumentError && /with a unit, e\.g\. 500ms, 30s, 2m or 1h/.test(e.message));
    });
  }

  it('refuses a duration outside the bounds of its flag, naming them in the same syntax', () => {
    assert.throws(() => parseDuration('500ms', { minMs: 1_000 }), /from 1s to 24h/);
    assert.throws(() => parseDuration('25h'), /from 0s to 24h/);
    assert.equal(parseDuration('24h'), 24 * 3_600_000);
  });

  it('formats milliseconds back in the largest whole unit, which parses to the same value', () => {
    for (const [ms, text] of [
      [0, '0s'],
      [250, '250ms'],
      [1_500, '1500ms'],
      [2_000, '2s'],
      [30_000, '30s'],
      [90_000, '90s'],
      [120_000, '2m'],
      [7_200_000, '2h'],
    ] as const) {
      assert.equal(formatDuration(ms), text);
      assert.equal(parseDuration(text), ms);
    }
  });
});

/** Help text of a command, as `verdict <name> --help` prints it. */
function helpOf(configure: (program: Command) => Command): string {
  const program = new Command('verdict');
  return configure(program).helpInformation();
}

describe('duration flags of verdict chaos and verdict bench', () => {
  it('shows every duration default in the syntax the flag takes', () => {
    const chaos = helpOf((p) => {
      addChaosCommand(p);
      return p.commands.find((c) => c.name() === 'chaos') as Command;
    });
    assert.match(chaos, /--duration <time>.*\(default: 30s\)/s);
    assert.doesNotMatch(chaos, /30000/);

    const bench = helpOf((p) => configureBenchCommand(p.command('bench')));
    assert.match(bench, /--duration <time>[^(]*\(default: 10s\)/);
    assert.match(bench, /--warmup <time>[^(]*\(default: 2s\)/);
    assert.match(bench, /--ceiling-duration <time>/);
    assert.match(bench, /--interval <time>/);
  });


  it('bench refuses the old plain seconds, naming the flag', async () => {
    const e = await parseBenchFlags(['--duration', '10']);
    assert.ok(e instanceof CommanderError, `a commander error (got ${String(e)})`);
    assert.equal(e.code, 'commander.invalidArgument');
    assert.match(e.message, /--duration <time>' argument '10' is invalid\. expected a duration with a unit/);
  });

  it('bench refuses --ceiling-duration with --no-ceiling instead of ignoring it', async () => {
    for (const args of [
      ['--no-ceiling', '--ceiling-duration', '5s'],
      ['--ceiling-duration', '5s', '--no-ceiling'],
    ]) {
      const e = await parseBenchFlags(args);
      assert.ok(e instanceof CommanderError, `a commander error for ${args.join(' ')} (got ${String(e)})`);
      assert.equal(e.code, 'commander.conflictingOption');
      assert.match(e.message, /'--ceiling-duration <time>' cannot be used with option '--no-ceiling'/);
    }
  });
});

describe('the verdict CLI on bad durations and conflicting flags', () => {
  for (const [args, pattern] of [
    [['chaos', '--duration', '30'], /^verdict: option '--duration <time>' argument '30' is invalid\. expected a duration with a unit, e\.g\. 500ms, 30s, 2m or 1h$/],
    [['chaos', '--duration', '500ms'], /^verdict: option '--duration <time>' argument '500ms' is invalid\. expected a duration from 1s to 24h$/],
    [['bench', '--warmup', '2'], /^verdict: option '--warmup <time>' argument '2' is invalid\. expected a duration with a unit/],
    [['bench', '--no-ceiling', '--ceiling-duration', '1s'], /^verdict: option '--ceiling-duration <time>' cannot be used with option '--no-ceiling'$/],
  ] as const) {
    it(`verdict ${args.join(' ')}: one line on stderr, exit code 1, nothing run`, async () => {
      const cli = startCli(args);
      assert.deepEqual(await cli.exited, { code: 1, signal: null });
      const lines = cli.stderr().trimEnd().split('\n');
      assert.equal(lines.length, 1, `one line: ${cli.stderr()}`);
      assert.match(lines[0] ?? '', pattern);
      assert.equal(cli.stdout(), '');
    });
  }
});
