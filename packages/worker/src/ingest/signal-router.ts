import type { JsMsg } from '@nats-io/jetstream';
import { parseSignal, partitionOf, type ForwardReply, type ForwardRequest } from '@at-orchestrator/contracts';
import type { Logger } from '@at-orchestrator/runtime';
import type { ForwardLanes, Forward } from '../cluster/forward-lanes.js';
import type { DeadLetterPublisher } from '../emit/dead-letters.js';
import type { WorkerMetrics } from '../metrics.js';
import type { Inbound, Intake } from '../pipeline/intake.js';
import { RETRY_DELAY_MS, jetStreamSource } from './signal-source.js';

export interface SignalRouterOptions {
  workerId: string;
  partitions: number;
  maxSignalBytes: number;
  /** Whether this worker owns the partition now (PartitionOwner). */
  owns: (partition: number) => boolean;
  /** The owner the newest table names, if any (AssignmentView). */
  ownerOf: (partition: number) => string | undefined;
  tableVersion: () => number;
  /** Whether the worker still takes new work. */
  running: () => boolean;
  intake: Intake;
  lanes: ForwardLanes;
  dlq: DeadLetterPublisher;
  metrics: WorkerMetrics;
  log: Logger;
}

const encoder = new TextEncoder();

/**
 * Where each pulled signal goes: a bad one to the DLQ, one of our partitions into intake, one of
 * another worker's partitions into that owner's forward lane, one whose partition is moving or
 * unowned back to JetStream for a moment. Also takes the batches other workers forward to us.
 */
export class SignalRouter {
  constructor(private readonly o: SignalRouterOptions) {}

  /** One batch from the shared consumer. Resolves when our own signals are in and forwards have room. */
  async route(msgs: JsMsg[]): Promise<void> {
    const { metrics, owns, ownerOf, workerId } = this.o;
    metrics.batchSize.observe(msgs.length);
    const local: Inbound[] = [];
    const remote = new Map<string, Forward[]>();
    for (const msg of msgs) {
      const parsed = parseSignal(msg.data, this.o.maxSignalBytes);
      if (!parsed.ok) {
        void this.o.dlq.send(msg, parsed.reason, parsed.detail, parsed.corrId);
        continue;
      }
      const signal = parsed.signal;
      const partition = partitionOf(signal.corr_id, this.o.partitions);
      if (owns(partition)) {
        local.push({ signal, payload: parsed.text, partition, source: jetStreamSource(msg) });
        continue;
      }
      const owner = ownerOf(partition);
      if (owner === undefined || owner === workerId) {
        // Moving, unowned, or assigned to us but not yet taken over: hold it (redelivered shortly).
        metrics.forwardRetries.inc();
        msg.nak(RETRY_DELAY_MS);
        continue;
      }
      let list = remote.get(owner);
      if (list === undefined) remote.set(owner, (list = []));
      list.push({ msg, item: { partition, subject: msg.subject, payload: parsed.text } });
    }
    // Forwards are not awaited: our own partitions need not wait for another worker's Redis round
    // trip, nor for the timeout of an owner that died.
    for (const [owner, list] of remote) this.o.lanes.enqueue(owner, list);
    if (local.length > 0) await this.o.intake.take(local);
    await this.o.lanes.waitForRoom();
  }

  /** Signals another worker forwarded to us as the owner of their partitions. */
  async takeForwarded(req: ForwardRequest): Promise<ForwardReply> {
    const verdicts: ForwardReply['verdicts'] = req.signals.map(() => 'retry');
    const inbound: Inbound[] = [];
    req.signals.forEach((s, i) => {
      if (!this.o.owns(s.partition) || !this.o.running()) return;
      const parsed = parseSignal(encoder.encode(s.payload), Number.MAX_SAFE_INTEGER);
      if (!parsed.ok) {
        // The sender validated it; a disagreement means mixed versions. Settle it rather than loop.
        this.o.log.warn({ reason: parsed.reason, detail: parsed.detail }, 'forwarded signal failed validation here; dropped');
        verdicts[i] = 'stored';
        return;
      }
      inbound.push({
        signal: parsed.signal,
        payload: s.payload,
        partition: s.partition,
        source: { holdable: false, ack: () => (verdicts[i] = 'stored'), nak: () => (verdicts[i] = 'retry'), hold: () => (verdicts[i] = 'held') },
      });
    });
    if (inbound.length > 0) await this.o.intake.take(inbound);
    return { verdicts, table_version: this.o.tableVersion() };
  }
}
