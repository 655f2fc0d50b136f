export { findServerBinary, serverVersion, type ServerBinary } from './binaries.js';
export { freePort, LocalServer, NatsServer, RedisServer, type NatsServerOptions, type RedisServerOptions, type ServerOptions } from './servers.js';
export { makeTestPki, natsTlsBlock, type TestPki } from './pki.js';
export { NatsCluster, NatsClusterNode, type ClientConnection, type NatsClusterOptions } from './nats-cluster.js';
export { RedisSentinelNode, RedisSentinelSet, redisCommand, type RedisSentinelSetOptions } from './redis-sentinel.js';
export { RedisClusterSet, type ClusterNodeInfo, type RedisClusterSetOptions } from './redis-cluster.js';
