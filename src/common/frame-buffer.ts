// Items bound for one stream, written together: at the end of the event-loop turn, or as soon as
// the next item would take a frame over its byte limit. The sizes are estimates that the caller
// keeps above the encoded size, so that no frame exceeds the peer's message limit.

import { systemClock, type Clock } from './clock.js';
import { mutant } from './mutants.js';

/** Bytes a frame carries besides its items' own estimates (headroom for field tags, lengths). */
export const FRAME_OVERHEAD_BYTES = 64;

/** A frame being filled for one stream; `write` sends the items of each full or due frame. */
export class FrameBuffer<T> {
  readonly #maxBytes: number;
  readonly #write: (items: T[]) => void;
  readonly #clock: Clock;
  #items: T[] = [];
  /** Upper bound of the encoded size of `#items`. */
  #bytes = 0;
  #scheduled = false;

  /** `maxBytes`: the most one frame may carry; keep it under the peer's message limit. */
  constructor(maxBytes: number, write: (items: T[]) => void, clock: Clock = systemClock) {
    this.#maxBytes = maxBytes;
    this.#write = write;
    this.#clock = clock;
  }

  /** Whether an item of `bytes` fits in a frame on its own. */
  fits(bytes: number): boolean {
    return bytes + FRAME_OVERHEAD_BYTES <= this.#maxBytes;
  }

  /** Queues `item` (of at most `bytes` encoded) for the current frame. */
  add(item: T, bytes: number): void {
    if (this.#items.length > 0 && this.#bytes + bytes + FRAME_OVERHEAD_BYTES > this.#maxBytes && !mutant('frame-over-limit')) this.flush();
    this.#items.push(item);
    this.#bytes += bytes;
    if (!this.#scheduled) {
      this.#scheduled = true;
      this.#clock.defer(this.flush);
    }
  }

  /** The items queued for the next frame. */
  get pending(): readonly T[] {
    return this.#items;
  }

  /** Writes what is queued now, if anything. */
  readonly flush = (): void => {
    this.#scheduled = false;
    const items = this.#items;
    if (items.length === 0) return;
    this.clear();
    this.#write(items);
  };

  /** Drops what is queued. */
  clear(): void {
    this.#items = [];
    this.#bytes = 0;
  }
}
