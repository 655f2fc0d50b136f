import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import { DECISION_SUBJECT, type Decision } from '@at-orchestrator/contracts';

export interface SinkCounts {
  decisions: number;
  byAction: Record<string, number>;
  byStatus: Record<string, number>;
  duplicates: number;
}

/**
 * The execution layer's view: subscribes to orchestrated.decision and counts what arrives,
 * noticing any corr_id decided twice.
 */
export class DecisionSink {
  private sub: Subscription | undefined;
  private readonly seen = new Set<string>();
  readonly counts: SinkCounts = { decisions: 0, byAction: {}, byStatus: {}, duplicates: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly onDecision?: (d: Decision, duplicate: boolean) => void,
  ) {}

  start(subject = DECISION_SUBJECT): void {
    this.sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err !== null) return;
        let d: Decision;
        try {
          d = msg.json<Decision>();
        } catch {
          return;
        }
        const duplicate = this.seen.has(d.corr_id);
        this.seen.add(d.corr_id);
        this.counts.decisions += 1;
        if (duplicate) this.counts.duplicates += 1;
        this.counts.byAction[d.decision.action] = (this.counts.byAction[d.decision.action] ?? 0) + 1;
        this.counts.byStatus[d.status] = (this.counts.byStatus[d.status] ?? 0) + 1;
        this.onDecision?.(d, duplicate);
      },
    });
  }

  async stop(): Promise<void> {
    this.sub?.unsubscribe();
  }
}
