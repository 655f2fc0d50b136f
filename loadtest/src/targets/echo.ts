import { ChildService } from '../child-service.js';
import { LOADTEST_DIR } from '../package-dir.js';
import type { ProcessRef } from '../probes.js';
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
    const extra = (process.env.ECHO_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
    const service = new ChildService('echo', process.execPath, [...extra, '--import', 'tsx', 'baseline/echo-orchestrator.ts'], {
      // From the package folder, so that `--import tsx` and the echo's dependencies resolve.
      cwd: LOADTEST_DIR,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NATS_URL: context.natsUrl,
        NATS_STREAM: context.stream,
      },
      readyLine: /Echo orchestrator started/,
    });
    service.onUnexpectedExit = (info, tail) => context.onFailure(`echo exited with ${info.signal ?? `code ${info.code}`} during the run:\n${tail}`);
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
