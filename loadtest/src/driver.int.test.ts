import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { NatsServer, RedisServer } from '@at-orchestrator/local-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDecision } from '../shared/seed-rules.js';
import { main } from './cli.js';

/** The CLI end to end, short runs: what CI's smoke variant asserts (0 lost, 0 duplicates), never timings. */
describe('load driver', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loadtest-int-'));
  const result = (name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as {
    ok: boolean;
    problems: string[];
    driver: string;
    machine: { cpus: number; nats_server?: string };
    result: { totals: Record<string, number>; latency_ms: { count: number }; timeline: unknown[] };
  };

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('steady against the seed baseline on private servers: every correlation decided once, as the seed rules say', async () => {
    const code = await main(['--scenario', 'steady', '--rate', '150', '--duration', '3', '--warmup', '1', '--agents', 'mix', '--grace', '5', '--no-progress', '--out', join(dir, 'steady.json')]);
    const r = result('steady.json');
    expect(r.problems).toEqual([]);
    expect(code).toBe(0);
    expect(r.driver).toBe('node');
    expect(r.result.totals.started).toBeGreaterThanOrEqual(440);
    expect(r.result.totals.decided).toBe(r.result.totals.started);
    expect(r.result.totals).toMatchObject({ lost: 0, duplicates: 0, mismatches: 0, early: 0, publish_errors: 0 });
    expect(r.result.latency_ms.count).toBeGreaterThan(250);
    expect(r.result.timeline.length).toBeGreaterThanOrEqual(3);
    expect(r.machine.nats_server).toMatch(/nats-server/);
  });

  it('max (closed loop) with core publish', async () => {
    const code = await main(['--scenario', 'max', '--duration', '2', '--warmup', '0', '--max-outstanding', '20', '--publish', 'core', '--grace', '5', '--no-progress', '--out', join(dir, 'max.json')]);
    const r = result('max.json');
    expect(r.problems).toEqual([]);
    expect(code).toBe(0);
    expect(r.result.totals.decided).toBeGreaterThan(100);
  });

  it('market open with k6 present: runs the k6 script with the WebSocket URL and reads its summary (a stand-in k6 binary)', async () => {
    const fakeK6 = join(dir, 'k6');
    writeFileSync(
      fakeK6,
      `#!${process.execPath}
const fs = require('fs');
if (process.argv[2] === 'version') { console.log('k6 v1.0.0 (stand-in)'); process.exit(0); }
const e = process.env;
fs.writeFileSync(e.SUMMARY_PATH, JSON.stringify({ run_id: e.RUN_ID, correlations_published: 5, decided: 5, lost: 0, duplicates: 0, mismatches: 0,
  publish_errors: 0, publish_error_rate: 0, latency_ms: {}, thresholds_ok: true,
  seen: { args: process.argv.slice(2), ws: e.NATS_WS_URL, rate: e.RATE, pre: e.PRE_SEC, ramp: e.RAMP_SEC, post: e.POST_SEC, factor: e.RAMP_FACTOR, noUsageReport: e.K6_NO_USAGE_REPORT } }));
setTimeout(() => process.exit(0), 2500);
`,
    );
    chmodSync(fakeK6, 0o755);
    process.env.K6_BIN = fakeK6;
    try {
      const code = await main(['--scenario', 'market-open', '--rate', '50', '--pre', '1', '--ramp', '2', '--post', '1', '--scale-at', '0', '--out', join(dir, 'k6.json')]);
      const r = JSON.parse(readFileSync(join(dir, 'k6.json'), 'utf8')) as {
        driver: string;
        ok: boolean;
        machine: { k6: string };
        result: { summary: { seen: Record<string, unknown> }; actions: Array<{ action: string; outcome: string }>; timeline: unknown[] };
      };
      expect(code).toBe(0);
      expect(r.driver).toBe('k6');
      expect(r.machine.k6).toMatch(/stand-in/);
      expect(r.result.summary.seen).toMatchObject({
        args: ['run', 'k6/market-open.ts'],
        ws: expect.stringMatching(/^ws:\/\/127\.0\.0\.1:\d+$/),
        rate: '50',
        pre: '1',
        ramp: '2',
        post: '1',
        factor: '10',
        noUsageReport: 'true',
      });
      expect(r.result.actions).toEqual([{ t: expect.any(Number), action: 'scale-up', outcome: 'skipped: target baseline cannot scale-up' }]);
      expect(r.result.timeline.length).toBeGreaterThanOrEqual(1);
    } finally {
      delete process.env.K6_BIN;
    }
  });

  describe('against a faulty orchestrator on given servers', () => {
    let nats: NatsServer;
    let redis: RedisServer;
    let nc: NatsConnection;

    beforeAll(async () => {
      [nats, redis] = await Promise.all([NatsServer.start(), RedisServer.start()]);
      nc = await connect({ servers: nats.url });
      // Decides every correlation twice, and never decides one in ten.
      const seen = new Map<string, Record<string, { analysis: never }>>();
      let n = 0;
      nc.subscribe('signals.enriched.*', {
        callback: (_e, m) => {
          const s = m.json<{ corr_id: string; agent_name: string; analysis: never }>();
          const entry = seen.get(s.corr_id) ?? {};
          entry[s.agent_name] = s;
          seen.set(s.corr_id, entry);
          if (entry.momentum !== undefined && entry.risk !== undefined && !('done' in entry)) {
            (entry as Record<string, unknown>).done = true;
            n += 1;
            if (n % 10 === 0) return;
            const { confidence, ...decision } = seedDecision(entry.momentum.analysis, entry.risk.analysis);
            const body = JSON.stringify({ corr_id: s.corr_id, decision, confidence });
            nc.publish('orchestrated.decision', body);
            nc.publish('orchestrated.decision', body);
          }
        },
      });
      await nc.flush();
    });

    afterAll(async () => {
      await nc?.close();
      await Promise.all([nats?.dispose(), redis?.dispose()]);
    });

    it('reports lost and duplicate decisions and exits 1', async () => {
      const code = await main([
        '--servers', 'given', '--nats-url', nats.url, '--redis-url', redis.url, '--target', 'none',
        '--rate', '100', '--duration', '2', '--warmup', '0', '--grace', '1', '--no-progress', '--out', join(dir, 'faulty.json'),
      ]);
      const r = result('faulty.json');
      expect(code).toBe(1);
      expect(r.ok).toBe(false);
      const t = r.result.totals;
      expect(t.lost).toBe(Math.floor(t.started! / 10));
      expect(t.duplicates).toBe(t.decided);
      expect(t.mismatches).toBe(0);
      expect(r.problems.join('\n')).toMatch(/lost/);
    });
  });
});
