export { checkCredentialFile, parseCreds, parseNkeySeed, readCredentialFile, type CredentialFileKind, type ParsedCreds } from './credential-files.js';
export { NO_NATS_AUTH, natsConnectionSettings, splitUrlCredentials, type NatsAuthMethod, type NatsConnectionSettings, type StaleFileListener } from './nats-options.js';
export { redisClusterSettings, redisConnectionSettings, redisSentinelSettings, type RedisAccess, type RedisClusterSettings, type RedisConnectionSettings, type RedisSentinelSettings } from './redis-options.js';
