// A fuzzer of the coordinator's whole wire surface, derived from the proto descriptors (protoc's
// own descriptor set of proto/verdict/v1): every request message of every unary method, every
// frame of every stream, with hostile strings, numbers, enums, nested messages, and raw bytes
// that do not decode. A new field or method is fuzzed without a change here. Properties, after
// every call: the coordinator still runs and answers, every answer is a documented status (with
// `verdict-code` when Verdict produced it), and no request it rejected wrote to the log.
//
//   npm run fuzz -- --runs 10000 --seed 42

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, createFileRegistry, fromBinary, ScalarType, toBinary, type DescField, type DescMessage, type DescMethod } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { Client, credentials, Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import fc from 'fast-check';
import { pino } from 'pino';

import { Coordinator } from '../../src/coordinator/coordinator.js';
import type { CoordinatorEffect, CoordinatorInput } from '../../src/protocol/coordinator-events.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** How long one fuzzed call or stream may take before it is a finding (a hang). */
const CALL_DEADLINE_MS = 5_000;
/** Statuses the coordinator documents; anything else is a finding. */
const DOCUMENTED = new Set([
  Status.OK,
  Status.INVALID_ARGUMENT,
  Status.NOT_FOUND,
  Status.ABORTED,
  Status.FAILED_PRECONDITION,
  Status.RESOURCE_EXHAUSTED,
  Status.ALREADY_EXISTS,
  Status.INTERNAL,
  Status.CANCELLED,
  Status.DEADLINE_EXCEEDED,
]);

/** Every service method of the wire contract, from protoc's descriptor set. */
export function wireMethods(): DescMethod[] {
  const require = createRequire(import.meta.url);
  const pkgDir = dirname(require.resolve('protoc/package.json'));
  const assets = JSON.parse(readFileSync(join(pkgDir, 'assets.json'), 'utf8')) as { platform: string; arch: string; executable: string }[];
  const asset = assets.find((a) => a.platform === process.platform && a.arch === process.arch);
  if (!asset) throw new Error(`the protoc package ships no binary for ${process.platform}/${process.arch}`);
  const dir = mkdtempSync(join(tmpdir(), 'verdict-descriptors-'));
  try {
    const out = join(dir, 'set.pb');
    const protoDir = join(ROOT, 'proto');
    const files = readdirSync(join(protoDir, 'verdict', 'v1')).filter((f) => f.endsWith('.proto')).map((f) => `verdict/v1/${f}`);
    execFileSync(join(pkgDir, 'bin', asset.executable), [`-I${protoDir}`, `-I${join(pkgDir, 'include')}`, '--include_imports', `--descriptor_set_out=${out}`, ...files]);
    const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(out)));
    const methods: DescMethod[] = [];
    for (const file of registry.files) for (const service of file.services) methods.push(...service.methods);
    return methods;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const HOSTILE_STRINGS = [
  '',
  '\u0000',
  'tx-1-1',
  'tx-1-1\u0000',
  'tx-1-1\r\nx-evil: 1',
  'tx-0-0',
  'tx-999999999999999-999999999999999',
  '../../meta/epoch',
  'open/tx-1-1',
  'bank!a',
  '\ud800',
  '%00%ff',
  'a'.repeat(70),
];

function stringArb(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
    { weight: 2, arbitrary: fc.string({ maxLength: 80, unit: 'binary' }) },
    { weight: 1, arbitrary: fc.string({ minLength: 2_000, maxLength: 20_000 }) },
    { weight: 2, arbitrary: fc.constantFrom('bank-a', 'bank-b', 'inventroy').map((s) => s) },
  );
}

function scalarArb(type: ScalarType): fc.Arbitrary<unknown> {
  switch (type) {
    case ScalarType.STRING:
      return stringArb();
    case ScalarType.BYTES:
      return fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 4_000, maxLength: 70_000 }));
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return fc.oneof(fc.constantFrom(0n, -1n, 1n, 2n ** 63n - 1n, -(2n ** 63n)), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }));
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.oneof(fc.constantFrom(0n, 1n, 2n ** 64n - 1n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.oneof(fc.constantFrom(0, 1, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff }));
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return fc.double();
    default:
      return fc.oneof(fc.constantFrom(0, -1, 1, 2 ** 31 - 1, -(2 ** 31)), fc.integer());
  }
}

function fieldArb(field: DescField, depth: number): fc.Arbitrary<unknown> {
  switch (field.fieldKind) {
    case 'scalar':
      return scalarArb(field.scalar);
    case 'enum':
      // Unknown enum numbers too: proto3 keeps them.
      return fc.oneof(fc.constantFrom(...field.enum.values.map((v) => v.number)), fc.integer({ min: -3, max: 40 }));
    case 'message':
      return messageArb(field.message, depth + 1);
    case 'list':
      if (field.listKind === 'scalar') return fc.array(scalarArb(field.scalar), { maxLength: 4 });
      if (field.listKind === 'enum') return fc.array(fc.integer({ min: -3, max: 40 }), { maxLength: 4 });
      return fc.array(messageArb(field.message, depth + 1), { maxLength: depth > 1 ? 1 : 12 });
    case 'map':
      return fc.constant({});
  }
}

const messageArbs = new Map<string, fc.Arbitrary<Record<string, unknown>>>();

/** Values of `desc` (nested messages down to a bounded depth). */
export function messageArb(desc: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const key = `${desc.typeName}@${depth}`;
  let arb = messageArbs.get(key);
  if (arb) return arb;
  if (depth > 3) return fc.constant({});
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of desc.fields) fields[f.localName] = fieldArb(f, depth);
  arb = fc.record(fields, { requiredKeys: [] });
  messageArbs.set(key, arb);
  return arb;
}

/** One fuzzed call: a method and the bytes of its request (or of each frame, for a stream). */
export interface FuzzCall {
  readonly method: DescMethod;
  readonly frames: readonly Uint8Array[];
  readonly raw: boolean;
}

/** Calls of every method, with encoded hostile messages or raw undecodable bytes. */
export function callArb(methods: readonly DescMethod[]): fc.Arbitrary<FuzzCall> {
  return fc.constantFrom(...methods).chain((method) => {
    const encoded = messageArb(method.input).map((init) => toBinary(method.input, create(method.input, init as never)));
    const bytes = fc.oneof({ weight: 4, arbitrary: encoded }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 256 }) });
    const frames = method.methodKind === 'unary' ? bytes.map((b) => [b]) : fc.array(bytes, { minLength: 1, maxLength: 4 });
    return frames.map((f) => ({ method, frames: f, raw: false }));
  });
}

/** What one call ended with. */
export interface CallEnd {
  readonly code: number;
  readonly details: string;
  readonly verdictCode: string | undefined;
}

/** Sends `call` to `address` and resolves with how it ended. */
export function sendCall(address: string, call: FuzzCall): Promise<CallEnd> {
  const client = new Client(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  const path = `/${call.method.parent.typeName}/${call.method.name}`;
  const serialize = (b: Uint8Array): Buffer => Buffer.from(b);
  const deserialize = (b: Buffer): Buffer => b;
  const deadline = new Date(Date.now() + CALL_DEADLINE_MS);
  const end = (e: ServiceError | null): CallEnd => {
    const v = e?.metadata?.get('verdict-code')[0];
    return { code: e ? e.code : Status.OK, details: e?.details ?? '', verdictCode: v === undefined ? undefined : String(v) };
  };
  return new Promise<CallEnd>((resolve) => {
    if (call.method.methodKind === 'unary') {
      client.makeUnaryRequest(path, serialize, deserialize, call.frames[0] as Uint8Array, new Metadata(), { deadline }, (e) => resolve(end(e)));
      return;
    }
    const stream = client.makeBidiStreamRequest(path, serialize, deserialize, new Metadata(), { deadline });
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    stream.on('status', (s) => resolve({ code: s.code, details: s.details, verdictCode: s.metadata.get('verdict-code')[0]?.toString() }));
    for (const f of call.frames) stream.write(f);
    stream.end();
  }).finally(() => client.close());
}

/** Statuses gRPC itself produces (no `verdict-code`): undecodable bytes, size limit, deadline. */
function fromGrpc(end: CallEnd): boolean {
  return (
    (end.code === Status.INTERNAL && /deserializ|Error parsing|Failed to parse/i.test(end.details)) ||
    (end.code === Status.RESOURCE_EXHAUSTED && /larger than max/.test(end.details)) ||
    end.code === Status.DEADLINE_EXCEEDED ||
    end.code === Status.CANCELLED
  );
}

/** A running coordinator under fuzz, with the steps that wrote to the log after a rejection. */
export class FuzzTarget {
  readonly coordinator: Coordinator;
  /** Protocol steps that answered an initiator request with an error and also wrote to the log. */
  readonly rejectedWrites: string[] = [];

  private constructor(coordinator: Coordinator, rejectedWrites: string[]) {
    this.coordinator = coordinator;
    this.rejectedWrites = rejectedWrites;
  }

  static async start(dataDir: string): Promise<FuzzTarget> {
    const rejectedWrites: string[] = [];
    const step = (input: CoordinatorInput | undefined, effects: readonly CoordinatorEffect[]): void => {
      if (!input || !['begin', 'commit', 'abort', 'get'].includes(input.type)) return;
      const rejected = effects.some((e) => e.type === 'reply' && e.reply.type === 'error');
      if (rejected && effects.some((e) => e.type === 'persist')) rejectedWrites.push(`${input.type} was refused but wrote to the log`);
    };
    const coordinator = await Coordinator.start({
      listen: '127.0.0.1:0',
      dataDir,
      logger: pino({ level: 'silent' }),
      maxMessageBytes: 64 * 1024,
      protocol: { maxTimeoutMs: 2_000, defaultTimeoutMs: 500, maxPayloadBytes: 32 * 1024, unregisteredGraceMs: 50 },
      maxCallMs: 3_000,
      observer: { step },
    });
    return new FuzzTarget(coordinator, rejectedWrites);
  }

  /** Checks one call's end against the properties; returns the finding, if any. */
  check(call: FuzzCall, end: CallEnd): string | undefined {
    if (this.coordinator.state !== 'running') return `the coordinator stopped (${this.coordinator.state}) after ${call.method.name}`;
    if (!DOCUMENTED.has(end.code)) return `${call.method.name} ended with undocumented status ${end.code}: ${end.details}`;
    if (end.code !== Status.OK && end.verdictCode === undefined && !fromGrpc(end)) {
      return `${call.method.name} failed with status ${end.code} (${end.details}) but no verdict-code`;
    }
    if (this.rejectedWrites.length > 0) return this.rejectedWrites[0];
    return undefined;
  }

  close(): Promise<void> {
    return this.coordinator.close();
  }
}

/** Runs `runs` fuzzed calls against a fresh coordinator; throws on the first finding. */
export async function runWireFuzz(options: { runs: number; seed?: number; dataDir: string; onProgress?: (done: number) => void }): Promise<{ runs: number; byStatus: Record<number, number> }> {
  const methods = wireMethods();
  const target = await FuzzTarget.start(options.dataDir);
  const byStatus: Record<number, number> = {};
  let done = 0;
  try {
    await fc.assert(
      fc.asyncProperty(callArb(methods), async (call) => {
        const end = await sendCall(target.coordinator.address, call);
        byStatus[end.code] = (byStatus[end.code] ?? 0) + 1;
        const finding = target.check(call, end);
        if (++done % 1_000 === 0) options.onProgress?.(done);
        if (finding) throw new Error(finding);
        // The coordinator still answers a plain call.
        const probe = await sendCall(target.coordinator.address, { method: methods.find((m) => m.name === 'GetTransaction') as DescMethod, frames: [new Uint8Array()], raw: false });
        if (probe.code !== Status.INVALID_ARGUMENT) throw new Error(`the coordinator no longer answers: GetTransaction("") ended ${probe.code} ${probe.details}`);
      }),
      { numRuns: options.runs, ...(options.seed !== undefined ? { seed: options.seed } : {}), endOnFailure: true },
    );
  } finally {
    await target.close();
  }
  return { runs: done, byStatus };
}
