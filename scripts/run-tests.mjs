#!/usr/bin/env node
// Runs test/**/*.test.ts with node:test through tsx. Node 20's --test does not expand globs, so
// the file list is built here.
//
//   npm test                              every test file
//   npm test -- test/protocol             only files under a path prefix (several allowed)
//   npm test -- --test-name-pattern=vote  other arguments starting with '-' go to node
//   TEST_FILES=test/a,test/b npm test     prefixes from the environment (comma-separated)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TEST_DIR = 'test';
const TEST_SUFFIX = '.test.ts';
// The machine has 2 cores; more parallel files only adds contention (and flaky timings).
const MAX_CONCURRENCY = 2;
// node flags that take their value as the next argument when written without '='.
const FLAGS_WITH_VALUE = new Set([
  '--test-name-pattern',
  '--test-skip-pattern',
  '--test-reporter',
  '--test-reporter-destination',
  '--test-concurrency',
  '--test-timeout',
  '--test-shard',
  '--import',
  '--require',
  '-r',
]);

function findTests(dir) {
  const out = [];
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(full);
      } else if (entry.isFile() && entry.name.endsWith(TEST_SUFFIX)) {
        out.push(relative(ROOT, full).split(sep).join('/'));
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

function normalizePrefix(p) {
  let s = p.split(sep).join('/').replace(/\\/g, '/');
  while (s.startsWith('./')) s = s.slice(2);
  return s;
}

function parseArgs(argv) {
  const nodeFlags = [];
  const prefixes = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') continue;
    if (arg.startsWith('-')) {
      nodeFlags.push(arg);
      if (FLAGS_WITH_VALUE.has(arg) && i + 1 < argv.length) nodeFlags.push(argv[++i]);
    } else {
      prefixes.push(normalizePrefix(arg));
    }
  }
  for (const p of (process.env.TEST_FILES ?? '').split(',')) {
    if (p.trim() !== '') prefixes.push(normalizePrefix(p.trim()));
  }
  return { nodeFlags, prefixes };
}

function main() {
  const { nodeFlags, prefixes } = parseArgs(process.argv.slice(2));
  const all = findTests(join(ROOT, TEST_DIR));
  if (all.length === 0) {
    console.error(`no test files (${TEST_DIR}/**/*${TEST_SUFFIX}) found`);
    return 1;
  }
  let files = all;
  if (prefixes.length > 0) {
    const unmatched = prefixes.filter((p) => !all.some((f) => f.startsWith(p)));
    if (unmatched.length > 0) {
      console.error(`no test files match: ${unmatched.join(', ')}`);
      return 1;
    }
    files = all.filter((f) => prefixes.some((p) => f.startsWith(p)));
  }

  const has = (flag) => nodeFlags.some((f) => f === flag || f.startsWith(`${flag}=`));
  const args = ['--import', 'tsx', '--test'];
  if (!has('--test-reporter')) args.push('--test-reporter=spec');
  if (!has('--test-concurrency')) args.push(`--test-concurrency=${MAX_CONCURRENCY}`);
  args.push(...nodeFlags, ...files);

  const result = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
  if (result.error) {
    console.error(`could not start node: ${result.error.message}`);
    return 1;
  }
  if (result.signal) {
    console.error(`test run killed by ${result.signal}`);
    return 1;
  }
  return result.status ?? 1;
}

process.exitCode = main();
