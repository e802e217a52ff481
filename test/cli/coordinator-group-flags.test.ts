// `verdict coordinator` in cluster mode refuses flags that conflict or are missing with one line on
// stderr and exit code 1, before it touches etcd or binds a port.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { startCli } from '../support/cli.js';

const GROUP = ['coordinator', '--etcd', '127.0.0.1:1', '--node-id', 'c1', '--advertise', '127.0.0.1:7999'];

describe('verdict coordinator --etcd: flags', () => {
  const cases: [string, string[], RegExp][] = [
    ['--data with --etcd', [...GROUP, '--data', '/tmp/x'], /^verdict: --data cannot be used with --etcd/],
    ['--tls-cert with --etcd', [...GROUP, '--tls-cert', 'a.pem', '--tls-key', 'b.pem'], /^verdict: --tls-cert cannot be used with --etcd/],
    ['--node-id without --etcd', ['coordinator', '--node-id', 'c1'], /^verdict: --node-id and --advertise run a member of a coordinator group: they need --etcd/],
    ['--etcd without --node-id', ['coordinator', '--etcd', '127.0.0.1:1', '--advertise', '127.0.0.1:7999'], /^verdict: --etcd needs --node-id/],
    ['--etcd without --advertise', ['coordinator', '--etcd', '127.0.0.1:1', '--node-id', 'c1'], /^verdict: --etcd needs --advertise/],
    ['a lease that is not whole seconds', [...GROUP, '--lease-ttl', '1500ms'], /^verdict: --lease-ttl 1500ms is not a whole number of seconds/],
    ['a lease below one second', [...GROUP, '--lease-ttl', '500ms'], /--lease-ttl.*expected a duration from 1s/],
    ['a malformed etcd endpoint', ['coordinator', '--etcd', '127.0.0.1:1,nope', '--node-id', 'c1', '--advertise', '127.0.0.1:7999'], /--etcd.*expected HOST:PORT/],
    ['an advertised port 0', ['coordinator', '--etcd', '127.0.0.1:1', '--node-id', 'c1', '--advertise', '127.0.0.1:0'], /^verdict: advertised address "127.0.0.1:0" must be host:port with a fixed port/],
    ['a bad node id', ['coordinator', '--etcd', '127.0.0.1:1', '--node-id', 'a/b', '--advertise', '127.0.0.1:7999'], /^verdict: node id "a\/b" must be/],
  ];
  for (const [what, args, message] of cases) {
    it(`refuses ${what} with one line and exit code 1`, async () => {
      const cli = startCli(args);
      const exit = await cli.exited;
      const lines = cli.stderr().trimEnd().split('\n');
      assert.equal(exit.code, 1, cli.stderr());
      assert.equal(lines.length, 1, `one line: ${cli.stderr()}`);
      assert.match(lines[0] ?? '', message);
      assert.equal(cli.stdout(), '');
    });
  }
});
