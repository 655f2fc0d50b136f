import type { PartitionState } from '@at-orchestrator/contracts';
import type { PartitionMove, UnappliedPin, WorkerPlanSummary } from '../assignment/index.js';

/**
 * The `data` of each successful LeaderReply, by command: what `--json` prints. Field names are
 * snake_case like the rest of the wire formats. (Candidates for zod schemas in contracts once another
 * client than the CLI reads them.)
 */

/**
 * live: heartbeat present; draining: being drained (by an operator or itself); refused: live, but it
 * speaks another cluster protocol than the leader, so it is assigned nothing (`refused` says why);
 * gone: no heartbeat but still named as an owner.
 */
export type WorkerState = 'live' | 'draining' | 'refused' | 'gone';

export interface StatusWorker {
  readonly id: string;
  readonly state: WorkerState;
  /** Partitions it owns in the table (a revoking partition counts for its old owner). */
  readonly partitions: number;
  readonly load: number | null;
  readonly capacity: number | null;
  readonly version: string | null;
  /** Its CLUSTER_PROTOCOL (null: gone, or a worker older than the protocol check). */
  readonly protocol: number | null;
  /** Why the leader refuses it (another protocol: both named), or null. */
  readonly refused: string | null;
}

export interface StatusData {
  readonly coordinator: string;
  readonly leader_epoch: number;
  readonly table_version: number;
  readonly partitions: number;
  readonly paused: boolean;
  /** Why voluntary moves are frozen right now, or null. */
  readonly frozen: string | null;
  readonly counts: Readonly<Record<PartitionState['phase'], number>>;
  readonly handoffs_in_flight: number;
  readonly workers: readonly StatusWorker[];
  /** The shared ingest consumer's backlog, or null when JetStream did not answer. */
  readonly lag: { readonly stream: string; readonly durable: string; readonly pending: number; readonly ack_pending: number } | null;
  /** Where operators reach the leader's console (`at-orchestrator console` prints it), or null. */
  readonly console_url: string | null;
}

export interface WorkerDetail {
  readonly id: string;
  readonly state: WorkerState;
  readonly drain_requested: boolean;
  readonly capacity: number | null;
  readonly load: number | null;
  readonly version: string | null;
  /** Its CLUSTER_PROTOCOL (null: gone, or a worker older than the protocol check). */
  readonly protocol: number | null;
  /** Why the leader refuses it (another protocol: both named), or null. */
  readonly refused: string | null;
  readonly started_at: string | null;
  readonly lease_left_ms: number | null;
  /** Partitions it owns in the table. */
  readonly partitions: readonly number[];
  /** Partitions its own heartbeat says it owns (differs from `partitions` while moving). */
  readonly reported_owned: readonly number[];
  readonly pinned: readonly number[];
  /** How long ago its last heartbeat was written (its lease minus what is left of it). */
  readonly heartbeat_age_ms: number | null;
  /** What its last heartbeat reported (null for a worker without a heartbeat or an older version). */
  readonly open_correlations: number | null;
  /** Since it started: decisions published, signals forwarded, decisions fenced (never emitted). */
  readonly decided: number | null;
  readonly forwarded: number | null;
  readonly fenced_writes: number | null;
  /** Dead letters it sent since it started, by reason. */
  readonly dead_letters: Readonly<Record<string, number>> | null;
  /** Its decision-latency histogram since it started: cumulative counts per bound of DECISION_LATENCY_BUCKETS, then +Inf. */
  readonly latency_buckets: readonly number[] | null;
}

export interface WorkersData {
  readonly workers: readonly WorkerDetail[];
}

export interface PartitionRow {
  readonly partition: number;
  readonly owner: string | null;
  readonly epoch: number;
  readonly phase: PartitionState['phase'];
  readonly next: string | null;
  readonly pinned_to: string | null;
  /** Open correlations its owner holds for it and the age of the oldest, from the owner's last heartbeat (null: not reported). */
  readonly open: number | null;
  readonly oldest_open_ms: number | null;
}

export interface PartitionsData {
  readonly table_version: number;
  readonly partitions: readonly PartitionRow[];
}

export interface PlanData {
  readonly paused: boolean;
  /** What `rebalance` would move now. */
  readonly moves: readonly PartitionMove[];
  /** Moves the plan wants that would still wait (no other worker may take them). */
  readonly deferred: readonly PartitionMove[];
  readonly workers: readonly WorkerPlanSummary[];
  readonly unapplied_pins: readonly UnappliedPin[];
  /** The dry run as text (formatPlan). */
  readonly text: string;
}

export interface RebalanceData {
  readonly paused: boolean;
  /** Moves started now (handoffs complete in the background). */
  readonly moves: readonly PartitionMove[];
  readonly deferred: readonly PartitionMove[];
}

export interface DrainData {
  readonly worker: string;
  /** Partitions it still owns (they move unless rebalancing is paused). */
  readonly partitions: number;
  readonly already_draining: boolean;
  readonly paused: boolean;
}

export interface MoveData {
  readonly partition: number;
  readonly worker: string;
  /** Its owner when the pin was set. */
  readonly from: string | null;
  readonly epoch: number;
}

export interface PauseData {
  readonly paused: boolean;
}
