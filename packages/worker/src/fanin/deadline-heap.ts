/** A binary min-heap of (deadline, key). Entries are never removed early: stale ones are skipped by the caller. */
export class DeadlineHeap {
  private readonly deadlines: number[] = [];
  private readonly keys: string[] = [];

  get size(): number {
    return this.keys.length;
  }

  push(deadline: number, key: string): void {
    this.deadlines.push(deadline);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.deadlines[parent]! <= deadline) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** The earliest deadline, or Infinity when empty. */
  peekDeadline(): number {
    return this.deadlines[0] ?? Number.POSITIVE_INFINITY;
  }

  pop(): { deadline: number; key: string } | undefined {
    const n = this.keys.length;
    if (n === 0) return undefined;
    const top = { deadline: this.deadlines[0]!, key: this.keys[0]! };
    const lastD = this.deadlines.pop()!;
    const lastK = this.keys.pop()!;
    if (n > 1) {
      this.deadlines[0] = lastD;
      this.keys[0] = lastK;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < n - 1 && this.deadlines[l]! < this.deadlines[m]!) m = l;
        if (r < n - 1 && this.deadlines[r]! < this.deadlines[m]!) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }

  private swap(a: number, b: number): void {
    const d = this.deadlines[a]!;
    this.deadlines[a] = this.deadlines[b]!;
    this.deadlines[b] = d;
    const k = this.keys[a]!;
    this.keys[a] = this.keys[b]!;
    this.keys[b] = k;
  }
}
