import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { seededRandom } from '@at-orchestrator/sim';
import {
  planAssignment,
  diffAssignment,
  type AssignmentInput,
  type AssignmentPlan,
  type PartitionPin,
  type WorkerCapacity,
} from './index.js';

// Issue 4, "Done when", bullet 1 — every N in 1..32, every P in {16, 64, 256} — plus the rest of the
// assignment's contract (weights, drains, pins, idempotence, histories), checked on every plan.

const PARTITION_COUNTS = [16, 64, 256] as const;
const WORKER_COUNTS = Array.from({ length: 32 }, (_, i) => i + 1);

const ids = (n: number, prefix = 'worker-'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
const equalWorkers = (n: number): WorkerCapacity[] => ids(n).map((id) => ({ id }));

/** A seeded shuffle, so that "another replica's input order" is reproducible. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const next = seededRandom(seed);
  const result = [...items];
  for (let i = result.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const a = result[i] as T;
    result[i] = result[j] as T;
    result[j] = a;
  }
  return result;
}

/** Another replica: the same inputs, every list in a different order. */
function asAnotherReplica(input: AssignmentInput, seed: number): AssignmentInput {
  return {
    ...input,
    workers: shuffled(input.workers, seed),
    draining: shuffled([...(input.draining ?? [])], seed + 1),
    pins: shuffled(input.pins ?? [], seed + 2),
  };
}

function countsOf(target: readonly (string | null)[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const owner of target) if (owner !== null) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return counts;
}

/** max − min of the partitions held by the given workers (0 held counts). */
function spread(plan: AssignmentPlan, workerIds: readonly string[]): number {
  const counts = countsOf(plan.target);
  const held = workerIds.map((id) => counts.get(id) ?? 0);
  return Math.max(...held) - Math.min(...held);
}

/**
 * Everything a plan must satisfy, whatever the inputs: the target matches the quotas, drains end at 0,
 * applied pins hold, quotas are proportional (within 1) for the workers not saturated by pins, moves
 * are exactly the diff, and planning again from the target moves nothing.
 */
function expectValidPlan(input: AssignmentInput, plan: AssignmentPlan): void {
  const P = input.partitions;
  expect(plan.target).toHaveLength(P);
  const draining = new Set(input.draining ?? []);
  const eligible = plan.quotas.filter((quota) => !quota.draining);
  const counts = countsOf(plan.target);

  if (eligible.length === 0) {
    expect(plan.target.every((owner) => owner === null)).toBe(true);
  } else {
    expect(plan.target.every((owner) => owner !== null)).toBe(true); // everything is assigned
  }
  expect(plan.quotas.map((quota) => quota.workerId)).toEqual(
    [...input.workers.map((worker) => worker.id)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  for (const quota of plan.quotas) {
    expect(counts.get(quota.workerId) ?? 0).toBe(quota.quota);
    if (draining.has(quota.workerId)) expect(quota.quota).toBe(0);
    expect(quota.quota).toBeGreaterThanOrEqual(quota.pinned);
  }
  for (const owner of counts.keys()) expect(eligible.some((quota) => quota.workerId === owner)).toBe(true);

  const unapplied = new Set(plan.unappliedPins.map((pin) => pin.partition));
  for (const pin of input.pins ?? []) {
    if (!unapplied.has(pin.partition)) expect(plan.target[pin.partition]).toBe(pin.worker);
  }

  // Proportional shares of what is left once the workers saturated by pins are set aside.
  const saturated = eligible.filter((quota) => quota.saturatedByPins);
  const rest = eligible.filter((quota) => !quota.saturatedByPins);
  const restPartitions = P - saturated.reduce((sum, quota) => sum + quota.pinned, 0);
  const restCapacity = rest.reduce((sum, quota) => sum + quota.capacity, 0);
  for (const quota of saturated) {
    expect(quota.quota).toBe(quota.pinned);
    // It was set aside because its pins reached its share of what was still being split then; shares only
    // shrink as workers are set aside, so its pins also reach its share of what the rest split now.
    if (rest.length > 0) {
      expect(quota.pinned).toBeGreaterThanOrEqual((restPartitions * quota.capacity) / restCapacity - 1e-9);
    }
  }
  if (eligible.length > 0 && rest.length === 0) expect(restPartitions).toBe(0); // every partition is pinned
  for (const quota of rest) {
    const share = (restPartitions * quota.capacity) / restCapacity;
    expect(Math.abs(quota.quota - share)).toBeLessThan(1 + 1e-9);
  }

  expect(plan.moves).toEqual(diffAssignment(input.current ?? [], plan.target));
  const again = planAssignment({ ...input, current: plan.target });
  expect(again.moves).toEqual([]);
  expect(again.target).toEqual(plan.target);
}

describe('equal capacity, every N in 1..32 and P in {16, 64, 256} (issue 4, done-when 1)', () => {
  for (const P of PARTITION_COUNTS) {
    it(`P=${P}: from nothing, every partition is assigned and max − min ≤ 1`, () => {
      for (const N of WORKER_COUNTS) {
        const input = { partitions: P, workers: equalWorkers(N) };
        const plan = planAssignment(input);
        expectValidPlan(input, plan);
        expect(spread(plan, ids(N))).toBeLessThanOrEqual(1);
        expect(plan.moves).toHaveLength(P);
      }
    });

    it(`P=${P}: N → N+1 moves at most ⌈P/(N+1)⌉ partitions, all onto the newcomer, and stays balanced`, () => {
      for (const N of WORKER_COUNTS) {
        const before = planAssignment({ partitions: P, workers: equalWorkers(N) });
        const input = { partitions: P, workers: equalWorkers(N + 1), current: before.target };
        const after = planAssignment(input);
        expectValidPlan(input, after);
        expect(after.moves.length).toBeLessThanOrEqual(Math.ceil(P / (N + 1)));
        expect(after.moves.every((move) => move.to === `worker-${N + 1}`)).toBe(true);
        expect(spread(after, ids(N + 1))).toBeLessThanOrEqual(1);
      }
    });

    it(`P=${P}: N → N−1 moves exactly the departed worker's partitions, whichever worker leaves`, () => {
      for (const N of WORKER_COUNTS.filter((n) => n >= 2)) {
        const before = planAssignment({ partitions: P, workers: equalWorkers(N) });
        for (const departed of ids(N)) {
          const theirs = before.target.flatMap((owner, p) => (owner === departed ? [p] : []));
          const workers = equalWorkers(N).filter((worker) => worker.id !== departed);
          // The leader may still record the dead owner, or may already have cleared it: same result.
          const recorded = planAssignment({ partitions: P, workers, current: before.target });
          const cleared = planAssignment({
            partitions: P,
            workers,
            current: before.target.map((owner) => (owner === departed ? null : owner)),
          });
          expect(recorded.moves.map((move) => move.partition)).toEqual(theirs);
          expect(recorded.moves.every((move) => move.from === departed)).toBe(true);
          expect(cleared.target).toEqual(recorded.target);
          expect(spread(recorded, workers.map((worker) => worker.id))).toBeLessThanOrEqual(1);
        }
      }
    });

    it(`P=${P}: two replicas given the same inputs in a different order produce the same plan`, () => {
      for (const N of WORKER_COUNTS) {
        const fresh: AssignmentInput = { partitions: P, workers: equalWorkers(N) };
        const before = planAssignment(fresh);
        const join: AssignmentInput = { partitions: P, workers: equalWorkers(N + 1), current: before.target };
        const leave: AssignmentInput = { partitions: P, workers: equalWorkers(N).slice(1), current: before.target };
        for (const input of [fresh, join, leave]) {
          const plan = planAssignment(input);
          for (const seed of [1, 2, 3]) expect(planAssignment(asAnotherReplica(input, seed * N))).toEqual(plan);
        }
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// Random inputs (fast-check).

const workerIdArb = fc.constantFrom(...ids(40, 'w'), 'αβγ', 'w-1', 'W1', 'a', 'b'); // incl. non-ASCII and near-duplicates
const capacityArb = fc.oneof(
  fc.constant(undefined),
  fc.integer({ min: 1, max: 8 }),
  fc.double({ min: 0.05, max: 20, noNaN: true, noDefaultInfinity: true }),
);

/** Arbitrary (possibly messy) inputs: weighted workers, a stale current assignment, drains and pins. */
const scenarioArb = fc
  .record({
    partitions: fc.oneof(fc.constantFrom(...PARTITION_COUNTS), fc.integer({ min: 1, max: 300 })),
    workers: fc.uniqueArray(fc.record({ id: workerIdArb, capacity: capacityArb }), {
      minLength: 0,
      maxLength: 33,
      selector: (worker) => worker.id,
    }),
  })
  .chain(({ partitions, workers }) => {
    const known = [...workers.map((worker) => worker.id), 'gone-1', 'gone-2'];
    return fc.record({
      partitions: fc.constant(partitions),
      workers: fc.constant(workers.map(({ id, capacity }) => (capacity === undefined ? { id } : { id, capacity }))),
      current: fc.array(fc.oneof(fc.constantFrom(...known), fc.constant(null), fc.constant(undefined)), {
        maxLength: partitions,
      }),
      draining: fc.subarray(known),
      pins: fc.uniqueArray(
        fc.record({ partition: fc.integer({ min: 0, max: partitions - 1 }), worker: fc.constantFrom(...known) }),
        { maxLength: Math.min(partitions, 40), selector: (pin) => pin.partition },
      ),
      seed: fc.integer(),
    });
  });

describe('random inputs', () => {
  it('every plan is valid (quotas, drains, pins, diff, idempotence) and replicas agree', () => {
    fc.assert(
      fc.property(scenarioArb, ({ seed, ...input }) => {
        const plan = planAssignment(input);
        expectValidPlan(input, plan);
        expect(planAssignment(asAnotherReplica(input, seed))).toEqual(plan);
      }),
      { numRuns: 400 },
    );
  });

  it('weighted capacities: each quota is within 1 of the exact proportional share, and they sum to P', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PARTITION_COUNTS),
        fc.array(fc.oneof(fc.integer({ min: 1, max: 10 }), fc.double({ min: 0.01, max: 100, noNaN: true })), {
          minLength: 1,
          maxLength: 32,
        }),
        (P, capacities) => {
          const workers = capacities.map((capacity, i) => ({ id: `worker-${i}`, capacity }));
          const plan = planAssignment({ partitions: P, workers });
          const total = capacities.reduce((sum, capacity) => sum + capacity, 0);
          expect(plan.quotas.reduce((sum, quota) => sum + quota.quota, 0)).toBe(P);
          for (const quota of plan.quotas) {
            expect(Math.abs(quota.quota - (P * quota.capacity) / total)).toBeLessThan(1 + 1e-9);
          }
        },
      ),
    );
  });

  it('draining workers end with 0, and only their partitions move (equal capacity)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PARTITION_COUNTS),
        fc.integer({ min: 2, max: 32 }).chain((N) =>
          fc.tuple(fc.constant(N), fc.subarray(ids(N), { minLength: 1, maxLength: N - 1 })),
        ),
        (P, [N, drained]) => {
          const before = planAssignment({ partitions: P, workers: equalWorkers(N) });
          const input = { partitions: P, workers: equalWorkers(N), current: before.target, draining: drained };
          const plan = planAssignment(input);
          expectValidPlan(input, plan);
          const drainedSet = new Set(drained);
          expect(plan.moves.every((move) => move.from !== null && drainedSet.has(move.from))).toBe(true);
          expect(plan.moves).toHaveLength(before.target.filter((owner) => drainedSet.has(owner ?? '')).length);
          const staying = ids(N).filter((id) => !drainedSet.has(id));
          expect(spread(plan, staying)).toBeLessThanOrEqual(1);
        },
      ),
    );
  });

  it('pins: pinned partitions sit on their worker; with equal capacity the unsaturated workers differ by ≤ 1', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PARTITION_COUNTS),
        fc.integer({ min: 1, max: 32 }),
        fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 80 }),
        (P, N, rawPins) => {
          const pins: PartitionPin[] = [];
          const seen = new Set<number>();
          for (const [partition, worker] of rawPins) {
            if (seen.has(partition % P)) continue;
            seen.add(partition % P);
            pins.push({ partition: partition % P, worker: `worker-${(worker % N) + 1}` });
          }
          const before = planAssignment({ partitions: P, workers: equalWorkers(N) });
          const input = { partitions: P, workers: equalWorkers(N), current: before.target, pins };
          const plan = planAssignment(input);
          expectValidPlan(input, plan);
          const rest = plan.quotas.filter((quota) => !quota.saturatedByPins);
          if (rest.length > 0) {
            const restQuotas = rest.map((quota) => quota.quota);
            expect(Math.max(...restQuotas) - Math.min(...restQuotas)).toBeLessThanOrEqual(1);
            // A saturated worker holds only its pins, and never fewer than an unsaturated one's floor.
            for (const quota of plan.quotas.filter((q) => q.saturatedByPins)) {
              expect(quota.quota).toBeGreaterThanOrEqual(Math.min(...restQuotas));
            }
          }
        },
      ),
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// Histories: a random sequence of joins, leaves, drains, undrains, pins and unpins, applied plan after
// plan. The invariants hold at every step; with equal capacity and no pins, a join moves at most
// ⌈P/(N+1)⌉ and a leave or drain moves only the leaver's partitions.

type Step =
  | { kind: 'join' }
  | { kind: 'leave'; pick: number }
  | { kind: 'drain'; pick: number }
  | { kind: 'undrain' }
  | { kind: 'pin'; partition: number; pick: number }
  | { kind: 'unpin' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Step>({ kind: 'join' }) },
  { weight: 3, arbitrary: fc.nat().map<Step>((pick) => ({ kind: 'leave', pick })) },
  { weight: 1, arbitrary: fc.nat().map<Step>((pick) => ({ kind: 'drain', pick })) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'undrain' }) },
  { weight: 1, arbitrary: fc.record({ partition: fc.nat(), pick: fc.nat() }).map<Step>((s) => ({ kind: 'pin', ...s })) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'unpin' }) },
);

describe('histories of joins and leaves', () => {
  it('keep every invariant, and the sticky bounds whenever capacities are equal and nothing is pinned', () => {
    const boundsChecked = { join: 0, leave: 0 };
    fc.assert(
      fc.property(
        fc.constantFrom(...PARTITION_COUNTS),
        fc.boolean(),
        fc.array(stepArb, { minLength: 1, maxLength: 40 }),
        (P, weighted, steps) => {
          let nextId = 1;
          let workers: WorkerCapacity[] = [];
          let draining: string[] = [];
          let pins: PartitionPin[] = [];
          let current: readonly (string | null)[] = [];
          let pinsAppliedBefore = 0;
          const newWorker = (): WorkerCapacity => {
            const id = `worker-${nextId}`;
            nextId += 1;
            return weighted ? { id, capacity: (nextId % 4) + 1 } : { id };
          };

          for (const step of steps) {
            const eligibleBefore = workers.filter((worker) => !draining.includes(worker.id)).length;
            let leaver: string | undefined;
            if (step.kind === 'join') {
              if (workers.length >= 33) continue;
              workers = [...workers, newWorker()];
            } else if (step.kind === 'leave' || step.kind === 'drain') {
              if (workers.length === 0) continue;
              leaver = workers[step.pick % workers.length]?.id;
              if (step.kind === 'leave') {
                workers = workers.filter((worker) => worker.id !== leaver);
                draining = draining.filter((id) => id !== leaver);
              } else if (leaver !== undefined && !draining.includes(leaver)) {
                draining = [...draining, leaver];
              } else continue;
            } else if (step.kind === 'undrain') {
              draining = draining.slice(1);
            } else if (step.kind === 'pin') {
              const worker = workers[step.pick % Math.max(1, workers.length)];
              if (worker === undefined) continue;
              const partition = step.partition % P;
              pins = [...pins.filter((pin) => pin.partition !== partition), { partition, worker: worker.id }];
            } else {
              pins = pins.slice(1);
            }

            const input: AssignmentInput = { partitions: P, workers, current, draining, pins };
            const plan = planAssignment(input);
            expectValidPlan(input, plan);

            const eligibleIds = plan.quotas.filter((quota) => !quota.draining).map((quota) => quota.workerId);
            const pinsApplied = pins.length - plan.unappliedPins.length;
            if (!weighted && pinsApplied === 0 && pinsAppliedBefore === 0) {
              if (eligibleIds.length > 0) expect(spread(plan, eligibleIds)).toBeLessThanOrEqual(1);
              if (step.kind === 'join' && eligibleBefore > 0) {
                boundsChecked.join += 1;
                expect(plan.moves.length).toBeLessThanOrEqual(Math.ceil(P / (eligibleBefore + 1)));
              }
              if ((step.kind === 'leave' || step.kind === 'drain') && eligibleIds.length > 0) {
                boundsChecked.leave += 1;
                const theirs = current.filter((owner) => owner === leaver).length;
                expect(plan.moves.every((move) => move.from === leaver)).toBe(true);
                expect(plan.moves).toHaveLength(theirs);
              }
            }
            current = plan.target;
            pinsAppliedBefore = pinsApplied;
          }
        },
      ),
      { numRuns: 150 },
    );
    // The sticky bounds were really exercised, not skipped by the conditions above.
    expect(boundsChecked.join).toBeGreaterThan(10);
    expect(boundsChecked.leave).toBeGreaterThan(10);
  });
});
