#!/usr/bin/env node
// Generates src/gen/ from proto/verdict/v1/*.proto with ts-proto, using the protoc binary that
// ships inside the `protoc` npm package (no downloads). `--check` generates into a temp dir and
// fails when src/gen/ differs, so CI catches hand edits and forgotten regenerations.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PROTO_ROOT = join(ROOT, 'proto');
const PROTO_DIR = join(PROTO_ROOT, 'verdict', 'v1');
const OUT_DIR = join(ROOT, 'src', 'gen');

// Options that make the output valid ESM under `module: nodenext` and keep 64-bit fields as
// plain numbers (ts-proto throws at decode time on values beyond Number.MAX_SAFE_INTEGER).
const TS_PROTO_OPTIONS = [
  'outputServices=grpc-js',
  'env=node',
  'esModuleInterop=true',
  'useOptionals=messages',
  'importSuffix=.js',
  'forceLong=number',
  'useExactTypes=false',
].join(',');

const require = createRequire(import.meta.url);

function protocBinary() {
  // Resolve the binary ourselves instead of going through protoc.cjs: one process fewer, and the
  // error names the platform when no binary ships for it.
  const pkgDir = dirname(require.resolve('protoc/package.json'));
  const assets = JSON.parse(readFileSync(join(pkgDir, 'assets.json'), 'utf8'));
  const asset = assets.find((a) => a.platform === process.platform && a.arch === process.arch);
  if (!asset) {
    throw new Error(`the protoc package ships no binary for ${process.platform}/${process.arch}`);
  }
  return { bin: join(pkgDir, 'bin', asset.executable), include: join(pkgDir, 'include') };
}

function pluginPath() {
  const name = process.platform === 'win32' ? 'protoc-gen-ts_proto.cmd' : 'protoc-gen-ts_proto';
  const path = join(ROOT, 'node_modules', '.bin', name);
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run npm ci`);
  }
  return path;
}

/** Lists files under `dir` as sorted, '/'-separated paths relative to it. */
function listFiles(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) out.push(relative(dir, full).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

function generate(outDir) {
  const protos = readdirSync(PROTO_DIR)
    .filter((f) => f.endsWith('.proto'))
    .sort()
    // protoc wants paths relative to a --proto_path so that imports resolve as written.
    .map((f) => ['verdict', 'v1', f].join('/'));
  if (protos.length === 0) throw new Error(`no .proto files in ${PROTO_DIR}`);

  const { bin, include } = protocBinary();
  mkdirSync(outDir, { recursive: true });
  const args = [
    `--plugin=protoc-gen-ts_proto=${pluginPath()}`,
    `--ts_proto_out=${outDir}`,
    `--ts_proto_opt=${TS_PROTO_OPTIONS}`,
    `--proto_path=${PROTO_ROOT}`,
    `--proto_path=${include}`,
    ...protos,
  ];
  const result = spawnSync(bin, args, { cwd: ROOT, stdio: 'inherit' });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`protoc exited with ${result.status ?? result.signal}`);
  }
}

function check() {
  const tmp = mkdtempSync(join(tmpdir(), 'verdict-gen-'));
  try {
    generate(tmp);
    const fresh = listFiles(tmp);
    const current = listFiles(OUT_DIR);
    const currentSet = new Set(current);
    const freshSet = new Set(fresh);
    const missing = fresh.filter((f) => !currentSet.has(f));
    const extra = current.filter((f) => !freshSet.has(f));
    const stale = fresh.filter(
      (f) => currentSet.has(f) && !readFileSync(join(tmp, f)).equals(readFileSync(join(OUT_DIR, f))),
    );
    if (missing.length + extra.length + stale.length === 0) {
      console.log(`src/gen is up to date (${fresh.length} files)`);
      return 0;
    }
    console.error('generated code is stale: run npm run generate');
    for (const f of stale) console.error(`  stale:   src/gen/${f}`);
    for (const f of missing) console.error(`  missing: src/gen/${f}`);
    for (const f of extra) console.error(`  extra:   src/gen/${f}`);
    return 1;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function main(argv) {
  const unknown = argv.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    console.error(`usage: node scripts/generate.mjs [--check] (unknown: ${unknown.join(' ')})`);
    return 2;
  }
  if (argv.includes('--check')) return check();

  // Generate beside the output and swap in, so a failed run never leaves src/gen half-written
  // and files for deleted protos disappear.
  const tmp = mkdtempSync(join(tmpdir(), 'verdict-gen-'));
  try {
    generate(tmp);
    rmSync(OUT_DIR, { recursive: true, force: true });
    mkdirSync(OUT_DIR, { recursive: true });
    cpSync(tmp, OUT_DIR, { recursive: true });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  for (const f of listFiles(OUT_DIR)) console.log(`wrote src/gen/${f}`);
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  console.error(`generate: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
