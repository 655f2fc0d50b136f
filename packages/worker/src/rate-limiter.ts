/**
 * A token bucket for RATE_LIMIT_RPS: up to one second of burst, refilled continuously.
 * rps = 0 means no limit.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly burst: number;

  constructor(
    private readonly rps: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.burst = Math.max(1, rps);
    this.tokens = this.burst;
    this.last = now();
  }

  get unlimited(): boolean {
    return this.rps === 0;
  }

  /** Takes up to `wanted` tokens; returns how many were granted. */
  take(wanted: number): number {
    if (this.rps === 0) return wanted;
    this.refill();
    const granted = Math.min(wanted, Math.floor(this.tokens));
    this.tokens -= granted;
    return granted;
  }

  /** Milliseconds until at least one token is available. */
  msUntilNext(): number {
    if (this.rps === 0) return 0;
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.rps) * 1000);
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.rps);
    this.last = t;
  }
}
