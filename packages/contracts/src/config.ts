import { hostname } from 'node:os';
import { z } from 'zod';
import { ConfigError } from './errors.js';

/**
 * Configuration comes from environment variables, validated once at start and frozen.
 * PROFILE sets the seed's defaults; an explicit variable always wins over its profile.
 */

export const PROFILES = {
  simple: { ORCHESTRATOR_TYPE: 'simple', MIN_AGENTS_REQUIRED: '2', DECISION_TIMEOUT_SEC: '60', STATE_TTL_SECONDS: '300' },
  workflow: {
    ORCHESTRATOR_TYPE: 'workflow',
    ENABLE_WORKFLOW_ENGINE: 'true',
    MIN_AGENTS_REQUIRED: '3',
    DECISION_TIMEOUT_SEC: '300',
    STATE_TTL_SECONDS: '900',
  },
  'high-frequency': { ORCHESTRATOR_TYPE: 'simple', MIN_AGENTS_REQUIRED: '1', DECISION_TIMEOUT_SEC: '10', STATE_TTL_SECONDS: '60' },
} as const satisfies Record<string, Record<string, string>>;
export type ProfileName = keyof typeof PROFILES;
export const DEFAULT_PROFILE: ProfileName = 'high-frequency';

/** Variables whose values may hold credentials: never echoed in an error. */
const SECRET_VARS = new Set(['NATS_URL', 'REDIS_URL', 'REDLOCK_URLS', 'NATS_TOKEN', 'NATS_PASSWORD', 'NATS_CREDS']);

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, `an integer from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `an integer from ${min} to ${max}`).max(max, `an integer from ${min} to ${max}`));

const num = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, `a number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().min(min, `a number from ${min} to ${max}`).max(max, `a number from ${min} to ${max}`));

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'].includes(v), 'true or false')
  .transform((v) => ['true', '1', 'yes', 'on'].includes(v));

const name = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, "_" or "-" (1-64 characters)');

const urlList = (schemes: string[]) =>
  z
    .string()
    .trim()
    .min(1, `one or more ${schemes.join(' or ')} URLs, comma separated`)
    .refine(
      (v) =>
        v.split(',').every((part) => {
          try {
            const u = new URL(part.trim());
            return schemes.includes(u.protocol.replace(':', '')) && u.hostname !== '';
          } catch {
            return false;
          }
        }),
      `one or more ${schemes.join(':// or ')}:// URLs, comma separated`,
    )
    .transform((v) => v.split(',').map((p) => p.trim()));

const agentList = z
  .string()
  .trim()
  .refine((v) => v === '' || v.split(',').every((a) => /^[a-z0-9][a-z0-9_-]*$/i.test(a.trim())), 'a comma-separated list of agent names')
  .transform((v) =>
    v === ''
      ? []
      : [...new Set(v.split(',').map((a) => a.trim()))],
  );

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

const EnvSchema = z.object({
  PROFILE: z.enum(Object.keys(PROFILES) as [ProfileName, ...ProfileName[]], {
    error: `one of ${Object.keys(PROFILES).join(', ')}`,
  }),
  SERVICE_NAME: name,
  ENV: name,
  LOG_LEVEL: z
    .string()
    .trim()
    .toLowerCase()
    .transform((v) => (v === 'warning' ? 'warn' : v))
    .pipe(z.enum(LOG_LEVELS, { error: `one of ${LOG_LEVELS.join(', ')} (any case)` })),
  NATS_URL: urlList(['nats', 'tls', 'ws', 'wss']),
  NATS_STREAM: name,
  NATS_DURABLE: name,
  NATS_DECISION_STREAM: name,
  NATS_DLQ_STREAM: name,
  DECISION_DEDUP_WINDOW_SEC: int(1, 86_400),
  REDIS_URL: urlList(['redis', 'rediss']).refine((l) => l.length === 1, 'exactly one redis:// or rediss:// URL').transform((l) => l[0]!),
  REDIS_KEY_PREFIX: name,
  REDLOCK_URLS: z.union([z.literal(''), urlList(['redis', 'rediss'])]).transform((v) => (v === '' ? [] : v)),
  ORCHESTRATOR_TYPE: z.enum(['simple', 'workflow', 'ml'], { error: 'one of simple, workflow, ml' }),
  ENABLE_WORKFLOW_ENGINE: bool,
  REQUIRED_AGENTS: agentList,
  MIN_AGENTS_REQUIRED: int(1, 64),
  DECISION_TIMEOUT_SEC: num(0.05, 86_400),
  STATE_TTL_SECONDS: int(1, 7 * 86_400),
  IDEMPOTENCY_TTL_SEC: int(1, 7 * 86_400),
  RATE_LIMIT_RPS: num(0, 1_000_000),
  HTTP_PORT: int(0, 65_535),
  PARTITIONS: int(1, 4096),
  WORKER_ID: z.string().trim().regex(/^[A-Za-z0-9._-]{1,128}$/, 'letters, digits, ".", "_" or "-"'),
  MAX_IN_FLIGHT: int(1, 100_000),
  ACK_WAIT_SEC: int(1, 3600),
  MAX_SIGNAL_BYTES: int(256, 16 * 1024 * 1024),
  SHUTDOWN_GRACE_SEC: num(0, 600),
  COORDINATOR: z.enum(['embedded', 'off'], { error: 'embedded (run a coordinator candidate inside the worker) or off' }),
  COORDINATOR_ID: z.string().trim().regex(/^[A-Za-z0-9._-]{1,128}$/, 'letters, digits, ".", "_" or "-"'),
  HEARTBEAT_INTERVAL_MS: int(50, 60_000),
  WORKER_LEASE_MS: int(200, 600_000),
  LEADER_LEASE_MS: int(200, 600_000),
  REVOKE_TIMEOUT_MS: int(100, 600_000),
  WORKER_CAPACITY: num(0.01, 1_000_000),
  RULES_FILE: z.string(),
  ML_MODEL_FILE: z.string(),
  RULES_RELOAD_DEBOUNCE_MS: int(0, 60_000),
  DECISION_POOL_THREADS: int(0, 64),
  DECISION_BATCH_SIZE: int(1, 10_000),
  DECISION_TASK_TIMEOUT_MS: int(10, 600_000),
});

export type Env = Record<string, string | undefined>;

const BASE_DEFAULTS: Record<keyof z.input<typeof EnvSchema>, string> = {
  PROFILE: DEFAULT_PROFILE,
  SERVICE_NAME: 'at-orchestrator',
  ENV: 'development',
  LOG_LEVEL: 'info',
  NATS_URL: 'nats://127.0.0.1:4222',
  NATS_STREAM: 'trading-events',
  NATS_DURABLE: 'orchestrator-consumer',
  NATS_DECISION_STREAM: 'orchestrated',
  NATS_DLQ_STREAM: 'orchestrator-dlq',
  DECISION_DEDUP_WINDOW_SEC: '300',
  REDIS_URL: 'redis://127.0.0.1:6379',
  REDIS_KEY_PREFIX: 'orchestrator',
  REDLOCK_URLS: '',
  ORCHESTRATOR_TYPE: 'simple',
  ENABLE_WORKFLOW_ENGINE: 'false',
  REQUIRED_AGENTS: 'momentum,risk',
  MIN_AGENTS_REQUIRED: '1',
  DECISION_TIMEOUT_SEC: '10',
  STATE_TTL_SECONDS: '60',
  IDEMPOTENCY_TTL_SEC: '3600',
  RATE_LIMIT_RPS: '0',
  HTTP_PORT: '8080',
  PARTITIONS: '64',
  WORKER_ID: `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 100)}-${process.pid}`,
  MAX_IN_FLIGHT: '1024',
  ACK_WAIT_SEC: '5',
  MAX_SIGNAL_BYTES: String(64 * 1024),
  SHUTDOWN_GRACE_SEC: '10',
  COORDINATOR: 'embedded',
  COORDINATOR_ID: `coord-${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 100)}-${process.pid}`,
  HEARTBEAT_INTERVAL_MS: '1000',
  WORKER_LEASE_MS: '5000',
  LEADER_LEASE_MS: '5000',
  REVOKE_TIMEOUT_MS: '10000',
  WORKER_CAPACITY: '1',
  RULES_FILE: '',
  ML_MODEL_FILE: '',
  RULES_RELOAD_DEBOUNCE_MS: '150',
  DECISION_POOL_THREADS: '0',
  DECISION_BATCH_SIZE: '64',
  DECISION_TASK_TIMEOUT_MS: '5000',
};

/** Every variable the orchestrator reads, for documentation and for `--help`. */
export const CONFIG_VARIABLES = Object.keys(BASE_DEFAULTS) as ReadonlyArray<keyof typeof BASE_DEFAULTS>;

export interface OrchestratorConfig {
  readonly profile: ProfileName;
  readonly serviceName: string;
  readonly env: string;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly nats: {
    readonly servers: readonly string[];
    readonly stream: string;
    readonly durable: string;
    readonly decisionStream: string;
    readonly dlqStream: string;
    readonly decisionDedupWindowMs: number;
    readonly ackWaitMs: number;
    readonly maxInFlight: number;
  };
  readonly redis: { readonly url: string; readonly keyPrefix: string; readonly redlockUrls: readonly string[] };
  readonly orchestratorType: 'simple' | 'workflow' | 'ml';
  readonly enableWorkflowEngine: boolean;
  readonly requiredAgents: readonly string[];
  readonly minAgentsRequired: number;
  readonly decisionTimeoutMs: number;
  readonly stateTtlSec: number;
  readonly idempotencyTtlSec: number;
  readonly rateLimitRps: number;
  readonly httpPort: number;
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
  if (v.WORKER_LEASE_MS <= v.HEARTBEAT_INTERVAL_MS) {
    throw new ConfigError(
      `WORKER_LEASE_MS=${v.WORKER_LEASE_MS} is not valid: expected more than HEARTBEAT_INTERVAL_MS (${v.HEARTBEAT_INTERVAL_MS}), or a live worker's heartbeat would expire`,
    );
  }
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
    }),
    redis: Object.freeze({ url: v.REDIS_URL, keyPrefix: v.REDIS_KEY_PREFIX, redlockUrls: Object.freeze(v.REDLOCK_URLS) }),
    orchestratorType: v.ORCHESTRATOR_TYPE,
    enableWorkflowEngine: v.ORCHESTRATOR_TYPE === 'workflow',
    requiredAgents: Object.freeze(v.REQUIRED_AGENTS),
    minAgentsRequired: v.MIN_AGENTS_REQUIRED,
    decisionTimeoutMs,
    stateTtlSec: v.STATE_TTL_SECONDS,
    idempotencyTtlSec: v.IDEMPOTENCY_TTL_SEC,
    rateLimitRps: v.RATE_LIMIT_RPS,
    httpPort: v.HTTP_PORT,
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

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}
