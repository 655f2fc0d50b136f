import { freePort } from '@at-orchestrator/local-servers';
import { ChildService } from '../child-service.js';
import { LOADTEST_DIR } from '../package-dir.js';
import type { ProcessRef } from '../probes.js';
import type { SystemUnderTest, TargetContext } from './target.js';


/** The seed port (loadtest/baseline/seed-orchestrator.ts) in its own process, via tsx. */
export class BaselineTarget implements SystemUnderTest {
  readonly name = 'baseline';
  private service: ChildService | undefined;
  private metricsPort = 0;

  async start(context: TargetContext): Promise<void> {
    this.metricsPort = await freePort();
    // BASELINE_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the baseline.
    const extra = (process.env.BASELINE_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
    const service = new ChildService('baseline', process.execPath, [...extra, '--import', 'tsx', 'baseline/seed-orchestrator.ts'], {
      // From the package folder, so that `--import tsx` and the baseline's dependencies resolve.
      cwd: LOADTEST_DIR,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NATS_URL: context.natsUrl,
        REDIS_URL: context.redisUrl,
        NATS_STREAM: context.stream,
        BASELINE_METRICS_PORT: String(this.metricsPort),
      },
      readyLine: /Orchestrator started/,
    });
    service.onUnexpectedExit = (info, tail) =>
      context.onFailure(`baseline exited with ${info.signal ?? `code ${info.code}`} during the run:\n${tail}`);
    this.service = service;
    await service.start();
    context.log(`baseline started (pid ${service.pid})`);
  }

  processes(): readonly ProcessRef[] {
    return this.service === undefined
      ? []
      : [{ label: 'baseline', pid: this.service.pid, metricsUrl: `http://127.0.0.1:${this.metricsPort}/metrics` }];
  }

  async close(): Promise<void> {
    await this.service?.stop();
  }
}
