// `verdict coordinator` in cluster mode refuses flags that conflict or are missing, files it cannot
// read and an insecure setup (plaintext off loopback, to clients or to etcd) with one line on
// stderr and exit code 1, before it touches etcd or binds a port.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { startCli } from '../support/cli.js';

const GROUP = ['coordinator', '--etcd', '127.0.0.1:1', '--node-id', 'c1', '--advertise', '127.0.0.1:7999'];

describe('verdict coordinator --etcd: flags', () => {
  const cases: [string, string[], RegExp][] = [
    ['--data with --etcd', [...GROUP, '--data', '/tmp/x'], /^verdict: --data cannot be used with --etcd/],
    ['--tls-cert without --tls-key', [...GROUP, '--tls-cert', 'a.pem'], /^verdict: --tls-cert and --tls-key go together/],
    ['a TLS file that cannot be read', [...GROUP, '--tls-cert', '/nonexistent/a.pem', '--tls-key', '/nonexistent/b.pem'], /^verdict: cannot read the TLS files: .*nonexistent/],
    ['a non-loopback --listen without TLS', [...GROUP, '--listen', '0.0.0.0:0'], /^verdict: refusing to serve 0\.0\.0\.0:0 without TLS and client authentication/],
    ['plaintext etcd off loopback', ['coordinator', '--etcd', '10.255.255.1:2379', '--node-id', 'c1', '--advertise', '127.0.0.1:7999'], /^verdict: refusing to reach etcd at 10\.255\.255\.1:2379 without TLS/],
    ['etcd TLS files with http:// endpoints', ['coordinator', '--etcd', 'http://127.0.0.1:1', '--etcd-ca', 'ca.pem', '--node-id', 'c1', '--advertise', '127.0.0.1:7999'], /^verdict: etcd TLS files .* given with http:\/\/ endpoints/],
    ['--etcd-cert without --etcd-key', [...GROUP, '--etcd-ca', 'ca.pem', '--etcd-cert', 'c.pem'], /^verdict: --etcd-cert and --etcd-key go together/],
    ['--etcd-cert without --etcd-ca', [...GROUP, '--etcd-cert', 'c.pem', '--etcd-key', 'c.key'], /^verdict: --etcd-cert needs --etcd-ca/],
    ['an etcd CA file that cannot be read', [...GROUP, '--etcd-ca', '/nonexistent/ca.pem'], /^verdict: cannot read the etcd TLS file \/nonexistent\/ca\.pem/],
    ['--etcd-ca without --etcd', ['coordinator', '--etcd-ca', 'ca.pem'], /^verdict: --etcd-ca needs --etcd/],
    ['--etcd-user without a password', [...GROUP, '--etcd-user', 'verdict'], /^verdict: --etcd-user verdict needs its password in --etcd-password-file or VERDICT_ETCD_PASSWORD/],
    ['--etcd-password-file without --etcd-user', [...GROUP, '--etcd-password-file', 'pw.txt'], /^verdict: --etcd-password-file needs --etcd-user/],
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
