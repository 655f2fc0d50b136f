/**
 * The seed's SimpleOrchestrator (README "Run Sample Orchestrator"), ported 1:1 from Python to Node,
 * as the baseline every benchmark compares with: "what a user would run instead".
 *
 * Kept as the seed has it, on purpose:
 * - one process, one JetStream *push* consumer, durable `orchestrator-consumer`, filter
 *   `signals.enriched.*`, explicit ack (what nats-py's `js.subscribe(..., durable=...)` creates);
 * - messages handled one at a time (nats-py runs a subscription's callback sequentially);
 * - two awaited Redis calls per signal: HSET, then EXPIRE 300;
 * - the in-memory cache, decided when momentum and risk are both present, then deleted (a signal
 *   that arrives after the decision opens a new entry that is never decided, as in the seed);
 * - the same decision JSON, published with core NATS on `orchestrated.decision`; ack after;
 *   nak on any error.
 *
 * Differences, none on the message path: the stream is created when missing (the seed assumed it);
 * the per-message prints are off unless BASELINE_VERBOSE=1 (a terminal is not what is measured);
 * SIGTERM/SIGINT close cleanly; BASELINE_METRICS_PORT serves process metrics for soak runs.
 *
 * Run: NATS_URL=nats://127.0.0.1:4222 REDIS_URL=redis://127.0.0.1:6379 node --import tsx loadtest/baseline/seed-orchestrator.ts
 * It knows nothing of this project's packages, like the seed.
 */
import { createServer, type Server } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect, createInbox, type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';

type Json = Record<string, unknown>;
type Signal = { corr_id: string; agent_name: string; analysis: Json } & Json;

interface SeedConfig {
  readonly natsUrl: string;
  readonly redisUrl: string;
  readonly stream: string;
  readonly durable: string;
  readonly verbose: boolean;
  readonly metricsPort: number | undefined;
}

function readConfig(env: NodeJS.ProcessEnv): SeedConfig {
  const port = env.BASELINE_METRICS_PORT;
  return {
    natsUrl: env.NATS_URL ?? 'nats://localhost:4222',
    redisUrl: env.REDIS_URL ?? 'redis://localhost:6379',
    stream: env.NATS_STREAM ?? 'trading-events',
    durable: env.NATS_DURABLE ?? 'orchestrator-consumer',
    verbose: env.BASELINE_VERBOSE === '1' || env.BASELINE_VERBOSE === 'true',
    metricsPort: port === undefined || port === '' ? undefined : Number(port),
  };
}

const RISK_MULTIPLIER: Record<string, number> = { low: 1.0, medium: 0.8, high: 0.5, blocked: 0.0 };

export class SimpleOrchestrator {
  private nats: NatsConnection | undefined;
  private readonly redis: Redis;
  /** In-memory for quick access. */
  private readonly correlationCache = new Map<string, Record<string, Signal>>();
  private stopping = false;
  private consumed: Promise<void> | undefined;
  private closeMessages: (() => Promise<unknown>) | undefined;
  decisions = 0;
  errors = 0;

  constructor(private readonly config: SeedConfig) {
    this.redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: null });
  }

  get openCorrelations(): number {
    return this.correlationCache.size;
  }

  async start(): Promise<void> {
    await this.redis.connect();
    this.nats = await connect({ servers: this.config.natsUrl, name: 'seed-orchestrator' });
    const jsm = await jetstreamManager(this.nats);
    await this.ensureStream(jsm);
    const js = jetstream(this.nats);

    // js.subscribe('signals.enriched.*', durable='orchestrator-consumer'): a durable push consumer
    // on a fresh inbox; an existing durable (a restart) is bound as it is, as nats-py does.
    try {
      await jsm.consumers.info(this.config.stream, this.config.durable);
    } catch {
      await jsm.consumers.add(this.config.stream, {
        durable_name: this.config.durable,
        deliver_subject: createInbox(),
        filter_subject: 'signals.enriched.*',
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
      });
    }
    const consumer = await js.consumers.getPushConsumer(this.config.stream, this.config.durable);
    const messages = await consumer.consume();
    this.closeMessages = () => messages.close();
    this.consumed = (async () => {
      for await (const msg of messages) {
        await this.handleEnrichedSignal(msg);
        if (this.stopping) break;
      }
    })();

    console.log('Orchestrator started, waiting for enriched signals...');
  }

  private async ensureStream(jsm: Awaited<ReturnType<typeof jetstreamManager>>): Promise<void> {
    try {
      await jsm.streams.info(this.config.stream);
    } catch {
      await jsm.streams.add({ name: this.config.stream, subjects: ['signals.enriched.>'] });
    }
  }

  async handleEnrichedSignal(msg: JsMsg): Promise<void> {
    try {
      const signal = msg.json<Signal>();
      const corrId = signal.corr_id;
      const agentName = signal.agent_name;

      if (this.config.verbose) console.log(`Received ${agentName} signal for ${corrId}`);

      // Store in shared state
      await this.storeAgentOutput(corrId, agentName, signal);

      // Check if we have enough signals to make decision
      if (this.canMakeDecision(corrId)) {
        this.orchestrateDecision(corrId);
      }

      msg.ack();
    } catch (e) {
      this.errors += 1;
      console.log(`Error processing signal: ${(e as Error).message}`);
      msg.nak();
    }
  }

  async storeAgentOutput(corrId: string, agentName: string, signal: Signal): Promise<void> {
    const key = `orchestrator:signals:${corrId}`;

    // Store in Redis with TTL
    await this.redis.hset(key, agentName, JSON.stringify(signal));
    await this.redis.expire(key, 300); // 5 minute TTL

    // Update correlation cache
    let entry = this.correlationCache.get(corrId);
    if (entry === undefined) {
      entry = {};
      this.correlationCache.set(corrId, entry);
    }
    entry[agentName] = signal;
  }

  canMakeDecision(corrId: string): boolean {
    const signals = this.correlationCache.get(corrId) ?? {};
    // Simple rule: need both momentum and risk analysis
    const requiredAgents = ['momentum', 'risk'];
    return requiredAgents.every((agent) => agent in signals);
  }

  orchestrateDecision(corrId: string): void {
    const signals = this.correlationCache.get(corrId)!;
    const momentum = signals.momentum!.analysis as { momentum_strength: number; confidence: number; trend_direction: string };
    const risk = signals.risk!.analysis as { risk_level: string; position_sizing: { recommended_size: number } };

    const decision = {
      corr_id: corrId,
      orchestrator_version: '1.0.0',
      // datetime.utcnow().isoformat(): no zone suffix, microseconds.
      orchestrated_at: new Date().toISOString().replace('Z', '000'),
      source_signals: {
        momentum: momentum.momentum_strength,
        risk: risk.risk_level,
      },
      decision: makeTradingDecision(momentum, risk),
      confidence: calculateConfidence(momentum, risk),
    };

    // Publish orchestrated decision (core NATS, as the seed does)
    this.nats!.publish('orchestrated.decision', JSON.stringify(decision));
    this.decisions += 1;

    if (this.config.verbose) console.log(`Published decision for ${corrId}: ${decision.decision.action}`);

    // Cleanup
    this.correlationCache.delete(corrId);
  }

  /** Stops consuming, lets the message in hand finish, flushes and closes. Idempotent. */
  async close(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.closeMessages?.();
    await this.consumed;
    if (this.nats !== undefined && !this.nats.isClosed()) await this.nats.drain();
    this.redis.disconnect();
  }
}

export function makeTradingDecision(
  momentum: { confidence: number; trend_direction: string },
  risk: { risk_level: string; position_sizing: { recommended_size: number } },
): { action: string; direction?: string; size?: number; reason: string } {
  if (risk.risk_level === 'blocked') {
    return { action: 'no_trade', reason: 'risk_blocked' };
  }
  if (momentum.confidence > 0.7 && ['low', 'medium'].includes(risk.risk_level)) {
    return {
      action: 'trade',
      direction: momentum.trend_direction,
      size: risk.position_sizing.recommended_size,
      reason: 'high_confidence_momentum',
    };
  }
  return { action: 'monitor', reason: 'insufficient_confidence' };
}

export function calculateConfidence(momentum: { confidence: number }, risk: { risk_level: string }): number {
  const momentumConf = momentum.confidence;
  // Risk penalty
  const riskMultiplier = RISK_MULTIPLIER[risk.risk_level] ?? 0.5;
  return momentumConf * riskMultiplier;
}

/** Prometheus text with the prom-client default names the soak sampler reads (no dependency). */
function serveMetrics(port: number, orchestrator: SimpleOrchestrator): Server {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const server = createServer((_req, res) => {
    const mem = process.memoryUsage();
    const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.().length ?? 0;
    const lines = [
      `process_resident_memory_bytes ${mem.rss}`,
      `nodejs_heap_size_used_bytes ${mem.heapUsed}`,
      `nodejs_heap_size_total_bytes ${mem.heapTotal}`,
      `nodejs_eventloop_lag_p99_seconds ${delay.percentile(99) / 1e9}`,
      `nodejs_eventloop_lag_max_seconds ${delay.max / 1e9}`,
      `nodejs_active_handles_total ${handles}`,
      `seed_open_correlations ${orchestrator.openCorrelations}`,
      `seed_decisions_total ${orchestrator.decisions}`,
    ];
    delay.reset();
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(`${lines.join('\n')}\n`);
  });
  server.listen(port, '127.0.0.1');
  server.unref();
  return server;
}

async function main(): Promise<void> {
  const config = readConfig(process.env);
  const orchestrator = new SimpleOrchestrator(config);
  let shuttingDown = false;
  const shutdown = (signal: string): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    const force = setTimeout(() => process.exit(1), 5_000);
    force.unref();
    orchestrator.close().then(
      () => {
        console.log(`Stopped on ${signal}: ${orchestrator.decisions} decisions, ${orchestrator.openCorrelations} open correlations`);
        process.exit(0);
      },
      (err: unknown) => {
        console.error(`Error while stopping: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  if (config.metricsPort !== undefined) serveMetrics(config.metricsPort, orchestrator);
  await orchestrator.start();
}

// Run orchestrator (when started as a program, not when imported by a test)
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(`seed-orchestrator: ${(err as Error).message}`);
    process.exit(1);
  });
}
