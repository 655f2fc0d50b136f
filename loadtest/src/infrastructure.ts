import { randomBytes } from 'node:crypto';
import { NatsServer, RedisServer, makeTestPki, natsTlsBlock, serverVersion } from '@at-orchestrator/local-servers';
import { CONNECTION_VARIABLES, redactUrl } from '@at-orchestrator/contracts';
import type { ProcessRef } from './probes.js';

/** The broker and the store a run uses: private processes the driver owns, or given URLs. */
export interface Infrastructure {
  readonly kind: 'private' | 'given';
  readonly natsUrl: string;
  readonly redisUrl: string;
  readonly natsWsUrl: string | undefined;
  readonly versions: { readonly nats: string | undefined; readonly redis: string | undefined };
  /** Connection variables (CONNECTION_VARIABLES) for the driver and every process of the target. */
  readonly clientEnv: Readonly<Record<string, string>>;
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

/**
 * Private servers on free ports. secure: a throwaway CA; NATS with mutual TLS and a user/password,
 * Redis serving TLS only with client certificates and an ACL user (the default user off).
 */
export async function startPrivateInfrastructure(options: { websocket: boolean; secure?: boolean; log: (line: string) => void }): Promise<Infrastructure> {
  const pki = options.secure === true ? makeTestPki('loadtest') : undefined;
  const natsPassword = randomBytes(12).toString('hex');
  const redisPassword = randomBytes(12).toString('hex');
  const [nats, redis] = await Promise.all([
    NatsServer.start({
      websocket: options.websocket,
      install: true,
      log: options.log,
      ...(pki === undefined ? {} : { config: `authorization { users: [ { user: loadtest, password: ${JSON.stringify(natsPassword)} } ] }\n${natsTlsBlock(pki)}` }),
    }),
    RedisServer.start({
      install: true,
      log: options.log,
      ...(pki === undefined
        ? {}
        : {
            tls: { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, caFile: pki.caFile },
            args: ['--user', 'default', 'off', '--user', 'loadtest', 'on', `>${redisPassword}`, '~*', '&*', '+@all'],
          }),
    }),
  ]);
  const clientEnv: Record<string, string> =
    pki === undefined
      ? {}
      : {
          NATS_USER: 'loadtest',
          NATS_PASSWORD: natsPassword,
          NATS_TLS_CA_FILE: pki.caFile,
          NATS_TLS_CERT_FILE: pki.clientCertFile,
          NATS_TLS_KEY_FILE: pki.clientKeyFile,
          REDIS_USERNAME: 'loadtest',
          REDIS_PASSWORD: redisPassword,
          REDIS_TLS_CA_FILE: pki.caFile,
          REDIS_TLS_CERT_FILE: pki.clientCertFile,
          REDIS_TLS_KEY_FILE: pki.clientKeyFile,
        };
  let closed = false;
  return {
    kind: 'private',
    natsUrl: nats.url,
    redisUrl: redis.url,
    natsWsUrl: nats.wsUrl,
    versions: { nats: version('nats-server'), redis: version('redis-server') },
    clientEnv,
    processes: () => [
      { label: 'nats-server', pid: nats.pid },
      { label: 'redis-server', pid: redis.pid },
    ],
    describe: () =>
      `private nats-server ${nats.url}${nats.wsUrl === undefined ? '' : ` (ws ${nats.wsUrl})`}, redis-server ${redis.url}${pki === undefined ? '' : ' (secure: mutual TLS and user/password on NATS, TLS and an ACL user on Redis)'}`,
    close: async () => {
      if (closed) return;
      closed = true;
      await Promise.all([nats.dispose(), redis.dispose()]);
      pki?.dispose();
    },
  };
}

/** Servers someone else runs; their credentials and TLS files come from the same variables as ours. */
export function givenInfrastructure(
  urls: { natsUrl: string; redisUrl: string; natsWsUrl: string | undefined },
  env: Readonly<Record<string, string | undefined>> = {},
): Infrastructure {
  const clientEnv: Record<string, string> = {};
  for (const name of CONNECTION_VARIABLES) {
    const value = env[name];
    if (value !== undefined && value !== '') clientEnv[name] = value;
  }
  return {
    kind: 'given',
    ...urls,
    versions: { nats: version('nats-server'), redis: version('redis-server') },
    clientEnv,
    processes: () => [],
    describe: () =>
      `given ${redactUrl(urls.natsUrl)}${urls.natsWsUrl === undefined ? '' : ` (ws ${redactUrl(urls.natsWsUrl)})`}, ${redactUrl(urls.redisUrl)}`,
    close: async () => undefined,
  };
}
