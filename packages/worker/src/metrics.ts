import { DECISION_LATENCY_BUCKETS } from '@at-orchestrator/contracts';
import { Counter, Gauge, Histogram, type Registry } from '@at-orchestrator/runtime';

/**
 * The worker's metrics. The first five carry the seed's names and labels exactly: dashboards and
 * alerts of the platform already use them.
 */
export class WorkerMetrics {
  readonly signalsReceived: Counter<'agent'>;
  readonly decisionsMade: Counter<'type'>;
  readonly correlationTimeouts: Counter;
  readonly stateOperations: Counter<'operation'>;
  readonly decisionLatency: Histogram;

  readonly stateFailures: Counter<'operation'>;
  readonly deadLetters: Counter<'reason'>;
  readonly duplicateSignals: Counter;
  readonly lateSignals: Counter;
  readonly fencedWrites: Counter;
  readonly suppressedDecisions: Counter<'reason'>;
  readonly publishFailures: Counter;
  readonly activeCorrelations: Gauge;
  readonly degraded: Gauge;
  readonly heldMessages: Gauge;
  readonly partitionsOwned: Gauge;
  readonly batchSize: Histogram;
  readonly signalsForwarded: Counter;
  readonly lockFailures: Counter;
  readonly forwardRetries: Counter;
  readonly deadLettersTruncated: Counter;
  readonly duplicateAcks: Counter<'kind'>;
  readonly decisionsUnpublished: Gauge;
  readonly intakePaused: Counter<'bound'>;
  private readonly agentLabels: AgentLabels;
  /** The hot path's counts, kept as plain numbers and added to their counters when these are read. */
  private readonly signalCounts = new PendingCounts();
  private readonly stateCounts = new PendingCounts();
  private readonly decisionCounts = new PendingCounts();

  /**
   * `readings` are read when the metrics are scraped (the worker's correlations): the gauges they
   * feed are not kept up to date on the hot path. Without them those gauges stay 0.
   */
  constructor(registry: Registry, readings: WorkerReadings = {}, labels: AgentLabelBound = { known: [], maxOthers: 64 }) {
    const { openPerPartition, held, active } = readings;
    const r = [registry];
    this.agentLabels = new AgentLabels(labels);
    const { signalCounts, stateCounts, decisionCounts } = this;
    this.signalsReceived = new Counter({
      name: 'orchestrator_signals_received_total',
      help: 'Valid enriched signals received, by agent',
      labelNames: ['agent'],
      registers: r,
      collect() {
        signalCounts.addTo(this, 'agent');
      },
    });
    this.decisionsMade = new Counter({
      name: 'orchestrator_decisions_made_total',
      help: 'Decisions published, by type (trade, monitor, no_trade, timeout)',
      labelNames: ['type'],
      registers: r,
      collect() {
        decisionCounts.addTo(this, 'type');
      },
    });
    this.correlationTimeouts = new Counter({
      name: 'orchestrator_correlation_timeout_total',
      help: 'Correlations closed at DECISION_TIMEOUT_SEC (partial decision or timeout outcome)',
      registers: r,
    });
    this.stateOperations = new Counter({
      name: 'orchestrator_state_operations_total',
      help: 'Redis state operations attempted, by operation',
      labelNames: ['operation'],
      registers: r,
      collect() {
        stateCounts.addTo(this, 'operation');
      },
    });
    this.decisionLatency = new Histogram({
      name: 'orchestrator_decision_latency_seconds',
      help: 'First signal received to decision published',
      buckets: [...DECISION_LATENCY_BUCKETS],
      registers: r,
    });
    this.stateFailures = new Counter({
      name: 'orchestrator_state_operation_failures_total',
      help: 'Redis state operations that failed or were skipped while Redis was unavailable, by operation',
      labelNames: ['operation'],
      registers: r,
    });
    this.deadLetters = new Counter({ name: 'orchestrator_dlq_total', help: 'Messages sent to orchestrator.dlq, by reason', labelNames: ['reason'], registers: r });
    this.duplicateSignals = new Counter({ name: 'orchestrator_duplicate_signals_total', help: 'Repeats of (corr_id, agent) ignored', registers: r });
    this.lateSignals = new Counter({ name: 'orchestrator_late_signals_total', help: 'Signals for already decided correlations, recorded and not decided again', registers: r });
    this.fencedWrites = new Counter({ name: 'orchestrator_fenced_writes_total', help: 'Decisions refused because the partition epoch moved on (never emitted)', registers: r });
    this.suppressedDecisions = new Counter({
      name: 'orchestrator_decisions_suppressed_total',
      help: 'Decisions not published because the correlation was already decided, by reason',
      labelNames: ['reason'],
      registers: r,
    });
    this.publishFailures = new Counter({ name: 'orchestrator_publish_failures_total', help: 'Decision publishes that failed and were retried', registers: r });
    this.activeCorrelations = new Gauge({
      name: 'orchestrator_active_correlations',
      help: 'Open correlations in memory',
      registers: r,
      collect() {
        if (active !== undefined) this.set(active());
      },
    });
    this.degraded = new Gauge({ name: 'orchestrator_degraded', help: '1 while deciding without Redis', registers: r });
    this.heldMessages = new Gauge({
      name: 'orchestrator_held_messages',
      help: 'Source messages held un-acked because their signal is only in memory',
      registers: r,
      collect() {
        if (held !== undefined) this.set(held());
      },
    });
    this.partitionsOwned = new Gauge({ name: 'orchestrator_partitions_owned', help: 'Partitions this worker owns', registers: r });
    this.lockFailures = new Counter({
      name: 'orchestrator_lock_failures_total',
      help: 'Decision batches that went on without their Redlock (contention or Redis errors); the epoch fence still guards them',
      registers: r,
    });
    this.signalsForwarded = new Counter({ name: 'orchestrator_signals_forwarded_total', help: 'Signals forwarded to the worker owning their partition', registers: r });
    this.forwardRetries = new Counter({
      name: 'orchestrator_forward_retries_total',
      help: 'Signals given back for redelivery because their partition was moving, unowned or its owner did not answer',
      registers: r,
    });
    this.deadLettersTruncated = new Counter({
      name: 'orchestrator_dlq_truncated_total',
      help: 'Dead letters whose payload was cut to fit the server max_payload (flagged truncated)',
      registers: r,
    });
    this.duplicateAcks = new Counter({
      name: 'orchestrator_publish_duplicate_acks_total',
      help: 'Decision publishes JetStream answered "duplicate" (already stored by us or a previous owner), by kind (decision, channel)',
      labelNames: ['kind'],
      registers: r,
    });
    this.decisionsUnpublished = new Gauge({
      name: 'orchestrator_decisions_unpublished',
      help: 'Decisions whose publish failed and is being retried with backoff (never dropped)',
      registers: r,
    });
    this.intakePaused = new Counter({
      name: 'orchestrator_intake_paused_total',
      help: 'Times intake stopped pulling because a bound was full, by bound',
      labelNames: ['bound'],
      registers: r,
    });
    if (openPerPartition !== undefined) {
      new Gauge({
        name: 'orchestrator_open_correlations',
        help: 'Open correlations in memory, by partition',
        labelNames: ['partition'],
        registers: r,
        collect() {
          this.reset();
          for (const [p, n] of openPerPartition()) this.set({ partition: String(p) }, n);
        },
      });
    }
    this.batchSize = new Histogram({
      name: 'orchestrator_ingest_batch_size',
      help: 'Signals processed per ingest batch',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers: r,
    });
  }

  /** Counts a signal taken in; its agent label is one of a bounded set (the rest: "other"). */
  countSignal(agent: string): void {
    this.signalCounts.add(this.agentLabels.of(agent), 1);
  }

  /** Counts Redis state operations attempted. */
  countStateOps(operation: StateOperation, n: number): void {
    this.stateCounts.add(operation, n);
  }

  /** Counts a published decision by type. */
  countDecision(type: string): void {
    this.decisionCounts.add(type, 1);
  }
}

/**
 * Counts by one label's value, added to a prom-client counter when it is read (`collect`, at a scrape
 * or a heartbeat's stats). prom-client hashes the label set on every increment, even through a
 * child from `labels()`: a few microseconds per signal and per decision on the hot path, where a Map
 * entry costs a fraction of that. The values are bounded by the caller (agent labels, operations,
 * decision types), and so is the Map.
 */
class PendingCounts {
  private readonly counts = new Map<string, number>();

  add(value: string, n: number): void {
    this.counts.set(value, (this.counts.get(value) ?? 0) + n);
  }

  addTo<L extends string>(counter: Counter<L>, label: L): void {
    for (const [value, n] of this.counts) if (n > 0) counter.inc({ [label]: value } as Partial<Record<L, string>>, n);
    this.counts.clear();
  }
}

/** What the scrape-time gauges read. */
export interface WorkerReadings {
  /** Open correlations by partition (orchestrator_open_correlations). */
  openPerPartition?: () => Map<number, number>;
  /** Source messages held by open correlations (orchestrator_held_messages). */
  held?: () => number;
  /** Open correlations (orchestrator_active_correlations). */
  active?: () => number;
}

export type StateOperation = 'store' | 'claim' | 'mark_published' | 'record_late' | 'load' | (string & {});

export interface AgentLabelBound {
  /** Agents always labelled by name: required, allowed and configured ones. */
  known: readonly string[];
  /** Other agents labelled by name at most; later ones count as "other". */
  maxOthers: number;
}

/**
 * Bounded label values for `agent`: a label series lives for the process, so an agent name chosen by
 * whoever publishes must not create them without limit.
 */
export class AgentLabels {
  private readonly named: Set<string>;
  private others = 0;

  constructor(private readonly bound: AgentLabelBound) {
    this.named = new Set(bound.known);
  }

  of(agent: string): string {
    if (this.named.has(agent)) return agent;
    if (this.others >= this.bound.maxOthers) return 'other';
    this.others += 1;
    this.named.add(agent);
    return agent;
  }
}
