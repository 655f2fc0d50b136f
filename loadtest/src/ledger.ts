import { checkDecision, seedDecision, type ExpectedDecision } from '../shared/seed-rules.js';
import { REQUIRED_AGENTS, type CorrelationPlan } from '../shared/synthetic.js';
import { LatencyHistogram } from './histogram.js';

/** One correlation the driver started, from its plan to its decision. */
export interface TrackedCorrelation {
  readonly corrId: string;
  readonly seq: number;
  readonly phase: string;
  readonly plan: CorrelationPlan;
  readonly expected: ExpectedDecision;
  /** performance.now() milliseconds. */
  readonly intendedStartMs: number;
  requiredLeft: number;
  signalsLeft: number;
  lastRequiredIntendedMs: number;
  lastRequiredSentMs: number;
  failed: boolean;
  decided: boolean;
}

export interface Example {
  readonly corrId: string;
  readonly detail: string;
}

const decoder = new TextDecoder();
const MAX_EXAMPLES = 10;

/**
 * Accounts for every correlation: published, decided once, decided as the seed rules say, in how
 * long. Latency is measured from the last *required* signal (momentum or risk, whichever went last):
 * that is the moment the seed can decide; a correlation agent's signal may follow the decision.
 */
export class CorrelationLedger {
  readonly prefix: string;
  private readonly open = new Map<string, TrackedCorrelation>();
  private decidedBySeq = new Uint8Array(1 << 16);
  private nextSeq = 0;

  started = 0;
  signalsSent = 0;
  /** Correlations whose every signal was accepted (PubAck, or handed to core NATS). */
  published = 0;
  publishErrors = 0;
  failedCorrelations = 0;
  decided = 0;
  duplicates = 0;
  mismatches = 0;
  /** Decisions that arrived before their required signals were all sent: a mismatch of another kind. */
  early = 0;
  /** Decisions for corr_ids of other runs or other publishers (ignored). */
  foreign = 0;
  /** Messages on the decision subject that are not JSON with a corr_id. */
  invalid = 0;

  /** From the last required signal's actual send (what the system under test did). */
  readonly latency = new LatencyHistogram();
  /** From its intended send time (coordinated-omission corrected: includes the driver's own lateness). */
  readonly latencyFromIntended = new LatencyHistogram();
  /** Actual − intended send time of every signal after warm-up. */
  readonly scheduleLag = new LatencyHistogram();
  readonly byPhase = new Map<string, LatencyHistogram>();
  /** Reset by whoever reports progress (one-second windows). */
  readonly window = new LatencyHistogram();

  readonly mismatchExamples: Example[] = [];
  readonly duplicateExamples: Example[] = [];
  readonly publishErrorExamples: string[] = [];

  constructor(
    runId: string,
    phases: readonly string[],
    private readonly onSettled?: (c: TrackedCorrelation) => void,
    /** Each decision measured after warm-up, with its latency from the last required signal's send. */
    private readonly onMeasured?: (c: TrackedCorrelation, latencyMs: number) => void,
  ) {
    this.prefix = `lt-${runId}-`;
    for (const p of phases) this.byPhase.set(p, new LatencyHistogram());
  }

  /** Correlations started and not decided yet (including those still being published). */
  get outstanding(): number {
    return this.open.size;
  }

  start(plan: CorrelationPlan, intendedStartMs: number, phase: string): TrackedCorrelation {
    const seq = this.nextSeq++;
    const required = plan.signals.filter((s) => REQUIRED_AGENTS.includes(s.agent)).length;
    const c: TrackedCorrelation = {
      corrId: `${this.prefix}${seq.toString(36)}`,
      seq,
      phase,
      plan,
      expected: seedDecision(plan.momentum, plan.risk),
      intendedStartMs,
      requiredLeft: required,
      signalsLeft: plan.signals.length,
      lastRequiredIntendedMs: intendedStartMs + plan.lastRequiredOffsetMs,
      lastRequiredSentMs: Number.NaN,
      failed: false,
      decided: false,
    };
    this.open.set(c.corrId, c);
    this.started += 1;
    return c;
  }

  signalSent(c: TrackedCorrelation, agent: string, intendedMs: number, sentMs: number): void {
    this.signalsSent += 1;
    if (c.phase !== 'warmup') this.scheduleLag.recordMs(sentMs - intendedMs);
    if (REQUIRED_AGENTS.includes(agent)) {
      c.requiredLeft -= 1;
      if (c.requiredLeft === 0) c.lastRequiredSentMs = sentMs;
    }
  }

  signalAccepted(c: TrackedCorrelation): void {
    c.signalsLeft -= 1;
    if (c.signalsLeft === 0 && !c.failed) this.published += 1;
  }

  signalFailed(c: TrackedCorrelation, error: string): void {
    this.publishErrors += 1;
    if (this.publishErrorExamples.length < MAX_EXAMPLES) this.publishErrorExamples.push(`${c.corrId}: ${error}`);
    c.signalsLeft -= 1;
    if (!c.failed) {
      c.failed = true;
      this.failedCorrelations += 1;
      // Not counted as lost: the driver could not publish it. Settled so a closed loop moves on.
      if (!c.decided) {
        this.open.delete(c.corrId);
        this.onSettled?.(c);
      }
    }
  }

  /** A message from the decision subject, as received at nowMs (performance.now()). */
  decision(body: Uint8Array | string, nowMs: number): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(typeof body === 'string' ? body : decoder.decode(body));
    } catch {
      this.invalid += 1;
      return;
    }
    const corrId = (parsed as { corr_id?: unknown } | null)?.corr_id;
    if (typeof corrId !== 'string') {
      this.invalid += 1;
      return;
    }
    if (!corrId.startsWith(this.prefix)) {
      this.foreign += 1;
      return;
    }
    const seq = Number.parseInt(corrId.slice(this.prefix.length), 36);
    if (!Number.isInteger(seq) || seq < 0 || seq >= this.nextSeq) {
      this.foreign += 1;
      return;
    }
    if (seq >= this.decidedBySeq.length) {
      const grown = new Uint8Array(Math.max(seq + 1, this.decidedBySeq.length * 2));
      grown.set(this.decidedBySeq);
      this.decidedBySeq = grown;
    }
    const times = this.decidedBySeq[seq]!;
    if (times < 255) this.decidedBySeq[seq] = times + 1;
    if (times > 0) {
      this.duplicates += 1;
      if (this.duplicateExamples.length < MAX_EXAMPLES) this.duplicateExamples.push({ corrId, detail: `decided ${times + 1} times` });
      return;
    }
    this.decided += 1;
    const c = this.open.get(corrId);
    if (c === undefined) return; // a publish of it failed and it was settled; it was decided anyway
    c.decided = true;
    this.open.delete(corrId);
    if (c.requiredLeft > 0) {
      this.early += 1;
      this.noteMismatch(corrId, 'decided before all its required signals were published');
    } else {
      const mismatch = checkDecision(c.expected, parsed);
      if (mismatch !== undefined) {
        this.mismatches += 1;
        this.noteMismatch(corrId, mismatch);
      }
      const fromSent = nowMs - c.lastRequiredSentMs;
      const fromIntended = nowMs - c.lastRequiredIntendedMs;
      this.window.recordMs(fromSent);
      if (c.phase !== 'warmup') {
        this.latency.recordMs(fromSent);
        this.latencyFromIntended.recordMs(fromIntended);
        this.onMeasured?.(c, fromSent);
      }
      this.byPhase.get(c.phase)?.recordMs(fromSent);
    }
    this.onSettled?.(c);
  }

  /** Correlations fully published and never decided. */
  lost(): TrackedCorrelation[] {
    const out: TrackedCorrelation[] = [];
    for (const c of this.open.values()) if (!c.failed && c.signalsLeft === 0 && c.requiredLeft === 0) out.push(c);
    return out;
  }

  /** Correlations whose publishing had not finished when the run ended (neither lost nor decided). */
  unfinished(): number {
    let n = 0;
    for (const c of this.open.values()) if (!c.failed && (c.signalsLeft > 0 || c.requiredLeft > 0)) n += 1;
    return n;
  }

  private noteMismatch(corrId: string, detail: string): void {
    if (this.mismatchExamples.length < MAX_EXAMPLES) this.mismatchExamples.push({ corrId, detail });
  }
}
