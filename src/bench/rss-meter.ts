// The mean resident set size of this process over a period. One reading of RSS swings by ±15 %
// with the size of V8's young generation at that instant, which hid (and could fake) a trend
// across a long run; the mean of a reading every second does not.

/** How often the meter reads RSS, in ms. */
export const RSS_READ_PERIOD_MS = 1_000;

/** Averages this process's RSS over consecutive periods, reading it every `RSS_READ_PERIOD_MS`. */
export class RssMeter {
  #sumKb = 0;
  #readings = 0;
  readonly #timer: NodeJS.Timeout;

  constructor() {
    this.#timer = setInterval(() => this.#read(), RSS_READ_PERIOD_MS);
    this.#timer.unref();
  }

  /** The mean RSS since the previous `take` (or since the meter started), in KB; starts the next period. */
  take(): number {
    this.#read();
    const meanKb = this.#sumKb / this.#readings;
    this.#sumKb = 0;
    this.#readings = 0;
    return meanKb;
  }

  /** Stops reading. */
  stop(): void {
    clearInterval(this.#timer);
  }

  #read(): void {
    this.#sumKb += process.memoryUsage.rss() / 1024;
    this.#readings++;
  }
}
