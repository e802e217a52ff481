// Samples of a long measured window (`verdict bench --interval`): at every boundary the load
// generator cuts its interval and every process reports its mean RSS over the interval (read
// every second), so a run shows whether memory and the latency tail stay flat over time.

import type { BenchChild } from './bench-child.js';
import type { BenchResult } from './bench.js';
import type { LoadGenerator, LoadInterval } from './load.js';
import type { RssMeter } from './rss-meter.js';

/** One sample of a measured window (`BenchOptions.intervalS`): the interval that ends at it. */
export interface BenchInterval {
  /** When the sample was taken, in s since the measured window opened (the warm-up excluded). */
  readonly elapsedS: number;
  /** Committed tx/s over the interval. */
  readonly committedPerSec: number;
  /** p50 latency of the transactions committed in the interval, in ms (NaN when none). */
  readonly p50Ms: number;
  /** p99 latency of the transactions committed in the interval, in ms (NaN when none). */
  readonly p99Ms: number;
  /** The coordinator's mean RSS over the interval (not its peak), in MB. */
  readonly coordinatorRssMb: number;
  /** The highest mean RSS over the interval among the participants, in MB. */
  readonly participantRssMb: number;
  /** The load generator's (this process's) mean RSS over the interval, in MB. */
  readonly loadRssMb: number;
}


/** What one sample saw: the load's interval and every process's mean RSS over it. */
export interface Sample {
  readonly interval: LoadInterval;
  readonly loadRssKb: number;
  readonly coordinatorRssKb: number;
  /** The highest among the participants. */
  readonly participantRssKb: number;
}


/**
 * Ends the load's current interval now, and asks every child for its mean RSS over it (`rss` is
 * this process's meter). The interval is cut before this returns, so the caller may close the
 * window right after.
 */
export function takeSample(load: LoadGenerator, rss: RssMeter, coordinator: BenchChild, participants: readonly BenchChild[]): Promise<Sample> {
  const interval = load.takeInterval();
  const loadRssKb = rss.take();
  return Promise.all([coordinator.sample(), ...participants.map((p) => p.sample())]).then(([coordinatorRssKb = Number.NaN, ...participantRssKb]) => ({
    interval,
    loadRssKb,
    coordinatorRssKb,
    participantRssKb: Math.max(0, ...participantRssKb),
  }));
}

/** One progress line for a sample. */
export function formatSampleProgress(s: Sample): string {
  const i = toInterval(s);
  return (
    `t=${i.elapsedS.toFixed(1)} s ${i.committedPerSec.toFixed(0)} tx/s, p99 ${i.p99Ms.toFixed(2)} ms, ` +
    `RSS coordinator ${i.coordinatorRssMb.toFixed(1)} MB, participants ${i.participantRssMb.toFixed(1)} MB, load ${i.loadRssMb.toFixed(1)} MB`
  );
}

/** A sample as reported. */
export function toInterval(s: Sample): BenchInterval {
  const { interval } = s;
  return {
    elapsedS: interval.endMs / 1000,
    committedPerSec: interval.elapsedMs > 0 ? (interval.committed * 1000) / interval.elapsedMs : 0,
    p50Ms: interval.latency.p50Ms,
    p99Ms: interval.latency.p99Ms,
    coordinatorRssMb: s.coordinatorRssKb / 1024,
    participantRssMb: s.participantRssKb / 1024,
    loadRssMb: s.loadRssKb / 1024,
  };
}

/** The summary fields of `BenchResult` over its intervals. */
export function summarizeIntervals(intervals: readonly BenchInterval[]): Pick<BenchResult, 'rssGrowth' | 'participantRssGrowth' | 'p99Spread'> {
  const first = intervals[0];
  const last = intervals[intervals.length - 1];
  const growth = (f: (i: BenchInterval) => number): number => (first && last ? (f(last) - f(first)) / f(first) : Number.NaN);
  const p99s = intervals.map((i) => i.p99Ms).filter((v) => Number.isFinite(v));
  return {
    rssGrowth: growth((i) => i.coordinatorRssMb),
    participantRssGrowth: growth((i) => i.participantRssMb),
    p99Spread: p99s.length > 0 ? Math.max(...p99s) / Math.min(...p99s) : Number.NaN,
  };
}
