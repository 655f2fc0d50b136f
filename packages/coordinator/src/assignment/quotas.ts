/**
 * How many partitions each eligible worker should hold: proportional to capacity, rounded by a sticky
 * largest-remainder method, after workers pinned beyond their share have been set aside.
 *
 * All arithmetic is exact (BigInt). Capacities are doubles; every finite double is an integer times a
 * power of two, so scaling them all to one common power of two turns every share P·cᵢ/C into an exact
 * fraction with one common denominator. Floating point would make "equal remainders" depend on rounding
 * (0.1 + 0.2 ≠ 0.3) and on the order of a sum, and two replicas must never disagree on a quota.
 */

/** A worker that may own partitions (live, not draining), as the quota step sees it. */
export interface QuotaCandidate {
  readonly id: string;
  /** Capacity scaled to an exact integer; only ratios between candidates matter. */
  readonly scaledCapacity: bigint;
  /** Partitions pinned onto this worker. */
  readonly pinned: number;
  /** Partitions it could keep without a move: its pins plus what it holds now that is not pinned elsewhere. */
  readonly keepable: number;
  /** Hash of the worker id, the last tie-break for who gets a remainder seat. */
  readonly seatWeight: number;
}

export interface QuotaDecision {
  readonly quota: number;
  /** Pinned at or beyond its proportional share: it holds exactly its pins and is left out of the split. */
  readonly saturatedByPins: boolean;
}

const float64 = new DataView(new ArrayBuffer(8));

/** Decomposes a finite double into mantissa · 2^exponent (exactly). */
function toDyadic(value: number): { mantissa: bigint; exponent: number } {
  float64.setFloat64(0, value);
  const bits = float64.getBigUint64(0);
  const biasedExponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & 0xfffffffffffffn;
  if (biasedExponent === 0) return { mantissa: fraction, exponent: -1074 }; // subnormal
  return { mantissa: fraction | (1n << 52n), exponent: biasedExponent - 1075 };
}

/** Positive finite capacities → positive integers with exactly the same ratios. */
export function scaleCapacities(capacities: readonly number[]): bigint[] {
  if (capacities.every(Number.isSafeInteger)) return capacities.map(BigInt); // the usual case: already exact
  const parts = capacities.map(toDyadic);
  const lowest = Math.min(...parts.map((part) => part.exponent));
  return parts.map((part) => part.mantissa << BigInt(part.exponent - lowest));
}

/**
 * Water-filling for pins, then a sticky largest-remainder split of what is left.
 *
 * 1. A worker whose pins reach its proportional share of the partitions still being split is
 *    saturated: it holds exactly its pins. Setting it aside only lowers everyone else's share, so
 *    repeat until nobody new saturates (at most one round per worker).
 * 2. The unsaturated workers split the rest, P′ = P − pins of the saturated, in proportion to capacity:
 *    each gets ⌊sᵢ⌋ of its exact share sᵢ = P′·cᵢ/C′, and the R = P′ − Σ⌊sᵢ⌋ remaining seats go, one
 *    each, to workers with a non-zero remainder, in this order:
 *      a. workers that can already keep ⌈sᵢ⌉ partitions (taking the seat from them would force a move:
 *         this is what makes a membership change move only the surplus);
 *      b. larger remainder (Hamilton's largest-remainder rule);
 *      c. higher hash of the worker id, then the smaller id (a total order, so every replica agrees).
 *    Every quota is therefore ⌊sᵢ⌋ or ⌈sᵢ⌉: within 1 of the exact proportional share.
 *
 * `candidates` must be sorted by id (the result is index-aligned with it).
 */
export function decideQuotas(candidates: readonly QuotaCandidate[], partitions: number): QuotaDecision[] {
  const saturated = candidates.map(() => false);
  let pool = partitions;
  let poolCapacity = 0n;
  for (;;) {
    pool = partitions;
    poolCapacity = 0n;
    candidates.forEach((candidate, i) => {
      if (saturated[i]) pool -= candidate.pinned;
      else poolCapacity += candidate.scaledCapacity;
    });
    const poolBig = BigInt(pool);
    let changed = false;
    candidates.forEach((candidate, i) => {
      // pinned ≥ share  ⇔  pinned · C′ ≥ P′ · cᵢ
      if (!saturated[i] && BigInt(candidate.pinned) * poolCapacity >= poolBig * candidate.scaledCapacity) {
        saturated[i] = true;
        changed = true;
      }
    });
    if (!changed) break;
  }

  const quotas = candidates.map((candidate, i) => (saturated[i] ? candidate.pinned : 0));
  if (poolCapacity === 0n) return quotas.map((quota, i) => ({ quota, saturatedByPins: saturated[i] ?? false }));

  const poolBig = BigInt(pool);
  const remainders: bigint[] = candidates.map(() => 0n);
  let seats = pool;
  candidates.forEach((candidate, i) => {
    if (saturated[i]) return;
    const numerator = poolBig * candidate.scaledCapacity;
    const floor = Number(numerator / poolCapacity);
    quotas[i] = floor;
    remainders[i] = numerator % poolCapacity;
    seats -= floor;
  });

  const seatOrder: number[] = [];
  candidates.forEach((_, i) => {
    if (!saturated[i] && (remainders[i] ?? 0n) > 0n) seatOrder.push(i);
  });
  const canKeepSeat = (i: number): boolean => (candidates[i]?.keepable ?? 0) > (quotas[i] ?? 0);
  seatOrder.sort((a, b) => {
    const keepA = canKeepSeat(a);
    if (keepA !== canKeepSeat(b)) return keepA ? -1 : 1;
    const remA = remainders[a] ?? 0n;
    const remB = remainders[b] ?? 0n;
    if (remA !== remB) return remA > remB ? -1 : 1;
    const weightA = candidates[a]?.seatWeight ?? 0;
    const weightB = candidates[b]?.seatWeight ?? 0;
    if (weightA !== weightB) return weightB - weightA;
    return a - b; // candidates are sorted by id
  });
  for (let s = 0; s < seats; s++) {
    const i = seatOrder[s];
    if (i !== undefined) quotas[i] = (quotas[i] ?? 0) + 1;
  }
  return quotas.map((quota, i) => ({ quota, saturatedByPins: saturated[i] ?? false }));
}
