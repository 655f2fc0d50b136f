import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { ConfigError, type RedisClusterNodes, type RedisSentinel, type TlsFiles } from '@at-orchestrator/contracts';
import { checkCredentialFile, readCredentialFile } from './credential-files.js';

/**
 * Credentials and TLS of a Redis connection (config.redis): the ACL user and password, used when the
 * URL carries none (the URL's own win), and the TLS files of a rediss:// URL. The same settings go to
 * the state connection and to every Redlock connection.
 */
export interface RedisAccess {
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: TlsFiles;
}

export interface RedisConnectionSettings {
  readonly username?: string;
  readonly password?: string;
  /**
   * ioredis copies these fields into tls.connect at every connect; each one is a getter that reads its
   * file then, so a rotated CA or client certificate is used from the next reconnect.
   */
  readonly tls?: TlsConnectionOptions;
}

/** Checks the files (a ConfigError naming the variable) and builds the ioredis options for one URL. */
export function redisConnectionSettings(url: string, access: RedisAccess | undefined, variable = 'REDIS_URL'): RedisConnectionSettings {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`${variable}=(value hidden) is not valid: expected a redis:// or rediss:// URL`);
  }
  if (access === undefined) return {};
  const settings: { username?: string; password?: string; tls?: TlsConnectionOptions } = {};
  // The URL's credentials win: ioredis lets options override the URL, so only fill what it lacks.
  if (parsed.password === '' && parsed.username === '') {
    if (access.username !== undefined) settings.username = access.username;
    if (access.password !== undefined) settings.password = access.password;
  }
  const { caFile, certFile, keyFile } = access.tls;
  const anyFile = caFile !== undefined || certFile !== undefined || keyFile !== undefined;
  if (anyFile && parsed.protocol !== 'rediss:') {
    const named = caFile !== undefined ? 'REDIS_TLS_CA_FILE' : 'REDIS_TLS_CERT_FILE';
    throw new ConfigError(`${named} is set but ${variable} is not rediss://: expected a rediss:// URL (TLS) or no REDIS_TLS_* files`);
  }
  if (parsed.protocol === 'rediss:') settings.tls = tlsOptions(access.tls);
  else checkTlsFiles(access.tls);
  return settings;
}

/** ioredis options for Redis behind Sentinel (besides the common ones RedisLink adds). */
export interface RedisSentinelSettings {
  readonly sentinels: Array<{ host: string; port: number }>;
  /** The name the Sentinels monitor the primary under. */
  readonly name: string;
  readonly role: 'master';
  readonly sentinelPassword?: string;
  readonly username?: string;
  readonly password?: string;
  readonly tls?: TlsConnectionOptions;
}

/**
 * The ioredis options to reach the primary that Sentinel names (REDIS_SENTINELS, REDIS_SENTINEL_MASTER):
 * REDIS_USERNAME / REDIS_PASSWORD and the TLS files apply to the data nodes (the primary; TLS is on
 * when a REDIS_TLS_* file is set, there being no rediss:// to say so), REDIS_SENTINEL_PASSWORD to the
 * Sentinels themselves, which are reached without TLS.
 */
export function redisSentinelSettings(sentinel: RedisSentinel, access: RedisAccess | undefined): RedisSentinelSettings {
  const settings: { -readonly [K in keyof RedisSentinelSettings]: RedisSentinelSettings[K] } = {
    sentinels: sentinel.sentinels.map(({ host, port }) => ({ host, port })),
    name: sentinel.masterName,
    role: 'master',
  };
  if (sentinel.password !== undefined) settings.sentinelPassword = sentinel.password;
  if (access === undefined) return settings;
  if (access.username !== undefined) settings.username = access.username;
  if (access.password !== undefined) settings.password = access.password;
  const { caFile, certFile, keyFile } = access.tls;
  if (caFile !== undefined || certFile !== undefined || keyFile !== undefined) settings.tls = tlsOptions(access.tls);
  return settings;
}

/** ioredis options for a Redis Cluster (besides the common ones RedisLink adds). */
export interface RedisClusterSettings {
  readonly nodes: Array<{ host: string; port: number }>;
  /** What every node connection gets: the ACL user and password, TLS when a REDIS_TLS_* file is set. */
  readonly node: { username?: string; password?: string; tls?: TlsConnectionOptions };
}

/**
 * The ioredis options to reach a Redis Cluster through REDIS_CLUSTER_NODES: REDIS_USERNAME /
 * REDIS_PASSWORD and the TLS files apply to every node (TLS is on when a REDIS_TLS_* file is set, there
 * being no rediss:// to say so).
 */
export function redisClusterSettings(cluster: RedisClusterNodes, access: RedisAccess | undefined): RedisClusterSettings {
  const node: { username?: string; password?: string; tls?: TlsConnectionOptions } = {};
  if (access !== undefined) {
    if (access.username !== undefined) node.username = access.username;
    if (access.password !== undefined) node.password = access.password;
    const { caFile, certFile, keyFile } = access.tls;
    if (caFile !== undefined || certFile !== undefined || keyFile !== undefined) node.tls = tlsOptions(access.tls);
  }
  return { nodes: cluster.nodes.map(({ host, port }) => ({ host, port })), node };
}

/** Checks the TLS files named (a ConfigError naming the variable). */
function checkTlsFiles({ caFile, certFile, keyFile }: TlsFiles): void {
  if (caFile !== undefined) checkCredentialFile('REDIS_TLS_CA_FILE', caFile, 'certificate');
  if (certFile !== undefined) checkCredentialFile('REDIS_TLS_CERT_FILE', certFile, 'certificate');
  if (keyFile !== undefined) checkCredentialFile('REDIS_TLS_KEY_FILE', keyFile, 'private key');
}

/** Checks the files, then the TLS options whose fields read them again at every connect (rotation). */
function tlsOptions(files: TlsFiles): TlsConnectionOptions {
  checkTlsFiles(files);
  const { caFile, certFile, keyFile } = files;
  const tls: TlsConnectionOptions = {};
  // A file that cannot be read at a reconnect fails that attempt (ioredis retries); it was checked at start.
  if (caFile !== undefined) Object.defineProperty(tls, 'ca', { enumerable: true, get: () => readCredentialFile('REDIS_TLS_CA_FILE', caFile) });
  if (certFile !== undefined) Object.defineProperty(tls, 'cert', { enumerable: true, get: () => readCredentialFile('REDIS_TLS_CERT_FILE', certFile) });
  if (keyFile !== undefined) Object.defineProperty(tls, 'key', { enumerable: true, get: () => readCredentialFile('REDIS_TLS_KEY_FILE', keyFile) });
  return tls;
}
