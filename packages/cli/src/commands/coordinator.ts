import { ConfigError, OrchestratorError, loadConfig, redactUrl } from '@at-orchestrator/contracts';
import { Coordinator } from '@at-orchestrator/coordinator';
import { ShutdownSequence, createLogger } from '@at-orchestrator/runtime';
import type { Command } from '../cli.js';

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
  async run(args) {
    if (args.length > 0) {
      process.stderr.write(`at-orchestrator coordinator: unexpected argument ${JSON.stringify(args[0])} (configuration is read from the environment)\n`);
      return 2;
    }
    let config;
    try {
      config = loadConfig(process.env);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`at-orchestrator: invalid configuration: ${err.message}\n`);
        return 2;
      }
      throw err;
    }
    const log = createLogger({
      service: config.serviceName,
      env: config.env,
      level: config.logLevel,
      base: { role: 'coordinator' },
    });
    const coordinator = new Coordinator({ config, log });
    const shutdown = new ShutdownSequence(log, config.shutdownGraceMs).add('coordinator', () => coordinator.close());
    const exitCode = new Promise<number>((resolve) => shutdown.installSignalHandlers(resolve));
    try {
      await coordinator.start();
    } catch (err) {
      const message = err instanceof OrchestratorError ? err.message : redactUrl(String((err as Error).message ?? err));
      log.fatal({ err }, 'coordinator failed to start');
      process.stderr.write(`at-orchestrator: coordinator failed to start: ${message}\n`);
      await coordinator.close().catch(() => undefined);
      return 1;
    }
    const code = await exitCode;
    log.flush();
    return code;
  },
};
