import { CONFIG_VARIABLES } from '@at-orchestrator/contracts';
import { Coordinator } from '@at-orchestrator/coordinator';
import { OrchestratorWorker } from '@at-orchestrator/worker';
import type { Command } from '../command.js';
import { runProcess } from '../process-command.js';

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
  run(args) {
    return runProcess('worker', args, (config, log, shutdown) => {
      const embedded = config.cluster.coordinator === 'embedded';
      let coordinator: Coordinator | undefined;
      const worker = new OrchestratorWorker({
        config,
        log,
        // The embedded coordinator's console is served on the worker's HTTP port.
        httpRoutes: embedded ? [{ prefix: '/console', handle: (req, res, path) => coordinator!.consoleRoute.handle(req, res, path) }] : [],
        // After a drain the leader asks us to stop: the same graceful path as SIGTERM, exit 0.
        onShutdownRequested: () => void shutdown.run().then((code) => process.exit(code)),
        // A configuration problem found once running (an evicting Redis reached late): stop, exit 2.
        onConfigRefused: (err) => {
          process.stderr.write(`at-orchestrator: invalid configuration: ${err.message}\n`);
          void shutdown.run().then(() => process.exit(2));
        },
      });
      // It shares the worker's registry, so that one /metrics shows both.
      if (embedded) coordinator = new Coordinator({ config, log: log.child({ role: 'coordinator' }), registry: worker.registry, http: false });
      // Order: the worker drains first (its partitions stay open in Redis), then the coordinator steps down.
      shutdown.add('worker', () => worker.close());
      if (coordinator !== undefined) shutdown.add('coordinator', () => coordinator.close());
      return {
        start: async () => {
          await coordinator?.start();
          await worker.start();
          if (worker.port !== undefined) coordinator?.serveConsoleOn(worker.port);
        },
        close: async () => {
          await worker.close();
          await coordinator?.close();
        },
      };
    });
  },
};
