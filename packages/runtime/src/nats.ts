import { connect, type NatsConnection } from '@nats-io/transport-node';
import { OrchestratorError, redactUrl } from '@at-orchestrator/contracts';
import type { Logger } from './logger.js';

export type { NatsConnection } from '@nats-io/transport-node';

/**
 * A NATS connection that reconnects forever (a NATS restart never needs a process restart) and knows
 * whether it is connected right now, for /health.
 */
export class NatsLink {
  private connectedNow = true;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {
    void this.watchStatus();
  }

  static async connect(options: { servers: readonly string[]; name: string; log: Logger; timeoutMs?: number }): Promise<NatsLink> {
    try {
      const nc = await connect({
        servers: [...options.servers],
        name: options.name,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        reconnectJitter: 100,
        pingInterval: 5_000,
        maxPingOut: 3,
        timeout: options.timeoutMs ?? 5_000,
      });
      return new NatsLink(nc, options.log);
    } catch (err) {
      throw new OrchestratorError(
        'CONNECTION_FAILED',
        `cannot connect to NATS at ${options.servers.map(redactUrl).join(', ')}: ${redactUrl(String((err as Error).message))}`,
        { retryable: true, cause: err },
      );
    }
  }

  get connected(): boolean {
    return this.connectedNow && !this.nc.isClosed();
  }

  /** Drains subscriptions and closes; idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.nc.isClosed()) return;
      try {
        await this.nc.drain();
      } catch {
        await this.nc.close();
      }
    })();
    return this.closing;
  }

  private async watchStatus(): Promise<void> {
    try {
      for await (const s of this.nc.status()) {
        switch (s.type) {
          case 'disconnect':
            this.connectedNow = false;
            this.log.warn({ server: redactUrl(s.server) }, 'nats disconnected');
            break;
          case 'reconnect':
            this.connectedNow = true;
            this.log.info({ server: redactUrl(s.server) }, 'nats reconnected');
            break;
          case 'error':
            this.log.warn({ err: s.error }, 'nats error');
            break;
          case 'close':
            this.connectedNow = false;
            break;
          default:
            break;
        }
      }
    } catch (err) {
      this.log.debug({ err }, 'nats status watcher ended');
    }
  }
}
