import type { ProcessRef } from '../probes.js';

export interface TargetContext {
  readonly natsUrl: string;
  readonly redisUrl: string;
  /** Connection variables (credentials, TLS files) every process of the target needs. */
  readonly clientEnv: Readonly<Record<string, string>>;
  /** The signal stream (NATS_STREAM). */
  readonly stream: string;
  readonly log: (line: string) => void;
  /** Called when a process of the target dies on its own during the run. */
  readonly onFailure: (message: string) => void;
}

/**
 * The system under test, as the driver sees it: something that consumes signals.enriched.* and
 * publishes orchestrated.decision. New kinds plug in here (registry in ./index.ts).
 */
export interface SystemUnderTest {
  readonly name: string;
  /** Starts it and resolves when it is ready to consume. */
  start(context: TargetContext): Promise<void>;
  /** Its processes, for CPU/memory sampling. */
  processes(): readonly ProcessRef[];
  /** One more instance, the way an autoscaler would add one; absent when the target cannot scale. */
  scaleUp?(): Promise<string>;
  /** kill -9 one instance; absent when the target has none to spare. */
  killOne?(): Promise<string>;
  /** Stops everything it started. Idempotent. */
  close(): Promise<void>;
}
