export * from './audit.js';
export * from './bank.js';
export * from './bank-options.js';
export * from './demo.js';
export * from './demo-options.js';
