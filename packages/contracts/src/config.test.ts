import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { loadConfig } from './config.js';

describe('loadConfig', () => {
  it('defaults to the high-frequency profile with the seed names', () => {
    const c = loadConfig({});
    expect(c.profile).toBe('high-frequency');
    expect(c).toMatchObject({ orchestratorType: 'simple', minAgentsRequired: 1, decisionTimeoutMs: 10_000, stateTtlSec: 60, idempotencyTtlSec: 3600, rateLimitRps: 0 });
    expect(c.nats).toMatchObject({ stream: 'trading-events', durable: 'orchestrator-consumer', servers: ['nats://127.0.0.1:4222'] });
    expect(c.requiredAgents).toEqual(['momentum', 'risk']);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each([
    ['simple', { orchestratorType: 'simple', minAgentsRequired: 2, decisionTimeoutMs: 60_000, stateTtlSec: 300, enableWorkflowEngine: false }],
    ['workflow', { orchestratorType: 'workflow', minAgentsRequired: 3, decisionTimeoutMs: 300_000, stateTtlSec: 900, enableWorkflowEngine: true }],
  ])('PROFILE=%s sets the seed values', (profile, want) => {
    expect(loadConfig({ PROFILE: profile })).toMatchObject(want);
  });

  it('explicit variables win over the profile', () => {
    expect(loadConfig({ PROFILE: 'simple', MIN_AGENTS_REQUIRED: '3', DECISION_TIMEOUT_SEC: '5' })).toMatchObject({ minAgentsRequired: 3, decisionTimeoutMs: 5000 });
  });

  it('accepts the seed\'s LOG_LEVEL spelling and an empty REQUIRED_AGENTS', () => {
    expect(loadConfig({ LOG_LEVEL: 'INFO' }).logLevel).toBe('info');
    expect(loadConfig({ LOG_LEVEL: 'WARNING' }).logLevel).toBe('warn');
    expect(loadConfig({ REQUIRED_AGENTS: '' }).requiredAgents).toEqual([]);
    expect(loadConfig({ REQUIRED_AGENTS: 'risk, momentum,risk' }).requiredAgents).toEqual(['risk', 'momentum']);
  });

  it.each([
    [{ MIN_AGENTS_REQUIRED: 'abc' }, 'MIN_AGENTS_REQUIRED="abc" is not valid: expected an integer from 1 to 64'],
    [{ MIN_AGENTS_REQUIRED: '0' }, 'MIN_AGENTS_REQUIRED="0" is not valid: expected an integer from 1 to 64'],
    [{ ORCHESTRATOR_TYPE: 'magic' }, 'ORCHESTRATOR_TYPE="magic" is not valid: expected one of simple, workflow, ml'],
    [{ HTTP_PORT: '70000' }, 'HTTP_PORT="70000" is not valid: expected an integer from 0 to 65535'],
    [{ ENABLE_WORKFLOW_ENGINE: 'maybe' }, 'ENABLE_WORKFLOW_ENGINE="maybe" is not valid: expected true or false'],
    [{ DECISION_TIMEOUT_SEC: '120' }, 'STATE_TTL_SECONDS=60 is not valid: expected more than DECISION_TIMEOUT_SEC (120)'],
    [{ ENABLE_WORKFLOW_ENGINE: 'true' }, 'ENABLE_WORKFLOW_ENGINE=true is not valid with ORCHESTRATOR_TYPE=simple'],
    [{ ORCHESTRATOR_TYPE: 'workflow', ENABLE_WORKFLOW_ENGINE: 'false' }, 'ENABLE_WORKFLOW_ENGINE=false is not valid with ORCHESTRATOR_TYPE=workflow'],
    [{ HEARTBEAT_INTERVAL_MS: '5000' }, 'WORKER_LEASE_MS=5000 is not valid: expected at least twice HEARTBEAT_INTERVAL_MS (10000)'],
    [{ HEARTBEAT_INTERVAL_MS: '3000' }, 'WORKER_LEASE_MS=5000 is not valid: expected at least twice HEARTBEAT_INTERVAL_MS (6000)'],
    [{ PROFILE: 'turbo' }, 'PROFILE="turbo" is not valid: expected one of simple, workflow, high-frequency'],
    [{ STREAM_REPLICAS: '0' }, 'STREAM_REPLICAS="0" is not valid: expected an integer from 1 to 5'],
    [{ STREAM_REPLICAS: '6' }, 'STREAM_REPLICAS="6" is not valid: expected an integer from 1 to 5'],
    [{ STREAM_REPLICAS: 'three' }, 'STREAM_REPLICAS="three" is not valid: expected an integer from 1 to 5'],
  ])('%o → a ConfigError naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it.each([
    [{}, 1],
    [{ STREAM_REPLICAS: '3' }, 3],
    [{ STREAM_REPLICAS: ' 5 ' }, 5],
  ])('STREAM_REPLICAS %o → %i replicas', (env, replicas) => {
    expect(loadConfig(env).nats.streamReplicas).toBe(replicas);
  });

  describe('Redis: REDIS_URL, or REDIS_SENTINELS with REDIS_SENTINEL_MASTER', () => {
    it('neither: the default REDIS_URL, no Sentinel', () => {
      expect(loadConfig({}).redis).toMatchObject({ url: 'redis://127.0.0.1:6379', sentinel: undefined });
    });

    it.each([
      ['s0:26379', [{ host: 's0', port: 26379 }]],
      [' 10.0.0.1:26379, sentinel-1.redis.svc:26380 ,[::1]:5000', [{ host: '10.0.0.1', port: 26379 }, { host: 'sentinel-1.redis.svc', port: 26380 }, { host: '::1', port: 5000 }]],
    ])('REDIS_SENTINELS=%s → those Sentinels, no URL', (sentinels, want) => {
      const c = loadConfig({ REDIS_SENTINELS: sentinels, REDIS_SENTINEL_MASTER: 'mymaster' });
      expect(c.redis.url).toBeUndefined();
      expect(c.redis.sentinel).toEqual({ sentinels: want, masterName: 'mymaster', password: undefined });
      expect(Object.isFrozen(c.redis.sentinel)).toBe(true);
    });

    it('REDIS_SENTINEL_PASSWORD goes with the Sentinels; REDIS_USERNAME/REDIS_PASSWORD stay the data nodes\'', () => {
      const c = loadConfig({ REDIS_SENTINELS: 's0:26379', REDIS_SENTINEL_MASTER: 'm', REDIS_SENTINEL_PASSWORD: 'sentinel-pw', REDIS_USERNAME: 'orch', REDIS_PASSWORD: 'data-pw' });
      expect(c.redis).toMatchObject({ sentinel: { password: 'sentinel-pw' }, username: 'orch', password: 'data-pw' });
    });

    it.each([
      [{ REDIS_URL: 'redis://r:6379', REDIS_SENTINELS: 's0:26379', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_URL and REDIS_SENTINELS are both set: expected one way to reach Redis'],
      [{ REDIS_SENTINELS: 's0:26379' }, 'REDIS_SENTINEL_MASTER is not set: expected the name the Sentinels monitor the primary under'],
      [{ REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINELS is not set: expected the Sentinels (host:port, comma separated) with REDIS_SENTINEL_MASTER'],
      [{ REDIS_SENTINEL_PASSWORD: 'pw' }, 'REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINELS'],
      [{ REDIS_SENTINELS: 's0', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINELS="s0" is not valid: expected host:port pairs, comma separated'],
      [{ REDIS_SENTINELS: 's0:0', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINELS="s0:0" is not valid'],
      [{ REDIS_SENTINELS: 'redis://s0:26379', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINELS="redis://s0:26379" is not valid'],
      [{ REDIS_SENTINELS: 's0:26379', REDIS_SENTINEL_MASTER: 'my master' }, 'REDIS_SENTINEL_MASTER="my master" is not valid: expected the name Sentinel monitors the primary under'],
    ])('%o → a ConfigError naming the variables', (env, message) => {
      expect(() => loadConfig(env)).toThrow(ConfigError);
      expect(() => loadConfig(env)).toThrow(message);
    });

    it.each([
      ['r0:7000', [{ host: 'r0', port: 7000 }]],
      ['10.0.0.1:7000, redis-1.redis.svc:7001,[::1]:7002', [{ host: '10.0.0.1', port: 7000 }, { host: 'redis-1.redis.svc', port: 7001 }, { host: '::1', port: 7002 }]],
    ])('REDIS_CLUSTER_NODES=%s → a Redis Cluster through those nodes, no URL, no Sentinel', (nodes, want) => {
      const c = loadConfig({ REDIS_CLUSTER_NODES: nodes, REDIS_USERNAME: 'orch', REDIS_PASSWORD: 'data-pw' });
      expect(c.redis).toMatchObject({ url: undefined, sentinel: undefined, cluster: { nodes: want }, username: 'orch', password: 'data-pw' });
      expect(Object.isFrozen(c.redis.cluster)).toBe(true);
      expect(loadConfig({}).redis.cluster).toBeUndefined();
    });

    it.each([
      [{ REDIS_URL: 'redis://r:6379', REDIS_CLUSTER_NODES: 'r0:7000' }, 'REDIS_URL and REDIS_CLUSTER_NODES are both set: expected one way to reach Redis'],
      [{ REDIS_SENTINELS: 's0:26379', REDIS_SENTINEL_MASTER: 'm', REDIS_CLUSTER_NODES: 'r0:7000' }, 'REDIS_SENTINELS and REDIS_CLUSTER_NODES are both set: expected one way to reach Redis'],
      [{ REDIS_CLUSTER_NODES: 'r0' }, 'REDIS_CLUSTER_NODES="r0" is not valid: expected host:port pairs, comma separated'],
      [{ REDIS_CLUSTER_NODES: 'redis://r0:7000' }, 'REDIS_CLUSTER_NODES="redis://r0:7000" is not valid'],
    ])('%o → a ConfigError naming the variables (Redis Cluster)', (env, message) => {
      expect(() => loadConfig(env)).toThrow(ConfigError);
      expect(() => loadConfig(env)).toThrow(message);
    });

    it('never echoes the Sentinel password', () => {
      expect(() => loadConfig({ REDIS_SENTINEL_PASSWORD: 's3cret-sentinel' })).not.toThrow(/s3cret/);
    });
  });

  it('never echoes a URL, which may carry credentials', () => {
    for (const env of [{ REDIS_URL: 'http://user:s3cret@host:6379' }, { NATS_URL: 'nats://user:s3cret@' }, { REDLOCK_URLS: 'redis://a:s3cret@h:1,bogus' }]) {
      let message = '';
      try {
        loadConfig(env);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toContain('(value hidden)');
      expect(message).not.toContain('s3cret');
    }
  });

  it('reads NATS and Redis credentials, TLS files, the cluster secrets and the ingest bounds', () => {
    const c = loadConfig({
      NATS_USER: 'orch',
      NATS_PASSWORD: 'pw',
      NATS_TLS_CA_FILE: '/etc/ca.pem',
      NATS_TLS_CERT_FILE: '/etc/c.pem',
      NATS_TLS_KEY_FILE: '/etc/k.pem',
      NATS_TLS_REQUIRED: 'true',
      REDIS_USERNAME: 'orch',
      REDIS_PASSWORD: 'pw',
      REDIS_TLS_CA_FILE: '/etc/rca.pem',
      CLUSTER_SECRET: 'a'.repeat(32),
      CLUSTER_SECRET_PREVIOUS: 'b'.repeat(32),
      ALLOWED_AGENTS: 'momentum,risk',
      MAX_OPEN_CORRELATIONS: '10000',
    });
    expect(c.nats.auth).toEqual({
      user: 'orch',
      password: 'pw',
      token: undefined,
      nkeySeedFile: undefined,
      credsFile: undefined,
      tls: { caFile: '/etc/ca.pem', certFile: '/etc/c.pem', keyFile: '/etc/k.pem', required: true },
    });
    expect(c.redis).toMatchObject({ username: 'orch', password: 'pw', tls: { caFile: '/etc/rca.pem', certFile: undefined, keyFile: undefined } });
    expect(c.security.clusterSecrets).toEqual(['a'.repeat(32), 'b'.repeat(32)]);
    expect(c.ingest).toMatchObject({ allowedAgents: ['momentum', 'risk'], maxOpenCorrelations: 10_000 });
    expect(loadConfig({}).security).toEqual({ clusterSecrets: [], operatorToken: undefined });
  });

  it.each([
    [{ NATS_TLS_CERT_FILE: '/c.pem' }, 'NATS_TLS_KEY_FILE is not set: expected NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE together'],
    [{ REDIS_TLS_KEY_FILE: '/k.pem' }, 'REDIS_TLS_CERT_FILE is not set: expected REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE together'],
    [{ NATS_PASSWORD: 'pw' }, 'NATS_USER is not set: expected NATS_USER and NATS_PASSWORD together'],
    [{ NATS_TOKEN: 'tok', NATS_CREDS_FILE: '/x.creds' }, 'NATS_TOKEN and NATS_CREDS_FILE are both set: expected one way to authenticate to NATS'],
    [{ NATS_TLS_REQUIRED: 'sometimes' }, 'NATS_TLS_REQUIRED="sometimes" is not valid: expected true or false'],
    [{ CLUSTER_SECRET: 'short' }, 'CLUSTER_SECRET=(value hidden) is not valid: expected at least 16 characters (or unset)'],
    [{ OPERATOR_TOKEN: 'tiny' }, 'OPERATOR_TOKEN=(value hidden) is not valid: expected at least 16 characters (or unset)'],
    [{ MAX_OPEN_CORRELATIONS: '0' }, 'MAX_OPEN_CORRELATIONS="0" is not valid: expected an integer from 1 to 100000000'],
  ])('%o → a ConfigError naming the variable, never the secret', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
    expect(() => loadConfig(env)).not.toThrow(/short|tiny|pw/);
  });
});
