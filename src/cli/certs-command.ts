// `verdict certs`: a development PKI in a directory (default ./certs). `ca` first, then the
// coordinator's certificate for its hosts and one certificate per identity. Prints the files it
// wrote, one per line. Work is done by src/common/dev-certs.ts (the openssl command), loaded only
// when the command runs.

import type { Command } from 'commander';
import { IdentityRole } from '../common/identity.js';

/** Default directory of `verdict certs`. */
export const DEFAULT_CERTS_DIR = './certs';

interface DirOption {
  readonly dir: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Adds `certs` to `program`. */
export function addCertsCommand(program: Command): void {
  const certs = program.command('certs').description('create a development CA and certificates with verdict:// identities (uses openssl)');
  certs
    .command('ca')
    .description('create the CA (ca.pem, ca.key)')
    .option('--dir <dir>', 'directory to write into', DEFAULT_CERTS_DIR)
    .action(async (options: DirOption) => {
      const { createCa } = await import('../common/dev-certs.js');
      print(await createCa(options.dir));
    });
  certs
    .command('coordinator')
    .description("create the coordinator's server certificate (coordinator.pem, coordinator.key)")
    .requiredOption('--host <host>', 'a host name or IP address clients dial (repeatable)', collect)
    .option('--dir <dir>', 'directory with the CA, and to write into', DEFAULT_CERTS_DIR)
    .action(async (options: DirOption & { host: string[] }) => {
      const { issueCertificate } = await import('../common/dev-certs.js');
      print(await issueCertificate(options.dir, { kind: 'coordinator', hosts: options.host }));
    });
  for (const role of Object.values(IdentityRole)) {
    certs
      .command(role)
      .argument('<name>', `the ${role}'s name`)
      .description(`create a client certificate for verdict://${role}/<name> (${role}-<name>.pem, .key)`)
      .option('--dir <dir>', 'directory with the CA, and to write into', DEFAULT_CERTS_DIR)
      .action(async (name: string, options: DirOption) => {
        const { issueCertificate } = await import('../common/dev-certs.js');
        print(await issueCertificate(options.dir, { kind: role, name }));
      });
  }
}

function print(paths: { cert: string; key: string }): void {
  console.log(paths.cert);
  console.log(paths.key);
}
