/**
 * Decision engines: inline vs Piscina pool. Not a test: a measurement that chose the defaults of
 * DECISION_POOL_THREADS and DECISION_BATCH_SIZE (docs/benchmarks.md, "Decision engines: inline vs pool").
 *
 *   pnpm build                       # the pool runs the compiled thread; this imports the build too
 *   cd loadtest && node --import tsx engines/bench-engines.ts [--seconds 1] [--batch-sizes 1,16,64,256]
 *        [--engines simple,workflow500,workflow500-cold,workflow500-cold+fanin,ml] [--modes inline,pool1,pool2] [--concurrency 4] [--json]
 *
 * What it does: for each engine × mode × batch size, a closed loop keeps `concurrency` decide()
 * calls of `batch size` correlations in flight (the worker hands the decider one batch per drain and
 * can have several drains in flight), for `seconds` after a warm-up, and reports decisions/s, the
 * p50/p99 of one decide() call (≈ one batch: the pool's batch size is DECISION_BATCH_SIZE, so each
 * call is one task) and the main thread's event-loop utilisation — the share of the loop the
 * decider takes from everything else the worker does (ingest, Redis, emit, lease timers).
 *
 * Inputs are 4,096 pre-built correlations (momentum, risk, often correlation; crypto, equity, FX and
 * no instrument), as the worker passes them: plain objects, cloned to the thread by the pool.
 * workflow500 uses generateRules(500), whose crypto routing sits at the end of the list.
 */
import { availableParallelism, cpus, loadavg } from 'node:os';
import { createHistogram, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
// The load driver is an outside client and imports no data-plane package; this benchmark is not the
// driver: it measures the engines through the worker's internal face (dev dependencies of loadtest).
// Run without --conditions=source it imports the build, as a worker runs it.
import { loadConfig } from '@at-orchestrator/contracts';
import { Registry, createLogger } from '@at-orchestrator/runtime';
import { seededRandom as random } from '@at-orchestrator/sim';
import { InlineDecider, RuleSet, WorkflowEngine, createDecider, createEngine, generateRules } from '@at-orchestrator/worker/internal';
import type { BatchDecider, DecisionEngine, EngineInput } from '@at-orchestrator/worker/internal';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '0.3' },
    'batch-sizes': { type: 'string', default: '1,16,64,256' },
    engines: { type: 'string', default: 'simple,workflow500,workflow500-cold,workflow500-cold+fanin,ml' },
    modes: { type: 'string', default: 'inline,pool1,pool2' },
    concurrency: { type: 'string', default: '4' },
    json: { type: 'boolean', default: false },
  },
});
const SECONDS = Number(values.seconds);
const WARMUP = Number(values.warmup);
const BATCH_SIZES = values['batch-sizes'].split(',').map(Number);
const ENGINES = values.engines.split(',');
const MODES = values.modes.split(',');
const CONCURRENCY = Number(values.concurrency);

const log = createLogger({ service: 'bench', env: 'bench', level: 'warn' });

/** `unique`: every input has its own instrument, so that the workflow engine's per-instrument candidate cache (4,096 entries) never hits. */
function makeInputs(n: number, unique = false): EngineInput[] {
  const rnd = random(42);
  const instruments = ['CRYPTO:BTC-USD', 'CRYPTO:ETH-USD', 'EQ:AAPL', 'EQ:S12', 'EQ:S101.X', 'EQ:S250', 'FX:EUR/USD', undefined];
  const levels = ['low', 'medium', 'high', 'blocked'] as const;
  return Array.from({ length: n }, (_, i) => {
    const corrId = `bench-${i}`;
    const instrument = unique ? `CRYPTO:C${i}-USD` : instruments[i % instruments.length];
    const env = { corr_id: corrId, timestamp: '2025-01-01T00:00:00Z', ...(instrument === undefined ? {} : { instrument }) };
    const signals: EngineInput['signals'] = {
      momentum: { ...env, agent_name: 'momentum', analysis: { momentum_strength: rnd(), confidence: rnd(), trend_direction: rnd() < 0.5 ? 'bullish' : 'bearish' } },
      risk: { ...env, agent_name: 'risk', analysis: { risk_level: levels[Math.floor(rnd() * 4)]!, position_sizing: { recommended_size: Math.round(rnd() * 2000) } } },
      ...(rnd() < 0.6 ? { correlation: { ...env, agent_name: 'correlation', analysis: { correlation_score: rnd() * 2 - 1 } } } : {}),
    };
    return { corrId, instrument, signals, atDeadline: false };
  });
}

const INPUTS = makeInputs(4096);
const UNIQUE_INSTRUMENT_INPUTS = makeInputs(32_768, true);

/**
 * simple, ml: the shipped engines. workflow500: 500 generated rules, instruments repeat (the
 * candidate cache hits, as in a market with a bounded instrument list). workflow500-cold: the same
 * rules, every correlation a new instrument: each decision runs the 500 instrument patterns — the
 * most expensive decision this code base has. `+fanin` (e.g. workflow500-cold+fanin): before each
 * batch, the main thread asks engine.requiredAgents for every correlation, as the worker's fan-in
 * does on every signal (FanInBuffer.isReady) whatever the decider — the honest comparison for the
 * workflow engine, whose requiredAgents runs the same rule match as decide.
 */
function engineFor(name: string): { engine: DecisionEngine; type: string; inputs: EngineInput[]; fanIn: boolean } {
  const type = name.startsWith('workflow') ? 'workflow' : name.replace(/\+fanin$/, '');
  const engine = createEngine(loadConfig({ ORCHESTRATOR_TYPE: type }));
  if (name.startsWith('workflow500') && engine instanceof WorkflowEngine) engine.setRules(RuleSet.fromDocument(generateRules(500)));
  return { engine, type, inputs: name.includes('-cold') ? UNIQUE_INSTRUMENT_INPUTS : INPUTS, fanIn: name.endsWith('+fanin') };
}

function deciderFor(mode: string, type: string, engine: DecisionEngine, batchSize: number): BatchDecider {
  if (mode === 'inline') return new InlineDecider(engine, { batchSize });
  const threads = mode.replace('pool', '');
  const config = loadConfig({ ORCHESTRATOR_TYPE: type, DECISION_POOL_THREADS: threads, DECISION_BATCH_SIZE: String(batchSize), DECISION_TASK_TIMEOUT_MS: '30000' });
  return createDecider(config, engine, { log, registry: new Registry() });
}

interface Row {
  engine: string;
  mode: string;
  batchSize: number;
  decisionsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  mainLoopUtilisation: number;
  /** Main-thread (event loop) time spent per decision, µs: what the decider takes from the rest of the worker. */
  mainUsPerDecision: number;
}

async function measure(decider: BatchDecider, inputs: EngineInput[], batchSize: number, seconds: number, fanIn?: DecisionEngine): Promise<Omit<Row, 'engine' | 'mode' | 'batchSize'>> {
  const hist = createHistogram();
  let decided = 0;
  let offset = 0;
  const end = performance.now() + seconds * 1000;
  const elu0 = performance.eventLoopUtilization();
  const started = performance.now();
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const from = offset;
      offset = (offset + batchSize) % (inputs.length - batchSize);
      const batch = inputs.slice(from, from + batchSize);
      const t0 = performance.now();
      if (fanIn !== undefined) for (const input of batch) fanIn.requiredAgents(input);
      const results = await decider.decide(batch);
      hist.record(Math.max(1, Math.round((performance.now() - t0) * 1e6)));
      if (results.length !== batch.length) throw new Error('lost results');
      decided += results.length;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  const elapsed = (performance.now() - started) / 1000;
  const elu = performance.eventLoopUtilization(elu0);
  return {
    decisionsPerSec: decided / elapsed,
    p50Ms: hist.percentile(50) / 1e6,
    p99Ms: hist.percentile(99) / 1e6,
    mainLoopUtilisation: elu.utilization,
    mainUsPerDecision: decided === 0 ? 0 : (elu.active * 1000) / decided,
  };
}

const rows: Row[] = [];
const machine = {
  nproc: availableParallelism(),
  cpu: cpus()[0]?.model ?? 'unknown',
  node: process.version,
  loadavgAtStart: loadavg().map((x) => x.toFixed(2)).join(' '),
};
process.stderr.write(`machine: ${JSON.stringify(machine)}\n`);

for (const engineName of ENGINES) {
  const { engine, type, inputs, fanIn } = engineFor(engineName);
  const fanInEngine = fanIn ? engine : undefined;
  for (const mode of MODES) {
    for (const batchSize of BATCH_SIZES) {
      const decider = deciderFor(mode, type, engine, batchSize);
      await measure(decider, inputs, batchSize, WARMUP, fanInEngine); // threads up, engines built, JIT warm
      const r = await measure(decider, inputs, batchSize, SECONDS, fanInEngine);
      await decider.close();
      const row = { engine: engineName, mode, batchSize, ...r };
      rows.push(row);
      process.stderr.write(
        `${engineName.padEnd(11)} ${mode.padEnd(6)} batch ${String(batchSize).padStart(4)}  ${Math.round(r.decisionsPerSec).toLocaleString('en-US').padStart(11)}/s  p50 ${r.p50Ms.toFixed(3)} ms  p99 ${r.p99Ms.toFixed(3)} ms  main loop ${(r.mainLoopUtilisation * 100).toFixed(0)} %  ${r.mainUsPerDecision.toFixed(2)} µs/decision on the main thread\n`,
      );
    }
  }
}

if (values.json) {
  process.stdout.write(`${JSON.stringify({ machine, seconds: SECONDS, concurrency: CONCURRENCY, rows }, null, 2)}\n`);
} else {
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  process.stdout.write(`| engine | mode | batch | decisions/s | p50 batch (ms) | p99 batch (ms) | main-thread µs / decision |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n`);
  for (const r of rows) {
    process.stdout.write(`| ${r.engine} | ${r.mode} | ${r.batchSize} | ${fmt(r.decisionsPerSec)} | ${r.p50Ms.toFixed(3)} | ${r.p99Ms.toFixed(3)} | ${r.mainUsPerDecision.toFixed(2)} |\n`);
  }
}
