export * from './participant.js';
export * from './participant-options.js';
export type { AppStore } from './participant-log.js';
export {
  LOCK_CONFLICT_REASON,
  LockConflictError,
  LockMode,
  isLockConflictAbort,
  type HeldLock,
  type KeyHolders,
} from './lock-manager.js';
