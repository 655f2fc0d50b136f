/**
 * Latency histogram in microseconds, HDR-style: exact below 128 µs, then 128 sub-buckets per power
 * of two (relative error under 0.8 %), up to about 35 minutes. Constant memory (25 KB), O(1) record,
 * mergeable; percentiles are the midpoint of their bucket, clamped to the exact min and max.
 */
const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // 128
const MAX_EXP = 31;
const BUCKETS = SUB + (MAX_EXP - SUB_BITS + 1) * SUB;
const MAX_US = 2 ** MAX_EXP - 1;

function indexOf(us: number): number {
  if (us < SUB) return us;
  const exp = 31 - Math.clz32(us); // floor(log2)
  const shift = exp - SUB_BITS;
  return SUB + shift * SUB + ((us >>> shift) & (SUB - 1));
}

function lowerBound(index: number): number {
  if (index < SUB) return index;
  const shift = Math.floor((index - SUB) / SUB);
  const sub = (index - SUB) % SUB;
  return (SUB + sub) * 2 ** shift;
}

function width(index: number): number {
  return index < SUB ? 1 : 2 ** Math.floor((index - SUB) / SUB);
}

export interface LatencySummary {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  private sumUs = 0;
  private minUs = Number.POSITIVE_INFINITY;
  private maxUs = 0;

  /** Records one value in milliseconds (negative values count as 0). */
  recordMs(ms: number): void {
    const us = Math.min(MAX_US, Math.max(0, Math.round(ms * 1000)));
    this.counts[indexOf(us)]! += 1;
    this.count += 1;
    this.sumUs += us;
    if (us < this.minUs) this.minUs = us;
    if (us > this.maxUs) this.maxUs = us;
  }

  merge(other: LatencyHistogram): void {
    for (let i = 0; i < BUCKETS; i += 1) {
      const c = other.counts[i]!;
      if (c !== 0) this.counts[i]! += c;
    }
    this.count += other.count;
    this.sumUs += other.sumUs;
    this.minUs = Math.min(this.minUs, other.minUs);
    this.maxUs = Math.max(this.maxUs, other.maxUs);
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sumUs = 0;
    this.minUs = Number.POSITIVE_INFINITY;
    this.maxUs = 0;
  }

  /** The value at percentile p (0–100) in milliseconds; 0 when empty. */
  percentileMs(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i += 1) {
      seen += this.counts[i]!;
      if (seen >= rank) {
        const mid = lowerBound(i) + (width(i) - 1) / 2;
        return Math.min(this.maxUs, Math.max(this.minUs, mid)) / 1000;
      }
    }
    return this.maxUs / 1000;
  }

  get maxMs(): number {
    return this.maxUs / 1000;
  }

  summary(): LatencySummary {
    const r = (v: number): number => Math.round(v * 1000) / 1000;
    return {
      count: this.count,
      mean: this.count === 0 ? 0 : r(this.sumUs / this.count / 1000),
      p50: r(this.percentileMs(50)),
      p95: r(this.percentileMs(95)),
      p99: r(this.percentileMs(99)),
      p999: r(this.percentileMs(99.9)),
      max: r(this.maxMs),
    };
  }
}
