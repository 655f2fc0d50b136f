/**
 * The seed's orchestrator with our decision protocol added to it one step at a time: what each
 * guarantee costs when it is written as plainly as the seed is written, without the worker's
 * structure (partitions, fan-in bounds, metrics, handovers, Redis-down mode). A benchmark target
 * only — the floor of the protocol, against which the worker's own overhead is measured
 * (docs/high-frequency.md, "The protocol's floor").
 *
 * LADDER (comma-separated, cumulative in practice; empty = the seed's path):
 *   js    the decision is published with JetStream on orchestrator.decided.decision with
 *         Nats-Msg-Id = corr_id, into the decisions stream that republishes it onto
 *         orchestrated.decision (the worker's stream and publisher), and the signals are acked
 *         after its PubAck instead of after their own store;
 *   lua   a correlation's signals are stored, and its decision claimed, with the worker's own
 *         storeAndClaim script in one round trip when the last one arrives (the first waits in
 *         memory, as parking does), instead of HSET + EXPIRE per signal; the done-markers are
 *         written by the worker's markPublished script, 20 ms at a time;
 *   pull  a durable pull consumer read with consume() as the worker reads it (256 in flight, the
 *         worker's pull expiry) instead of the seed's push consumer.
 *
 * Started by the load driver (`--target ladder --ladder js,lua,pull`, loadtest/scripts/ladder.sh runs
 * the whole ladder); prints "Protocol ladder started" once it consumes. Messages are handled one at
 * a time, as in the seed; an error naks the message. It uses the worker's own pieces where the
 * protocol is theirs (the store's scripts through CorrelationStore, the decisions stream's layout,
 * JetStreamPublisher) and the seed's rules and decision JSON.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JsMsg, type JetStreamManager } from '@nats-io/jetstream';
import { connect, createInbox } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { RedisKeys, STORED_DECISION_SUBJECT } from '@at-orchestrator/contracts';
import { decisionStreamConfig, type RedisClient } from '@at-orchestrator/runtime';
import { CorrelationStore, JetStreamPublisher, pullExpiryFor } from '@at-orchestrator/worker/internal';
import { seedDecision, type Momentum, type Risk } from '../baseline/echo-orchestrator.js';

type Json = Record<string, unknown>;
type Signal = { corr_id: string; agent_name: string; analysis: Json } & Json;
interface Held {
  msg: JsMsg;
  agent: string;
  text: string;
  signal: Signal;
}

const steps = new Set((process.env.LADDER ?? '').split(',').filter((s) => s !== ''));
for (const s of steps) if (!['js', 'lua', 'pull'].includes(s)) throw new Error(`LADDER=${process.env.LADDER} is not valid: expected js, lua and pull, comma-separated`);
const stream = process.env.NATS_STREAM ?? 'trading-events';
const durable = process.env.NATS_DURABLE ?? 'orchestrator-consumer';
const decisionStream = process.env.NATS_DECISION_STREAM ?? 'orchestrated';
const MARK_DELAY_MS = 20;

const redis = new Redis(process.env.REDIS_URL ?? 'redis://localhost:6379', { maxRetriesPerRequest: null });
const keys = new RedisKeys('orchestrator');
const store = new CorrelationStore(redis as unknown as RedisClient, keys, { stateSec: 60, idempotencySec: 3_600 }, { perSlot: false });
const nc = await connect({ servers: process.env.NATS_URL ?? 'nats://localhost:4222', name: 'protocol-ladder' });
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);
const publisher = new JetStreamPublisher(nc);
await ensureDecisionStream(jsm);

const cache = new Map<string, Held[]>();
const marks: Array<{ corrId: string; partition: number; agents: string[] }> = [];
let markTimer: NodeJS.Timeout | undefined;

async function handle(msg: JsMsg): Promise<void> {
  try {
    const text = msg.string();
    const signal = JSON.parse(text) as Signal;
    const corrId = signal.corr_id;
    let held = cache.get(corrId);
    if (held === undefined) cache.set(corrId, (held = []));
    held.push({ msg, agent: signal.agent_name, text, signal });
    const ready = held.some((h) => h.agent === 'momentum') && held.some((h) => h.agent === 'risk');
    if (steps.has('lua')) {
      if (!ready) return; // waits in memory for the signal that completes it (acked after the decision)
      await storeAndClaim(corrId, held);
    } else {
      await redis.hset(`orchestrator:signals:${corrId}`, signal.agent_name, text);
      await redis.expire(`orchestrator:signals:${corrId}`, 300);
      if (!steps.has('js')) msg.ack();
      if (!ready) return;
    }
    cache.delete(corrId);
    const data = JSON.stringify(decisionFor(corrId, held));
    if (steps.has('js')) {
      await publisher.publish(STORED_DECISION_SUBJECT, new TextEncoder().encode(data), corrId);
      for (const h of held) h.msg.ack();
      if (steps.has('lua')) mark(corrId);
    } else {
      nc.publish('orchestrated.decision', data);
      if (steps.has('lua')) for (const h of held) h.msg.ack();
    }
  } catch (e) {
    console.error(`protocol-ladder: ${(e as Error).message}`);
    msg.nak();
  }
}

async function storeAndClaim(corrId: string, held: Held[]): Promise<void> {
  const partition = keys.partitionOf(corrId);
  const deadlineMs = Date.now() + 10_000;
  const items = held.map((h) => ({ corrId, agent: h.agent, partition, payload: h.text, deadlineMs, epoch: 0 }));
  const agents = held.map((h) => h.agent).sort();
  const { claimed } = await store.storeAndClaim(items, [{ corrId, partition, epoch: 0, agents }], 'ladder');
  if (claimed[0]?.kind !== 'claimed') throw new Error(`claim of ${corrId}: ${claimed[0]?.kind}`);
}

function mark(corrId: string): void {
  marks.push({ corrId, partition: keys.partitionOf(corrId), agents: ['momentum', 'risk'] });
  markTimer ??= setTimeout(() => {
    markTimer = undefined;
    store.markPublished(marks.splice(0)).catch((e: unknown) => console.error(`protocol-ladder: marks: ${(e as Error).message}`));
  }, MARK_DELAY_MS);
}

function decisionFor(corrId: string, held: Held[]): Json {
  const by = (agent: string): Json => held.find((h) => h.agent === agent)!.signal.analysis;
  return seedDecision(corrId, '1.0.0', by('momentum') as Momentum, by('risk') as Risk);
}

async function ensureDecisionStream(m: JetStreamManager): Promise<void> {
  // The worker's layout with its default 300 s window (decisionStreamConfig reads only these two).
  const cfg = decisionStreamConfig({ nats: { decisionStream, decisionDedupWindowMs: 300_000 } } as Parameters<typeof decisionStreamConfig>[0]);
  try {
    await m.streams.info(decisionStream);
  } catch {
    await m.streams.add(cfg);
  }
}

async function consume(): Promise<AsyncIterable<JsMsg>> {
  if (steps.has('pull')) {
    try {
      await jsm.consumers.info(stream, durable);
    } catch {
      await jsm.consumers.add(stream, { durable_name: durable, filter_subject: 'signals.enriched.*', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
    }
    // As the worker pulls: MAX_IN_FLIGHT's default, and the expiry for this server's topology.
    return (await js.consumers.get(stream, durable)).consume({ max_messages: 256, expires: pullExpiryFor(nc.info) });
  }
  try {
    await jsm.consumers.info(stream, durable);
  } catch {
    await jsm.consumers.add(stream, { durable_name: durable, deliver_subject: createInbox(), filter_subject: 'signals.enriched.*', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
  }
  return (await js.consumers.getPushConsumer(stream, durable)).consume();
}

const messages = await consume();
console.log(`Protocol ladder started (steps: ${[...steps].join(',') || 'none, the seed\'s path'})`);
const stop = (): void => {
  void nc.drain().finally(() => {
    redis.disconnect();
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
for await (const msg of messages) await handle(msg);
