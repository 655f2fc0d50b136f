import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { NatsConnection } from '@nats-io/transport-node';
import { planCorrelation, seededRandom, signalJson, signalSubject, type PlannedSignal } from '../shared/synthetic.js';
import { EventHeap } from './event-heap.js';
import type { Infrastructure } from './infrastructure.js';
import type { LatencyLog } from './latency-log.js';
import { CorrelationLedger, type TrackedCorrelation } from './ledger.js';
import { connectDriver } from './nats-connect.js';
import type { LoadOptions } from './options.js';
import { ProcessSampler, type ProcessSample } from './probes.js';
import { ArrivalClock, profileFor, type LoadProfile, type ScheduledAction } from './scenarios.js';
import { coreSink, ensureSignalStream, jetStreamSink, subscribeDecisions, type SignalSink } from './signal-sink.js';
import { startTarget, type SystemUnderTest } from './targets/index.js';
import type { LatencySummary } from './histogram.js';

export interface TimelinePoint {
  /** Seconds since the load started. */
  readonly t: number;
  readonly started: number;
  readonly signals: number;
  /** Decisions received in the interval since the previous point. */
  readonly decided: number;
  /**
   * Decisions received since the load started (cumulative), at the same moment as the processes'
   * CPU samples: CPU per decision divides the CPU between two points by the difference of these.
   */
  readonly decided_total: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  readonly outstanding: number;
  readonly inflight: number;
  readonly publish_errors: number;
  /** Whole machine, percent of one core: includes other users of the CPU. */
  readonly machine_cpu_pct: number;
  readonly processes: Record<string, ProcessSample>;
}

export interface NodeRunResult {
  readonly runId: string;
  readonly seed: number;
  readonly loadSeconds: number;
  readonly totals: {
    readonly started: number;
    readonly published: number;
    readonly signals_sent: number;
    readonly publish_errors: number;
    readonly failed_correlations: number;
    readonly decided: number;
    readonly lost: number;
    readonly unfinished: number;
    readonly duplicates: number;
    readonly mismatches: number;
    readonly early: number;
    readonly foreign: number;
    readonly invalid: number;
  };
  readonly throughput: { readonly offered_per_sec: number; readonly decided_per_sec: number };
  readonly latency_ms: LatencySummary;
  readonly latency_from_intended_ms: LatencySummary;
  readonly schedule_lag_ms: LatencySummary;
  readonly phases: Record<string, LatencySummary>;
  readonly actions: ReadonlyArray<{ readonly t: number; readonly action: string; readonly outcome: string }>;
  readonly target_failures: readonly string[];
  readonly examples: {
    readonly lost: readonly string[];
    readonly duplicates: ReadonlyArray<{ corrId: string; detail: string }>;
    readonly mismatches: ReadonlyArray<{ corrId: string; detail: string }>;
    readonly publish_errors: readonly string[];
  };
  readonly timeline: readonly TimelinePoint[];
}

interface SignalEvent {
  readonly c: TrackedCorrelation;
  readonly signal: PlannedSignal;
  /** ms since the load started. */
  readonly at: number;
}

/** Resolves a wait early when kicked (a decision in closed loop, a free publish slot). */
class Waker {
  private resolve: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.resolve = resolve;
      this.timer = ms <= 0 ? undefined : setTimeout(() => this.kick(), ms);
      if (ms <= 0) setImmediate(() => this.kick());
    });
  }

  kick(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const r = this.resolve;
    this.resolve = undefined;
    r?.();
  }
}

const encoder = new TextEncoder();
/** Sends per loop turn before yielding to I/O, so that decisions are read even when behind. */
const BURST = 256;

export interface RunDeps {
  readonly infra: Infrastructure;
  readonly target: SystemUnderTest;
  readonly log: (line: string) => void;
  readonly progress: (line: string) => void;
  /** Where every measured decision is written (`--latency-log`), opened and closed by the caller. */
  readonly latencyLog?: LatencyLog;
}

/**
 * Runs the Node driver against a started infrastructure: starts the target, publishes the
 * scenario's correlations, collects decisions, waits the grace period and accounts for everything.
 */
export async function runNodeDriver(o: LoadOptions, deps: RunDeps): Promise<NodeRunResult> {
  const { infra, target, log, latencyLog } = deps;
  const profile = profileFor(o);
  const runId = randomBytes(4).toString('hex');
  const rand = seededRandom(o.seed);
  const failures: string[] = [];
  const actionsDone: Array<{ t: number; action: string; outcome: string }> = [];
  const connections: NatsConnection[] = [];
  let decisions: { close(): Promise<void> } | undefined;
  const timers: NodeJS.Timeout[] = [];

  try {
    const pubNc = await connectDriver(infra, 'loadtest-publisher');
    connections.push(pubNc);
    const subNc = await connectDriver(infra, 'loadtest-decisions');
    connections.push(subNc);
    const streamState = await ensureSignalStream(pubNc, o.stream);
    log(`stream ${o.stream}: ${streamState}`);

    await startTarget(target, infra, o.stream, log, failures);

    const waker = new Waker();
    const ledger = new CorrelationLedger(
      runId,
      profile.phases,
      profile.kind === 'closed' ? () => waker.kick() : undefined,
      latencyLog === undefined ? undefined : (c, latencyMs) => latencyLog.record(c.corrId, c.lastRequiredSentMs, latencyMs),
    );
    decisions = await subscribeDecisions(subNc, o.decisions, o.decisionStream, (data) => ledger.decision(data, performance.now()));
    const sink: SignalSink = o.publish === 'jetstream' ? jetStreamSink(pubNc, o.maxInflight) : coreSink(pubNc);
    const sampler = new ProcessSampler(() => [...infra.processes(), ...target.processes(), { label: 'driver', pid: process.pid }]);
    sampler.sample(performance.now());
    sampler.machineCpu(performance.now());

    const t0 = performance.now();
    const heap = new EventHeap<SignalEvent>();
    const timeline: TimelinePoint[] = [];
    let last = { started: 0, signals: 0, decided: 0, errors: 0 };
    let decidedAtWarmupEnd = o.warmupSec === 0 ? 0 : undefined;
    const tick = (print = true): void => {
      const now = performance.now();
      const t = Math.round((now - t0) / 100) / 10;
      const w = ledger.window;
      const point: TimelinePoint = {
        t,
        started: ledger.started - last.started,
        signals: ledger.signalsSent - last.signals,
        decided: ledger.decided - last.decided,
        decided_total: ledger.decided,
        p50_ms: round3(w.percentileMs(50)),
        p99_ms: round3(w.percentileMs(99)),
        max_ms: round3(w.maxMs),
        outstanding: ledger.outstanding,
        inflight: sink.inflight,
        publish_errors: ledger.publishErrors - last.errors,
        machine_cpu_pct: sampler.machineCpu(now),
        processes: sampler.sample(now),
      };
      w.reset();
      last = { started: ledger.started, signals: ledger.signalsSent, decided: ledger.decided, errors: ledger.publishErrors };
      timeline.push(point);
      if (o.progress && print) deps.progress(progressLine(point, ledger));
    };
    timers.push(setInterval(() => tick(), 1_000));
    if (o.warmupSec > 0) timers.push(setTimeout(() => (decidedAtWarmupEnd = ledger.decided), o.warmupSec * 1000));
    timers.push(setInterval(() => void sampler.scrape(), 5_000));
    void sampler.scrape();
    for (const a of profile.actions) timers.push(setTimeout(() => void runAction(a), a.atSec * 1000));

    async function runAction(a: ScheduledAction): Promise<void> {
      const t = Math.round((performance.now() - t0) / 100) / 10;
      const fn = a.action === 'scale-up' ? target.scaleUp : target.killOne;
      let outcome: string;
      try {
        outcome = fn === undefined ? `skipped: target ${target.name} cannot ${a.action}` : await fn.call(target);
      } catch (err) {
        outcome = `failed: ${(err as Error).message}`;
      }
      actionsDone.push({ t, action: a.action, outcome });
      log(`t=${t}s ${a.action}: ${outcome}`);
    }

    const startCorrelation = (atMs: number): void => {
      const plan = planCorrelation(rand, o.agents, o.jitterMs);
      const c = ledger.start(plan, t0 + atMs, profile.phaseAt(atMs / 1000));
      for (const signal of plan.signals) heap.push(atMs + signal.offsetMs, { c, signal, at: atMs + signal.offsetMs });
    };
    const send = (ev: SignalEvent): void => {
      const { c, signal } = ev;
      const data = encoder.encode(signalJson(c.corrId, signal, c.plan.instrument, new Date().toISOString()));
      const sentMs = performance.now();
      ledger.signalSent(c, signal.agent, t0 + ev.at, sentMs);
      sink.send(signalSubject(signal.agent), data, o.msgId ? `${c.corrId}:${signal.agent}` : undefined, (error) => {
        if (error === undefined) ledger.signalAccepted(c);
        else ledger.signalFailed(c, error);
      });
    };

    log(
      `run ${runId}: ${o.scenario} (${profile.kind} loop${profile.kind === 'open' ? `, ${o.rate}/s` : `, ${o.maxOutstanding} outstanding`}) for ${o.durationSec} s against ${target.name}`,
    );
    const durationMs = profile.durationSec * 1000;
    const arrivals = new ArrivalClock(profile);
    let nextStart = profile.kind === 'open' ? arrivals.next() : undefined;
    for (;;) {
      const now = performance.now() - t0;
      if (profile.kind === 'open') {
        while (nextStart !== undefined && nextStart * 1000 <= now) {
          startCorrelation(nextStart * 1000);
          nextStart = arrivals.next();
        }
      } else if (now < durationMs) {
        while (ledger.outstanding < o.maxOutstanding) startCorrelation(now);
      }
      let sent = 0;
      while (sent < BURST && heap.size > 0 && heap.peekKey()! <= now && !sink.full) {
        send(heap.pop()!);
        sent += 1;
      }
      const loadOver = profile.kind === 'open' ? nextStart === undefined : now >= durationMs;
      if (loadOver && heap.size === 0) break;
      if (sink.full) {
        await sink.slotFreed();
        continue;
      }
      if (sent === BURST) {
        await waker.wait(0);
        continue;
      }
      const nextAt = Math.min(
        heap.size > 0 ? heap.peekKey()! : Number.POSITIVE_INFINITY,
        nextStart !== undefined ? nextStart * 1000 : profile.kind === 'closed' && now < durationMs ? durationMs : Number.POSITIVE_INFINITY,
      );
      await waker.wait(Math.max(0, nextAt - (performance.now() - t0)));
    }
    const loadSeconds = (performance.now() - t0) / 1000;
    const decidedAtLoadEnd = ledger.decided;
    log(`load done after ${loadSeconds.toFixed(1)} s: waiting for PubAcks and up to ${o.graceSec} s for late decisions`);

    await sink.drain(30_000);
    const graceEnd = Date.now() + o.graceSec * 1000;
    while (Date.now() < graceEnd && (ledger.lost().length > 0 || ledger.unfinished() > 0)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    // A short extra wait catches duplicates that follow the last first decision.
    await new Promise((r) => setTimeout(r, Math.min(1_000, o.graceSec * 1000)));
    for (const t of timers) clearInterval(t);
    tick(false);

    const lost = ledger.lost();
    const measured = Math.max(0.001, loadSeconds - o.warmupSec);
    const phases: Record<string, LatencySummary> = {};
    for (const [name, h] of ledger.byPhase) if (h.count > 0) phases[name] = h.summary();
    return {
      runId,
      seed: o.seed,
      loadSeconds: round3(loadSeconds),
      totals: {
        started: ledger.started,
        published: ledger.published,
        signals_sent: ledger.signalsSent,
        publish_errors: ledger.publishErrors,
        failed_correlations: ledger.failedCorrelations,
        decided: ledger.decided,
        lost: lost.length,
        unfinished: ledger.unfinished(),
        duplicates: ledger.duplicates,
        mismatches: ledger.mismatches,
        early: ledger.early,
        foreign: ledger.foreign,
        invalid: ledger.invalid,
      },
      throughput: {
        offered_per_sec: round1(ledger.started / Math.max(0.001, loadSeconds)),
        decided_per_sec: round1((decidedAtLoadEnd - (decidedAtWarmupEnd ?? 0)) / measured),
      },
      latency_ms: ledger.latency.summary(),
      latency_from_intended_ms: ledger.latencyFromIntended.summary(),
      schedule_lag_ms: ledger.scheduleLag.summary(),
      phases,
      actions: actionsDone,
      target_failures: failures,
      examples: {
        lost: lost.slice(0, 10).map((c) => c.corrId),
        duplicates: ledger.duplicateExamples,
        mismatches: ledger.mismatchExamples,
        publish_errors: ledger.publishErrorExamples,
      },
      timeline,
    };
  } finally {
    for (const t of timers) clearInterval(t);
    await decisions?.close().catch(() => undefined);
    await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
    await target.close();
  }
}

function progressLine(p: TimelinePoint, ledger: Pick<CorrelationLedger, 'duplicates' | 'mismatches' | 'early' | 'publishErrors'>): string {
  const procs = Object.entries(p.processes)
    .map(([k, v]) => `${k} ${v.cpu_pct}%`)
    .join(' ');
  return (
    `[t=${p.t.toFixed(0).padStart(4)}s] started ${p.started}/s  decided ${p.decided}/s  p50 ${p.p50_ms.toFixed(2)} ms  p99 ${p.p99_ms.toFixed(2)} ms` +
    `  outstanding ${p.outstanding}  pubacks ${p.inflight}  dup ${ledger.duplicates}  mismatch ${ledger.mismatches + ledger.early}` +
    `  errors ${ledger.publishErrors}  cpu: ${procs}`
  );
}

const round1 = (v: number): number => Math.round(v * 10) / 10;
const round3 = (v: number): number => Math.round(v * 1000) / 1000;

export type { LoadProfile };
