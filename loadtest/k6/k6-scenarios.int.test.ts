import { NatsServer, RedisServer } from '@at-orchestrator/local-servers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SimpleOrchestrator } from '../baseline/seed-orchestrator.js';

/**
 * k6 cannot be installed here, so the scenario code (common.ts: publisher iterations, decision
 * collector, summary) runs under Node with k6's modules stood in for: k6/websockets over `ws`,
 * k6/timers over Node's timers, k6/metrics recording in memory. Against a real nats-server
 * (WebSocket listener) and the seed baseline.
 */

interface Sample {
  readonly value: number;
  readonly tags: Record<string, string> | undefined;
}
const recorded = vi.hoisted(() => new Map<string, { kind: string; samples: Sample[] }>());

vi.mock('k6/metrics', () => {
  class Metric {
    constructor(
      readonly name: string,
      kind: string,
    ) {
      recorded.set(name, { kind, samples: [] });
    }
    add(value: number | boolean, tags?: Record<string, string>): void {
      recorded.get(this.name)!.samples.push({ value: Number(value), tags });
    }
  }
  return {
    Counter: class extends Metric {
      constructor(name: string) {
        super(name, 'counter');
      }
    },
    Rate: class extends Metric {
      constructor(name: string) {
        super(name, 'rate');
      }
    },
    Trend: class extends Metric {
      constructor(name: string) {
        super(name, 'trend');
      }
    },
  };
});

vi.mock('k6/timers', () => ({
  setTimeout: (fn: () => void, ms: number) => globalThis.setTimeout(fn, ms),
  clearTimeout: (t: NodeJS.Timeout) => globalThis.clearTimeout(t),
  setInterval: (fn: () => void, ms: number) => globalThis.setInterval(fn, ms),
  clearInterval: (t: NodeJS.Timeout) => globalThis.clearInterval(t),
}));

const sockets = vi.hoisted(() => ({ opened: 0, open: 0 }));
vi.mock('k6/websockets', async () => {
  const { default: WS } = await import('ws');
  /** The part of k6's browser-like WebSocket that nats.ts uses. */
  class WebSocket {
    binaryType: 'blob' | 'arraybuffer' = 'blob';
    onmessage: ((e: { data: ArrayBuffer | string }) => void) | undefined;
    onclose: (() => void) | undefined;
    onerror: ((e: { error: string }) => void) | undefined;
    private readonly ws: InstanceType<typeof WS>;
    constructor(url: string) {
      sockets.opened += 1;
      sockets.open += 1;
      this.ws = new WS(url);
      this.ws.binaryType = 'arraybuffer';
      this.ws.on('message', (data: ArrayBuffer, isBinary: boolean) =>
        this.onmessage?.({ data: isBinary ? data : Buffer.from(data).toString() }),
      );
      this.ws.on('close', () => {
        sockets.open -= 1;
        this.onclose?.();
      });
      this.ws.on('error', (err) => this.onerror?.({ error: err.message }));
    }
    send(data: ArrayBuffer): void {
      this.ws.send(data);
    }
    close(code?: number): void {
      this.ws.close(code);
    }
  }
  return { WebSocket };
});

function summaryData(): { metrics: Record<string, { values: Record<string, number> }> } {
  const metrics: Record<string, { values: Record<string, number> }> = {};
  const trend = (xs: number[]): Record<string, number> => {
    const s = [...xs].sort((a, b) => a - b);
    const p = (q: number): number => s[Math.max(0, Math.ceil((q / 100) * s.length) - 1)] ?? 0;
    return { count: s.length, avg: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length), min: s[0] ?? 0, max: s[s.length - 1] ?? 0, med: p(50), 'p(50)': p(50), 'p(90)': p(90), 'p(95)': p(95), 'p(99)': p(99), 'p(99.9)': p(99.9) };
  };
  for (const [name, m] of recorded) {
    const xs = m.samples.map((s) => s.value);
    if (m.kind === 'counter') metrics[name] = { values: { count: xs.reduce((a, b) => a + b, 0) } };
    else if (m.kind === 'rate') {
      const passes = xs.filter((x) => x !== 0).length;
      metrics[name] = { values: { passes, fails: xs.length - passes, rate: xs.length === 0 ? 0 : passes / xs.length } };
    } else {
      metrics[name] = { values: trend(xs) };
      const phases = new Set(m.samples.map((s) => s.tags?.phase).filter((p): p is string => p !== undefined));
      for (const phase of phases) metrics[`${name}{phase:${phase}}`] = { values: trend(m.samples.filter((s) => s.tags?.phase === phase).map((s) => s.value)) };
    }
  }
  return { metrics };
}

describe('k6 scenario code (k6 modules stood in for) against nats-server and the seed baseline', () => {
  let nats: NatsServer;
  let redis: RedisServer;
  let orchestrator: SimpleOrchestrator;

  beforeAll(async () => {
    [nats, redis] = await Promise.all([NatsServer.start({ websocket: true }), RedisServer.start()]);
    orchestrator = new SimpleOrchestrator({ natsUrl: nats.url, redisUrl: redis.url, stream: 'trading-events', durable: 'orchestrator-consumer', verbose: false, metricsPort: undefined });
    await orchestrator.start();
  });

  afterAll(async () => {
    await orchestrator?.close();
    await Promise.all([nats?.dispose(), redis?.dispose()]);
  });

  it('publishes correlations with HPUB, collects every decision once, checks them, and summarises', async () => {
    (globalThis as Record<string, unknown>).__ENV = {
      NATS_WS_URL: nats.wsUrl,
      RUN_ID: 'itest',
      AGENTS: 'mix',
      JITTER_MS: '3',
      GRACE_SEC: '1',
      SUMMARY_PATH: 'results/k6-itest.json',
    };
    const errors: unknown[] = [];
    vi.spyOn(console, 'warn').mockImplementation((...a: unknown[]) => void errors.push(a));
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errors.push(a));
    const common = await import('./common.js');
    const cfg = common.readConfig({ rate: 100, durationSec: 1, warmupSec: 0 });
    common.collectDecisions(cfg, cfg.durationSec, (t) => (t < 0.5 ? 'first' : 'second'));
    // As the arrival-rate executor would: one iteration per correlation, 10 ms apart, from PUBLISH_START_SEC.
    await new Promise((r) => setTimeout(r, common.PUBLISH_START_SEC * 1000));
    for (let i = 0; i < 100; i += 1) {
      common.publishCorrelation(cfg);
      await new Promise((r) => setTimeout(r, 10));
    }
    // The collector closes itself after the publish time and the grace period.
    await vi.waitFor(() => expect(sockets.open).toBe(0), { timeout: 15_000, interval: 100 });
    const out = common.summarise(cfg, 'itest', summaryData(), ['first', 'second']);
    const summary = JSON.parse(out['results/k6-itest.json']!) as Record<string, unknown>;
    expect(summary).toMatchObject({
      correlations_published: 100,
      decided: 100,
      lost: 0,
      duplicates: 0,
      mismatches: 0,
      publish_errors: 0,
      publish_error_rate: 0,
      thresholds_ok: true,
    });
    expect((summary.latency_ms as { count: number }).count).toBe(100);
    expect(Object.keys(summary.latency_by_phase_ms as object).sort()).toEqual(['first', 'second']);
    expect(sockets.opened).toBe(101); // one per correlation, one collector
    expect(out.stdout).toMatch(/published 100, decided 100, lost 0/);
    expect(errors).toEqual([]);
  });
});
