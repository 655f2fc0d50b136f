import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ConfigError, OrchestratorError, redactUrl, type NatsAuth } from '@at-orchestrator/contracts';
import type { Logger } from './logger.js';
import { natsConnectionSettings } from '@at-orchestrator/connections';

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

  /**
   * Connects with the credentials and TLS settings of `auth` (config.nats.auth) and those written in
   * the server URLs. Throws ConfigError for a bad credential file or a plaintext server when TLS is
   * demanded (exit 2), OrchestratorError CONNECTION_FAILED otherwise; neither ever holds a secret.
   */
  static async connect(options: { servers: readonly string[]; auth?: NatsAuth; name: string; log: Logger; timeoutMs?: number }): Promise<NatsLink> {
    const settings = natsConnectionSettings(options.servers, options.auth, (variable, err) =>
      options.log.warn({ variable, reason: (err as Error).message }, 'a rotated NATS credential file cannot be used yet: keeping the last good one'),
    );
    try {
      const nc = await connect({
        ...settings.options,
        name: options.name,
        maxReconnectAttempts: -1,
        // nats.js gives up after two refusals in a row; during a credential rotation the server may
        // refuse until the new file lands, and a process should then get in without a restart.
        ignoreAuthErrorAbort: true,
        reconnectTimeWait: 250,
        reconnectJitter: 100,
        pingInterval: 5_000,
        maxPingOut: 3,
        // Otherwise every request and JetStream publish builds an Error up front for the stack trace
        // of a timeout that almost never comes (about 6 % of a worker's CPU at 500 decisions/s,
        // docs/high-frequency-history.md); our own errors name the subject and the operation instead.
        noAsyncTraces: true,
        timeout: options.timeoutMs ?? 5_000,
      });
      options.log.debug({ servers: settings.servers, auth: settings.method, tls: settings.tlsRequired }, 'nats connected');
      return new NatsLink(nc, options.log);
    } catch (err) {
      const message = redactUrl(String((err as Error).message));
      if (settings.tlsRequired && /does not support 'tls'|tls.*not available/i.test(message)) {
        throw new ConfigError(
          `NATS at ${settings.servers.join(', ')} offers no TLS, and TLS is required (NATS_TLS_REQUIRED=true or a NATS_TLS_* file is set): expected a server with TLS enabled, or unset them`,
        );
      }
      throw new OrchestratorError('CONNECTION_FAILED', `cannot connect to NATS at ${settings.servers.join(', ')}: ${message}`, { retryable: true, cause: err });
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
