// Reads a V8 `.cpuprofile` (what `node --cpu-prof` and the inspector's Profiler write) and ranks functions by self time, so a
// bench run can say where a child spent its CPU without opening a profiler UI.

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

/** The parts of a V8 CPU profile used here. */
interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  }[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** One function's share of a profile. */
export interface ProfileEntry {
  /** `name (file:line)`, or a V8 pseudo-frame such as `(garbage collector)`. */
  readonly frame: string;
  /** Self time, in ms. */
  readonly selfMs: number;
  /** Self time as a fraction of all sampled time, including idle. */
  readonly share: number;
}

/** A profile's summary. */
export interface ProfileSummary {
  /** Sampled time, in ms. */
  readonly totalMs: number;
  /** Time sampled in `(idle)`, in ms. */
  readonly idleMs: number;
  /** Functions by self time, highest first. */
  readonly top: readonly ProfileEntry[];
  /**
   * Self time by origin, highest first: a package (`@grpc/grpc-js`), a folder of this project
   * (`src/coordinator`), `node:internal` (Node's own JS: http2, streams, timers), or `native`
   * (builtins and V8 pseudo-frames such as the garbage collector).
   */
  readonly byOrigin: readonly ProfileEntry[];
}

/** Summarizes the profile in `file`: the `limit` functions with the most self time. */
export function summarizeCpuProfile(file: string, limit = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodeById = new Map<number, CpuProfile['nodes'][number]>();
  for (const n of profile.nodes) nodeById.set(n.id, n);
  const selfUs = new Map<string, number>();
  const originUs = new Map<string, number>();
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    const node = nodeById.get(profile.samples[i] ?? -1);
    const frame = node ? describe(node.callFrame) : '(unknown)';
    const origin = node ? originOf(node.callFrame) : '(unknown)';
    selfUs.set(frame, (selfUs.get(frame) ?? 0) + delta);
    originUs.set(origin, (originUs.get(origin) ?? 0) + delta);
    totalUs += delta;
  }
  const idleUs = selfUs.get('(idle)') ?? 0;
  const rank = (m: Map<string, number>, n: number): ProfileEntry[] =>
    [...m.entries()]
      .filter(([frame]) => frame !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([frame, us]) => ({ frame, selfMs: us / 1000, share: totalUs > 0 ? us / totalUs : 0 }));
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, top: rank(selfUs, limit), byOrigin: rank(originUs, limit) };
}

/** Renders a summary as text lines (self ms, share of busy time, frame). */
export function formatProfileSummary(title: string, summary: ProfileSummary): string {
  const busyMs = summary.totalMs - summary.idleMs;
  const lines = [`${title}: ${summary.totalMs.toFixed(0)} ms sampled, ${busyMs.toFixed(0)} ms busy`];
  const row = (e: ProfileEntry): string => {
    const ofBusy = busyMs > 0 ? (e.selfMs / busyMs) * 100 : 0;
    return `  ${e.selfMs.toFixed(0).padStart(7)} ms ${ofBusy.toFixed(1).padStart(5)} %  ${e.frame}`;
  };
  lines.push(' by origin (self time):', ...summary.byOrigin.slice(0, 8).map(row), ' by function (self time):', ...summary.top.map(row));
  return lines.join('\n');
}

/** Where a frame's code comes from (see `ProfileSummary.byOrigin`). */
function originOf(frame: CpuProfile['nodes'][number]['callFrame']): string {
  if (!frame.url) return frame.functionName === '(idle)' ? '(idle)' : 'native';
  if (frame.url.startsWith('node:')) return 'node:internal';
  const path = frame.url.startsWith('file://') ? frame.url.slice('file://'.length) : frame.url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = path.slice(nm + '/node_modules/'.length).split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1] ?? ''}` : (parts[0] ?? path);
  }
  const rel = shorten(frame.url).split('/');
  return rel.length > 2 ? `${rel[0]}/${rel[1]}` : (rel[0] ?? path);
}

function describe(frame: CpuProfile['nodes'][number]['callFrame']): string {
  const name = frame.functionName || '(anonymous)';
  if (!frame.url) return name;
  return `${name} (${shorten(frame.url)}:${frame.lineNumber + 1})`;
}

function shorten(url: string): string {
  const path = url.startsWith('file://') ? url.slice('file://'.length) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) return path.slice(nm + '/node_modules/'.length);
  return path.startsWith('/') ? relative(process.cwd(), path) : path;
}
