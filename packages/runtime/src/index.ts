export { ControlRefusals } from './control-refusals.js';
export { ControlSealer, ControlVerifier, SealHeaders, keyId, type ControlKind, type ControlVerifierOptions, type RefusalReason, type Verification } from './control-seal.js';
export { HealthServer, type HealthReport, type HealthSource } from './http.js';
export { createLogger, memoryLogger, type Logger, type LoggerOptions } from './logger.js';
export { Counter, Gauge, Histogram, Registry, createRegistry } from './metrics.js';
export { NatsLink, type NatsConnection } from './nats.js';
export { Redis, RedisLink } from './redis.js';
export { ShutdownSequence } from './shutdown.js';
export { ensureJetStreamTopology, subjectCovers } from './streams.js';
