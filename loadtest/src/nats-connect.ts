import { connect, type NatsConnection } from '@nats-io/transport-node';
import { natsConnectionSettings } from '@at-orchestrator/connections';
import { loadConfig } from '@at-orchestrator/contracts';
import type { Infrastructure } from './infrastructure.js';

/**
 * The driver connects the way every orchestrator process does: the same NATS_* variables (the run's
 * clientEnv), the same file checks, credentials in the URL taken out of the server list.
 */
export function connectDriver(infra: Pick<Infrastructure, 'natsUrl' | 'clientEnv'>, name: string): Promise<NatsConnection> {
  const { nats } = loadConfig({ NATS_URL: infra.natsUrl, ...infra.clientEnv });
  return connect({ ...natsConnectionSettings(nats.servers, nats.auth).options, name });
}
