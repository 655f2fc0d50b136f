/**
 * The worker's decided set against the structure it replaced (a Map in insertion order, evicting
 * `keys().next()`, a Set per entry): time per decision once full, per block of decisions.
 *
 *   pnpm build
 *   cd loadtest && node --expose-gc --import tsx micro/decided-set.ts [--capacity 200000] [--decisions 600000]
 *
 * Results: docs/benchmarks.md ("What the profiles found").
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
// DecidedSet is not part of the worker's public face: it comes through the internal one (from the
// build, unless run with --conditions=source).
import { DecidedSet } from '@at-orchestrator/worker/internal';

/** The first session's DecidedSet, kept here as the baseline. */
class MapInInsertionOrder {
  private readonly entries = new Map<string, Set<string>>();
  constructor(private readonly capacity: number) {}
  add(corrId: string, agents: Iterable<string>): void {
    if (this.entries.has(corrId)) this.entries.delete(corrId);
    this.entries.set(corrId, new Set(agents));
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }
}

const { values } = parseArgs({ options: { capacity: { type: 'string', default: '200000' }, decisions: { type: 'string', default: '600000' } } });
const capacity = Number(values.capacity);
const decisions = Number(values.decisions);
const block = Math.max(1, Math.floor(decisions / 5));
const agents = ['momentum', 'risk'];

for (const [name, make] of [
  ['Map in insertion order (before)', () => new MapInInsertionOrder(capacity)],
  ['DecidedSet ring (now)', () => new DecidedSet(capacity)],
] as const) {
  const set = make();
  const perBlock: string[] = [];
  let t = performance.now();
  for (let i = 0; i < decisions; i++) {
    set.add(`corr-${i}-${(i * 2654435761) % 1e9}`, agents);
    if ((i + 1) % block === 0) {
      const now = performance.now();
      perBlock.push(((now - t) * 1000 / block).toFixed(2));
      t = now;
    }
  }
  (globalThis as { gc?: () => void }).gc?.();
  console.log(`${name.padEnd(32)} µs per decision, per block of ${block.toLocaleString('en')}: ${perBlock.join('  ')}   (capacity ${capacity.toLocaleString('en')})`);
}
