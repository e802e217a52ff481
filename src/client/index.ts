export * from './client.js';
export * from './client-options.js';
