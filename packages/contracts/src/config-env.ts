import { hostname } from 'node:os';
import { z } from 'zod';

/**
 * The environment variables the orchestrator reads: their validation and defaults. loadConfig
 * (config.ts) turns them into the frozen OrchestratorConfig.
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
export const SECRET_VARS = new Set([
  'NATS_URL',
  'REDIS_URL',
  'REDLOCK_URLS',
  'NATS_TOKEN',
  'NATS_PASSWORD',
  'NATS_CREDS',
  'REDIS_PASSWORD',
  'REDIS_SENTINEL_PASSWORD',
  'CLUSTER_SECRET',
  'CLUSTER_SECRET_PREVIOUS',
  'OPERATOR_TOKEN',
]);

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

/** host:port, the host a name, an IPv4 address or an [IPv6] address. */
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?):(\d{1,5})$/;

/** Comma-separated host:port (Sentinels, Redis Cluster nodes), or empty. */
const hostPortList = z
  .string()
  .trim()
  .refine(
    (v) =>
      v === '' ||
      v.split(',').every((part) => {
        const m = HOST_PORT.exec(part.trim());
        return m !== null && Number(m[3]) >= 1 && Number(m[3]) <= 65_535;
      }),
    'host:port pairs, comma separated (e.g. sentinel-0:26379,sentinel-1:26379)',
  )
  .transform((v) =>
    v === ''
      ? []
      : v.split(',').map((part) => {
          const m = HOST_PORT.exec(part.trim())!;
          return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[3]) };
        }),
  );

/** A shared secret: empty (unset) or at least 16 characters, so that a typo of a word is refused. */
const secret = z
  .string()
  .refine((v) => v === '' || v.length >= 16, 'at least 16 characters (or unset)');

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export const EnvSchema = z.object({
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
  REDIS_SENTINELS: hostPortList,
  REDIS_SENTINEL_MASTER: z.union([z.literal(''), z.string().trim().regex(/^[A-Za-z0-9._-]{1,128}$/, 'the name Sentinel monitors the primary under: letters, digits, ".", "_" or "-"')]),
  REDIS_SENTINEL_PASSWORD: z.string(),
  REDIS_CLUSTER_NODES: hostPortList,
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
  CONSOLE_URL: z.union([z.literal(''), urlList(['http', 'https']).refine((l) => l.length === 1, 'one http:// or https:// URL').transform((l) => l[0]!)]),
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
  NATS_USER: z.string(),
  NATS_PASSWORD: z.string(),
  NATS_TOKEN: z.string(),
  NATS_NKEY_SEED_FILE: z.string(),
  NATS_CREDS_FILE: z.string(),
  NATS_TLS_CA_FILE: z.string(),
  NATS_TLS_CERT_FILE: z.string(),
  NATS_TLS_KEY_FILE: z.string(),
  NATS_TLS_REQUIRED: bool,
  REDIS_USERNAME: z.string(),
  REDIS_PASSWORD: z.string(),
  REDIS_TLS_CA_FILE: z.string(),
  REDIS_TLS_CERT_FILE: z.string(),
  REDIS_TLS_KEY_FILE: z.string(),
  CLUSTER_SECRET: secret,
  CLUSTER_SECRET_PREVIOUS: secret,
  OPERATOR_TOKEN: secret,
  ALLOWED_AGENTS: agentList,
  MAX_OPEN_CORRELATIONS: int(1, 100_000_000),
  MAX_AGENTS_PER_CORRELATION: int(1, 1_024),
  MAX_AGENT_LABELS: int(1, 10_000),
  MAX_DELIVER: int(1, 1_000_000),
  STREAM_MAX_BYTES: int(-1, Number.MAX_SAFE_INTEGER),
  STREAM_REPLICAS: int(1, 5),
});

export type Env = Record<string, string | undefined>;

export const BASE_DEFAULTS: Record<keyof z.input<typeof EnvSchema>, string> = {
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
  // Or the primary Sentinel names: REDIS_SENTINELS with REDIS_SENTINEL_MASTER, instead of REDIS_URL.
  REDIS_SENTINELS: '',
  REDIS_SENTINEL_MASTER: '',
  REDIS_SENTINEL_PASSWORD: '',
  // Or a Redis Cluster: some of its nodes (host:port), instead of REDIS_URL.
  REDIS_CLUSTER_NODES: '',
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
  CONSOLE_URL: '',
  PARTITIONS: '64',
  WORKER_ID: `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 100)}-${process.pid}`,
  MAX_IN_FLIGHT: '256',
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
  NATS_USER: '',
  NATS_PASSWORD: '',
  NATS_TOKEN: '',
  NATS_NKEY_SEED_FILE: '',
  NATS_CREDS_FILE: '',
  NATS_TLS_CA_FILE: '',
  NATS_TLS_CERT_FILE: '',
  NATS_TLS_KEY_FILE: '',
  NATS_TLS_REQUIRED: 'false',
  REDIS_USERNAME: '',
  REDIS_PASSWORD: '',
  REDIS_TLS_CA_FILE: '',
  REDIS_TLS_CERT_FILE: '',
  REDIS_TLS_KEY_FILE: '',
  CLUSTER_SECRET: '',
  CLUSTER_SECRET_PREVIOUS: '',
  OPERATOR_TOKEN: '',
  ALLOWED_AGENTS: '',
  MAX_OPEN_CORRELATIONS: '50000',
  MAX_AGENTS_PER_CORRELATION: '16',
  MAX_AGENT_LABELS: '64',
  MAX_DELIVER: '20',
  // Per stream (three streams): JetStream reserves it against the server's max_file_store at creation.
  STREAM_MAX_BYTES: String(1024 * 1024 * 1024),
  // Replicas of each stream the workers create (and of the durable consumer, which follows its stream).
  STREAM_REPLICAS: '1',
};

/** How a process reaches NATS and Redis beyond their URLs: credentials and TLS files (docs/security.md). */
export const CONNECTION_VARIABLES = [
  'NATS_USER',
  'NATS_PASSWORD',
  'NATS_TOKEN',
  'NATS_NKEY_SEED_FILE',
  'NATS_CREDS_FILE',
  'NATS_TLS_CA_FILE',
  'NATS_TLS_CERT_FILE',
  'NATS_TLS_KEY_FILE',
  'NATS_TLS_REQUIRED',
  'REDIS_USERNAME',
  'REDIS_PASSWORD',
  'REDIS_TLS_CA_FILE',
  'REDIS_TLS_CERT_FILE',
  'REDIS_TLS_KEY_FILE',
  'REDIS_SENTINEL_PASSWORD',
] as const satisfies ReadonlyArray<keyof typeof BASE_DEFAULTS>;

/** Every variable the orchestrator reads, for documentation and for `--help`. */
export const CONFIG_VARIABLES = Object.keys(BASE_DEFAULTS) as ReadonlyArray<keyof typeof BASE_DEFAULTS>;

