import type { WorkerMetrics } from '../metrics.js';
import type { Preclaim } from '../fanin/fan-in-buffer.js';
import type { ClaimVerdict, CorrelationStore } from '../state/correlation-store.js';
import type { DecisionJob } from './decision-builder.js';

const NO_PRECLAIM: Promise<ClaimVerdict | undefined> = Promise.resolve(undefined);
/** Half the default HEARTBEAT_INTERVAL_MS (see `verdicts`). */
const DEFAULT_PRECLAIM_MAX_AGE_MS = 500;

/** Redis is known to be unreachable: no claim was tried. */
const REDIS_AWAY: ClaimVerdict = { kind: 'unknown', error: undefined };

export interface DecisionClaimsDeps {
  store: CorrelationStore;
  redisAvailable: () => boolean;
  metrics: WorkerMetrics;
  workerId: string;
  /** How old a claim made with the store may be when used (default: half the default heartbeat). */
  preclaimMaxAgeMs?: number;
}

/**
 * The claim verdicts of a batch of decisions (DecisionEmitter decides what each verdict means): the
 * ones Redis gave with the store that completed a correlation, or a claim made now.
 */
export class DecisionClaims {
  constructor(private readonly deps: DecisionClaimsDeps) {}

  /**
   * A verdict per job: the claim made with the store that completed the correlation (Intake), when it
   * was made under the job's epoch and answered at most `preclaimMaxAgeMs` ago; otherwise a claim
   * now. Unanswered ones (Redis away or failing) are `unknown`.
   *
   * Why the age: a claim answered before the process was stopped (SIGSTOP, a long stall) past its
   * lease says nothing of the epochs after it — the partition may have a new owner — and a claim made
   * now would be fenced. A takeover needs the lease to run out, which cannot happen sooner than
   * WORKER_LEASE_MS − HEARTBEAT_INTERVAL_MS ≥ HEARTBEAT_INTERVAL_MS after a verdict that a live worker
   * received, so an answer younger than half the heartbeat interval is as good as a claim made now.
   */
  async verdicts(jobs: readonly DecisionJob[]): Promise<ClaimVerdict[]> {
    let verdicts: Array<ClaimVerdict | undefined> = new Array<ClaimVerdict | undefined>(jobs.length);
    const pres: Array<Preclaim | undefined> = jobs.map((j) => {
      const pre = j.corr.preclaim;
      j.corr.preclaim = undefined;
      return pre !== undefined && pre.epoch === j.epoch ? pre : undefined;
    });
    if (pres.some((p) => p !== undefined)) {
      verdicts = await Promise.all(pres.map((p) => p?.verdict ?? NO_PRECLAIM));
      const now = performance.now();
      const maxAge = this.deps.preclaimMaxAgeMs ?? DEFAULT_PRECLAIM_MAX_AGE_MS;
      pres.forEach((p, i) => {
        if (p?.answeredAt === undefined || now - p.answeredAt > maxAge) verdicts[i] = undefined;
      });
    }
    const ask = jobs.filter((_, i) => verdicts[i] === undefined);
    if (ask.length > 0) {
      const asked = await this.claimNow(ask);
      let k = 0;
      for (let i = 0; i < jobs.length; i++) if (verdicts[i] === undefined) verdicts[i] = asked[k++];
    }
    return verdicts as ClaimVerdict[];
  }

  private async claimNow(jobs: readonly DecisionJob[]): Promise<ClaimVerdict[]> {
    const { store, metrics } = this.deps;
    if (!this.deps.redisAvailable()) return jobs.map(() => REDIS_AWAY);
    metrics.countStateOps('claim', jobs.length);
    try {
      return await store.claim(
        jobs.map((j) => ({ corrId: j.corr.corrId, partition: j.corr.partition, epoch: j.epoch, agents: j.decision.agents_present })),
        this.deps.workerId,
      );
    } catch (err) {
      return jobs.map((): ClaimVerdict => ({ kind: 'unknown', error: err ?? new Error('claim failed') }));
    }
  }
}
