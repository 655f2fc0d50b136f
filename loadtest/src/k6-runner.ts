import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import type { Infrastructure } from './infrastructure.js';
import { connectDriver } from './nats-connect.js';
import type { LoadOptions, ScenarioName } from './options.js';
import { ProcessSampler } from './probes.js';
import type { TimelinePoint } from './run.js';
import { profileFor } from './scenarios.js';
import { ensureSignalStream } from './signal-sink.js';
import { LOADTEST_DIR } from './package-dir.js';
import { startTarget, type SystemUnderTest } from './targets/index.js';

/** Scenarios that have a k6 script; the driver runs them with k6 when a binary is found. */
export const K6_SCRIPTS: Partial<Record<ScenarioName, string>> = {
  soak: 'k6/soak.ts',
  'market-open': 'k6/market-open.ts',
};

/** K6_BIN when set, else `k6` on PATH. */
export function findK6(env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  const candidates = env.K6_BIN !== undefined && env.K6_BIN !== '' ? [env.K6_BIN] : (env.PATH ?? '').split(delimiter).map((d) => join(d, 'k6'));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return undefined;
}

/** What loadtest/k6/common.ts writes from handleSummary. */
export interface K6Summary {
  readonly run_id: string;
  readonly correlations_published: number;
  readonly decided: number;
  readonly lost: number;
  readonly duplicates: number;
  readonly mismatches: number;
  readonly publish_error_rate: number;
  readonly publish_errors: number;
  readonly latency_ms: Record<string, number>;
  readonly thresholds_ok: boolean;
  readonly [key: string]: unknown;
}

export interface K6RunResult {
  readonly runId: string;
  readonly exitCode: number | null;
  readonly script: string;
  readonly summary: K6Summary | undefined;
  readonly actions: ReadonlyArray<{ t: number; action: string; outcome: string }>;
  readonly target_failures: readonly string[];
  readonly timeline: readonly TimelinePoint[];
}

export function k6Env(o: LoadOptions, wsUrl: string, runId: string, summaryPath: string): Record<string, string> {
  return {
    NATS_WS_URL: wsUrl,
    RUN_ID: runId,
    RATE: String(o.rate),
    DURATION_SEC: String(o.durationSec),
    WARMUP_SEC: String(o.warmupSec),
    PRE_SEC: String(o.preSec),
    RAMP_SEC: String(o.rampSec),
    POST_SEC: String(o.postSec),
    RAMP_FACTOR: String(o.rampFactor),
    AGENTS: String(o.agents),
    JITTER_MS: String(o.jitterMs),
    GRACE_SEC: String(o.graceSec),
    SUMMARY_PATH: summaryPath,
    // k6 would otherwise report usage over the network.
    K6_NO_USAGE_REPORT: 'true',
  };
}

/**
 * Runs a scenario's k6 script against the infrastructure's WebSocket listener, while the driver
 * starts the target, samples processes and performs the scenario's actions (scale-up mid-ramp).
 */
export async function runK6Scenario(
  o: LoadOptions,
  bin: string,
  summaryPath: string,
  deps: { infra: Infrastructure; target: SystemUnderTest; log: (line: string) => void },
): Promise<K6RunResult> {
  const { infra, target, log } = deps;
  const script = K6_SCRIPTS[o.scenario];
  if (script === undefined) throw new Error(`no k6 script for scenario ${o.scenario}`);
  const wsUrl = infra.natsWsUrl;
  if (wsUrl === undefined) throw new Error('k6 needs NATS over WebSocket: use --servers private, or pass --nats-ws-url');
  const runId = randomBytes(4).toString('hex');
  const failures: string[] = [];
  const actions: Array<{ t: number; action: string; outcome: string }> = [];
  const timers: NodeJS.Timeout[] = [];
  // k6 itself speaks NATS over a plain WebSocket; its setup connection uses the run's credentials.
  const nc = await connectDriver(infra, 'loadtest-k6-setup');
  try {
    await ensureSignalStream(nc, o.stream);
    await startTarget(target, infra, o.stream, log, failures);
    const sampler = new ProcessSampler(() => [...infra.processes(), ...target.processes()]);
    const timeline: TimelinePoint[] = [];
    const t0 = performance.now();
    sampler.sample(t0);
    sampler.machineCpu(t0);
    timers.push(
      setInterval(() => {
        const now = performance.now();
        timeline.push({
          t: Math.round((now - t0) / 100) / 10,
          started: 0,
          signals: 0,
          decided: 0,
          decided_total: 0,
          p50_ms: 0,
          p99_ms: 0,
          max_ms: 0,
          outstanding: 0,
          inflight: 0,
          publish_errors: 0,
          machine_cpu_pct: sampler.machineCpu(now),
          processes: sampler.sample(now),
        });
      }, 1_000),
    );
    timers.push(setInterval(() => void sampler.scrape(), 5_000));
    // The k6 script starts publishing 2 s after it starts (the decision collector subscribes first).
    const publishStartSec = 2;
    for (const a of profileFor(o).actions) {
      timers.push(
        setTimeout(async () => {
          const fn = a.action === 'scale-up' ? target.scaleUp : target.killOne;
          let outcome: string;
          try {
            outcome = fn === undefined ? `skipped: target ${target.name} cannot ${a.action}` : await fn.call(target);
          } catch (err) {
            outcome = `failed: ${(err as Error).message}`;
          }
          const t = Math.round((performance.now() - t0) / 100) / 10;
          actions.push({ t, action: a.action, outcome });
          log(`t=${t}s ${a.action}: ${outcome}`);
        }, (a.atSec + publishStartSec) * 1000),
      );
    }
    log(`k6 run ${script} (run ${runId})`);
    const child = spawn(bin, ['run', script], {
      cwd: LOADTEST_DIR,
      env: { ...process.env, ...k6Env(o, wsUrl, runId, summaryPath) },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const exitCode = await new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', (err) => {
        log(`k6 failed to start: ${err.message}`);
        resolve(-1);
      });
    });
    for (const t of timers) clearInterval(t);
    const summary = existsSync(summaryPath) ? (JSON.parse(readFileSync(summaryPath, 'utf8')) as K6Summary) : undefined;
    return { runId, exitCode, script, summary, actions, target_failures: failures, timeline };
  } finally {
    for (const t of timers) clearInterval(t);
    await nc.close().catch(() => undefined);
    await target.close();
  }
}

export function k6Problems(r: K6RunResult): string[] {
  const problems: string[] = [];
  if (r.summary === undefined) problems.push(`k6 wrote no summary (exit code ${r.exitCode})`);
  else {
    if (r.summary.lost > 0) problems.push(`${r.summary.lost} correlation(s) lost`);
    if (r.summary.duplicates > 0) problems.push(`${r.summary.duplicates} duplicate decision(s)`);
    if (r.summary.mismatches > 0) problems.push(`${r.summary.mismatches} decision(s) differ from the seed rules`);
    if (!r.summary.thresholds_ok) problems.push('k6 thresholds failed');
  }
  if (r.exitCode !== 0) problems.push(`k6 exited with code ${r.exitCode}`);
  for (const f of r.target_failures) problems.push(`target: ${f.split('\n')[0]}`);
  return problems;
}
