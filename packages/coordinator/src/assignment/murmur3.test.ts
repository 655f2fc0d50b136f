import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { murmur3x86_32, rendezvousWeight, workerHashKey } from './murmur3.js';
import { planAssignment } from './index.js';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('murmur3x86_32 matches the reference implementation (SMHasher MurmurHash3_x86_32)', () => {
  const vectors: [Uint8Array, number, number][] = [
    [bytes(''), 0, 0x00000000],
    [bytes(''), 1, 0x514e28b7],
    [bytes(''), 0xffffffff, 0x81f16f39],
    [new Uint8Array([0, 0, 0, 0]), 0, 0x2362f9de],
    [new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0, 0x76293b50],
    [new Uint8Array([0x21, 0x43, 0x65, 0x87]), 0, 0xf55b516b],
    [new Uint8Array([0x21, 0x43, 0x65]), 0, 0x7e4a8634],
    [bytes('a'), 0x9747b28c, 0x7fa09ea6],
    [bytes('aa'), 0x9747b28c, 0x5d211726],
    [bytes('aaa'), 0x9747b28c, 0x283e0130],
    [bytes('aaaa'), 0x9747b28c, 0x5a97808a],
    [bytes('Hello, world!'), 0x9747b28c, 0x24884cba],
    [bytes('The quick brown fox jumps over the lazy dog'), 0x9747b28c, 0x2fa826cd],
  ];
  it.each(vectors)('vector %#', (key, seed, expected) => {
    expect(murmur3x86_32(key, seed)).toBe(expected);
  });
});

describe('workerHashKey', () => {
  it('is the UTF-8 encoding (lone surrogates as U+FFFD), the same bytes on every call', () => {
    expect(workerHashKey('w1')).toEqual(bytes('w1'));
    expect(workerHashKey('a\udc00\ud83d\ude00')).toEqual(new Uint8Array([0x61, 0xef, 0xbf, 0xbd, 0xf0, 0x9f, 0x98, 0x80]));
    expect(workerHashKey('αβγ')).toEqual(workerHashKey('αβγ'));
  });
});

describe('rendezvousWeight', () => {
  it('is murmur3x86_32(uint32le(partition) ‖ utf8(workerId), 0)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65_535 }), fc.string({ unit: 'grapheme', maxLength: 24 }), (partition, id) => {
        const key = workerHashKey(id);
        const concatenated = new Uint8Array(4 + key.length);
        new DataView(concatenated.buffer).setUint32(0, partition, true);
        concatenated.set(key, 4);
        expect(rendezvousWeight(partition, key)).toBe(murmur3x86_32(concatenated, 0));
      }),
    );
  });

  // Golden values (plain toBe, not snapshots, so `vitest -u` cannot quietly rewrite them): if one
  // changes, replicas of different versions would plan differently and a rolling upgrade would
  // reshuffle partitions. Change them only with a migration plan.
  it('is stable across versions', () => {
    expect(rendezvousWeight(0, workerHashKey('w1'))).toBe(273765271);
    expect(rendezvousWeight(63, workerHashKey('worker-17'))).toBe(586850139);
  });
});

describe('a plan is stable across versions (golden)', () => {
  it('P=16 over a, b, c from nothing, then d joins', () => {
    const three = planAssignment({ partitions: 16, workers: [{ id: 'a' }, { id: 'b' }, { id: 'c' }] });
    const four = planAssignment({
      partitions: 16,
      workers: [{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }],
      current: three.target,
    });
    expect(three.target.join(' ')).toBe('b b a b b b a a c c c a c c c a');
    expect(four.target.join(' ')).toBe('b b d b b d a a d c c a c d c a');
  });
});
