import type { PartitionRow, PlanData, StatusData, WorkerDetail } from '../control/control-data.js';

/**
 * What the console page receives. Every coordinator serves the page on its HTTP port and feeds it
 * the leader's view: once a second it asks the leader (the same read-only control requests as the
 * CLI's `status`, `workers` and `partitions`) and pushes one ConsoleSnapshot to every open page over
 * server-sent events. However many pages are open, the leader is asked once a second per coordinator.
 *
 * HTTP API (docs/console.md):
 *   GET  /console                 the page (console.html, console.css and its ES modules /console/<name>.js beside it)
 *   GET  /console/events          text/event-stream; each event is `event: snapshot` with a ConsoleSnapshot
 *   GET  /console/api/snapshot    the latest ConsoleSnapshot as JSON (for scripts and tests)
 *   GET  /console/api/plan        PlanData: what `rebalance` would move now (read-only, like `plan --json`)
 *   POST /console/api/action      body ConsoleAction, header `Authorization: Bearer <OPERATOR_TOKEN>`;
 *                                 answers ConsoleActionReply. The coordinator seals the request with the
 *                                 token it was given and sends it to the leader, which verifies it exactly
 *                                 as for the CLI: a missing or wrong token is refused by the leader (403).
 */

export interface ConsoleSnapshot {
  /** When it was assembled (ms since the epoch, the serving coordinator's clock). */
  readonly at: number;
  /** The coordinator serving this page. */
  readonly served_by: string;
  /** The leader that answered, or null when none did (then `error` says why). */
  readonly leader: { readonly id: string; readonly epoch: number } | null;
  readonly error: string | null;
  /** Every coordinator with a live presence key: the leader and the standbys. */
  readonly coordinators: readonly ConsoleCoordinator[];
  /** The leader's `status` reply (table version, counts, paused, frozen, handoffs, backlog). */
  readonly status: StatusData | null;
  readonly workers: readonly ConsoleWorker[];
  /** index = partition. */
  readonly partitions: readonly PartitionRow[];
  /** Over the last interval between two snapshots. */
  readonly rates: ConsoleRates;
  /** The last HISTORY_SECONDS of rates, oldest first, one point per snapshot. */
  readonly history: readonly ConsolePoint[];
}

export interface ConsoleCoordinator {
  readonly id: string;
  readonly leading: boolean;
  readonly console_url: string;
  readonly version: string;
  readonly started_at: string;
}

export interface ConsoleWorker extends WorkerDetail {
  /** Decisions it published per second over the last interval (null on the first snapshot). */
  readonly decisions_per_s: number | null;
  readonly forwarded_per_s: number | null;
}

export interface ConsoleRates {
  /** Summed over all workers. */
  readonly decisions_per_s: number | null;
  /** p99 of the decision latency (first signal → published) over the last interval, in ms. */
  readonly p99_ms: number | null;
  readonly forwarded_per_s: number | null;
  /** Dead letters per second by reason over the last interval (reasons with none left out). */
  readonly dlq_per_s: Readonly<Record<string, number>>;
  /** The shared ingest consumer's pending messages (status.lag.pending), or null. */
  readonly backlog: number | null;
}

export interface ConsolePoint {
  readonly at: number;
  readonly decisions_per_s: number | null;
  readonly p99_ms: number | null;
  readonly backlog: number | null;
  readonly dlq_per_s: number;
}

export const CONSOLE_ACTIONS = ['rebalance', 'drain', 'move', 'pause', 'resume'] as const;
export type ConsoleActionName = (typeof CONSOLE_ACTIONS)[number];

export interface ConsoleAction {
  readonly cmd: ConsoleActionName;
  readonly worker?: string;
  readonly partition?: number;
}

/**
 * HTTP 200 with ok: true; otherwise ok: false with the control API's error code and message and the
 * status: 400 BAD_REQUEST, 403 UNAUTHORIZED, 404 NO_SUCH_WORKER / NO_SUCH_PARTITION, 409
 * WORKER_DRAINING / NO_ELIGIBLE_WORKER, 503 NOT_LEADER / UNAVAILABLE / no leader answered, 500 else.
 */
export type ConsoleActionReply =
  | { readonly ok: true; readonly leader: string; readonly leader_epoch: number; readonly data: unknown }
  | { readonly ok: false; readonly error: { readonly code: string; readonly message: string } };

export type { PartitionRow, PlanData, StatusData, WorkerDetail };
