export * from './participant.js';
export * from './participant-options.js';
export type { AppStore } from './participant-log.js';
