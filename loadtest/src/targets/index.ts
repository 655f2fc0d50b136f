import type { LoadOptions } from '../options.js';
import { BaselineTarget } from './baseline.js';
import { EchoTarget } from './echo.js';
import { LadderTarget } from './ladder.js';
import type { SystemUnderTest } from './target.js';
import { WorkerTarget } from './worker.js';

export type { SystemUnderTest, TargetContext } from './target.js';
export { BaselineTarget } from './baseline.js';
export { EchoTarget } from './echo.js';
export { LadderTarget } from './ladder.js';
export { WorkerTarget, DEFAULT_WORKER_CMD } from './worker.js';

/**
 * Starts the target on the run's servers. What it reports failing while the run goes on (an
 * instance exiting, …) is logged and collected in `failures`, which the run's verdict reads.
 */
export function startTarget(
  target: SystemUnderTest,
  servers: { natsUrl: string; redisUrl: string; clientEnv: Readonly<Record<string, string>> },
  stream: string,
  log: (line: string) => void,
  failures: string[],
): Promise<void> {
  return target.start({
    natsUrl: servers.natsUrl,
    redisUrl: servers.redisUrl,
    clientEnv: servers.clientEnv,
    stream,
    log,
    onFailure: (message) => {
      failures.push(message);
      log(`TARGET FAILURE: ${message}`);
    },
  });
}

/** Something already running against the given servers: the driver only publishes and measures. */
class ExternalTarget implements SystemUnderTest {
  readonly name = 'none';
  async start(): Promise<void> {}
  processes() {
    return [];
  }
  async close(): Promise<void> {}
}

export function createTarget(o: LoadOptions): SystemUnderTest {
  switch (o.target) {
    case 'baseline':
      return new BaselineTarget();
    case 'echo':
      return new EchoTarget();
    case 'ladder':
      return new LadderTarget(o.ladder, o.decisionStream);
    case 'worker':
      return new WorkerTarget({
        workers: o.workers,
        ...(o.workerCmd === undefined ? {} : { workerCmd: o.workerCmd }),
        ...(o.coordinatorCmd === undefined ? {} : { coordinatorCmd: o.coordinatorCmd }),
        env: { NATS_STREAM: o.stream, NATS_DECISION_STREAM: o.decisionStream, ...o.workerEnv },
      });
    case 'none':
      return new ExternalTarget();
  }
}
