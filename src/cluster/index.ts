export * from './coordinator-group-member.js';
export * from './group-member-options.js';
export type { EtcdCredentials, EtcdTlsFiles } from './etcd-connection.js';
