import { Coordinator } from '@at-orchestrator/coordinator';
import type { Command } from '../command.js';
import { runProcess } from '../process-command.js';

export const coordinatorCommand: Command = {
  name: 'coordinator',
  summary: 'run a coordinator replica: leader election, partition assignment and handoff, control API',
  usage: [
    'Usage: at-orchestrator coordinator',
    '',
    'Runs one coordinator replica of the control plane. Run two or more: they elect a leader through a',
    'Redis lease (LEADER_LEASE_MS); a standby takes over within the lease when the leader dies. The',
    'leader assigns the PARTITIONS hash partitions to the workers whose heartbeats it sees, hands them',
    'off when workers join, leave, drain or die, and answers the operator commands (status, workers,',
    'partitions, plan, rebalance, drain, move, pause, resume).',
    '',
    'Configuration comes from environment variables, among them:',
    '  NATS_URL, REDIS_URL, REDIS_KEY_PREFIX, PARTITIONS, COORDINATOR_ID, HEARTBEAT_INTERVAL_MS,',
    '  WORKER_LEASE_MS, LEADER_LEASE_MS, REVOKE_TIMEOUT_MS, HTTP_PORT (/health, /ready, /metrics),',
    '  LOG_LEVEL, SHUTDOWN_GRACE_SEC.',
    '',
    'SIGTERM or SIGINT steps down at once (the lease is released, so a standby leads without waiting)',
    'and exits 0. See docs/cluster.md.',
  ].join('\n'),
  run(args) {
    return runProcess('coordinator', args, (config, log, shutdown) => {
      const coordinator = new Coordinator({ config, log });
      shutdown.add('coordinator', () => coordinator.close());
      return { start: () => coordinator.start(), close: () => coordinator.close() };
    });
  },
};
