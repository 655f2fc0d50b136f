import type { ChildService } from '../child-service.js';
import type { LadderStep } from '../options.js';
import type { ProcessRef } from '../probes.js';
import { scriptProcess } from './script-process.js';
import type { SystemUnderTest, TargetContext } from './target.js';

/**
 * The seed with our decision protocol's steps added (loadtest/micro/protocol-ladder.ts) in its own
 * process, via tsx, spawned like the seed baseline: what the protocol costs by itself, written as
 * plainly as the seed, so that the worker's own overhead is what remains above it.
 */
export class LadderTarget implements SystemUnderTest {
  readonly name = 'ladder';
  private service: ChildService | undefined;

  constructor(
    private readonly steps: readonly LadderStep[],
    private readonly decisionStream: string,
  ) {}

  async start(context: TargetContext): Promise<void> {
    // LADDER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles it.
    const service = scriptProcess(context, {
      label: 'ladder',
      script: 'micro/protocol-ladder.ts',
      nodeArgsVariable: 'LADDER_NODE_ARGS',
      nodeArgs: ['--conditions=source'],
      env: {
        NATS_URL: context.natsUrl,
        REDIS_URL: context.redisUrl,
        NATS_STREAM: context.stream,
        NATS_DECISION_STREAM: this.decisionStream,
        LADDER: this.steps.join(','),
      },
      readyLine: /Protocol ladder started/,
    });
    this.service = service;
    await service.start();
    context.log(`ladder started (pid ${service.pid}, steps: ${this.steps.join(',') || 'none'})`);
  }

  processes(): readonly ProcessRef[] {
    return this.service === undefined ? [] : [{ label: 'ladder', pid: this.service.pid }];
  }

  async close(): Promise<void> {
    await this.service?.stop();
  }
}
