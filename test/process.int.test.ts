import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisKeys, signalSubject } from '@at-orchestrator/contracts';
import { CLEAN_MIX, SimulatedAgents, makeCorrelation, seededRandom } from '@at-orchestrator/sim';
import { DecisionLog, Stack, WorkerProcess } from './helpers/stack.js';

let stack: Stack;

beforeAll(async () => {
  stack = await Stack.start();
});

afterAll(async () => {
  await stack?.stop();
});

describe('at-orchestrator worker as a process', () => {
  it('a bad environment value stops it with exit code 2 and one line naming the variable', async () => {
    const wp = WorkerProcess.spawn(stack.env({ MIN_AGENTS_REQUIRED: 'abc' }));
    expect(await wp.exited()).toBe(2);
    expect(wp.output.join('\n')).toMatch(/^at-orchestrator: invalid configuration: MIN_AGENTS_REQUIRED="abc" is not valid: expected an integer from 1 to 64$/m);

    const profile = WorkerProcess.spawn(stack.env({ PROFILE: 'turbo' }));
    expect(await profile.exited()).toBe(2);
    expect(profile.output.join('\n')).toContain('PROFILE="turbo" is not valid: expected one of simple, workflow, high-frequency');
  });

  it('never echoes a secret from a bad URL', async () => {
    const wp = WorkerProcess.spawn(stack.env({ REDIS_URL: 'http://admin:hunter2@redis:6379' }));
    expect(await wp.exited()).toBe(2);
    const out = wp.output.join('\n');
    expect(out).toContain('REDIS_URL=(value hidden) is not valid');
    expect(out).not.toContain('hunter2');
  });

  it('serves /health, /ready and /metrics with the seed fields and metric names, and drains on SIGTERM with exit 0', async () => {
    const env = stack.env({ HTTP_PORT: '0', REDIS_KEY_PREFIX: 'health' });
    const wp = await WorkerProcess.started(env);
    const port = JSON.parse(wp.output.find((l) => l.includes('"http_port"'))!).http_port as number;
    const base = `http://127.0.0.1:${port}`;

    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    const body = (await health.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'healthy', orchestrator_type: 'simple', nats_connected: true, redis_connected: true, active_correlations: 0 });
    expect(typeof body.uptime_seconds).toBe('number');
    expect((await fetch(`${base}/ready`)).status).toBe(200);

    // One decision so that every labelled series exists.
    const decisions = new DecisionLog(stack.js, 'health-');
    await decisions.start();
    const agents = new SimulatedAgents(stack.nc);
    await agents.publishCorrelation(makeCorrelation('health-1', seededRandom(1), CLEAN_MIX));
    await decisions.waitFor(1, 10_000);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const name of [
      'orchestrator_signals_received_total{',
      'orchestrator_decisions_made_total{',
      'orchestrator_correlation_timeout_total',
      'orchestrator_state_operations_total{',
      'orchestrator_decision_latency_seconds_bucket',
      'orchestrator_dlq_total',
      'orchestrator_duplicate_signals_total',
    ]) {
      expect(metrics).toContain(name);
    }
    expect(metrics).toMatch(/orchestrator_signals_received_total\{[^}]*agent="momentum"[^}]*\} 1/);
    expect(metrics).toMatch(/orchestrator_state_operations_total\{[^}]*operation="store"[^}]*\} 2/);
    decisions.stop();

    // Its embedded coordinator's console is served on the same port, with the worker's own figures.
    await vi.waitFor(
      async () => {
        const snapshot = (await (await fetch(`${base}/console/api/snapshot`)).json()) as { leader: { id: string } | null; workers: Array<{ decided: number | null }>; status: { console_url: string } | null };
        expect(snapshot.leader).not.toBeNull();
        expect(snapshot.workers.map((w) => w.decided)).toEqual([1]);
        expect(snapshot.status?.console_url).toMatch(new RegExp(`:${port}/console$`));
      },
      { timeout: 10_000, interval: 100 },
    );
    expect((await fetch(`${base}/console`)).headers.get('content-security-policy')).toContain("script-src 'self'");

    const started = Date.now();
    wp.kill('SIGTERM');
    expect(await wp.exited()).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(wp.output.some((l) => l.includes('"msg":"shutdown complete"'))).toBe(true);
  });

  it('killed with SIGKILL mid-load and restarted: every correlation is decided exactly once', async () => {
    // ack-wait well inside the decision timeout: signals the dead worker held come back in time.
    const env = stack.env({
      REDIS_KEY_PREFIX: 'kill',
      ACK_WAIT_SEC: '2',
      DECISION_TIMEOUT_SEC: '10',
      STATE_TTL_SECONDS: '60',
      // The embedded coordinator of the killed process holds its lease until it expires.
      HEARTBEAT_INTERVAL_MS: '300',
      WORKER_LEASE_MS: '1500',
      LEADER_LEASE_MS: '1500',
    });
    const prefix = 'kill-';
    const decisions = new DecisionLog(stack.js, prefix);
    await decisions.start();
    let wp = await WorkerProcess.started(env);
    const agents = new SimulatedAgents(stack.nc);
    const total = 1500;
    const publishing = agents.run({ rate: 500, count: total, seed: 7, mix: { ...CLEAN_MIX, jitterMs: 5 }, prefix: 'kill' });
    await decisions.waitFor(300, 20_000);
    wp.kill('SIGKILL');
    expect(await wp.exited()).toBe(null);
    wp = await WorkerProcess.started({ ...env, WORKER_ID: `${env.WORKER_ID}-b` });
    await publishing;
    expect(agents.published).toBe(total);
    await decisions.waitFor(total, 60_000);
    expect(decisions.byCorr.size).toBe(total);
    expect(decisions.duplicates()).toEqual([]);
    for (const [, [d]] of decisions.byCorr) expect(d!.status).toBe('complete');
    wp.kill('SIGTERM');
    expect(await wp.exited()).toBe(0);
    decisions.stop();
  });

  it('open correlations survive a restart: resumed from Redis with their deadline', async () => {
    const env = stack.env({ REDIS_KEY_PREFIX: 'resume', DECISION_TIMEOUT_SEC: '5', STATE_TTL_SECONDS: '60', ACK_WAIT_SEC: '1' });
    const decisions = new DecisionLog(stack.js, 'resume-');
    await decisions.start();
    let wp = await WorkerProcess.started(env);
    const enc = new TextEncoder();
    await stack.js.publish(signalSubject('momentum'), enc.encode(JSON.stringify({ corr_id: 'resume-1', agent_name: 'momentum', analysis: { momentum_strength: 1, confidence: 0.9, trend_direction: 'up' } })));
    await stack.js.publish(signalSubject('risk'), enc.encode(JSON.stringify({ corr_id: 'resume-2', agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 4 } } })));
    // Stored (and acked) before the stop: the worker says so at debug level only, so wait on Redis itself.
    const { Redis } = await import('ioredis');
    const redis = new Redis(stack.redis.url);
    const keys = new RedisKeys('resume');
    const stored = async (): Promise<boolean> => (await redis.exists(keys.signals('resume-1'), keys.signals('resume-2'))) === 2;
    while (!(await stored())) await new Promise((r) => setImmediate(r));
    wp.kill('SIGTERM');
    expect(await wp.exited()).toBe(0);
    wp = await WorkerProcess.started(env);
    await stack.js.publish(signalSubject('risk'), enc.encode(JSON.stringify({ corr_id: 'resume-1', agent_name: 'risk', analysis: { risk_level: 'low', position_sizing: { recommended_size: 9 } } })));
    await decisions.waitFor(2, 15_000);
    expect(decisions.byCorr.get('resume-1')![0]!.decision).toEqual({ action: 'trade', direction: 'up', size: 9, reason: 'high_confidence_momentum' });
    const partial = decisions.byCorr.get('resume-2')![0]!;
    expect(partial.status).toBe('partial');
    expect(partial.latency_ms).toBeGreaterThanOrEqual(4900);
    expect(partial.latency_ms).toBeLessThan(9000); // the deadline counts from the first signal, before the restart
    await redis.quit();
    wp.kill('SIGTERM');
    expect(await wp.exited()).toBe(0);
    decisions.stop();
  });
});
