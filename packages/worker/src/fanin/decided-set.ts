/**
 * Recently decided correlations and the agents each decision saw, bounded in size (oldest evicted
 * first). It answers "duplicate or late?" without a Redis round trip; Redis' done-marker answers for
 * anything evicted.
 */
export class DecidedSet {
  private readonly entries = new Map<string, Set<string>>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  add(corrId: string, agents: Iterable<string>): void {
    if (this.entries.has(corrId)) this.entries.delete(corrId);
    this.entries.set(corrId, new Set(agents));
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  delete(corrId: string): void {
    this.entries.delete(corrId);
  }

  get(corrId: string): Set<string> | undefined {
    return this.entries.get(corrId);
  }
}
