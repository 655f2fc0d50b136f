import { parseArgs } from 'node:util';
import type { AgentMix } from '../shared/synthetic.js';

export const SCENARIOS = ['steady', 'max', 'market-open', 'soak'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];
export const TARGETS = ['baseline', 'worker', 'echo', 'ladder', 'none'] as const;
/** The steps `--target ladder` adds to the seed's path (loadtest/micro/protocol-ladder.ts). */
export const LADDER_STEPS = ['js', 'lua', 'pull'] as const;
export type LadderStep = (typeof LADDER_STEPS)[number];
export type TargetName = (typeof TARGETS)[number];

export interface LoadOptions {
  readonly scenario: ScenarioName;
  readonly target: TargetName;
  /** private: the driver starts its own nats-server and redis-server; given: use the URLs. */
  readonly servers: 'private' | 'given';
  /** Private servers with TLS (mutual) and user/password on NATS, TLS and an ACL user on Redis. */
  readonly secure: boolean;
  readonly natsUrl: string | undefined;
  readonly redisUrl: string | undefined;
  readonly natsWsUrl: string | undefined;
  /** Correlations per second (open loop); the base rate for market-open. */
  readonly rate: number;
  readonly durationSec: number;
  readonly warmupSec: number;
  /** How long to wait for late decisions after the last publish before counting the rest as lost. */
  readonly graceSec: number;
  readonly agents: AgentMix;
  readonly jitterMs: number;
  readonly publish: 'jetstream' | 'core';
  /** JetStream publishes awaiting their PubAck, at most. */
  readonly maxInflight: number;
  /** Closed loop (max): correlations started and not yet decided, at most. */
  readonly maxOutstanding: number;
  /** Set Nats-Msg-Id `<corr_id>:<agent>` on every signal. */
  readonly msgId: boolean;
  /** core: a plain subscription on orchestrated.decision; stream: an ordered consumer on the decision stream. */
  readonly decisions: 'core' | 'stream';
  readonly stream: string;
  readonly decisionStream: string;
  readonly workers: number;
  readonly workerCmd: string | undefined;
  readonly coordinatorCmd: string | undefined;
  readonly workerEnv: Readonly<Record<string, string>>;
  /** `--target ladder`: the steps of our protocol added to the seed's path, in the order given. */
  readonly ladder: readonly LadderStep[];
  readonly preSec: number;
  readonly rampSec: number;
  readonly postSec: number;
  readonly rampFactor: number;
  /** Market-open: second at which the target is asked for one more instance; undefined = mid-ramp; -1 = never (--scale-at never). */
  readonly scaleAtSec: number | undefined;
  readonly killAtSec: number | undefined;
  readonly k6: 'auto' | 'on' | 'off';
  readonly out: string | undefined;
  /** `--latency-log FILE`: every measured decision, one JSON line each (latency-log.ts). */
  readonly latencyLog: string | undefined;
  readonly seed: number;
  readonly progress: boolean;
  readonly label: string | undefined;
}

export class UsageError extends Error {
  readonly code = 'USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const HELP = `Usage: pnpm --filter @at-orchestrator/loadtest run loadtest -- [options]

Scenarios (--scenario):
  steady        open loop at --rate correlations/s for --duration s (default 1000/s, 30 s)
  max           closed loop: --max-outstanding correlations in flight, as fast as decisions come back
  market-open   --rate for --pre s, ramp ×--ramp-factor over --ramp s, hold --post s; the target
                gets one more instance mid-ramp (--scale-at). Uses k6 when found (K6_BIN or PATH).
  soak          --rate for --duration (default 1800 s); samples memory, CPU, event-loop delay and
                handles of every process; reports growth after --warmup. Uses k6 when found.

Target (--target):      baseline (the seed port, spawned) · worker (node packages/cli/dist/main.js worker)
                        · echo (the driver's floor: the seed rules joined in memory, no Redis, same
                          JetStream push delivery; its latency is what driver + NATS + measuring cost)
                        · ladder (the seed with our protocol's steps added, --ladder js,lua,pull: the
                          JetStream decision, the store-and-claim script, the pull consumer)
                        · none (something already consumes; only publish and measure)
Servers (--servers):    private (own nats-server + redis-server on free ports, default)
                        · given (--nats-url, --redis-url, --nats-ws-url; default from NATS_URL / REDIS_URL;
                          credentials and TLS from NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY_SEED_FILE,
                          NATS_CREDS_FILE, NATS_TLS_*, REDIS_USERNAME/REDIS_PASSWORD, REDIS_TLS_*)
                        --secure: private servers with mutual TLS and user/password on NATS, TLS with
                          client certificates and an ACL user on Redis (Node driver, --target worker|none)

Load:         --rate N  --duration S  --warmup S  --grace S  --agents 2|3|mix  --jitter-ms MS
              --publish jetstream|core  --max-inflight N  --max-outstanding N  --msg-id  --seed N
Decisions:    --decisions core|stream (stream = ordered consumer on --decision-stream, deduplicated)
Worker:       --workers N  --worker-cmd "CMD"  --coordinator-cmd "CMD"  --worker-env KEY=VALUE (repeatable)
Ladder:       --ladder STEPS (comma-separated: js, lua, pull; empty = the seed's path)
Market open:  --pre S  --ramp S  --post S  --ramp-factor X  --scale-at S|never  --kill-at S
Output:       --out FILE (default loadtest/results/<scenario>-<timestamp>.json)  --label TEXT  --no-progress
              --latency-log FILE (every decision after warm-up, one JSON line: corr_id, its last
                required signal's send on the machine's monotonic clock, latency; Node driver)
k6:           --k6 auto|on|off

Reports CPU per decision (target + nats-server + redis-server, ms; the driver apart) over the
window from the end of warm-up to the end of the load, and the machine's CPU taken by other users.

Exit code: 0 when nothing was lost, duplicated or decided differently from the seed rules; 1 otherwise; 2 on bad usage.
`;

function num(name: string, raw: string | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v < min || v > max) {
    throw new UsageError(`--${name}=${JSON.stringify(raw)} is not valid: expected a number from ${min} to ${max}`);
  }
  return v;
}

function ladderSteps(raw: string | undefined): LadderStep[] {
  const steps = (raw ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const s of steps) {
    if (!(LADDER_STEPS as readonly string[]).includes(s)) throw new UsageError(`--ladder=${JSON.stringify(raw)} is not valid: expected steps from ${LADDER_STEPS.join(', ')}, comma-separated`);
  }
  if (new Set(steps).size !== steps.length) throw new UsageError(`--ladder=${JSON.stringify(raw)} is not valid: a step is named twice`);
  return steps as LadderStep[];
}

function oneOf<T extends string>(name: string, raw: string | undefined, allowed: readonly T[], fallback: T): T {
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new UsageError(`--${name}=${JSON.stringify(raw)} is not valid: expected one of ${allowed.join(', ')}`);
  }
  return raw as T;
}

const DEFAULTS: Record<ScenarioName, { rate: number; durationSec: number; warmupSec: number }> = {
  steady: { rate: 1000, durationSec: 30, warmupSec: 3 },
  max: { rate: 0, durationSec: 30, warmupSec: 3 },
  'market-open': { rate: 200, durationSec: 0, warmupSec: 5 },
  // 450 s: at 500/s the worker's decided set (200,000 corr_ids) is full at t = 400 s; growth measured
  // before that is the set filling, not a leak (docs/benchmarks.md, "Soak").
  soak: { rate: 500, durationSec: 1800, warmupSec: 450 },
};

export function parseLoadOptions(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): LoadOptions | 'help' {
  // `pnpm run loadtest -- --rate 5` hands the "--" through: it only separates pnpm's own options.
  const args = argv[0] === '--' ? argv.slice(1) : [...argv];
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        scenario: { type: 'string', short: 's' },
        target: { type: 'string', short: 't' },
        servers: { type: 'string' },
        secure: { type: 'boolean' },
        'nats-url': { type: 'string' },
        'redis-url': { type: 'string' },
        'nats-ws-url': { type: 'string' },
        rate: { type: 'string', short: 'r' },
        duration: { type: 'string', short: 'd' },
        warmup: { type: 'string' },
        grace: { type: 'string' },
        agents: { type: 'string' },
        'jitter-ms': { type: 'string' },
        publish: { type: 'string' },
        'max-inflight': { type: 'string' },
        'max-outstanding': { type: 'string' },
        'msg-id': { type: 'boolean' },
        decisions: { type: 'string' },
        stream: { type: 'string' },
        'decision-stream': { type: 'string' },
        workers: { type: 'string' },
        'worker-cmd': { type: 'string' },
        ladder: { type: 'string' },
        'coordinator-cmd': { type: 'string' },
        'worker-env': { type: 'string', multiple: true },
        pre: { type: 'string' },
        ramp: { type: 'string' },
        post: { type: 'string' },
        'ramp-factor': { type: 'string' },
        'scale-at': { type: 'string' },
        'kill-at': { type: 'string' },
        k6: { type: 'string' },
        out: { type: 'string', short: 'o' },
        'latency-log': { type: 'string' },
        seed: { type: 'string' },
        'no-progress': { type: 'boolean' },
        label: { type: 'string' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help === true) return 'help';
  const scenario = oneOf('scenario', v.scenario, SCENARIOS, 'steady');
  const d = DEFAULTS[scenario];
  const servers = oneOf('servers', v.servers, ['private', 'given'] as const, 'private');
  const agentsRaw = oneOf('agents', v.agents, ['2', '3', 'mix'] as const, '2');
  const workerEnv: Record<string, string> = {};
  for (const pair of v['worker-env'] ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--worker-env=${JSON.stringify(pair)} is not valid: expected KEY=VALUE`);
    workerEnv[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const preSec = num('pre', v.pre, 20, 0);
  const rampSec = num('ramp', v.ramp, 60, 1);
  const postSec = num('post', v.post, 30, 0);
  const durationSec =
    scenario === 'market-open' ? preSec + rampSec + postSec : num('duration', v.duration, d.durationSec, 1, 7 * 86_400);
  const rate = num('rate', v.rate, d.rate, scenario === 'max' ? 0 : 1, 1_000_000);
  const warmupSec = num('warmup', v.warmup, Math.min(d.warmupSec, durationSec / 4), 0, durationSec);
  const scaleRaw = v['scale-at'] === 'never' ? -1 : num('scale-at', v['scale-at'], Number.NaN, 0, durationSec);
  const killRaw = num('kill-at', v['kill-at'], Number.NaN, 0, durationSec);
  const given = servers === 'given';
  const options: LoadOptions = {
    scenario,
    target: oneOf('target', v.target, TARGETS, 'baseline'),
    servers,
    secure: v.secure === true,
    natsUrl: v['nats-url'] ?? (given ? (env.NATS_URL ?? 'nats://127.0.0.1:4222') : undefined),
    redisUrl: v['redis-url'] ?? (given ? (env.REDIS_URL ?? 'redis://127.0.0.1:6379') : undefined),
    natsWsUrl: v['nats-ws-url'] ?? (given ? env.NATS_WS_URL : undefined),
    rate,
    durationSec,
    warmupSec,
    graceSec: num('grace', v.grace, 10, 0, 3600),
    agents: agentsRaw === 'mix' ? 'mix' : agentsRaw === '3' ? 3 : 2,
    jitterMs: num('jitter-ms', v['jitter-ms'], 2, 0, 60_000),
    publish: oneOf('publish', v.publish, ['jetstream', 'core'] as const, 'jetstream'),
    maxInflight: num('max-inflight', v['max-inflight'], 4096, 1, 1_000_000),
    maxOutstanding: num('max-outstanding', v['max-outstanding'], 1000, 1, 1_000_000),
    msgId: v['msg-id'] === true,
    decisions: oneOf('decisions', v.decisions, ['core', 'stream'] as const, 'core'),
    stream: v.stream ?? 'trading-events',
    decisionStream: v['decision-stream'] ?? 'orchestrated',
    workers: num('workers', v.workers, 1, 1, 64),
    workerCmd: v['worker-cmd'],
    coordinatorCmd: v['coordinator-cmd'],
    workerEnv,
    ladder: ladderSteps(v.ladder),
    preSec,
    rampSec,
    postSec,
    rampFactor: num('ramp-factor', v['ramp-factor'], 10, 1, 1000),
    scaleAtSec: Number.isNaN(scaleRaw) ? undefined : scaleRaw,
    killAtSec: Number.isNaN(killRaw) ? undefined : killRaw,
    k6: oneOf('k6', v.k6, ['auto', 'on', 'off'] as const, 'auto'),
    out: v.out,
    latencyLog: v['latency-log'],
    seed: num('seed', v.seed, Math.floor(Math.random() * 2 ** 31), 0, 2 ** 32 - 1),
    progress: v['no-progress'] !== true,
    label: v.label,
  };
  if (options.secure && (options.servers !== 'private' || options.target === 'baseline' || options.target === 'echo' || options.target === 'ladder')) {
    throw new UsageError('--secure needs --servers private and --target worker or none (the seed baseline, the echo and the ladder connect without credentials)');
  }
  if (v.ladder !== undefined && options.target !== 'ladder') throw new UsageError('--ladder needs --target ladder');
  if (options.servers === 'private' && (v['nats-url'] !== undefined || v['redis-url'] !== undefined)) {
    throw new UsageError('--nats-url/--redis-url need --servers given (private servers get their own URLs)');
  }
  if (!Number.isInteger(options.workers)) throw new UsageError('--workers must be an integer');
  return Object.freeze(options);
}
