import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ParkedSignals } from './parked-signals.js';

describe('ParkedSignals', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('hands what is parked to the store once, delayMs after the first was parked, with one timer for all', () => {
    const stored: number[][] = [];
    const parked = new ParkedSignals<number>((items) => stored.push(items), 5, 100);
    parked.add([1]);
    vi.advanceTimersByTime(3);
    parked.add([2, 3]);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(1);
    expect(stored).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(stored).toEqual([[1, 2, 3]]);
    expect(parked.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('take() gives everything parked, oldest first, then the caller\'s own, and cancels the timer', () => {
    const store = vi.fn();
    const parked = new ParkedSignals<number>(store, 5, 100);
    parked.add([1, 2]);
    expect(parked.take([3])).toEqual([1, 2, 3]);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10);
    expect(store).not.toHaveBeenCalled();
    // Nothing parked: the caller's own array, as it is.
    const own = [4];
    expect(parked.take(own)).toBe(own);
  });

  it('stores at once when the bound is reached, and flush() stores what is parked now', () => {
    const stored: number[][] = [];
    const parked = new ParkedSignals<number>((items) => stored.push(items), 5, 3);
    parked.add([1, 2]);
    parked.add([3]);
    expect(stored).toEqual([[1, 2, 3]]);
    expect(vi.getTimerCount()).toBe(0);
    parked.add([4]);
    parked.flush();
    expect(stored).toEqual([[1, 2, 3], [4]]);
    parked.flush();
    expect(stored).toHaveLength(2);
  });
});
