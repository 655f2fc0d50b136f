import { freePort } from '@at-orchestrator/local-servers';
import type { ChildService } from '../child-service.js';
import type { ProcessRef } from '../probes.js';
import { scriptProcess } from './script-process.js';
import type { SystemUnderTest, TargetContext } from './target.js';


/** The seed port (loadtest/baseline/seed-orchestrator.ts) in its own process, via tsx. */
export class BaselineTarget implements SystemUnderTest {
  readonly name = 'baseline';
  private service: ChildService | undefined;
  private metricsPort = 0;

  async start(context: TargetContext): Promise<void> {
    this.metricsPort = await freePort();
    // BASELINE_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the baseline.
    const service = scriptProcess(context, {
      label: 'baseline',
      script: 'baseline/seed-orchestrator.ts',
      nodeArgsVariable: 'BASELINE_NODE_ARGS',
      env: { NATS_URL: context.natsUrl, REDIS_URL: context.redisUrl, NATS_STREAM: context.stream, BASELINE_METRICS_PORT: String(this.metricsPort) },
      readyLine: /Orchestrator started/,
    });
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
