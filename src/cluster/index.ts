export * from './coordinator-group-member.js';
export * from './group-member-options.js';
