/**
 * The load driver's floor (`--target echo`): a trivial orchestrator on the same subjects that does
 * the least work that still decides correctly, so that its latency is what the driver, NATS and the
 * measuring cost by themselves — the part of every other target's latency no orchestrator can remove.
 *
 * It consumes the way the seed baseline does, so that it measures the same delivery path: the signal
 * goes through the stream (stored, then delivered by a durable JetStream *push* consumer
 * `echo-consumer`, filter `signals.enriched.*`, explicit ack), whether the driver published it with
 * JetStream or core NATS (the stream stores both). A core subscription would skip the stream and
 * measure a path no target uses; a pull consumer would add its pull requests, which are part of what
 * a pull-based target is measured on. Push delivery is the quickest way out of a stream.
 *
 * Per message: one JSON.parse, the join in a Map (no Redis, no await), and for the second required
 * signal (momentum and risk; a `correlation` agent's signal is acked and ignored) the seed's decision
 * — makeTradingDecision and calculateConfidence imported from seed-orchestrator.ts, so the rules
 * cannot differ — published with core NATS on `orchestrated.decision`; then the ack. Messages are
 * handled in the consumer's callback, synchronously, one at a time. It keeps no guarantee beyond
 * that (a redelivered signal after a lost ack could decide twice): it is a measuring stick, not an
 * orchestrator.
 *
 * Run: NATS_URL=nats://127.0.0.1:4222 node --import tsx loadtest/baseline/echo-orchestrator.ts
 */
import { pathToFileURL } from 'node:url';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect, createInbox, type NatsConnection } from '@nats-io/transport-node';
import { calculateConfidence, makeTradingDecision } from './seed-orchestrator.js';

export type Momentum = { momentum_strength: number; confidence: number; trend_direction: string };
export type Risk = { risk_level: string; position_sizing: { recommended_size: number } };

/** The seed's decision JSON (its orchestrateDecision), with our own orchestrator_version. */
export function seedDecision(corrId: string, version: string, momentum: Momentum, risk: Risk): Record<string, unknown> {
  return {
    corr_id: corrId,
    orchestrator_version: version,
    orchestrated_at: new Date().toISOString().replace('Z', '000'),
    source_signals: { momentum: momentum.momentum_strength, risk: risk.risk_level },
    decision: makeTradingDecision(momentum, risk),
    confidence: calculateConfidence(momentum, risk),
  };
}
interface Signal {
  readonly corr_id: string;
  readonly agent_name: string;
  readonly analysis: unknown;
}
interface Pending {
  momentum?: Momentum;
  risk?: Risk;
}

export interface EchoConfig {
  readonly natsUrl: string;
  readonly stream: string;
  readonly durable: string;
}

export function readEchoConfig(env: NodeJS.ProcessEnv): EchoConfig {
  return {
    natsUrl: env.NATS_URL ?? 'nats://localhost:4222',
    stream: env.NATS_STREAM ?? 'trading-events',
    durable: env.ECHO_DURABLE ?? 'echo-consumer',
  };
}

export class EchoOrchestrator {
  private nats: NatsConnection | undefined;
  private readonly pending = new Map<string, Pending>();
  private closeMessages: (() => Promise<unknown>) | undefined;
  private stopping = false;
  decisions = 0;
  errors = 0;

  constructor(private readonly config: EchoConfig) {}

  get openCorrelations(): number {
    return this.pending.size;
  }

  async start(): Promise<void> {
    this.nats = await connect({ servers: this.config.natsUrl, name: 'echo-orchestrator' });
    const jsm = await jetstreamManager(this.nats);
    try {
      await jsm.streams.info(this.config.stream);
    } catch {
      await jsm.streams.add({ name: this.config.stream, subjects: ['signals.enriched.>'] });
    }
    // The baseline's consumer, under its own durable name: an existing one is bound as it is.
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
    const consumer = await jetstream(this.nats).consumers.getPushConsumer(this.config.stream, this.config.durable);
    const messages = await consumer.consume({ callback: (msg) => this.handle(msg) });
    this.closeMessages = () => messages.close();
    console.log('Echo orchestrator started, waiting for enriched signals...');
  }

  handle(msg: JsMsg): void {
    if (this.stopping) return;
    try {
      const signal = msg.json<Signal>();
      const agent = signal.agent_name;
      if (agent === 'momentum' || agent === 'risk') {
        const corrId = signal.corr_id;
        let entry = this.pending.get(corrId);
        if (entry === undefined) {
          entry = {};
          this.pending.set(corrId, entry);
        }
        if (agent === 'momentum') entry.momentum = signal.analysis as Momentum;
        else entry.risk = signal.analysis as Risk;
        if (entry.momentum !== undefined && entry.risk !== undefined) {
          this.pending.delete(corrId);
          this.decide(corrId, entry.momentum, entry.risk);
        }
      }
      msg.ack();
    } catch (e) {
      this.errors += 1;
      console.log(`Error processing signal: ${(e as Error).message}`);
      msg.nak();
    }
  }

  private decide(corrId: string, momentum: Momentum, risk: Risk): void {
    this.nats!.publish('orchestrated.decision', JSON.stringify(seedDecision(corrId, 'echo', momentum, risk)));
    this.decisions += 1;
  }

  /** Stops consuming, flushes and closes. Idempotent. */
  async close(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.closeMessages?.();
    if (this.nats !== undefined && !this.nats.isClosed()) await this.nats.drain();
  }
}

async function main(): Promise<void> {
  const echo = new EchoOrchestrator(readEchoConfig(process.env));
  let shuttingDown = false;
  const shutdown = (signal: string): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    const force = setTimeout(() => process.exit(1), 5_000);
    force.unref();
    echo.close().then(
      () => {
        console.log(`Stopped on ${signal}: ${echo.decisions} decisions, ${echo.openCorrelations} open correlations`);
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
  await echo.start();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(`echo-orchestrator: ${(err as Error).message}`);
    process.exit(1);
  });
}
