export * from './coordinator-events.js';
export * from './coordinator-machine.js';
export * from './ids.js';
export * from './participant-events.js';
export * from './participant-machine.js';
export * from './types.js';
