import type { ChildService } from '../child-service.js';
import type { ProcessRef } from '../probes.js';
import { scriptProcess } from './script-process.js';
import type { SystemUnderTest, TargetContext } from './target.js';

/**
 * The driver's floor: loadtest/baseline/echo-orchestrator.ts in its own process, via tsx, spawned
 * like the seed baseline. Same subjects, same JetStream push delivery, the seed's rules, no Redis:
 * its latency is what the driver, NATS and the measuring cost by themselves.
 */
export class EchoTarget implements SystemUnderTest {
  readonly name = 'echo';
  private service: ChildService | undefined;

  async start(context: TargetContext): Promise<void> {
    // ECHO_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the echo.
    const service = scriptProcess(context, {
      label: 'echo',
      script: 'baseline/echo-orchestrator.ts',
      nodeArgsVariable: 'ECHO_NODE_ARGS',
      env: { NATS_URL: context.natsUrl, NATS_STREAM: context.stream },
      readyLine: /Echo orchestrator started/,
    });
    this.service = service;
    await service.start();
    context.log(`echo started (pid ${service.pid})`);
  }

  processes(): readonly ProcessRef[] {
    return this.service === undefined ? [] : [{ label: 'echo', pid: this.service.pid }];
  }

  async close(): Promise<void> {
    await this.service?.stop();
  }
}
