import type { JsMsg } from '@nats-io/jetstream';
import { SIGNAL_SUBJECT_PREFIX, parseSignal, partitionOf, type EnrichedSignal, type ForwardReply, type ForwardRequest } from '@at-orchestrator/contracts';
import type { Logger } from '@at-orchestrator/runtime';
import type { ForwardLanes, Forward } from '../cluster/forward-lanes.js';
import { forwardedLetterId, type DeadLetterPublisher } from '../emit/dead-letters.js';
import type { WorkerMetrics } from '../metrics.js';
import type { Inbound, Intake } from '../pipeline/intake.js';
import { RETRY_DELAY_MS, jetStreamSource, type AckBatch } from './signal-source.js';

export interface SignalRouterOptions {
  workerId: string;
  partitions: number;
  maxSignalBytes: number;
  /** ALLOWED_AGENTS: agents accepted; empty = any. */
  allowedAgents: readonly string[];
  /** Whether this worker owns the partition now (PartitionOwner). */
  owns: (partition: number) => boolean;
  /** The owner the newest table names, if any (AssignmentView). */
  ownerOf: (partition: number) => string | undefined;
  tableVersion: () => number;
  /** Whether the worker still takes new work. */
  running: () => boolean;
  /** Backpressure of the fan-in (DecisionQueue.capacity): forwarded batches wait on it a little. */
  capacity: () => Promise<void> | undefined;
  intake: Intake;
  lanes: ForwardLanes;
  dlq: DeadLetterPublisher;
  /** Where the acks of pulled signals wait for the next decision publish (one write for both). */
  acks?: AckBatch;
  metrics: WorkerMetrics;
  log: Logger;
}

/** Why a parsed signal is refused before it reaches the fan-in (each a DLQ reason). */
type Refusal = { reason: 'agent_mismatch' | 'agent_not_allowed'; detail: string };

/** Longest a forwarded batch waits for room in a full fan-in before its signals are answered "retry". */
const FORWARD_ROOM_WAIT_MS = 1_000;

const encoder = new TextEncoder();
const SUBJECT_PREFIX = `${SIGNAL_SUBJECT_PREFIX}.`;

/**
 * Where each pulled signal goes: a bad one to the DLQ, one of our partitions into intake, one of
 * another worker's partitions into that owner's forward lane, one whose partition is moving or
 * unowned back to JetStream for a moment. Also takes the batches other workers forward to us, which
 * it trusts no more than the stream: each signal is parsed and checked again here.
 */
export class SignalRouter {
  private readonly allowed: ReadonlySet<string> | undefined;

  constructor(private readonly o: SignalRouterOptions) {
    this.allowed = o.allowedAgents.length > 0 ? new Set(o.allowedAgents) : undefined;
  }

  /** One batch from the shared consumer. Resolves when our own signals are in and forwards have room. */
  async route(msgs: JsMsg[]): Promise<void> {
    const { metrics, owns, ownerOf, workerId, dlq } = this.o;
    metrics.batchSize.observe(msgs.length);
    const local: Inbound[] = [];
    const remote = new Map<string, Forward[]>();
    for (const msg of msgs) {
      const parsed = parseSignal(msg.data, this.o.maxSignalBytes);
      if (!parsed.ok) {
        void dlq.send(msg, parsed.reason, parsed.detail, parsed.corrId);
        continue;
      }
      const signal = parsed.signal;
      const refused = this.refusal(msg.subject, signal);
      if (refused !== undefined) {
        void dlq.send(msg, refused.reason, refused.detail, signal.corr_id);
        continue;
      }
      const partition = partitionOf(signal.corr_id, this.o.partitions);
      if (owns(partition)) {
        local.push({ signal, payload: parsed.text, partition, source: jetStreamSource(msg, this.o.acks), reject: (reason, detail) => dlq.send(msg, reason, detail, signal.corr_id) });
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

  /**
   * Signals another worker forwarded to us as the owner of their partitions. Each is parsed again with
   * the size limit and the agent checks, and its partition is recomputed from its corr_id: a bad one
   * is dead-lettered here (answered "stored" once the letter is stored, so the sender acks its source
   * and it is not redelivered forever; "retry" when the letter could not be stored).
   */
  async takeForwarded(req: ForwardRequest): Promise<ForwardReply> {
    const verdicts: ForwardReply['verdicts'] = req.signals.map(() => 'retry');
    if (!this.o.running()) return { verdicts, table_version: this.o.tableVersion() };
    const roomy = await this.waitForRoom();
    const inbound: Inbound[] = [];
    const letters: Array<Promise<void>> = [];
    req.signals.forEach((s, i) => {
      const data = encoder.encode(s.payload);
      const deadLetter = (reason: string, detail: string, corrId?: string): Promise<void> => {
        this.o.log.warn({ reason, detail, from: req.from }, 'forwarded signal refused');
        return this.o.dlq.publish({ subject: s.subject, data, letterId: forwardedLetterId(s.subject, s.payload) }, reason, detail, corrId).then((stored) => {
          verdicts[i] = stored ? 'stored' : 'retry';
        });
      };
      const parsed = parseSignal(data, this.o.maxSignalBytes);
      if (!parsed.ok) {
        letters.push(deadLetter(parsed.reason, parsed.detail, parsed.corrId));
        return;
      }
      const signal = parsed.signal;
      const refused = this.refusal(s.subject, signal);
      if (refused !== undefined) {
        letters.push(deadLetter(refused.reason, refused.detail, signal.corr_id));
        return;
      }
      const partition = partitionOf(signal.corr_id, this.o.partitions);
      if (partition !== s.partition) {
        // The sender computes partitions as we do: a different one is a forgery or a PARTITIONS mismatch.
        letters.push(deadLetter('partition_mismatch', `forwarded for partition ${s.partition}; its corr_id is in partition ${partition}`, signal.corr_id));
        return;
      }
      // Not ours (any more), or no room in the fan-in for a while: the sender redelivers it.
      if (!this.o.owns(partition) || !roomy) return;
      inbound.push({
        signal,
        payload: parsed.text,
        partition,
        source: { holdable: false, ack: () => (verdicts[i] = 'stored'), nak: () => (verdicts[i] = 'retry'), hold: () => (verdicts[i] = 'held') },
        reject: (reason, detail) => deadLetter(reason, detail, signal.corr_id),
      });
    });
    if (inbound.length > 0) await this.o.intake.take(inbound);
    await Promise.all(letters);
    return { verdicts, table_version: this.o.tableVersion() };
  }

  /** The agent checks: the subject names the signal's own agent, and that agent is allowed. */
  private refusal(subject: string, signal: EnrichedSignal): Refusal | undefined {
    const agent = signal.agent_name;
    const fromSubject = subject.startsWith(SUBJECT_PREFIX) ? subject.slice(SUBJECT_PREFIX.length) : '';
    if (fromSubject !== agent) {
      return { reason: 'agent_mismatch', detail: `published on ${subject.slice(0, 200)} but agent_name is ${agent}` };
    }
    if (this.allowed !== undefined && !this.allowed.has(agent)) {
      return { reason: 'agent_not_allowed', detail: `agent ${agent} is not in ALLOWED_AGENTS` };
    }
    return undefined;
  }

  /** Waits (bounded) while the fan-in is full; false when it stayed full. */
  private async waitForRoom(): Promise<boolean> {
    const wait = this.o.capacity();
    if (wait === undefined) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), FORWARD_ROOM_WAIT_MS)));
    const ok = await Promise.race([wait.then(() => true as const), timedOut]);
    clearTimeout(timer);
    return ok;
  }
}
