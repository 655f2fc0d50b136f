import { z } from 'zod';
import { BASE_DEFAULTS, CONFIG_VARIABLES, DEFAULT_PROFILE, EnvSchema, LOG_LEVELS, PROFILES, SECRET_VARS, type Env, type ProfileName } from './config-env.js';
import { ConfigError } from './errors.js';

export { CONFIG_VARIABLES, CONNECTION_VARIABLES, DEFAULT_PROFILE, PROFILES, type Env, type ProfileName } from './config-env.js';

/**
 * Configuration comes from environment variables (config-env.ts), validated once at start and frozen.
 * PROFILE sets the seed's defaults; an explicit variable always wins over its profile.
 */

export interface TlsFiles {
  readonly caFile: string | undefined;
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
}

/** Redis behind Sentinel: the Sentinels to ask and the name they monitor the primary under. */
export interface RedisSentinel {
  readonly sentinels: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  readonly masterName: string;
  /** REDIS_SENTINEL_PASSWORD: the Sentinels' own password (requirepass on them), if any. */
  readonly password: string | undefined;
}

/** A Redis Cluster: nodes to start from (the client learns the others and the slot map from them). */
export interface RedisClusterNodes {
  readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>;
}

export interface NatsAuth {
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly token: string | undefined;
  readonly nkeySeedFile: string | undefined;
  readonly credsFile: string | undefined;
  readonly tls: TlsFiles & { readonly required: boolean };
}

export interface OrchestratorConfig {
  readonly profile: ProfileName;
  readonly serviceName: string;
  readonly env: string;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly nats: {
    readonly servers: readonly string[];
    /** Credentials and TLS beyond the URL (docs/security.md); files are read at connect, not here. */
    readonly auth: NatsAuth;
    /** Deliveries of one signal at most before it is dead-lettered (the consumer's max_deliver). */
    readonly maxDeliver: number;
    /** Size limit of each stream this project creates, in bytes; -1 = unlimited. */
    readonly streamMaxBytes: number;
    /** Replicas of each stream this project creates (1 to 5; the durable consumer follows its stream). */
    readonly streamReplicas: number;
    readonly stream: string;
    readonly durable: string;
    readonly decisionStream: string;
    readonly dlqStream: string;
    readonly decisionDedupWindowMs: number;
    readonly ackWaitMs: number;
    readonly maxInFlight: number;
  };
  readonly redis: {
    /** REDIS_URL; undefined when Sentinel names the primary (`sentinel`) or a Redis Cluster is named (`cluster`). Exactly one of the three is set. */
    readonly url: string | undefined;
    /** REDIS_SENTINELS and REDIS_SENTINEL_MASTER, when set instead of REDIS_URL. */
    readonly sentinel: RedisSentinel | undefined;
    /** REDIS_CLUSTER_NODES, when set instead of REDIS_URL: a Redis Cluster reached through these nodes. */
    readonly cluster: RedisClusterNodes | undefined;
    readonly keyPrefix: string;
    readonly redlockUrls: readonly string[];
    /** ACL user and password for every Redis connection (state and Redlock); the URL's own win. */
    readonly username: string | undefined;
    readonly password: string | undefined;
    readonly tls: TlsFiles;
  };
  readonly security: {
    /** Control-plane keys: the current CLUSTER_SECRET first, then CLUSTER_SECRET_PREVIOUS during a rollover. */
    readonly clusterSecrets: readonly string[];
    /** The operator credential that operator requests to the leader need. */
    readonly operatorToken: string | undefined;
  };
  readonly ingest: {
    /** Agents accepted; empty = any agent. */
    readonly allowedAgents: readonly string[];
    readonly maxOpenCorrelations: number;
    readonly maxAgentsPerCorrelation: number;
    /** Distinct `agent` label values on metrics; the rest are counted as "other". */
    readonly maxAgentLabels: number;
  };
  readonly orchestratorType: 'simple' | 'workflow' | 'ml';
  readonly enableWorkflowEngine: boolean;
  readonly requiredAgents: readonly string[];
  readonly minAgentsRequired: number;
  readonly decisionTimeoutMs: number;
  readonly stateTtlSec: number;
  readonly idempotencyTtlSec: number;
  readonly rateLimitRps: number;
  readonly httpPort: number;
  /** Where operators reach this coordinator's console (CONSOLE_URL); undefined = http://<hostname>:<HTTP_PORT>/console. */
  readonly consoleUrl: string | undefined;
  readonly partitions: number;
  readonly workerId: string;
  readonly maxSignalBytes: number;
  readonly shutdownGraceMs: number;
  readonly cluster: {
    /** embedded: a worker also runs a coordinator candidate, so one process alone decides everything. */
    readonly coordinator: 'embedded' | 'off';
    readonly coordinatorId: string;
    readonly heartbeatIntervalMs: number;
    readonly workerLeaseMs: number;
    readonly leaderLeaseMs: number;
    readonly revokeTimeoutMs: number;
    readonly workerCapacity: number;
  };
  readonly engines: {
    /** Workflow rules file; empty = the shipped example rules. */
    readonly rulesFile: string;
    /** ml model file; empty = the shipped model. */
    readonly mlModelFile: string;
    readonly rulesReloadDebounceMs: number;
    /** Decision threads (Piscina); 0 = decide inline on the event loop. */
    readonly poolThreads: number;
    readonly batchSize: number;
    readonly taskTimeoutMs: number;
  };
}

/**
 * Reads the configuration from an environment. Throws ConfigError with one line naming the
 * variable, what is wrong and what is accepted; values of secret variables are never echoed.
 */
export function loadConfig(env: Env = process.env): OrchestratorConfig {
  const profileRaw = nonEmpty(env.PROFILE) ?? DEFAULT_PROFILE;
  if (!(profileRaw in PROFILES)) {
    throw new ConfigError(`PROFILE=${JSON.stringify(profileRaw)} is not valid: expected one of ${Object.keys(PROFILES).join(', ')}`);
  }
  const profile = PROFILES[profileRaw as ProfileName] as Record<string, string>;
  const merged: Record<string, string> = {};
  for (const key of CONFIG_VARIABLES) {
    merged[key] = nonEmpty(env[key]) ?? profile[key] ?? BASE_DEFAULTS[key];
  }
  // REQUIRED_AGENTS and REDLOCK_URLS may be set to empty on purpose.
  if (env.REQUIRED_AGENTS !== undefined) merged.REQUIRED_AGENTS = env.REQUIRED_AGENTS;
  if (env.REDLOCK_URLS !== undefined) merged.REDLOCK_URLS = env.REDLOCK_URLS;
  if (env.ALLOWED_AGENTS !== undefined) merged.ALLOWED_AGENTS = env.ALLOWED_AGENTS;

  const parsed = EnvSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0]);
    const shown = SECRET_VARS.has(variable) ? '(value hidden)' : JSON.stringify(merged[variable]);
    throw new ConfigError(`${variable}=${shown} is not valid: expected ${issue.message}`);
  }
  const v = parsed.data;
  const decisionTimeoutMs = Math.round(v.DECISION_TIMEOUT_SEC * 1000);
  if (v.STATE_TTL_SECONDS * 1000 <= decisionTimeoutMs) {
    throw new ConfigError(
      `STATE_TTL_SECONDS=${v.STATE_TTL_SECONDS} is not valid: expected more than DECISION_TIMEOUT_SEC (${v.DECISION_TIMEOUT_SEC}), or open correlations would expire before their deadline`,
    );
  }
  // Workflow rules run in the workflow engine: the switch and the type must agree.
  if (v.ENABLE_WORKFLOW_ENGINE && v.ORCHESTRATOR_TYPE !== 'workflow') {
    throw new ConfigError(
      `ENABLE_WORKFLOW_ENGINE=true is not valid with ORCHESTRATOR_TYPE=${v.ORCHESTRATOR_TYPE}: expected ORCHESTRATOR_TYPE=workflow (workflow rules run in the workflow engine)`,
    );
  }
  if (v.ORCHESTRATOR_TYPE === 'workflow' && nonEmpty(env.ENABLE_WORKFLOW_ENGINE) !== undefined && !v.ENABLE_WORKFLOW_ENGINE) {
    throw new ConfigError('ENABLE_WORKFLOW_ENGINE=false is not valid with ORCHESTRATOR_TYPE=workflow: expected true (or unset)');
  }
  if (v.WORKER_LEASE_MS < 2 * v.HEARTBEAT_INTERVAL_MS) {
    // Below two periods one late heartbeat lets a live worker's lease expire, and a worker could not
    // tell a stall past its lease from the gap between two of its own ticks (WorkerMembership).
    throw new ConfigError(
      `WORKER_LEASE_MS=${v.WORKER_LEASE_MS} is not valid: expected at least twice HEARTBEAT_INTERVAL_MS (${2 * v.HEARTBEAT_INTERVAL_MS}), or one late heartbeat would let a live worker's lease expire`,
    );
  }
  const urlSet = nonEmpty(env.REDIS_URL) !== undefined;
  const sentinel = readRedisSentinel(v, urlSet);
  const cluster = readRedisCluster(v, urlSet, sentinel !== undefined);
  const natsAuth = readNatsAuth(v);
  const redisTls = tlsFiles('REDIS', v.REDIS_TLS_CA_FILE, v.REDIS_TLS_CERT_FILE, v.REDIS_TLS_KEY_FILE);
  return Object.freeze({
    profile: v.PROFILE,
    serviceName: v.SERVICE_NAME,
    env: v.ENV,
    logLevel: v.LOG_LEVEL,
    nats: Object.freeze({
      servers: Object.freeze(v.NATS_URL),
      stream: v.NATS_STREAM,
      durable: v.NATS_DURABLE,
      decisionStream: v.NATS_DECISION_STREAM,
      dlqStream: v.NATS_DLQ_STREAM,
      decisionDedupWindowMs: v.DECISION_DEDUP_WINDOW_SEC * 1000,
      ackWaitMs: v.ACK_WAIT_SEC * 1000,
      maxInFlight: v.MAX_IN_FLIGHT,
      auth: natsAuth,
      maxDeliver: v.MAX_DELIVER,
      streamMaxBytes: v.STREAM_MAX_BYTES,
      streamReplicas: v.STREAM_REPLICAS,
    }),
    redis: Object.freeze({
      url: sentinel === undefined && cluster === undefined ? v.REDIS_URL : undefined,
      sentinel,
      cluster,
      keyPrefix: v.REDIS_KEY_PREFIX,
      redlockUrls: Object.freeze(v.REDLOCK_URLS),
      username: optional(v.REDIS_USERNAME),
      password: optional(v.REDIS_PASSWORD),
      tls: redisTls,
    }),
    security: Object.freeze({
      clusterSecrets: Object.freeze([v.CLUSTER_SECRET, v.CLUSTER_SECRET_PREVIOUS].filter((k) => k !== '')),
      operatorToken: optional(v.OPERATOR_TOKEN),
    }),
    ingest: Object.freeze({
      allowedAgents: Object.freeze(v.ALLOWED_AGENTS),
      maxOpenCorrelations: v.MAX_OPEN_CORRELATIONS,
      maxAgentsPerCorrelation: v.MAX_AGENTS_PER_CORRELATION,
      maxAgentLabels: v.MAX_AGENT_LABELS,
    }),
    orchestratorType: v.ORCHESTRATOR_TYPE,
    enableWorkflowEngine: v.ORCHESTRATOR_TYPE === 'workflow',
    requiredAgents: Object.freeze(v.REQUIRED_AGENTS),
    minAgentsRequired: v.MIN_AGENTS_REQUIRED,
    decisionTimeoutMs,
    stateTtlSec: v.STATE_TTL_SECONDS,
    idempotencyTtlSec: v.IDEMPOTENCY_TTL_SEC,
    rateLimitRps: v.RATE_LIMIT_RPS,
    httpPort: v.HTTP_PORT,
    consoleUrl: optional(v.CONSOLE_URL),
    partitions: v.PARTITIONS,
    workerId: v.WORKER_ID,
    maxSignalBytes: v.MAX_SIGNAL_BYTES,
    shutdownGraceMs: Math.round(v.SHUTDOWN_GRACE_SEC * 1000),
    cluster: Object.freeze({
      coordinator: v.COORDINATOR,
      coordinatorId: v.COORDINATOR_ID,
      heartbeatIntervalMs: v.HEARTBEAT_INTERVAL_MS,
      workerLeaseMs: v.WORKER_LEASE_MS,
      leaderLeaseMs: v.LEADER_LEASE_MS,
      revokeTimeoutMs: v.REVOKE_TIMEOUT_MS,
      workerCapacity: v.WORKER_CAPACITY,
    }),
    engines: Object.freeze({
      rulesFile: v.RULES_FILE.trim(),
      mlModelFile: v.ML_MODEL_FILE.trim(),
      rulesReloadDebounceMs: v.RULES_RELOAD_DEBOUNCE_MS,
      poolThreads: v.DECISION_POOL_THREADS,
      batchSize: v.DECISION_BATCH_SIZE,
      taskTimeoutMs: v.DECISION_TASK_TIMEOUT_MS,
    }),
  });
}

function optional(v: string): string | undefined {
  return v.trim() === '' ? undefined : v;
}

function tlsFiles(prefix: 'NATS' | 'REDIS', ca: string, cert: string, key: string): TlsFiles {
  const files = { caFile: optional(ca.trim()), certFile: optional(cert.trim()), keyFile: optional(key.trim()) };
  if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
    const missing = files.certFile === undefined ? `${prefix}_TLS_CERT_FILE` : `${prefix}_TLS_KEY_FILE`;
    throw new ConfigError(`${missing} is not set: expected ${prefix}_TLS_CERT_FILE and ${prefix}_TLS_KEY_FILE together (a client certificate needs its key)`);
  }
  return Object.freeze(files);
}

/**
 * REDIS_SENTINELS + REDIS_SENTINEL_MASTER, or nothing: exactly one way to reach the state Redis.
 * `urlSet`: REDIS_URL was given explicitly (its default does not count).
 */
function readRedisSentinel(v: z.output<typeof EnvSchema>, urlSet: boolean): RedisSentinel | undefined {
  const sentinels = v.REDIS_SENTINELS;
  const master = v.REDIS_SENTINEL_MASTER;
  const password = optional(v.REDIS_SENTINEL_PASSWORD);
  if (sentinels.length === 0) {
    if (master !== '') throw new ConfigError('REDIS_SENTINELS is not set: expected the Sentinels (host:port, comma separated) with REDIS_SENTINEL_MASTER');
    if (password !== undefined) throw new ConfigError('REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINELS: expected both, or neither');
    return undefined;
  }
  if (urlSet) {
    throw new ConfigError('REDIS_URL and REDIS_SENTINELS are both set: expected one way to reach Redis, REDIS_URL or REDIS_SENTINELS with REDIS_SENTINEL_MASTER');
  }
  if (master === '') {
    throw new ConfigError('REDIS_SENTINEL_MASTER is not set: expected the name the Sentinels monitor the primary under (sentinel monitor <name> …) with REDIS_SENTINELS');
  }
  return Object.freeze({ sentinels: Object.freeze(sentinels.map((s) => Object.freeze({ ...s }))), masterName: master, password });
}

/**
 * REDIS_CLUSTER_NODES, or nothing; refused beside REDIS_URL (given explicitly) or REDIS_SENTINELS.
 * Credentials and TLS (REDIS_USERNAME, REDIS_PASSWORD, REDIS_TLS_*) apply to every node.
 */
function readRedisCluster(v: z.output<typeof EnvSchema>, urlSet: boolean, sentinelSet: boolean): RedisClusterNodes | undefined {
  const nodes = v.REDIS_CLUSTER_NODES;
  if (nodes.length === 0) return undefined;
  if (urlSet) {
    throw new ConfigError('REDIS_URL and REDIS_CLUSTER_NODES are both set: expected one way to reach Redis, REDIS_URL, REDIS_SENTINELS with REDIS_SENTINEL_MASTER, or REDIS_CLUSTER_NODES');
  }
  if (sentinelSet) {
    throw new ConfigError('REDIS_SENTINELS and REDIS_CLUSTER_NODES are both set: expected one way to reach Redis, REDIS_URL, REDIS_SENTINELS with REDIS_SENTINEL_MASTER, or REDIS_CLUSTER_NODES');
  }
  return Object.freeze({ nodes: Object.freeze(nodes.map((n) => Object.freeze({ ...n }))) });
}

function readNatsAuth(v: z.output<typeof EnvSchema>): NatsAuth {
  const user = optional(v.NATS_USER);
  const password = optional(v.NATS_PASSWORD);
  if ((user === undefined) !== (password === undefined)) {
    const missing = user === undefined ? 'NATS_USER' : 'NATS_PASSWORD';
    throw new ConfigError(`${missing} is not set: expected NATS_USER and NATS_PASSWORD together`);
  }
  const kinds = [
    user !== undefined ? 'NATS_USER/NATS_PASSWORD' : '',
    v.NATS_TOKEN !== '' ? 'NATS_TOKEN' : '',
    v.NATS_NKEY_SEED_FILE.trim() !== '' ? 'NATS_NKEY_SEED_FILE' : '',
    v.NATS_CREDS_FILE.trim() !== '' ? 'NATS_CREDS_FILE' : '',
  ].filter((k) => k !== '');
  if (kinds.length > 1) throw new ConfigError(`${kinds.join(' and ')} are both set: expected one way to authenticate to NATS`);
  const tls = tlsFiles('NATS', v.NATS_TLS_CA_FILE, v.NATS_TLS_CERT_FILE, v.NATS_TLS_KEY_FILE);
  return Object.freeze({
    user,
    password,
    token: optional(v.NATS_TOKEN),
    nkeySeedFile: optional(v.NATS_NKEY_SEED_FILE.trim()),
    credsFile: optional(v.NATS_CREDS_FILE.trim()),
    tls: Object.freeze({ ...tls, required: v.NATS_TLS_REQUIRED }),
  });
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}
