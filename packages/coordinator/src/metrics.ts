import { Counter, Gauge, Histogram, type Registry } from '@at-orchestrator/runtime';

export type HandoffOutcome = 'graceful' | 'forced' | 'orphaned';

/** The control plane's metrics, registered on the process registry (shared when embedded in a worker). */
export class CoordinatorMetrics {
  readonly isLeader: Gauge;
  readonly leaderEpoch: Gauge;
  readonly tableVersion: Gauge;
  readonly handoffs: Counter<'outcome'>;
  readonly handoffDuration: Histogram;
  readonly rebalanceMoves: Counter;
  readonly partitionsAssigned: Gauge<'worker'>;
  readonly workersLive: Gauge;
  readonly commandFailures: Counter<'command'>;
  readonly workersRefused: Counter<'reason'>;
  readonly partitionsByPhase: Gauge<'phase'>;
  readonly ingestPending: Gauge;
  readonly ingestAckPending: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.isLeader = new Gauge({ name: 'orchestrator_coordinator_is_leader', help: '1 while this coordinator leads, else 0', registers });
    this.leaderEpoch = new Gauge({ name: 'orchestrator_coordinator_leader_epoch', help: 'Leader epoch of the current term (0 while standing by)', registers });
    this.tableVersion = new Gauge({ name: 'orchestrator_assignment_version', help: 'Version of the assignment table this leader maintains', registers });
    this.handoffs = new Counter({
      name: 'orchestrator_handoffs_total',
      help: 'Partitions that changed owner: graceful (revoke answered), forced (revoke timed out), orphaned (owner gone)',
      labelNames: ['outcome'],
      registers,
    });
    for (const outcome of ['graceful', 'forced', 'orphaned'] as const) this.handoffs.inc({ outcome }, 0);
    this.handoffDuration = new Histogram({
      name: 'orchestrator_handoff_duration_seconds',
      help: 'Revoke sent to the old owner → new owner acknowledged the assign, per partition',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.rebalanceMoves = new Counter({ name: 'orchestrator_rebalance_moves_total', help: 'Partitions whose owner the leader changed (any reason)', registers });
    this.partitionsAssigned = new Gauge({
      name: 'orchestrator_partitions_assigned',
      help: 'Partitions each worker owns in the assignment table (leader only)',
      labelNames: ['worker'],
      registers,
    });
    this.workersLive = new Gauge({ name: 'orchestrator_workers_live', help: 'Workers with a live heartbeat (leader only)', registers });
    this.commandFailures = new Counter({
      name: 'orchestrator_worker_command_failures_total',
      help: 'assign / revoke / shutdown requests a worker did not acknowledge in time',
      labelNames: ['command'],
      registers,
    });
    this.workersRefused = new Counter({
      name: 'orchestrator_workers_refused_total',
      help: 'Live workers the leader refused to assign partitions to, once per worker and term: protocol (another cluster protocol)',
      labelNames: ['reason'],
      registers,
    });
    this.workersRefused.inc({ reason: 'protocol' }, 0);
    this.partitionsByPhase = new Gauge({
      name: 'orchestrator_partitions',
      help: 'Partitions of the assignment table by phase: owned, revoking (moving), unowned (leader only)',
      labelNames: ['phase'],
      registers,
    });
    this.ingestPending = new Gauge({
      name: 'orchestrator_ingest_pending',
      help: 'Messages of the signals stream not yet delivered to the shared ingest consumer (leader only; read every 5 s)',
      registers,
    });
    this.ingestAckPending = new Gauge({
      name: 'orchestrator_ingest_ack_pending',
      help: 'Messages delivered to the shared ingest consumer and not yet acknowledged (leader only; read every 5 s)',
      registers,
    });
  }

  /** Standing by: the leader-only gauges are cleared so that only the leader reports them. */
  clearLeaderGauges(): void {
    this.isLeader.set(0);
    this.leaderEpoch.set(0);
    this.partitionsAssigned.reset();
    this.workersLive.reset();
    this.tableVersion.reset();
    this.partitionsByPhase.reset();
    this.ingestPending.reset();
    this.ingestAckPending.reset();
  }
}
