/**
 * MurmurHash3 x86_32 (Austin Appleby, public domain), written out by hand.
 *
 * Why by hand and not a package or `node:crypto`: every coordinator replica, of every version, must
 * compute bit-for-bit the same weights, or two replicas would plan different assignments from the same
 * inputs and a rolling upgrade would reshuffle partitions. A dependency may change its string encoding,
 * its default seed or its algorithm in a minor release; these lines cannot change without the reference
 * vectors in murmur3.test.ts failing. `node:crypto` digests would be stable but cost about a microsecond
 * and an allocation per call, and a plan from scratch needs P × N of them.
 *
 * Keys are bytes (worker ids are UTF-8 encoded once per plan), never JavaScript strings, so the result
 * does not depend on UTF-16 internals.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function scrambleBlock(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mixBlock(h: number, k: number): number {
  h ^= scrambleBlock(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finalize(h: number, length: number): number {
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Mixes all of `key` into state `h` (whole 4-byte little-endian blocks, then the 1–3 byte tail). */
function mixBytes(h: number, key: Uint8Array): number {
  const whole = key.length & ~3;
  let i = 0;
  for (; i < whole; i += 4) {
    const block = (key[i] ?? 0) | ((key[i + 1] ?? 0) << 8) | ((key[i + 2] ?? 0) << 16) | ((key[i + 3] ?? 0) << 24);
    h = mixBlock(h, block);
  }
  const tail = key.length - whole;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= (key[i + 2] ?? 0) << 16;
    if (tail >= 2) k ^= (key[i + 1] ?? 0) << 8;
    k ^= key[i] ?? 0;
    h ^= scrambleBlock(k);
  }
  return h;
}

/** MurmurHash3 x86_32 of `key` with `seed`, as an unsigned 32-bit integer. */
export function murmur3x86_32(key: Uint8Array, seed = 0): number {
  return finalize(mixBytes(seed | 0, key), key.length);
}

/**
 * The rendezvous (highest-random-weight) weight of a partition for a worker:
 * `murmur3x86_32(uint32le(partition) ‖ utf8(workerId), seed 0)`.
 *
 * The partition is exactly one 4-byte block, so it is mixed directly as the first block instead of
 * building the concatenated key: no allocation per (partition, worker) pair.
 */
export function rendezvousWeight(partition: number, workerKey: Uint8Array): number {
  return finalize(mixBytes(mixBlock(0, partition | 0), workerKey), workerKey.length + 4);
}

const utf8 = new TextEncoder();
const workerKeys = new Map<string, Uint8Array>();
const WORKER_KEY_CACHE_LIMIT = 4096;

/**
 * The bytes a worker id is hashed as: its UTF-8 encoding. Cached, because worker ids stay the same from
 * plan to plan and one encode (an allocation) costs as much as twenty weights; the cache is emptied when
 * it grows past a few thousand ids, so churning ids cannot grow it without bound.
 */
export function workerHashKey(workerId: string): Uint8Array {
  let key = workerKeys.get(workerId);
  if (key === undefined) {
    if (workerKeys.size >= WORKER_KEY_CACHE_LIMIT) workerKeys.clear();
    key = utf8.encode(workerId);
    workerKeys.set(workerId, key);
  }
  return key;
}
