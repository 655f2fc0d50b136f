import { describe, expect, it } from 'vitest';
import { latencyQuantileMs } from './console-rates.js';

const bounds = [0.001, 0.002, 0.005, 0.01];

describe('latencyQuantileMs', () => {
  it('is null without observations', () => {
    expect(latencyQuantileMs([0, 0, 0, 0, 0], 0.99, bounds)).toBeNull();
    expect(latencyQuantileMs([], 0.99, bounds)).toBeNull();
  });

  it('interpolates inside the bucket the quantile falls in, like histogram_quantile', () => {
    // 100 observations: 50 ≤ 1 ms, 40 in (1, 2] ms, 10 in (2, 5] ms.
    const cumulative = [50, 90, 100, 100, 100];
    expect(latencyQuantileMs(cumulative, 0.5, bounds)).toBe(1);
    expect(latencyQuantileMs(cumulative, 0.7, bounds)).toBe(1.5);
    expect(latencyQuantileMs(cumulative, 0.99, bounds)).toBeCloseTo(4.7, 6);
  });

  it('gives the highest finite bound when the quantile lies beyond it', () => {
    expect(latencyQuantileMs([0, 0, 0, 1, 100], 0.99, bounds)).toBe(10);
  });

  it('starts the first bucket at 0', () => {
    expect(latencyQuantileMs([10, 10, 10, 10, 10], 0.5, bounds)).toBe(0.5);
  });
});
