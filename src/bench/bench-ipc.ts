// The messages between the bench parent and its child processes over the fork IPC channel. Once
// a child says it `booted`, the parent starts it with `init`, brackets the measurement window with `mark` and `report`,
// may ask for `sample`s of its memory in between, and ends it with `stop`; the child answers each in turn.

/** What a bench child runs. */
export const BenchRole = {
  /** A real coordinator (decision log, state machine). */
  COORDINATOR: 'coordinator',
  /**
   * The one member of a coordinator group on etcd: it campaigns, leads, and runs a real
   * coordinator whose decision log is in etcd. Ready once it leads.
   */
  GROUP_MEMBER: 'group-member',
  /** A real participant SDK with no-op hooks: votes YES, commit/abort do nothing. */
  PARTICIPANT: 'participant',
  /** The ceiling's echo coordinator: no state machine, no log. */
  ECHO_COORDINATOR: 'echo-coordinator',
  /** The ceiling's echo participant: answers every frame at once. */
  ECHO_PARTICIPANT: 'echo-participant',
} as const;
export type BenchRole = (typeof BenchRole)[keyof typeof BenchRole];

/** How to start a child. */
export interface BenchNodeSpec {
  readonly role: BenchRole;
  /** Participant name (participants), or a label (coordinators). */
  readonly name: string;
  /** Data directory (real coordinator and participants). */
  readonly dataDir?: string;
  /** The coordinator's `host:port` (participants). */
  readonly coordinator?: string;
  /**
   * The optimized path (real nodes): group commit of the log and one frame per turn on sessions.
   * False is the naive baseline: every record its own write, every message its own frame.
   */
  readonly optimized?: boolean;
  /** Participants: whether the hooks lock a key per transaction (default true); false takes no lock. */
  readonly locks?: boolean;
  /** When set, the node profiles its main thread from `mark` to `report` and writes the V8 CPU profile here. */
  readonly cpuProfile?: string;
  /**
   * A throwaway PKI's directory (real nodes): the coordinator serves mutual TLS with its files, a
   * participant dials with its participant certificate from it. Plaintext when absent.
   */
  readonly tlsDir?: string;
  /** Group members: the etcd client endpoints, `host:port` each. */
  readonly etcd?: readonly string[];
  /** Group members: the group's key prefix in etcd (one per measurement, so runs never meet). */
  readonly etcdPrefix?: string;
  /** Group members: the fixed `host:port` to bind and advertise (a member cannot advertise port 0). */
  readonly advertise?: string;
}

/** Log write counters, as in `GroupCommitStats`. */
export interface BenchLogCounters {
  batches: number;
  syncedBatches: number;
  writes: number;
}

/** What a child measured between `mark` and `report`. */
export interface BenchNodeReport {
  readonly role: BenchRole;
  readonly name: string;
  /** Length of the child's own window, in ms. */
  readonly windowMs: number;
  /** CPU time in the window, in µs (user + system). */
  readonly cpuUs: number;
  /** Peak resident set size of the process so far, in kB (`process.resourceUsage().maxRSS`). */
  readonly maxRssKb: number;
  /** Log writes in the window (zero for echo nodes). */
  readonly log: BenchLogCounters;
  /** Frames and messages the node wrote on its sessions in the window (coordinators only). */
  readonly framesOut: number;
  readonly messagesOut: number;
}

/** Parent → child. */
export type BenchParentMessage =
  | { readonly type: 'init'; readonly spec: BenchNodeSpec }
  | { readonly type: 'mark' }
  | { readonly type: 'report' }
  /** What the process's memory was since the last sample (answered by `sampled`); any time after `booted`. */
  | { readonly type: 'sample' }
  | { readonly type: 'stop' };

/** Child → parent. */
export type BenchChildMessage =
  /** Loaded and listening: `init` may be sent (a message sent earlier could be lost). */
  | { readonly type: 'booted' }
  | { readonly type: 'ready'; readonly address: string }
  | { readonly type: 'marked' }
  | { readonly type: 'report'; readonly report: BenchNodeReport }
  /** Mean resident set size since the window opened or the previous sample, in kB (read every second; not the peak). */
  | { readonly type: 'sampled'; readonly rssKb: number }
  | { readonly type: 'stopped' }
  | { readonly type: 'failed'; readonly message: string };
