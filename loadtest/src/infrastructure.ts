import { NatsServer, RedisServer, serverVersion } from '@at-orchestrator/local-servers';
import { redactUrl } from '@at-orchestrator/contracts';
import type { ProcessRef } from './probes.js';

/** The broker and the store a run uses: private processes the driver owns, or given URLs. */
export interface Infrastructure {
  readonly kind: 'private' | 'given';
  readonly natsUrl: string;
  readonly redisUrl: string;
  readonly natsWsUrl: string | undefined;
  readonly versions: { readonly nats: string | undefined; readonly redis: string | undefined };
  processes(): readonly ProcessRef[];
  /** URLs without credentials, for reports. */
  describe(): string;
  close(): Promise<void>;
}

function version(name: 'nats-server' | 'redis-server'): string | undefined {
  try {
    return serverVersion(name);
  } catch {
    return undefined;
  }
}

export async function startPrivateInfrastructure(options: { websocket: boolean; log: (line: string) => void }): Promise<Infrastructure> {
  const [nats, redis] = await Promise.all([
    NatsServer.start({ websocket: options.websocket, install: true, log: options.log }),
    RedisServer.start({ install: true, log: options.log }),
  ]);
  let closed = false;
  return {
    kind: 'private',
    natsUrl: nats.url,
    redisUrl: redis.url,
    natsWsUrl: nats.wsUrl,
    versions: { nats: version('nats-server'), redis: version('redis-server') },
    processes: () => [
      { label: 'nats-server', pid: nats.pid },
      { label: 'redis-server', pid: redis.pid },
    ],
    describe: () => `private nats-server ${nats.url}${nats.wsUrl === undefined ? '' : ` (ws ${nats.wsUrl})`}, redis-server ${redis.url}`,
    close: async () => {
      if (closed) return;
      closed = true;
      await Promise.all([nats.dispose(), redis.dispose()]);
    },
  };
}

export function givenInfrastructure(urls: { natsUrl: string; redisUrl: string; natsWsUrl: string | undefined }): Infrastructure {
  return {
    kind: 'given',
    ...urls,
    versions: { nats: version('nats-server'), redis: version('redis-server') },
    processes: () => [],
    describe: () =>
      `given ${redactUrl(urls.natsUrl)}${urls.natsWsUrl === undefined ? '' : ` (ws ${redactUrl(urls.natsWsUrl)})`}, ${redactUrl(urls.redisUrl)}`,
    close: async () => undefined,
  };
}
