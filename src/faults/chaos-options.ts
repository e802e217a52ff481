// Defaults of `verdict chaos` (`runChaosCluster`), in a module of their own so that the CLI can
// show them in `--help` without loading the chaos runner.

/** Default length of the fault phase, in ms. */
export const DEFAULT_CHAOS_DURATION_MS = 30_000;
/** Default number of banks. */
export const DEFAULT_CHAOS_PARTICIPANTS = 3;
