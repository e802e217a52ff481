// gRPC channel options every Verdict server and client sets.

/**
 * Channelz (grpc-js's per-call introspection) is off: Verdict keeps its own counters, and
 * channelz's bookkeeping on every call shows as a few percent of the coordinator's CPU in profiles.
 */
export const COMMON_CHANNEL_OPTIONS = { 'grpc.enable_channelz': 0 } as const;
