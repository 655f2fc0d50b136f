import { describe, expect, it } from 'vitest';
import { DecidedSet } from './decided-set.js';

describe('DecidedSet', () => {
  it('answers duplicate or late per agent, and records late agents', () => {
    const d = new DecidedSet(10);
    d.add('c1', ['risk', 'momentum']);
    expect(d.has('c1')).toBe(true);
    expect(d.agents('c1')).toEqual(['momentum', 'risk']);
    expect(d.noteAgent('c1', 'risk')).toBe(true); // duplicate
    expect(d.noteAgent('c1', 'correlation')).toBe(false); // late, recorded
    expect(d.noteAgent('c1', 'correlation')).toBe(true); // its repeat is a duplicate
    expect(d.agents('c1')).toEqual(['correlation', 'momentum', 'risk']);
    expect(d.noteAgent('c2', 'risk')).toBe(false); // not here: added
    expect(d.agents('c2')).toEqual(['risk']);
    expect(d.has('nope')).toBe(false);
    expect(d.agents('nope')).toBeUndefined();
  });

  it('holds at most its capacity and evicts the oldest first', () => {
    const d = new DecidedSet(3);
    for (const id of ['a', 'b', 'c', 'd', 'e']) d.add(id, ['risk']);
    expect(d.size).toBe(3);
    expect(['a', 'b', 'c', 'd', 'e'].filter((id) => d.has(id))).toEqual(['c', 'd', 'e']);
    d.add('c', ['momentum']); // an update keeps its place
    d.add('f', ['risk']);
    expect(['c', 'd', 'e', 'f'].filter((id) => d.has(id))).toEqual(['d', 'e', 'f']);
  });

  it('a deleted entry frees nothing early and never evicts a newer copy of itself', () => {
    const d = new DecidedSet(3);
    d.add('a', ['risk']);
    d.add('b', ['risk']);
    d.delete('a');
    d.add('a', ['momentum']); // back, in a newer slot
    expect(d.size).toBe(2);
    d.add('c', ['risk']); // takes a's old slot... which must not evict the new 'a'
    expect(['a', 'b', 'c'].filter((id) => d.has(id))).toEqual(['a', 'b', 'c']);
    expect(d.agents('a')).toEqual(['momentum']);
    d.add('x', ['risk']);
    expect(d.size).toBe(3);
    expect(d.has('b')).toBe(false);
  });

  it('stays bounded under churn with deletes mixed in', () => {
    const d = new DecidedSet(100);
    for (let i = 0; i < 10_000; i++) {
      d.add(`c${i}`, ['risk']);
      if (i % 7 === 0) d.delete(`c${i - 3}`);
      if (i % 11 === 0) d.add(`c${i - 5}`, ['momentum']);
      expect(d.size).toBeLessThanOrEqual(100);
    }
    expect(d.has('c9999')).toBe(true);
  });

  it('refuses a capacity that is not a positive integer, naming it', () => {
    expect(() => new DecidedSet(0)).toThrow(/capacity must be a positive integer, got 0/);
  });
});
