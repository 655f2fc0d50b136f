/**
 * Recently decided correlations and the agents each decision saw, bounded in size (oldest evicted
 * first). It answers "duplicate or late?" without a Redis round trip; Redis' done-marker answers for
 * anything evicted.
 *
 * Built for staying full for hours at thousands of decisions a second (docs/benchmarks.md, "Soak"):
 * - eviction order is a ring of corr_ids, not the Map's own order: taking a Map's oldest key walks
 *   past every entry deleted before it, which made each eviction cost more the longer it ran;
 * - an entry is a Map slot holding a small integer (its ring slot) and a shared agent-list string
 *   ("momentum,risk"), not a Set per correlation: a few hundred thousand small Sets are what every
 *   major GC would otherwise have to mark.
 */
export class DecidedSet {
  /** corr_id → its slot in the ring; the slot holds the agent list. */
  private readonly slotOf = new Map<string, number>();
  private readonly ring: Array<string | undefined>;
  private readonly listAt: Array<string | undefined>;
  private next = 0;
  /** Agent lists seen, so that entries share one string each; bounded (agent names come from input). */
  private readonly lists = new Map<string, string>();

  constructor(private readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`DecidedSet capacity must be a positive integer, got ${capacity}`);
    this.ring = new Array<string | undefined>(capacity).fill(undefined);
    this.listAt = new Array<string | undefined>(capacity).fill(undefined);
  }

  get size(): number {
    return this.slotOf.size;
  }

  has(corrId: string): boolean {
    return this.slotOf.has(corrId);
  }

  /** The agents the decision saw plus those recorded since, sorted; undefined when not (or no longer) here. */
  agents(corrId: string): string[] | undefined {
    const slot = this.slotOf.get(corrId);
    return slot === undefined ? undefined : split(this.listAt[slot]!);
  }

  add(corrId: string, agents: Iterable<string>): void {
    const list = this.intern([...agents].sort().join(','));
    const existing = this.slotOf.get(corrId);
    if (existing !== undefined) {
      this.listAt[existing] = list;
      return;
    }
    const slot = this.next;
    this.next = (slot + 1) % this.capacity;
    // Evict the slot's previous corr_id unless it was deleted since (or lives in a newer slot now).
    const previous = this.ring[slot];
    if (previous !== undefined && this.slotOf.get(previous) === slot) this.slotOf.delete(previous);
    this.ring[slot] = corrId;
    this.listAt[slot] = list;
    this.slotOf.set(corrId, slot);
  }

  /**
   * Records that `agent` reported for a decided correlation: true when it had already (a duplicate),
   * false when it is new (a late signal, now recorded). A correlation not here is added.
   */
  noteAgent(corrId: string, agent: string): boolean {
    const agents = this.agents(corrId);
    if (agents?.includes(agent) === true) return true;
    this.add(corrId, [...(agents ?? []), agent]);
    return false;
  }

  delete(corrId: string): void {
    this.slotOf.delete(corrId);
  }

  private intern(list: string): string {
    const known = this.lists.get(list);
    if (known !== undefined) return known;
    if (this.lists.size >= 1_024) this.lists.clear();
    this.lists.set(list, list);
    return list;
  }
}

const split = (list: string): string[] => (list === '' ? [] : list.split(','));
