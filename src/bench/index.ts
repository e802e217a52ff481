export * from './bench.js';
export * from './bench-command.js';
export * from './bench-options.js';
