import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { latencySegments, segmentTable, type TraceRecord } from '../scripts/latency-segments.js';
import { main } from './cli.js';
import { LatencyLog } from './latency-log.js';
import { parseLoadOptions } from './options.js';

describe('latencySegments', () => {
  // Two decisions on one trace: a's first signal was read alone at 100.2; its last at 101.1.
  const trace: TraceRecord[] = [
    [100.2, 'nr', ['lt-0000000a-1']],
    [101.1, 'nr', ['lt-0000000a-1', 'lt-0000000a-2']],
    [101.2, 'rw', ['lt-0000000a-1', 'lt-0000000a-2']],
    [101.5, 'rr', []],
    [101.6, 'nw', ['lt-0000000a-1']],
    [101.7, 'nw', ['lt-0000000a-2']],
    [105.0, 'rw', ['lt-0000000a-1']], // its done-marker, after the publish: not the store
    [106.0, 'nr', ['lt-0000000a-3']], // decided from memory (no store): left out
    [106.5, 'nw', ['lt-0000000a-3']],
  ];
  const log = [
    { corr_id: 'lt-0000000a-1', sent_mono_ms: 101.0, latency_ms: 1.0 },
    { corr_id: 'lt-0000000a-2', sent_mono_ms: 100.9, latency_ms: 4.0 },
    { corr_id: 'lt-0000000a-3', sent_mono_ms: 105.9, latency_ms: 0.8 },
  ];

  it('splits each decision at its last signal read, its store, the next Redis answer and its publish', () => {
    const r = latencySegments(log, trace, 3);
    expect(r).toMatchObject({ decisions: 3, matched: 2 });
    const row = (name: string) => r.rows.find((x) => x.name === name)!;
    // a-1: bus in 0.1, js in 0.1, redis 0.3, js out 0.1, bus out 0.4; a-2: 0.2, 0.1, 0.3, 0.2, 3.2
    expect(row('bus in').mean).toBeCloseTo(0.15, 6);
    expect(row('js in').p50).toBeCloseTo(0.1, 6);
    expect(row('redis').p99).toBeCloseTo(0.3, 6);
    expect(row('js out').p90).toBeCloseTo(0.2, 6);
    expect(row('bus out').p99).toBeCloseTo(3.2, 6);
    expect(row('latency').p50).toBe(4.0);
    expect(r.slow.count).toBe(1);
    expect(r.slow.largest).toEqual({ 'bus in': 0, 'js in': 0, redis: 0, 'js out': 0, 'bus out': 1 });
    expect(segmentTable(r)).toContain('2 of 3 decisions matched');
  });
});

describe('--latency-log', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latency-log-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is an option of the Node driver', () => {
    const o = parseLoadOptions(['--latency-log', '/tmp/x.jsonl'], {});
    expect(o !== 'help' && o.latencyLog).toBe('/tmp/x.jsonl');
  });

  it('writes one line per decision, its send time on the monotonic clock other processes read', () => {
    const file = join(dir, 'log.jsonl');
    const log = new LatencyLog(file);
    const sent = performance.now();
    log.record('lt-0000000a-1', sent, 0.5);
    log.record('lt-0000000a-2', sent, 1.25);
    const hrNow = Number(process.hrtime.bigint()) / 1e6;
    log.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { corr_id: string; sent_mono_ms: number; latency_ms: number });
    expect(lines.map((l) => [l.corr_id, l.latency_ms])).toEqual([
      ['lt-0000000a-1', 0.5],
      ['lt-0000000a-2', 1.25],
    ]);
    expect(hrNow - lines[0]!.sent_mono_ms).toBeGreaterThanOrEqual(0);
    expect(hrNow - lines[0]!.sent_mono_ms).toBeLessThan(1_000);
  });

  it('a path the driver cannot write is a usage error (exit 2, not a failed run), named before any server starts', async () => {
    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      expect(await main(['--target', 'echo', '--k6', 'off', '--no-progress', '--latency-log', join(dir, 'missing-dir', 'log.jsonl')])).toBe(2);
    } finally {
      spy.mockRestore();
    }
    expect(lines.join('')).toMatch(/^--latency-log=".*missing-dir\/log.jsonl" cannot be written: ENOENT/);
  });

  it('names the file it cannot write', () => {
    expect(() => new LatencyLog(join(dir, 'missing-dir', 'log.jsonl'))).toThrow(/--latency-log=".*missing-dir\/log.jsonl" cannot be written/);
  });
});
