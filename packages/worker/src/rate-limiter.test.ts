import { describe, expect, it } from 'vitest';
import { TokenBucket } from './rate-limiter.js';

describe('TokenBucket', () => {
  it('grants a burst of one second, then refills at the rate', () => {
    let t = 0;
    const bucket = new TokenBucket(10, () => t);
    expect(bucket.take(25)).toBe(10);
    expect(bucket.take(1)).toBe(0);
    expect(bucket.msUntilNext()).toBe(100);
    t += 250;
    expect(bucket.take(5)).toBe(2);
    t += 10_000;
    expect(bucket.take(100)).toBe(10);
  });

  it('0 means no limit', () => {
    const bucket = new TokenBucket(0, () => 0);
    expect(bucket.unlimited).toBe(true);
    expect(bucket.take(1_000_000)).toBe(1_000_000);
    expect(bucket.msUntilNext()).toBe(0);
  });
});
