/**
 * What a JetStream publish costs the client: `js.publish(subject, data, { msgID })` (a request per
 * message) against the worker's JetStreamPublisher (one reply subscription, one timer), on a private
 * nats-server. CPU µs per publish is process.cpuUsage() (user + system) of this process over the run,
 * divided by the publishes acked; nats-server's own CPU is not in it.
 *   - paced: one publish at a time awaiting its ack, at a fixed rate (default 500/s for 10 s), as the
 *     worker at a modest load; the pacing timer is the same for both.
 *   - closed loop: 64 publishes in flight for a few seconds: throughput and CPU per publish.
 *
 * With --rounds above 1 the runs repeat, the two publishers taking turns at going first.
 *
 *   cd loadtest && node --expose-gc --conditions=source --import tsx micro/stream-publish.ts [--rate 500] [--seconds 10] [--inflight 64] [--closed-seconds 5] [--rounds 1]
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { NatsServer } from '@at-orchestrator/local-servers';
// Not part of the worker's public face: the internal one (from the build, unless --conditions=source).
import { JetStreamPublisher, jetStreamClientPublisher, type StreamPublisher } from '@at-orchestrator/worker/internal';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '10' },
    inflight: { type: 'string', default: '64' },
    'closed-seconds': { type: 'string', default: '5' },
    rounds: { type: 'string', default: '1' },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const inflight = Number(values.inflight);
const closedSeconds = Number(values['closed-seconds']);
const rounds = Number(values.rounds);

const STREAM = 'bench';
const SUBJECT = 'bench.decisions';
// About a decision's size on the wire.
const payload = new TextEncoder().encode(JSON.stringify({ corr_id: 'c'.repeat(36), type: 'buy', agents_present: ['momentum', 'risk', 'sentiment'], confidence: 0.8125, reasons: ['x'.repeat(120)], channels: [] }));

interface Figures {
  acked: number;
  cpuUsPerPublish: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

const percentile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? NaN;

/** Measures `body`, which returns the ack latencies of the publishes it made. */
async function measure(body: () => Promise<number[]>): Promise<Figures> {
  (globalThis as { gc?: () => void }).gc?.();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const latencies = await body();
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  return {
    acked: latencies.length,
    cpuUsPerPublish: (cpu.user + cpu.system) / latencies.length,
    perSecond: (latencies.length * 1000) / elapsed,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}

let ids = 0;

/** One publish at a time, each started on its slot of a fixed-rate schedule. */
async function paced(pub: StreamPublisher, perSecond: number, forSeconds: number): Promise<number[]> {
  const latencies: number[] = [];
  const interval = 1000 / perSecond;
  const start = performance.now();
  const count = Math.round(perSecond * forSeconds);
  for (let i = 0; i < count; i++) {
    const wait = start + i * interval - performance.now();
    if (wait > 0.5) await sleep(wait);
    const t = performance.now();
    await pub.publish(SUBJECT, payload, `m-${ids++}`);
    latencies.push(performance.now() - t);
  }
  return latencies;
}

/** `width` publishes in flight, each followed at once by the next, for `forSeconds`. */
async function closedLoop(pub: StreamPublisher, width: number, forSeconds: number): Promise<number[]> {
  const latencies: number[] = [];
  const end = performance.now() + forSeconds * 1000;
  const lane = async (): Promise<void> => {
    while (performance.now() < end) {
      const t = performance.now();
      await pub.publish(SUBJECT, payload, `m-${ids++}`);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: width }, lane));
  return latencies;
}

const line = (name: string, f: Figures): string =>
  `${name.padEnd(30)} ${f.cpuUsPerPublish.toFixed(1).padStart(7)} µs CPU/publish  ${Math.round(f.perSecond).toLocaleString('en').padStart(7)}/s  ack p50 ${f.p50Ms.toFixed(3)} ms  p99 ${f.p99Ms.toFixed(3)} ms  (${f.acked.toLocaleString('en')} acked)`;

const server = await NatsServer.start();
const nc = await connect({ servers: server.url });
try {
  const jsm = await jetstreamManager(nc);
  // As the worker's decision stream: file storage, a duplicate window (every id here is new).
  await jsm.streams.add({ name: STREAM, subjects: ['bench.>'], duplicate_window: 120_000_000_000 });
  const publishers: Array<[string, StreamPublisher]> = [
    ['js.publish (request per msg)', jetStreamClientPublisher(jetstream(nc))],
    ['JetStreamPublisher', new JetStreamPublisher(nc)],
  ];
  // Warm both paths (JIT, the request mux's subscription) before any figure.
  for (const [, pub] of publishers) await closedLoop(pub, 8, 1);
  await jsm.streams.purge(STREAM);

  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? publishers : [...publishers].reverse();
    console.log(`paced: ${rate}/s for ${seconds} s, one publish at a time awaiting its ack`);
    for (const [name, pub] of order) {
      console.log(line(name, await measure(() => paced(pub, rate, seconds))));
      await jsm.streams.purge(STREAM);
    }
    console.log(`closed loop: ${inflight} in flight for ${closedSeconds} s`);
    for (const [name, pub] of order) {
      console.log(line(name, await measure(() => closedLoop(pub, inflight, closedSeconds))));
      await jsm.streams.purge(STREAM);
    }
  }
  for (const [, pub] of publishers) if (pub instanceof JetStreamPublisher) pub.close();
} finally {
  await nc.close();
  await server.dispose();
}
