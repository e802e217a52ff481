export * from './coordinator-group-member.js';
export * from './group-member-options.js';
export { LEADER_METADATA_KEY } from './leader-gated-transport.js';
