import { CONFIG_VARIABLES, ConfigError, OrchestratorError, loadConfig, redactUrl } from '@at-orchestrator/contracts';
import { ShutdownSequence, createLogger } from '@at-orchestrator/runtime';
import { Coordinator } from '@at-orchestrator/coordinator';
import { OrchestratorWorker } from '@at-orchestrator/worker';
import type { Command } from '../cli.js';

export const workerCommand: Command = {
  name: 'worker',
  summary: 'run a worker: consume signals, fan in by corr_id, publish decisions',
  usage: [
    'Usage: at-orchestrator worker',
    '',
    'Runs one worker of the data plane. Configuration comes from environment variables',
    '(validated at start; a bad value exits with code 2 and names the variable):',
    '',
    `  ${CONFIG_VARIABLES.join(', ')}`,
    '',
    'PROFILE=simple|workflow|high-frequency sets the seed\'s defaults (high-frequency by default);',
    'explicit variables win. SIGTERM or SIGINT drains and exits 0 within SHUTDOWN_GRACE_SEC.',
    '',
    'COORDINATOR=embedded (the default) also runs a coordinator candidate in this process, so a worker',
    'started alone decides everything; set COORDINATOR=off where coordinators run as their own processes.',
  ].join('\n'),
  async run(args) {
    if (args.length > 0) {
      process.stderr.write(`at-orchestrator worker: unexpected argument ${JSON.stringify(args[0])} (configuration is read from the environment)\n`);
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
    const log = createLogger({ service: config.serviceName, env: config.env, level: config.logLevel, base: { role: 'worker', worker_id: config.workerId } });
    const shutdown = new ShutdownSequence(log, config.shutdownGraceMs);
    const worker = new OrchestratorWorker({
      config,
      log,
      // After a drain the leader asks us to stop: the same graceful path as SIGTERM, exit 0.
      onShutdownRequested: () => void shutdown.run().then((code) => process.exit(code)),
    });
    const coordinator =
      config.cluster.coordinator === 'embedded'
        ? new Coordinator({ config, log: log.child({ role: 'coordinator' }), registry: worker.registry, http: false })
        : undefined;
    // Order: the worker drains first (its partitions stay open in Redis), then the coordinator steps down.
    shutdown.add('worker', () => worker.close());
    if (coordinator !== undefined) shutdown.add('coordinator', () => coordinator.close());
    const exitCode = new Promise<number>((resolve) => shutdown.installSignalHandlers(resolve));
    try {
      await coordinator?.start();
      await worker.start();
    } catch (err) {
      const message = err instanceof OrchestratorError ? err.message : redactUrl(String((err as Error).message ?? err));
      log.fatal({ err }, 'worker failed to start');
      process.stderr.write(`at-orchestrator: worker failed to start: ${message}\n`);
      await worker.close().catch(() => undefined);
      await coordinator?.close().catch(() => undefined);
      return 1;
    }
    const code = await exitCode;
    log.flush();
    return code;
  },
};
