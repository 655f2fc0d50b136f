import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { signalSubject, type OrchestratorConfig } from '@at-orchestrator/contracts';
import { CLEAN_MIX, SimulatedAgents, makeCorrelation, seededRandom, type SyntheticCorrelation } from '@at-orchestrator/sim';
import type { OrchestratorWorker } from '@at-orchestrator/worker';
import { DecisionLog, Stack, startWorker, workerMetric } from './helpers/stack.js';
import { seedDecision } from './helpers/seed-oracle.js';

const enc = new TextEncoder();
let stack: Stack;
let worker: OrchestratorWorker;
let config: OrchestratorConfig;

beforeAll(async () => {
  stack = await Stack.start();
  config = stack.config({ DECISION_TIMEOUT_SEC: '1', STATE_TTL_SECONDS: '30' });
  worker = await startWorker(config);
});

afterAll(async () => {
  await worker?.close();
  await stack?.stop();
});

async function publish(subject: string, body: string | Uint8Array): Promise<void> {
  await stack.js.publish(subject, typeof body === 'string' ? enc.encode(body) : body);
}

const metricValue = (name: string, labels: Record<string, string> = {}): Promise<number> => workerMetric(worker, name, labels);

describe('one worker through real servers', () => {
  it('1,000 correlations as the seed agents send them → exactly 1,000 decisions, each as the seed rules say', async () => {
    const prefix = 'e2e-';
    const decisions = new DecisionLog(stack.js, prefix);
    await decisions.start();
    const rnd = seededRandom(42);
    const sent = new Map<string, SyntheticCorrelation>();
    const agents = new SimulatedAgents(stack.nc);
    for (let i = 0; i < 1000; i++) {
      const corr = makeCorrelation(`${prefix}${i}`, rnd, { ...CLEAN_MIX, thirdAgent: 0.3 });
      sent.set(corr.corrId, corr);
    }
    await Promise.all([...sent.values()].map((c) => agents.publishCorrelation(c)));
    await decisions.waitFor(1000);

    expect(decisions.byCorr.size).toBe(1000);
    expect(decisions.duplicates()).toEqual([]);
    let trades = 0;
    for (const [corrId, [d]] of decisions.byCorr) {
      const truth = sent.get(corrId)!.truth;
      const want = seedDecision(truth.momentum!, truth.risk!);
      expect(d!.decision).toEqual(want.decision);
      expect(d!.confidence).toBeCloseTo(want.confidence, 12);
      expect(d!.status).toBe('complete');
      expect(d!.partial).toBe(false);
      expect(d!.source_signals).toEqual({ momentum: truth.momentum!.momentum_strength, risk: truth.risk!.risk_level });
      if (d!.decision.action === 'trade') trades++;
    }
    expect(trades).toBeGreaterThan(50); // the mix exercises every branch
    // Counted when the PubAck comes back, which may be just after a consumer already has the decision.
    await vi.waitFor(async () => expect(await metricValue('orchestrator_decisions_made_total')).toBeGreaterThanOrEqual(1000), { timeout: 5_000, interval: 20 });
    decisions.stop();
  });

  it('a correlation missing its risk signal closes with a timeout outcome after DECISION_TIMEOUT_SEC, counted', async () => {
    const decisions = new DecisionLog(stack.js, 'timeout-');
    await decisions.start();
    const before = await metricValue('orchestrator_correlation_timeout_total');
    const sentAt = Date.now();
    await publish(signalSubject('momentum'), JSON.stringify({ corr_id: 'timeout-1', agent_name: 'momentum', analysis: { momentum_strength: 0.5, confidence: 0.9, trend_direction: 'bullish' } }));
    await decisions.waitFor(1, 10_000);
    const d = decisions.byCorr.get('timeout-1')![0]!;
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(config.decisionTimeoutMs - 50);
    expect(d.status).toBe('timeout');
    expect(d.partial).toBe(true);
    expect(d.decision).toEqual({ action: 'no_trade', reason: 'timeout_risk_missing' });
    expect(d.agents_present).toEqual(['momentum']);
    expect(d.agents_missing).toEqual(['risk']);
    // The worker counts once JetStream acknowledged the publish, which can come after a reader saw it.
    await vi.waitFor(async () => expect(await metricValue('orchestrator_correlation_timeout_total')).toBe(before + 1));
    expect(await metricValue('orchestrator_decisions_made_total', { type: 'timeout' })).toBeGreaterThanOrEqual(1);
    decisions.stop();
  });

  it('a correlation missing momentum is decided partially at the deadline from risk alone', async () => {
    const decisions = new DecisionLog(stack.js, 'partial-');
    await decisions.start();
    await publish(signalSubject('risk'), JSON.stringify({ corr_id: 'partial-1', agent_name: 'risk', analysis: { risk_level: 'blocked', position_sizing: { recommended_size: 5 } } }));
    await decisions.waitFor(1, 10_000);
    const d = decisions.byCorr.get('partial-1')![0]!;
    expect(d.status).toBe('partial');
    expect(d.decision).toEqual({ action: 'no_trade', reason: 'risk_blocked' });
    expect(d.agents_missing).toEqual(['momentum']);
    decisions.stop();
  });

  it('a repeated (corr_id, agent) is a counted duplicate and a signal after the decision is counted as late; neither decides again', async () => {
    const decisions = new DecisionLog(stack.js, 'dup-');
    await decisions.start();
    const dupBefore = await metricValue('orchestrator_duplicate_signals_total');
    const lateBefore = await metricValue('orchestrator_late_signals_total');
    const momentum = JSON.stringify({ corr_id: 'dup-1', agent_name: 'momentum', analysis: { momentum_strength: 0.9, confidence: 0.95, trend_direction: 'bearish' } });
    const risk = JSON.stringify({ corr_id: 'dup-1', agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 7 } } });
    await publish(signalSubject('momentum'), momentum);
    await publish(signalSubject('momentum'), momentum); // duplicate before the decision
    await publish(signalSubject('risk'), risk);
    await decisions.waitFor(1, 10_000);
    await publish(signalSubject('risk'), risk); // duplicate after the decision
    await publish(signalSubject('correlation'), JSON.stringify({ corr_id: 'dup-1', agent_name: 'correlation', analysis: { score: 1 } })); // late
    // A later, unrelated correlation decided proves the worker went past the repeats.
    await publish(signalSubject('momentum'), momentum.replace('dup-1', 'dup-2'));
    await publish(signalSubject('risk'), risk.replace('dup-1', 'dup-2'));
    await decisions.waitFor(2, 10_000);
    expect(decisions.byCorr.get('dup-1')).toHaveLength(1);
    expect(decisions.byCorr.get('dup-1')![0]!.decision).toEqual({ action: 'trade', direction: 'bearish', size: 7, reason: 'high_confidence_momentum' });
    expect(await metricValue('orchestrator_duplicate_signals_total')).toBe(dupBefore + 2);
    expect(await metricValue('orchestrator_late_signals_total')).toBe(lateBefore + 1);
    expect(decisions.duplicates()).toEqual([]);
    decisions.stop();
  });

  it.each([
    ['not_json', '{"corr_id": "dlq-1", oops'],
    ['schema', JSON.stringify({ corr_id: 'dlq-2', agent_name: 'risk', analysis: { risk_level: 'extreme', position_sizing: { recommended_size: 1 } } })],
    ['no_corr_id', JSON.stringify({ agent_name: 'momentum', analysis: { momentum_strength: 1, confidence: 1, trend_direction: 'up' } })],
    ['oversized', JSON.stringify({ corr_id: 'dlq-4', agent_name: 'x', analysis: { blob: 'x'.repeat(70_000) } })],
  ])('bad input (%s) goes to orchestrator.dlq with its reason and payload, and the next good signal is decided', async (reason, body) => {
    const dlq = await stack.js.consumers.get('orchestrator-dlq');
    const before = await metricValue('orchestrator_dlq_total', { reason });
    await publish(signalSubject('risk'), body);
    const letters = await dlq.consume();
    let letter: Record<string, string> | undefined;
    for await (const m of letters) {
      const l = m.json<Record<string, string>>();
      if (l.reason === reason) {
        letter = l;
        break;
      }
    }
    await letters.close();
    expect(letter!.reason).toBe(reason);
    expect(Buffer.from(letter!.payload_b64!, 'base64').toString()).toBe(body);
    expect(letter!.subject).toBe('signals.enriched.risk');
    await vi.waitFor(async () => expect(await metricValue('orchestrator_dlq_total', { reason })).toBe(before + 1));

    const decisions = new DecisionLog(stack.js, `after-${reason}`);
    await decisions.start();
    await publish(signalSubject('momentum'), JSON.stringify({ corr_id: `after-${reason}`, agent_name: 'momentum', analysis: { momentum_strength: 0.1, confidence: 0.1, trend_direction: 'up' } }));
    await publish(signalSubject('risk'), JSON.stringify({ corr_id: `after-${reason}`, agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 1 } } }));
    await decisions.waitFor(1, 10_000);
    expect(decisions.byCorr.get(`after-${reason}`)![0]!.decision.action).toBe('monitor');
    decisions.stop();
  });

  it('an agent the orchestrator does not know is accepted and its analysis kept as sent', async () => {
    const decisions = new DecisionLog(stack.js, 'unknown-');
    await decisions.start();
    await publish(signalSubject('sentiment'), JSON.stringify({ corr_id: 'unknown-1', agent_name: 'sentiment', analysis: { mood: 'greedy', nested: { a: [1, 2] } } }));
    await publish(signalSubject('momentum'), JSON.stringify({ corr_id: 'unknown-1', agent_name: 'momentum', analysis: { momentum_strength: 0.3, confidence: 0.8, trend_direction: 'up' } }));
    await publish(signalSubject('risk'), JSON.stringify({ corr_id: 'unknown-1', agent_name: 'risk', analysis: { risk_level: 'medium', position_sizing: { recommended_size: 3 } } }));
    await decisions.waitFor(1, 10_000);
    const d = decisions.byCorr.get('unknown-1')![0]!;
    expect(d.agents_present).toEqual(['momentum', 'risk', 'sentiment']);
    expect(d.decision).toEqual({ action: 'trade', direction: 'up', size: 3, reason: 'high_confidence_momentum' });
    decisions.stop();
  });
});
