import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ORCHESTRATED_SUBJECTS, STORED_DECISION_PREFIX, signalSubject, type Decision, type OrchestratorConfig } from '@at-orchestrator/contracts';
import type { OrchestratorWorker } from '@at-orchestrator/worker';
import { Stack, startWorker, workerMetric } from './helpers/stack.js';

// Fan-out through real servers: a workflow worker with the shipped rules (the seed's routing
// example) publishes each decision on orchestrated.decision and on every channel its rule names,
// exactly once per channel — also when the worker restarts and the same signals come again. Counted
// twice: on the decisions stream (which stores orchestrator.decided.*) and by a core subscriber of
// orchestrated.*, which receives what the stream republishes.

const enc = new TextEncoder();
const FAN_OUT = ['execution', 'risk_monitor', 'audit'];

let stack: Stack;
let config: OrchestratorConfig;
let worker: OrchestratorWorker | undefined;

beforeAll(async () => {
  stack = await Stack.start();
  config = stack.config({ ORCHESTRATOR_TYPE: 'workflow', DECISION_TIMEOUT_SEC: '3', STATE_TTL_SECONDS: '60' });
});

afterAll(async () => {
  await worker?.close();
  await stack?.stop();
});

/**
 * The decisions for a corr_id prefix, subject (as subscribers see it, orchestrated.*) → corr_id →
 * messages: `stream` reads the `orchestrated` stream (stored on orchestrator.decided.*), `core` is a
 * plain subscription of orchestrated.>.
 */
class OrchestratedLog {
  readonly bySubject = new Map<string, Map<string, Decision[]>>();
  private stopFn: (() => void) | undefined;

  constructor(
    private readonly prefix: string,
    private readonly source: 'stream' | 'core',
  ) {}

  async start(): Promise<void> {
    if (this.source === 'core') {
      const sub = stack.nc.subscribe(ORCHESTRATED_SUBJECTS, { callback: (_err, m) => this.add(m.subject, m.json<Decision>()) });
      await stack.nc.flush();
      this.stopFn = () => sub.unsubscribe();
      return;
    }
    const consumer = await stack.js.consumers.get('orchestrated');
    const messages = await consumer.consume();
    this.stopFn = () => void messages.close();
    void (async () => {
      for await (const m of messages) this.add(m.subject.replace(`${STORED_DECISION_PREFIX}.`, 'orchestrated.'), m.json<Decision>());
    })();
  }

  private add(subject: string, d: Decision): void {
    if (!d.corr_id.startsWith(this.prefix)) return;
    const byCorr = this.bySubject.get(subject) ?? new Map<string, Decision[]>();
    this.bySubject.set(subject, byCorr);
    byCorr.set(d.corr_id, [...(byCorr.get(d.corr_id) ?? []), d]);
  }

  count(subject: string, corrId: string): number {
    return this.bySubject.get(subject)?.get(corrId)?.length ?? 0;
  }

  /** subject → number of messages, for one corr_id. */
  subjectsOf(corrId: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [subject, byCorr] of this.bySubject) {
      const n = byCorr.get(corrId)?.length ?? 0;
      if (n > 0) out[subject] = n;
    }
    return out;
  }

  stop(): void {
    this.stopFn?.();
  }
}

interface Case {
  readonly corrId: string;
  readonly instrument: string;
  readonly momentum?: number;
  readonly risk: 'low' | 'medium' | 'high' | 'blocked';
  readonly rule: string;
  readonly action: string;
  readonly channels: readonly string[];
}

const CASES: readonly Case[] = [
  { corrId: 'fan-crypto-high', instrument: 'CRYPTO:BTC-USD', momentum: 0.9, risk: 'high', rule: 'crypto-high-risk', action: 'monitor', channels: ['crypto_specialist', 'risk_monitor', 'audit'] },
  { corrId: 'fan-crypto', instrument: 'CRYPTO:ETH-USD', momentum: 0.9, risk: 'low', rule: 'crypto', action: 'trade', channels: FAN_OUT },
  { corrId: 'fan-blocked', instrument: 'CRYPTO:SOL-USD', risk: 'blocked', rule: 'risk-blocked', action: 'no_trade', channels: ['risk_monitor', 'audit'] },
  { corrId: 'fan-fx', instrument: 'FX:EUR/USD', momentum: 0.95, risk: 'medium', rule: 'default', action: 'trade', channels: FAN_OUT },
];

function signalsOf(c: Pick<Case, 'corrId' | 'instrument' | 'momentum' | 'risk'>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (c.momentum !== undefined) {
    out.push(['momentum', JSON.stringify({ corr_id: c.corrId, instrument: c.instrument, agent_name: 'momentum', analysis: { momentum_strength: 0.7, confidence: c.momentum, trend_direction: 'bullish' } })]);
  }
  out.push(['risk', JSON.stringify({ corr_id: c.corrId, instrument: c.instrument, agent_name: 'risk', analysis: { risk_level: c.risk, position_sizing: { recommended_size: 250 } } })]);
  return out;
}

async function publish(agent: string, body: string): Promise<void> {
  await stack.js.publish(signalSubject(agent), enc.encode(body));
}


describe('workflow fan-out through real servers', () => {
  it('one correlation → exactly one message on orchestrated.decision and on each routed channel, none twice, across a worker restart', async () => {
    const log = new OrchestratedLog('fan-', 'stream');
    const core = new OrchestratedLog('fan-', 'core');
    await log.start();
    await core.start();
    worker = await startWorker(config);

    for (const c of CASES) for (const [agent, body] of signalsOf(c)) await publish(agent, body);
    // Half of a correlation before the restart: crypto waits for momentum and risk.
    const resumed = { corrId: 'fan-resumed', instrument: 'CRYPTO:ADA-USD', momentum: 0.85, risk: 'low' as const };
    const [momentumOfResumed, riskOfResumed] = signalsOf(resumed) as [[string, string], [string, string]];
    await publish(...momentumOfResumed);

    const expectAll = (): void => {
      for (const l of [log, core]) {
        for (const c of CASES) {
          expect(l.count('orchestrated.decision', c.corrId), c.corrId).toBe(1);
          for (const ch of c.channels) expect(l.count(`orchestrated.${ch}`, c.corrId), `${c.corrId} on ${ch}`).toBe(1);
        }
      }
    };
    await vi.waitFor(expectAll, { timeout: 20_000, interval: 50 });
    expect(log.subjectsOf('fan-resumed')).toEqual({});

    // Restart: a new worker process-equivalent on the same Redis and NATS.
    await worker.close();
    worker = await startWorker(config);

    // The same signals again (an agent that retries, a replay), then the rest of the open correlation.
    for (const c of CASES) for (const [agent, body] of signalsOf(c)) await publish(agent, body);
    await publish(...riskOfResumed);
    await publish(...momentumOfResumed); // a repeat after the decision
    // A fresh correlation published last: once it is out, the worker has been through the repeats.
    const sentinel = { corrId: 'fan-sentinel', instrument: 'FX:GBP/USD', momentum: 0.2, risk: 'low' as const };
    for (const [agent, body] of signalsOf(sentinel)) await publish(agent, body);
    await vi.waitFor(() => expect(log.count('orchestrated.audit', 'fan-sentinel')).toBe(1), { timeout: 20_000, interval: 50 });
    await vi.waitFor(() => expect(log.count('orchestrated.audit', 'fan-resumed')).toBe(1), { timeout: 20_000, interval: 50 });
    await vi.waitFor(() => expect(core.count('orchestrated.audit', 'fan-sentinel')).toBe(1), { timeout: 20_000, interval: 50 });
    // The restarted worker saw every repeat and decided none of them again.
    await vi.waitFor(async () => expect(await workerMetric(worker!, 'orchestrator_late_signals_total') + (await workerMetric(worker!, 'orchestrator_duplicate_signals_total'))).toBeGreaterThanOrEqual(7));
    await new Promise((resolve) => setTimeout(resolve, 500)); // room for a wrong extra message to show up
    // It published two decisions (the resumed correlation and the sentinel), not a repeat of the
    // others that JetStream's duplicate window would then have hidden.
    expect(await workerMetric(worker, 'orchestrator_decisions_made_total')).toBe(2);

    expectAll();
    for (const c of CASES) {
      const want = Object.fromEntries(['decision', ...c.channels].map((ch) => [`orchestrated.${ch}`, 1]));
      expect(log.subjectsOf(c.corrId), c.corrId).toEqual(want);
      const d = log.bySubject.get('orchestrated.decision')!.get(c.corrId)![0]!;
      expect(d.rule).toBe(c.rule);
      expect(d.decision.action).toBe(c.action);
      expect(d.channels).toEqual(c.channels);
      // Every channel carries the same decision.
      for (const ch of c.channels) expect(log.bySubject.get(`orchestrated.${ch}`)!.get(c.corrId)![0]).toEqual(d);
    }
    expect(log.subjectsOf('fan-resumed')).toEqual(Object.fromEntries(['decision', ...FAN_OUT].map((ch) => [`orchestrated.${ch}`, 1])));
    expect(log.bySubject.get('orchestrated.decision')!.get('fan-resumed')![0]).toMatchObject({ rule: 'crypto', status: 'complete', decision: { action: 'trade' } });
    // The core subscriber saw exactly what the stream holds.
    expect(core.bySubject).toEqual(log.bySubject);
    log.stop();
    core.stop();
  });
});
