export * from './bench.js';
export * from './bench-command.js';
export * from './bench-format.js';
export type { BenchInterval } from './bench-intervals.js';
export type { BenchFailover } from './failover.js';
export * from './bench-options.js';
