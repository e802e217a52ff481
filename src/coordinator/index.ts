export * from './coordinator.js';
export * from './coordinator-options.js';
