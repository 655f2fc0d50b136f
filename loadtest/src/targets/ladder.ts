import { ChildService } from '../child-service.js';
import type { LadderStep } from '../options.js';
import { LOADTEST_DIR } from '../package-dir.js';
import type { ProcessRef } from '../probes.js';
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
    const extra = (process.env.LADDER_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
    const service = new ChildService('ladder', process.execPath, [...extra, '--conditions=source', '--import', 'tsx', 'micro/protocol-ladder.ts'], {
      // From the package folder, so that `--import tsx` and the ladder's dependencies resolve.
      cwd: LOADTEST_DIR,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NATS_URL: context.natsUrl,
        REDIS_URL: context.redisUrl,
        NATS_STREAM: context.stream,
        NATS_DECISION_STREAM: this.decisionStream,
        LADDER: this.steps.join(','),
      },
      readyLine: /Protocol ladder started/,
    });
    service.onUnexpectedExit = (info, tail) => context.onFailure(`ladder exited with ${info.signal ?? `code ${info.code}`} during the run:\n${tail}`);
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
