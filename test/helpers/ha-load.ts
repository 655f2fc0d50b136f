import { AckPolicy, jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { nanos, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { DECISION_SUBJECT, STORED_DECISION_SUBJECT, signalSubject, type Decision } from '@at-orchestrator/contracts';
import { CLEAN_MIX, makeCorrelation, seededRandom } from '@at-orchestrator/sim';
import { expect } from 'vitest';

// Load and counting for the high-availability tests (a NATS cluster, Redis behind Sentinel): agents
// that publish at a steady rate and retry until JetStream has each signal, and the decisions counted
// on a durable JetStream consumer and on a core subscription, with the pauses between them.

const DECISIONS = 'orchestrated';

/**
 * The decisions as downstream sees them: a durable JetStream consumer of the decisions stream (as
 * replicated as its stream, explicit acks, as an execution service would read it; a redelivery of the
 * same stream sequence is not a second decision) with the time the stream stored each, and a plain
 * core subscription of orchestrated.decision. Only corr_ids starting with `prefix-` count.
 */
export class DecisionCounts {
  readonly stream = new Map<string, Decision[]>();
  /** Stream timestamps (ms) of every decision, in the order received. */
  readonly storedAt: number[] = [];
  readonly core = new Map<string, string[]>();
  /** corr_id → the stream sequence of its decision. */
  readonly sequenceOf = new Map<string, number>();
  private readonly sequences = new Set<number>();
  private sub: Subscription | undefined;
  private stopStream: (() => void) | undefined;

  private readonly js: JetStreamClient;

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
  ) {
    this.js = jetstream(nc);
  }

  /**
   * Stream sequences the core subscription is known to have missed: each republished copy names the
   * previous message stored on its subject (Nats-Last-Sequence); when that is not the last copy seen,
   * the ones between were not received (docs/delivery.md, "Detecting a gap"). Exact while every
   * decision of the stream is on orchestrated.decision (no fan-out channels), as in these tests.
   */
  readonly coreMissedSequences = new Set<number>();
  private lastCoreSequence: number | undefined;

  async start(): Promise<void> {
    this.sub = this.nc.subscribe(DECISION_SUBJECT, {
      callback: (err, msg) => {
        if (err !== null) return;
        const seq = Number(msg.headers?.get('Nats-Sequence'));
        const previous = Number(msg.headers?.get('Nats-Last-Sequence'));
        if (this.lastCoreSequence !== undefined && previous > this.lastCoreSequence) {
          for (let s = this.lastCoreSequence + 1; s <= previous; s++) this.coreMissedSequences.add(s);
        }
        this.lastCoreSequence = seq;
        const raw = msg.string();
        const corr = (JSON.parse(raw) as Decision).corr_id;
        if (!corr.startsWith(`${this.prefix}-`)) return;
        const copies = this.core.get(corr) ?? [];
        copies.push(raw);
        this.core.set(corr, copies);
      },
    });
    const jsm = await jetstreamManager(this.nc);
    await jsm.consumers.add(DECISIONS, { durable_name: `${this.prefix}-counter`, ack_policy: AckPolicy.Explicit, filter_subject: STORED_DECISION_SUBJECT, ack_wait: nanos(5_000) });
    const consumer = await this.js.consumers.get(DECISIONS, `${this.prefix}-counter`);
    // Short pulls: a pull request left on a killed server is replaced within seconds, not 30.
    const messages = await consumer.consume({ expires: 4_000, max_messages: 500 });
    this.stopStream = () => void messages.close();
    void (async () => {
      for await (const m of messages) {
        m.ack();
        if (this.sequences.has(m.seq)) continue;
        this.sequences.add(m.seq);
        const d = m.json<Decision>();
        if (!d.corr_id.startsWith(`${this.prefix}-`)) continue;
        const list = this.stream.get(d.corr_id) ?? [];
        list.push(d);
        this.stream.set(d.corr_id, list);
        this.sequenceOf.set(d.corr_id, m.seq);
        this.storedAt.push(Math.round(m.info.timestampNanos / 1_000_000));
      }
    })();
    await this.nc.flush();
  }

  get decided(): number {
    return this.storedAt.length;
  }

  /**
   * The longest gap (ms) between two decisions stored one after the other, among the gaps that end at
   * or after `from` and begin at or before `to`: with `from` the moment of a fault, the pause it caused
   * (the gap it falls into included), not one that ended before it.
   */
  pause(from: number, to: number): number {
    const times = [...this.storedAt].sort((a, b) => a - b);
    let longest = 0;
    for (let i = 1; i < times.length; i++) {
      const [a, b] = [times[i - 1]!, times[i]!];
      if (b < from || a > to) continue;
      longest = Math.max(longest, b - a);
    }
    return longest;
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.stopStream?.();
  }
}

/**
 * Agents at a steady rate, as a producer that must not lose a signal would publish: each signal with
 * a Nats-Msg-Id, retried until JetStream acknowledges it (the signals stream's duplicate window drops
 * a retry whose first attempt did land), so every correlation is eventually published whole.
 */
export class SteadyAgents {
  started = 0;
  published = 0;
  retries = 0;
  /** When each signal publish was acknowledged (ms), in order. */
  readonly ackedAt: number[] = [];
  private stopped = false;
  private readonly inflight = new Set<Promise<void>>();
  private loop: Promise<void> | undefined;

  private readonly js: JetStreamClient;

  constructor(
    nc: NatsConnection,
    private readonly prefix: string,
  ) {
    this.js = jetstream(nc);
  }

  start(rate: number): void {
    const rnd = seededRandom(13);
    const interval = 1000 / rate;
    const t0 = performance.now();
    this.loop = (async () => {
      for (let i = 0; !this.stopped; i++) {
        const wait = t0 + i * interval - performance.now();
        if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
        if (this.stopped) break;
        const corr = makeCorrelation(`${this.prefix}-${i}`, rnd, CLEAN_MIX);
        this.started += 1;
        const p = Promise.all(corr.signals.map((s) => this.publish(signalSubject(s.agent), s.body, `${corr.corrId}:${s.agent}`))).then(() => {
          this.published += 1;
        });
        this.inflight.add(p);
        void p.finally(() => this.inflight.delete(p));
      }
    })();
  }

  private async publish(subject: string, body: string, msgID: string): Promise<void> {
    for (;;) {
      try {
        await this.js.publish(subject, body, { msgID, timeout: 2_000 });
        this.ackedAt.push(Date.now());
        return;
      } catch {
        this.retries += 1;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** The same for acknowledged signal publishes: the ingest side's pause. */
  pause(from: number, to: number): number {
    let longest = 0;
    for (let i = 1; i < this.ackedAt.length; i++) {
      const [a, b] = [this.ackedAt[i - 1]!, this.ackedAt[i]!];
      if (b < from || a > to) continue;
      longest = Math.max(longest, b - a);
    }
    return longest;
  }

  /** Stops starting correlations and waits until every started one is published whole. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await Promise.all([...this.inflight]);
  }
}

/** What the counts say once the agents stopped and every published correlation was decided. */
export interface DecisionTally {
  readonly lost: string[];
  readonly streamDuplicates: string[];
  readonly coreRepeats: Array<[string, number]>;
  /** Repeats whose copies differ (a second decision, not a re-sent one). */
  readonly coreDiffering: string[];
  readonly coreLost: string[];
  /** Core losses not explained by a sequence gap the subscriber saw (none may be). */
  readonly coreLostUnexplained: string[];
  /** Seen on the core subscription, not stored on the stream (none may be). */
  readonly corePhantoms: string[];
}

export function tally(counts: DecisionCounts, prefix: string, published: number): DecisionTally {
  const repeats = [...counts.core].filter(([, copies]) => copies.length > 1);
  return {
    lost: [...Array(published).keys()].map((i) => `${prefix}-${i}`).filter((corr) => !counts.stream.has(corr)),
    streamDuplicates: [...counts.stream].filter(([, l]) => l.length > 1).map(([corr]) => corr),
    coreRepeats: repeats.map(([corr, copies]) => [corr, copies.length]),
    coreDiffering: repeats.filter(([, copies]) => new Set(copies).size > 1).map(([corr]) => corr),
    coreLost: [...counts.stream.keys()].filter((corr) => !counts.core.has(corr)),
    coreLostUnexplained: [...counts.stream.keys()].filter((corr) => !counts.core.has(corr) && !counts.coreMissedSequences.has(counts.sequenceOf.get(corr)!)),
    corePhantoms: [...counts.core.keys()].filter((corr) => !counts.stream.has(corr)),
  };
}

/** The counts as the HA tests print them: the JetStream consumer's, then the core subscription's. */
export function describeCounts(counts: DecisionCounts, t: DecisionTally): string {
  return (
    `JetStream consumer: ${counts.stream.size} decided, ${t.lost.length} lost, ${t.streamDuplicates.length} duplicates; ` +
    `core subscription: ${counts.core.size} seen, ${t.coreRepeats.length} repeated (${t.coreDiffering.length} with differing bodies), ` +
    `${t.coreLost.length} lost (${t.coreLost.length - t.coreLostUnexplained.length} seen as sequence gaps)`
  );
}

/**
 * What every HA test asserts of its counts (docs/delivery.md): the decisions stream holds every
 * correlation once; a core subscriber sees only stored decisions, each at most once, and any copy it
 * missed shows as a gap in the republished sequences (RePublish is at most once).
 */
export function expectDeliveredOnce(t: DecisionTally): void {
  expect(t.lost).toEqual([]);
  expect(t.streamDuplicates).toEqual([]);
  expect(t.corePhantoms).toEqual([]);
  expect(t.coreRepeats).toEqual([]);
  expect(t.coreLostUnexplained).toEqual([]);
}

/** For a failed HA run: what was counted, and each process's last lines that are not info. */
export function logFailure(counts: DecisionCounts, agents: SteadyAgents, processes: Iterable<[string, { readonly output: readonly string[] }]>): void {
  console.log(`at the failure: ${counts.decided} decisions stored, ${counts.core.size} seen on core; agents ${agents.started} started, ${agents.published} published, ${agents.retries} retries`);
  for (const [id, p] of processes) console.log(`--- ${id}\n${p.output.filter((l) => !l.includes('"level":"info"') && !l.includes('"level":30')).slice(-15).join('\n')}`);
}
