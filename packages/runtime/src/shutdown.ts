import type { Logger } from './logger.js';

interface Step {
  name: string;
  run: () => Promise<void>;
}

/**
 * The one place where shutdown order is written down. Steps run in the order they were added,
 * each awaited; the whole sequence is bounded by a grace period, after which the process exits
 * with code 1 (work not finished is still safe: unacked messages come back, Redis keeps state).
 */
export class ShutdownSequence {
  private readonly steps: Step[] = [];
  private running: Promise<number> | undefined;
  readonly controller = new AbortController();

  constructor(
    private readonly log: Logger,
    private readonly graceMs: number,
  ) {}

  /** Adds a step; steps run first-added first. */
  add(name: string, run: () => Promise<void>): this {
    this.steps.push({ name, run });
    return this;
  }

  /** SIGTERM / SIGINT start the sequence; the process exits with its result. */
  installSignalHandlers(exit: (code: number) => void = (code) => process.exit(code)): void {
    const onSignal = (signal: NodeJS.Signals): void => {
      this.log.info({ signal }, 'shutdown requested');
      void this.run().then(exit);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  /** Runs the steps once; later calls return the same result. Resolves to an exit code. */
  run(): Promise<number> {
    this.running ??= this.execute();
    return this.running;
  }

  private async execute(): Promise<number> {
    this.controller.abort();
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.graceMs);
      timer.unref();
    });
    let failed = false;
    const all = (async () => {
      for (const step of this.steps) {
        try {
          await step.run();
          this.log.debug({ step: step.name }, 'shutdown step done');
        } catch (err) {
          failed = true;
          this.log.error({ err, step: step.name }, 'shutdown step failed');
        }
      }
      return 'done' as const;
    })();
    const outcome = await Promise.race([all, deadline]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.log.error({ grace_ms: this.graceMs }, 'shutdown grace period exceeded; exiting');
      return 1;
    }
    this.log.info({ took_ms: Date.now() - started }, 'shutdown complete');
    return failed ? 1 : 0;
  }
}
