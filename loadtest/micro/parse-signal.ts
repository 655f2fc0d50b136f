/**
 * parseSignal on valid signals (issue 15): the zod path it had before (copied below as the
 * baseline) against parseSignal now (a hand-written check, zod only for refusals), for momentum and
 * risk signals as the load driver publishes them (loadtest/shared/synthetic.ts). The floor is what
 * both must do anyway: UTF-8 decode and JSON.parse.
 *
 *   cd loadtest && node --expose-gc --conditions=source --import tsx micro/parse-signal.ts [--iterations 100000] [--rounds 5]
 *
 * Results: docs/benchmarks.md.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { CorrId, MomentumSignal, OtherSignal, RiskSignal, parseSignal, type EnrichedSignal } from '@at-orchestrator/contracts';
import { encodeSeededCorrId, planCorrelation, seededRandom, signalJson } from '../shared/synthetic.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

/** parseSignal as it was before the hand-written check, kept as the baseline (the valid path only needs its accepting branch). */
function parseSignalWithZod(body: Uint8Array): EnrichedSignal | undefined {
  const text = decoder.decode(body);
  const raw = JSON.parse(text) as unknown;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const obj = raw as Record<string, unknown>;
  if (!CorrId.safeParse(obj.corr_id).success) return undefined;
  const schema = obj.agent_name === 'momentum' ? MomentumSignal : obj.agent_name === 'risk' ? RiskSignal : OtherSignal;
  const parsed = schema.safeParse(obj);
  return parsed.success ? (parsed.data as EnrichedSignal) : undefined;
}

function decodeAndParse(body: Uint8Array): unknown {
  return JSON.parse(decoder.decode(body));
}

const { values } = parseArgs({ options: { iterations: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '5' } } });
const iterations = Number(values.iterations);
const rounds = Number(values.rounds);

// 1,024 distinct correlations, so that no single payload sits in a cache the real stream would not give.
const bodies: Record<'momentum' | 'risk', Uint8Array[]> = { momentum: [], risk: [] };
const encoder = new TextEncoder();
for (let seed = 1; seed <= 1024; seed++) {
  const plan = planCorrelation(seededRandom(seed), 2, 0);
  const corrId = encodeSeededCorrId('bench', 'parse', seed, 1_767_225_600_000 + seed);
  for (const signal of plan.signals) {
    const agent = signal.agent as 'momentum' | 'risk';
    bodies[agent].push(encoder.encode(signalJson(corrId, signal, plan.instrument, new Date(1_767_225_600_000 + seed).toISOString())));
  }
}

// Both paths must accept every payload and return the same signal, or the comparison means nothing.
for (const body of [...bodies.momentum, ...bodies.risk]) {
  const now = parseSignal(body);
  if (!now.ok || !isDeepStrictEqual(now.signal, parseSignalWithZod(body))) throw new Error(`the two paths disagree on ${decoder.decode(body)}`);
}

const variants = [
  ['decode + JSON.parse (floor)', decodeAndParse],
  ['zod path (before)', parseSignalWithZod],
  ['parseSignal (now)', parseSignal],
] as const;

let sink = 0;
function timeRound(parse: (body: Uint8Array) => unknown, set: readonly Uint8Array[]): number {
  (globalThis as { gc?: () => void }).gc?.();
  const t = performance.now();
  for (let i = 0; i < iterations; i++) if (parse(set[i & 1023]!) !== undefined) sink++;
  return ((performance.now() - t) * 1e6) / iterations;
}

for (const agent of ['momentum', 'risk'] as const) {
  const set = bodies[agent];
  console.log(`${agent} signal, ${set[0]!.byteLength} bytes, e.g. ${decoder.decode(set[0])}`);
  // One round of warm-up, not reported: the first calls run before the JIT has compiled them. The
  // variants take turns within each round, so that other work on the machine weighs on all of them.
  for (const [, parse] of variants) timeRound(parse, set);
  const perRound = variants.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) variants.forEach(([, parse], v) => perRound[v]!.push(timeRound(parse, set)));
  variants.forEach(([name], v) => {
    const ns = perRound[v]!;
    const median = [...ns].sort((a, b) => a - b)[Math.floor(ns.length / 2)]!;
    console.log(`  ${name.padEnd(30)} ${median.toFixed(0).padStart(6)} ns per parse (median of ${rounds} rounds of ${iterations.toLocaleString('en')}: ${ns.map((n) => n.toFixed(0)).join('  ')})`);
  });
}
if (sink === 0) console.log('(nothing parsed)');
