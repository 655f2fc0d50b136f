/**
 * How long a signal that completes nothing waits for the next store call to ride with before it is
 * stored on its own. Decisions never wait for it: the signal that completes a correlation is stored
 * at once, and the parked ones go with it. A parked signal's source (a JetStream message) is acked
 * after its store, as always.
 */
export const PARK_MS = 5;
/** Parked signals, at most, before they are stored without waiting. */
export const MAX_PARKED = 1_024;

/**
 * New signals waiting to ride with the next Redis round trip (Intake). At moderate rates a
 * correlation's signals arrive in separate batches; without parking, the first one costs a store
 * call, its answer and its ack of its own. Parked, it goes in the call of the signal that completes
 * the correlation: one round trip where there were two. Whoever stores takes them all (`take`); the
 * timer (one for the whole set, never one per signal) and the bound store them when nobody does.
 */
export class ParkedSignals<T> {
  private items: T[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly fire = (): void => {
    this.timer = undefined;
    this.flush();
  };

  /** `store` is handed what was parked when the timer fires, the bound is reached, or `flush` is called. */
  constructor(
    private readonly store: (items: T[]) => void,
    private readonly delayMs = PARK_MS,
    private readonly max = MAX_PARKED,
  ) {}

  get size(): number {
    return this.items.length;
  }

  add(items: readonly T[]): void {
    for (const item of items) this.items.push(item);
    if (this.items.length >= this.max) this.flush();
    else this.timer ??= setTimeout(this.fire, this.delayMs);
  }

  /** Everything parked, oldest first, then `more`: the caller stores them in one call. */
  take(more: T[]): T[] {
    if (this.items.length === 0) return more;
    const taken = this.items;
    this.items = [];
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const item of more) taken.push(item);
    return taken;
  }

  /** Stores what is parked now. */
  flush(): void {
    const items = this.take([]);
    if (items.length > 0) this.store(items);
  }
}
