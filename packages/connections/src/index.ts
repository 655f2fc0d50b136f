export { checkCredentialFile, parseCreds, parseNkeySeed, readCredentialFile, type CredentialFileKind, type ParsedCreds } from './credential-files.js';
export { NO_NATS_AUTH, natsConnectionSettings, splitUrlCredentials, type NatsAuthMethod, type NatsConnectionSettings, type StaleFileListener } from './nats-options.js';
export { redisConnectionSettings, type RedisAccess, type RedisConnectionSettings } from './redis-options.js';
