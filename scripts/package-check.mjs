#!/usr/bin/env node
// Proves that the package works outside its repository, as a user installs it: `npm pack`, then
// in a fresh temporary project that installs only the tarball (its dependencies come from the npm
// cache, else the registry):
//
//   1. the tarball holds only what the `files` whitelist names (no tests, CI or lint config), and
//      the install pulls in no tsx or esbuild;
//   2. the packaged `verdict coordinator` runs on loopback with a temporary data directory, and
//      two plain-node ESM participants and an initiator commit one transaction against it;
//   3. `require('verdict')` works from CommonJS;
//   4. a TypeScript consumer compiles under `strict`, `exactOptionalPropertyTypes` and
//      `noPropertyAccessFromIndexSignature`, with the shipped .d.ts files checked too;
//   5. `npx verdict coordinator` stopped with SIGTERM leaves no orphan: the port and the data
//      directory are free again;
//   6. `verdict chaos` forks its coordinator and banks from the built files (no tsx installed)
//      and finds no violation.
//
// Every process it starts is stopped (SIGKILLed when anything failed or the whole check overran
// its deadline). Exit code 0 when every check passed.
//
//   node scripts/package-check.mjs [--keep]     (--keep: leave the temporary project in place)
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = join(ROOT, 'scripts', 'package-check');
/** The whole check, from pack to clean-up, in ms. */
const DEADLINE_MS = 240_000;
/** One step's processes (an install, a start, a commit), in ms. */
const STEP_TIMEOUT_MS = 90_000;
/** How long a stopped process may take to exit before it is SIGKILLed, in ms. */
const STOP_TIMEOUT_MS = 10_000;
/** What a tarball may hold: the `files` whitelist, plus what npm always adds. */
const ALLOWED = [/^dist\//, /^bin\//, /^proto\//, /^LICENSE$/, /^README\.md$/, /^package\.json$/];
/** What it must hold. */
const REQUIRED = ['LICENSE', 'bin/verdict.js', 'dist/index.js', 'dist/index.d.ts', 'dist/testing/index.js', 'dist/testing/index.d.ts', 'dist/cli/main.js'];

const keep = process.argv.includes('--keep');
/** Every process started, to be stopped whatever happens. */
const started = new Set();
/** Pids of processes started by others (npx's coordinator), also killed on failure. */
const descendants = new Set();

function log(line) {
  process.stdout.write(`package-check: ${line}\n`);
}

function fail(message) {
  throw new Error(message);
}

/** Runs a command to completion (bounded), failing with its output when it fails. */
function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: STEP_TIMEOUT_MS, killSignal: 'SIGKILL', ...options });
  if (result.error) fail(`${command} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) {
    fail(`${command} ${args.join(' ')} exited ${result.signal ?? result.status}\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

/** Starts a long-running process; its stdout lines can be awaited, its exit is a promise. */
function start(command, args, options = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  started.add(child);
  let out = '';
  let err = '';
  const waiters = new Set();
  const exited = new Promise((resolve) => {
    child.once('close', (code, signal) => {
      started.delete(child);
      for (const w of waiters) w();
      resolve({ code, signal });
    });
  });
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    out += chunk;
    for (const w of waiters) w();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    err += chunk;
    for (const w of waiters) w();
  });
  const proc = {
    child,
    exited,
    stdout: () => out,
    stderr: () => err,
    /** Resolves with the first match of `pattern` in the output (stdout, or `stream`); rejects on exit or timeout. */
    waitFor(pattern, what, stream = 'stdout') {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`no ${what} within ${STEP_TIMEOUT_MS} ms; stderr: ${err}`)), STEP_TIMEOUT_MS);
        const check = () => {
          const match = pattern.exec(stream === 'stdout' ? out : err);
          if (match) return done(undefined, match);
          if (child.exitCode !== null || child.signalCode !== null) done(new Error(`${command} exited before ${what}; stdout: ${out}; stderr: ${err}`));
        };
        const done = (e, match) => {
          clearTimeout(timer);
          waiters.delete(check);
          if (e) reject(e);
          else resolve(match);
        };
        waiters.add(check);
        check();
      });
    },
    /** SIGTERM, then SIGKILL after the stop timeout; resolves with the exit. */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const exit = await exited;
      clearTimeout(timer);
      return exit;
    },
  };
  return proc;
}

function killEverything() {
  for (const child of started) child.kill('SIGKILL');
  for (const pid of descendants) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** Whether `pid` runs (a zombie nobody reaped has ended). */
function alive(pid) {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until(what, check, timeoutMs = STOP_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function assertEqual(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) fail(`${what}: expected ${e}, got ${a}`);
}

function installedVersion(name) {
  return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
}

/** 1. Pack, check the tarball's contents, and install it in a fresh project. */
function packAndInstall(work) {
  const packed = run('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT });
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')));
  const files = info.files.map((f) => f.path);
  const stray = files.filter((f) => !ALLOWED.some((re) => re.test(f)));
  if (stray.length > 0) fail(`the tarball holds files outside the whitelist: ${stray.join(', ')}`);
  const missing = REQUIRED.filter((f) => !files.includes(f));
  if (missing.length > 0) fail(`the tarball lacks ${missing.join(', ')}`);
  log(`packed ${info.filename}: ${files.length} files, ${(info.size / 1024).toFixed(0)} kB`);

  const app = join(work, 'app');
  cpSync(FIXTURES, app, { recursive: true });
  writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'verdict-package-check', version: '1.0.0', private: true }, null, 2)}\n`);
  run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      join(work, info.filename),
      `typescript@${installedVersion('typescript')}`,
      `@types/node@${installedVersion('@types/node')}`,
    ],
    { cwd: app },
  );
  for (const devOnly of ['tsx', 'esbuild']) {
    if (spawnSync('test', ['-e', join(app, 'node_modules', devOnly)]).status === 0) fail(`installing verdict pulled in ${devOnly}`);
  }
  log('installed the tarball in a fresh project (no tsx, no esbuild)');
  return app;
}

/** 2. The packaged coordinator, two ESM participants and an initiator commit one transaction. */
async function commitOne(app) {
  const verdict = join(app, 'node_modules', '.bin', 'verdict');
  const coordinator = start(verdict, ['coordinator', '--listen', '127.0.0.1:0', '--data', join(app, 'data', 'coordinator'), '--log-level', 'warn'], { cwd: app });
  const [, address] = await coordinator.waitFor(/^listening on (127\.0\.0\.1:\d+)$/m, '"listening on"');
  const names = ['ledger-a', 'ledger-b'];
  const participants = names.map((name) => start(process.execPath, ['participant.mjs', address, name, join(app, 'data', name)], { cwd: app }));
  await Promise.all(participants.map((p, i) => p.waitFor(new RegExp(`^ready ${names[i]}$`, 'm'), `ready ${names[i]}`)));

  const initiator = run(process.execPath, ['initiator.mjs', address, ...names], { cwd: app });
  const answer = JSON.parse(initiator.stdout.trim());
  assertEqual(answer.result.outcome, 'committed', 'the commit answer');
  assertEqual([answer.state, answer.outcome, answer.acknowledged], ['ended', 'committed', [true, true]], 'the coordinator\'s view');
  const committed = new RegExp(`^committed ${answer.result.txId}$`, 'm');
  await Promise.all(participants.map((p, i) => p.waitFor(committed, `the commit of ${answer.result.txId} at ${names[i]}`)));

  for (const p of participants) assertEqual(await p.stop(), { code: 0, signal: null }, 'a participant\'s exit on SIGTERM');
  assertEqual(await coordinator.stop(), { code: 0, signal: null }, 'the coordinator\'s exit on SIGTERM');
  log(`committed ${answer.result.txId} at ${names.join(' and ')} through the packaged coordinator at ${address}`);
}

/** 3. CommonJS. */
function requireFromCommonJs(app) {
  const loaded = JSON.parse(run(process.execPath, ['require.cjs'], { cwd: app }).stdout.trim());
  assertEqual(loaded, {
    root: ['Coordinator', 'Participant', 'VerdictClient', 'VerdictError'],
    errorCode: 'TX_ABORTED',
    testing: ['runChaos', 'assertNoViolations', 'armFailpoint'],
  }, "require('verdict') and require('verdict/testing')");
  log("require('verdict') and require('verdict/testing') work from CommonJS");
}

/** 4. A strict TypeScript consumer. */
function compileStrictConsumer(app) {
  run(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: app });
  log('a consumer compiles under strict, exactOptionalPropertyTypes and noPropertyAccessFromIndexSignature (library .d.ts checked)');
}

/** 5. npx and SIGTERM. */
async function npxLeavesNoOrphan(app) {
  const data = join(app, 'data', 'npx-coordinator');
  const npx = start('npx', ['--no-install', 'verdict', 'coordinator', '--listen', '127.0.0.1:0', '--data', data, '--log-level', 'info'], { cwd: app });
  const [, address] = await npx.waitFor(/^listening on (127\.0\.0\.1:\d+)$/m, '"listening on" from npx');
  const [, pid] = await npx.waitFor(/"pid":(\d+)[^\n]*"msg":"coordinator started"/, 'the coordinator\'s pid', 'stderr');
  descendants.add(Number(pid));
  npx.child.kill('SIGTERM');
  await npx.exited;
  await until(`the coordinator (pid ${pid}) to exit after npx got SIGTERM`, () => !alive(Number(pid)));
  descendants.delete(Number(pid));

  // Its port and data directory are free: a new coordinator takes both.
  const again = start(join(app, 'node_modules', '.bin', 'verdict'), ['coordinator', '--listen', address, '--data', data, '--log-level', 'warn'], { cwd: app });
  await again.waitFor(new RegExp(`^listening on ${address.replace(/\./g, '\\.')}$`, 'm'), `a second coordinator on ${address}`);
  assertEqual(await again.stop(), { code: 0, signal: null }, 'the second coordinator\'s exit on SIGTERM');
  log('npx verdict coordinator + SIGTERM: the coordinator shut down and released its port and data directory');
}

/** 6. The packaged chaos run, whose processes are forked from dist/. */
function packagedChaos(app) {
  const out = join(app, 'chaos');
  const chaos = run(join(app, 'node_modules', '.bin', 'verdict'), ['chaos', '--duration', '2s', '--seed', '1', '--quiet', '--out', out], { cwd: app });
  if (!/^OK: no violation$/m.test(chaos.stdout)) fail(`verdict chaos did not report "OK: no violation":\n${chaos.stdout}`);
  log('verdict chaos ran its processes from the built package: no violation');
}

async function main() {
  const began = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'verdict-package-check-'));
  const overran = setTimeout(() => {
    killEverything();
    process.stderr.write(`package-check: FAILED: the check overran ${DEADLINE_MS} ms; work directory ${work}\n`);
    process.exit(1);
  }, DEADLINE_MS);
  let ok = false;
  try {
    const app = packAndInstall(work);
    await commitOne(app);
    requireFromCommonJs(app);
    compileStrictConsumer(app);
    await npxLeavesNoOrphan(app);
    packagedChaos(app);
    ok = true;
    log(`all checks passed in ${((Date.now() - began) / 1000).toFixed(1)} s`);
  } catch (e) {
    process.stderr.write(`package-check: FAILED: ${e instanceof Error ? e.message : String(e)}\n`);
  } finally {
    clearTimeout(overran);
    killEverything();
    if (keep || !ok) log(`the temporary project is kept in ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
  return ok ? 0 : 1;
}

process.exitCode = await main();
