/**
 * What nats-server spends per message, at a fixed modest rate, on the ways a decision and a signal
 * can travel, each path alone: the broker's share of CPU per decision (its figures and the Go profile
 * of the real mix, "Inside nats-server", are in docs/high-frequency-history.md; the tenth session's
 * run is in docs/high-frequency.md, "The protocol's floor").
 *   - decision: a core publish to one subscriber (the seed) against a JetStream publish with a
 *     Nats-Msg-Id, acknowledged, into a stream that republishes it to the same subscriber (ours), and
 *     the same publish into a stream that does not republish (what the republish itself costs);
 *   - signal: publish into a stream, then consumed and acked by a durable pull consumer
 *     (`consume()`, as the worker) against a durable push consumer (as the seed); "publish only"
 *     is the floor of both.
 * nats-server's CPU is read from /proc/<pid>/stat (user + system) over each run and divided by the
 * messages sent in it. Each case runs --rounds times, the cases in turn.
 *
 *   cd loadtest && node --conditions=source --import tsx micro/broker-cost.ts [--rate 500] [--count 5000] [--rounds 2]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages } from '@nats-io/jetstream';
import { connect, createInbox, type NatsConnection } from '@nats-io/transport-node';
import { NatsServer } from '@at-orchestrator/local-servers';
// Not part of the worker's public face: the internal one (from the build, unless --conditions=source).
import { JetStreamPublisher } from '@at-orchestrator/worker/internal';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '500' },
    count: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '2' },
  },
});
const rate = Number(values.rate);
const count = Number(values.count);
const rounds = Number(values.rounds);

const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
const decision = encode({ corr_id: 'c'.repeat(36), decision: { action: 'trade', size: 10 }, confidence: 0.7, agents_present: ['momentum', 'risk'] });
const signal = encode({ corr_id: 'c'.repeat(36), agent_name: 'momentum', analysis: { momentum_strength: 0.5, confidence: 0.9, trend_direction: 'up' } });

/** CPU ticks (user + system) of a process: 1/100 s each on Linux. */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Calls `send` `n` times at `rate` per second, each awaited. */
async function paced(n: number, send: (i: number) => Promise<unknown> | void): Promise<void> {
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    await send(i);
  }
}

interface Case {
  name: string;
  /** Prepares the case; returns the per-message send and what to undo afterwards. */
  setup: () => Promise<{ send: (i: number) => Promise<unknown> | void; done: () => Promise<void> }>;
}

async function main(): Promise<void> {
  const server = await NatsServer.start();
  const conns: NatsConnection[] = [];
  const open = async (): Promise<NatsConnection> => {
    const nc = await connect({ servers: server.url });
    conns.push(nc);
    return nc;
  };
  try {
    const client = await open();
    const receiver = await open();
    const jsm = await jetstreamManager(client);
    const js = jetstream(client);
    const rjs = jetstream(receiver);
    await jsm.streams.add({ name: 'decisions', subjects: ['stored.>'], duplicate_window: 300e9, republish: { src: 'stored.>', dest: 'out.>' } });
    await jsm.streams.add({ name: 'plain', subjects: ['plain.>'], duplicate_window: 300e9 });
    await jsm.streams.add({ name: 'signals', subjects: ['sig.>'] });
    receiver.subscribe('out.>', { callback: () => undefined });
    receiver.subscribe('core.>', { callback: () => undefined });
    await receiver.flush();
    const publisher = new JetStreamPublisher(client);
    let ids = 0;
    let consumers = 0;

    const consumeAll = (messages: ConsumerMessages): void => {
      void (async () => {
        for await (const m of messages) m.ack();
      })();
    };
    const cases: Case[] = [
      { name: 'decision: core publish', setup: async () => ({ send: () => client.publish('core.decision', decision), done: async () => {} }) },
      {
        name: 'decision: JetStream publish, acked, republished',
        setup: async () => ({ send: () => publisher.publish('stored.decision', decision, `id-${ids++}`), done: async () => {} }),
      },
      {
        name: 'decision: JetStream publish, acked, no republish',
        setup: async () => ({ send: () => publisher.publish('plain.decision', decision, `id-${ids++}`), done: async () => {} }),
      },
      { name: 'signal: publish only', setup: async () => ({ send: () => js.publish('sig.momentum', signal), done: async () => {} }) },
      {
        name: 'signal: publish + pull consume + ack',
        setup: async () => {
          const durable = `pull-${consumers++}`;
          await jsm.consumers.add('signals', { durable_name: durable, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New });
          const messages = await (await rjs.consumers.get('signals', durable)).consume({ max_messages: 1000, expires: 5000 });
          consumeAll(messages);
          return { send: () => js.publish('sig.momentum', signal), done: async () => void (await messages.close(), await jsm.consumers.delete('signals', durable)) };
        },
      },
      {
        name: 'signal: publish + push consume + ack',
        setup: async () => {
          const durable = `push-${consumers++}`;
          await jsm.consumers.add('signals', { durable_name: durable, deliver_subject: createInbox(), ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New });
          const messages = await (await rjs.consumers.getPushConsumer('signals', durable)).consume();
          consumeAll(messages);
          return { send: () => js.publish('sig.momentum', signal), done: async () => void (await messages.close(), await jsm.consumers.delete('signals', durable)) };
        },
      },
    ];

    console.log(`nats-server CPU µs per message, ${count} messages at ${rate}/s, ${rounds} round(s); nats-server ${server.url}`);
    const results = new Map<string, number[]>();
    for (let round = 0; round < rounds; round++) {
      for (const c of cases) {
        const { send, done } = await c.setup();
        await paced(Math.ceil(rate / 2), send); // warm-up: half a second of messages
        const before = cpuTicks(server.pid!);
        await paced(count, send);
        const after = cpuTicks(server.pid!);
        await done();
        const perMessage = ((after - before) * 10_000) / count;
        results.set(c.name, [...(results.get(c.name) ?? []), perMessage]);
      }
    }
    for (const [name, figures] of results) console.log(`  ${name.padEnd(50)} ${figures.map((f) => f.toFixed(0)).join(' / ')}`);
    publisher.close();
  } finally {
    for (const nc of conns) await nc.close();
    await server.dispose();
  }
}

await main();
