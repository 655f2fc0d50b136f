import type { NatsConnection } from '@nats-io/nats-core';
import type { LeaderRequest } from '@at-orchestrator/contracts';
import type { Logger } from '@at-orchestrator/runtime';
import type { PartitionsData, StatusData, WorkersData } from '../control/control-data.js';
import { requestLeader, type LeaderAnswer } from '../control/leader-client.js';
import type { ConsoleCoordinator, ConsolePoint, ConsoleRates, ConsoleSnapshot, ConsoleWorker } from './console-data.js';
import { latencyQuantileMs, type WorkerTotals } from './console-rates.js';

/** How much history the page's charts get. */
export const HISTORY_SECONDS = 300;

export interface ConsoleFeedOptions {
  readonly nc: NatsConnection;
  readonly coordinatorId: string;
  /** The coordinators with a live presence key, and which one leads. */
  readonly coordinators: () => Promise<ConsoleCoordinator[]>;
  readonly log: Logger;
  /** Between two snapshots (default 1000 ms). */
  readonly everyMs?: number;
  /** For each request to the leader (default 1500 ms). */
  readonly timeoutMs?: number;
}

type Listener = (snapshot: ConsoleSnapshot) => void;

/**
 * Assembles a ConsoleSnapshot once per interval by asking the leader over the control API — the
 * read-only requests `status`, `workers` and `partitions`, the CLI's — and hands it to every listener
 * (the open pages). One round of requests per interval whatever the number of pages; rates come from
 * the difference between two rounds of the workers' totals.
 */
export class ConsoleFeed {
  private readonly listeners = new Set<Listener>();
  private readonly history: ConsolePoint[] = [];
  private previous: { at: number; totals: Map<string, WorkerTotals> } | undefined;
  private latestNow: ConsoleSnapshot | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private always = false;

  constructor(private readonly options: ConsoleFeedOptions) {}

  get latest(): ConsoleSnapshot | undefined {
    return this.latestNow;
  }

  /**
   * Keeps asking once per interval even with no page open, so that the charts have history when one
   * opens (a standalone coordinator). Without it, the feed runs only while a page listens.
   */
  start(): void {
    this.always = true;
    this.run();
  }

  /** Calls `listener` with every new snapshot until the returned function is called. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    this.run();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && !this.always) this.stop();
    };
  }

  /** The latest snapshot if it is fresh, else one assembled now. */
  async snapshot(): Promise<ConsoleSnapshot | undefined> {
    const every = this.options.everyMs ?? 1_000;
    if (this.latestNow !== undefined && Date.now() - this.latestNow.at < 2 * every) return this.latestNow;
    this.round();
    await this.running;
    return this.latestNow;
  }

  private run(): void {
    if (this.timer !== undefined || this.closed) return;
    this.round();
    this.timer = setInterval(() => this.round(), this.options.everyMs ?? 1_000);
  }

  private stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stop();
    this.listeners.clear();
    await this.running;
  }

  /** One round, unless the previous one is still waiting for the leader. */
  private round(): void {
    if (this.running !== undefined || this.closed) return;
    this.running = this.assemble()
      .then((snapshot) => {
        if (this.closed) return;
        this.latestNow = snapshot;
        for (const listener of this.listeners) listener(snapshot);
      })
      .catch((err: unknown) => this.options.log.warn({ err }, 'console snapshot failed'))
      .finally(() => {
        this.running = undefined;
      });
  }

  private async assemble(): Promise<ConsoleSnapshot> {
    const { nc, coordinatorId } = this.options;
    const timeout = this.options.timeoutMs ?? 1_500;
    const ask = (cmd: LeaderRequest['cmd']): Promise<LeaderAnswer> => requestLeader(nc, { cmd }, timeout);
    const [status, workers, partitions, coordinators] = await Promise.all([
      ask('status'),
      ask('workers'),
      ask('partitions'),
      this.options.coordinators().catch(() => []),
    ]);
    const at = Date.now();
    const answered = [status, workers, partitions].map(answerOf);
    const [statusAnswer, workersAnswer, partitionsAnswer] = answered;
    if (statusAnswer === undefined || typeof statusAnswer === 'string' || typeof workersAnswer !== 'object' || typeof partitionsAnswer !== 'object') {
      this.previous = undefined;
      const rates: ConsoleRates = { decisions_per_s: null, p99_ms: null, forwarded_per_s: null, dlq_per_s: {}, backlog: null };
      this.remember({ at, decisions_per_s: null, p99_ms: null, backlog: null, dlq_per_s: 0 });
      return {
        at,
        served_by: coordinatorId,
        leader: null,
        error: answered.find((a): a is string => typeof a === 'string') ?? 'the leader did not answer',
        coordinators,
        status: null,
        workers: [],
        partitions: [],
        rates,
        history: [...this.history],
      };
    }
    const leader = { id: statusAnswer.leader, epoch: statusAnswer.epoch };
    const statusData = statusAnswer.data as StatusData;
    const workersData = workersAnswer.data as WorkersData;
    const partitionsData = partitionsAnswer.data as PartitionsData;
    const { rows, rates } = this.rates(at, workersData, statusData);
    this.remember({
      at,
      decisions_per_s: rates.decisions_per_s,
      p99_ms: rates.p99_ms,
      backlog: rates.backlog,
      dlq_per_s: Object.values(rates.dlq_per_s).reduce((a, b) => a + b, 0),
    });
    return {
      at,
      served_by: coordinatorId,
      leader,
      error: null,
      coordinators: coordinators.map((c) => ({ ...c, leading: c.id === leader.id })),
      status: statusData,
      workers: rows,
      partitions: partitionsData.partitions,
      rates,
      history: [...this.history],
    };
  }

  /** Per-worker and cluster rates since the previous round (null on the first). */
  private rates(at: number, workers: WorkersData, status: StatusData): { rows: ConsoleWorker[]; rates: ConsoleRates } {
    const totals = new Map<string, WorkerTotals>();
    for (const w of workers.workers) {
      if (w.decided === null || w.forwarded === null || w.dead_letters === null) continue;
      totals.set(w.id, { decided: w.decided, forwarded: w.forwarded, deadLetters: w.dead_letters, latency: w.latency_buckets ?? [] });
    }
    const before = this.previous;
    this.previous = { at, totals };
    const seconds = before === undefined ? 0 : (at - before.at) / 1000;
    const backlog = status.lag?.pending ?? null;
    if (before === undefined || seconds <= 0) {
      return {
        rows: workers.workers.map((w) => ({ ...w, decisions_per_s: null, forwarded_per_s: null })),
        rates: { decisions_per_s: null, p99_ms: null, forwarded_per_s: null, dlq_per_s: {}, backlog },
      };
    }
    let decided = 0;
    let forwarded = 0;
    const dlq: Record<string, number> = {};
    const latency: number[] = [];
    const rows = workers.workers.map((w): ConsoleWorker => {
      const now = totals.get(w.id);
      const then = before.totals.get(w.id);
      // A worker new since the last round, or restarted (its totals went down): no rate this time.
      if (now === undefined || then === undefined || now.decided < then.decided || now.forwarded < then.forwarded) {
        return { ...w, decisions_per_s: null, forwarded_per_s: null };
      }
      decided += now.decided - then.decided;
      forwarded += now.forwarded - then.forwarded;
      for (const [reason, count] of Object.entries(now.deadLetters)) {
        const delta = count - (then.deadLetters[reason] ?? 0);
        if (delta > 0) dlq[reason] = (dlq[reason] ?? 0) + delta / seconds;
      }
      now.latency.forEach((count, i) => {
        latency[i] = (latency[i] ?? 0) + Math.max(0, count - (then.latency[i] ?? 0));
      });
      return { ...w, decisions_per_s: round((now.decided - then.decided) / seconds), forwarded_per_s: round((now.forwarded - then.forwarded) / seconds) };
    });
    for (const reason of Object.keys(dlq)) dlq[reason] = round(dlq[reason]!);
    return {
      rows,
      rates: { decisions_per_s: round(decided / seconds), p99_ms: latencyQuantileMs(latency, 0.99), forwarded_per_s: round(forwarded / seconds), dlq_per_s: dlq, backlog },
    };
  }

  private remember(point: ConsolePoint): void {
    this.history.push(point);
    const from = point.at - HISTORY_SECONDS * 1000;
    while (this.history.length > 0 && this.history[0]!.at < from) this.history.shift();
  }
}

/** A successful reply's leader and data, or why there is none. */
function answerOf(answer: LeaderAnswer): { readonly leader: string; readonly epoch: number; readonly data: unknown } | string {
  if (answer.kind !== 'reply') return answer.message;
  if (!answer.reply.ok) return `${answer.reply.error.code}: ${answer.reply.error.message}`;
  return { leader: answer.reply.leader, epoch: answer.reply.leader_epoch, data: answer.reply.data };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
