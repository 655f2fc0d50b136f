import { describe, expect, it } from 'vitest';
import { partitionOf, signalSubject, type ForwardRequest } from '@at-orchestrator/contracts';
import { Registry, memoryLogger } from '@at-orchestrator/runtime';
import type { ForwardLanes } from '../cluster/forward-lanes.js';
import { forwardedLetterId, type DeadLetterPublisher, type DeadSource } from '../emit/dead-letters.js';
import { WorkerMetrics } from '../metrics.js';
import type { Inbound, Intake } from '../pipeline/intake.js';
import { SignalRouter } from './signal-router.js';

// Forwarded batches are trusted no more than the stream (docs/security.md, "Ingest and resources"):
// each signal is parsed again with the size limit, the agent checks run again, its partition is
// recomputed, and a bad one is dead-lettered by the owner and answered so that the sender acks it.

const PARTITIONS = 16;
const MAX_BYTES = 512;

const momentum = (corrId: string, agent = 'momentum', pad = '') =>
  JSON.stringify({ corr_id: corrId, agent_name: agent, analysis: { momentum_strength: 0.4, confidence: 0.9, trend_direction: 'up', pad } });

/** A forwarded item as a sender computes it: the partition from the corr_id, unless told otherwise. */
function item(corrId: string, opts: { subject?: string; payload?: string; partition?: number } = {}): ForwardRequest['signals'][number] {
  return { partition: opts.partition ?? partitionOf(corrId, PARTITIONS), subject: opts.subject ?? signalSubject('momentum'), payload: opts.payload ?? momentum(corrId) };
}

interface Letter {
  source: DeadSource;
  reason: string;
  detail: string;
  corrId: string | undefined;
}

/** A router over fakes: intake settles what it takes as stored; the DLQ stores unless told to fail. */
function setup(o: { dlqStores?: boolean; owns?: (p: number) => boolean; intakeRejects?: string } = {}) {
  const letters: Letter[] = [];
  const taken: Inbound[] = [];
  const dlq = {
    publish: async (source: DeadSource, reason: string, detail: string, corrId?: string) => {
      letters.push({ source, reason, detail, corrId });
      return o.dlqStores ?? true;
    },
  } as unknown as DeadLetterPublisher;
  const intake = {
    take: async (items: Inbound[]) => {
      taken.push(...items);
      for (const it of items) {
        if (it.signal.corr_id === o.intakeRejects) await it.reject('too_many_agents', 'one agent too many');
        else it.source.ack();
      }
    },
  } as unknown as Intake;
  const { log, lines } = memoryLogger('warn');
  const router = new SignalRouter({
    workerId: 'owner',
    partitions: PARTITIONS,
    maxSignalBytes: MAX_BYTES,
    allowedAgents: ['momentum', 'risk'],
    owns: o.owns ?? (() => true),
    ownerOf: () => 'owner',
    tableVersion: () => 7,
    running: () => true,
    capacity: () => undefined,
    intake,
    lanes: {} as ForwardLanes,
    dlq,
    metrics: new WorkerMetrics(new Registry()),
    log,
  });
  return { router, letters, taken, lines };
}

/** Finds a corr_id (c-0, c-1, ...) whose partition is not `p`. */
function corrOutside(p: number): string {
  for (let i = 0; ; i++) if (partitionOf(`pm-${i}`, PARTITIONS) !== p) return `pm-${i}`;
}

describe('SignalRouter.takeForwarded re-validates every forwarded signal', () => {
  it('oversized, wrong agent for the subject, agent not allowed, wrong partition and not JSON each go to the DLQ with their reason and are answered stored; the good one in the same batch is taken in', async () => {
    const { router, letters, taken } = setup();
    const wrongPartition = corrOutside(0);
    const batch: ForwardRequest = {
      from: 'sender',
      signals: [
        item('good-1'),
        item('big-1', { payload: momentum('big-1', 'momentum', 'x'.repeat(MAX_BYTES)) }),
        item('mm-1', { subject: signalSubject('risk') }),
        item('na-1', { subject: signalSubject('intruder'), payload: momentum('na-1', 'intruder') }),
        item(wrongPartition, { partition: 0 }),
        item('nj-1', { payload: '{"corr_id": "nj-1", oops' }),
      ],
    };

    const reply = await router.takeForwarded(batch);

    expect(reply).toEqual({ verdicts: ['stored', 'stored', 'stored', 'stored', 'stored', 'stored'], table_version: 7 });
    expect(taken.map((t) => [t.signal.corr_id, t.partition])).toEqual([['good-1', partitionOf('good-1', PARTITIONS)]]);
    expect(letters.map((l) => [l.reason, l.corrId])).toEqual([
      ['oversized', undefined],
      ['agent_mismatch', 'mm-1'],
      ['agent_not_allowed', 'na-1'],
      ['partition_mismatch', wrongPartition],
      ['not_json', undefined],
    ]);
    expect(letters[0]!.detail).toMatch(new RegExp(`limit ${MAX_BYTES}`));
    expect(letters[1]!.detail).toMatch(/published on signals\.enriched\.risk but agent_name is momentum/);
    expect(letters[3]!.detail).toMatch(new RegExp(`forwarded for partition 0; its corr_id is in partition ${partitionOf(wrongPartition, PARTITIONS)}`));
    // Each letter keeps the forwarded subject and bytes, under an id of its own (stored once however often it is forwarded).
    for (const [i, l] of letters.entries()) {
      const s = batch.signals[i + 1]!;
      expect(l.source.subject).toBe(s.subject);
      expect(new TextDecoder().decode(l.source.data)).toBe(s.payload);
      expect(l.source.letterId).toBe(forwardedLetterId(s.subject, s.payload));
    }
  });

  it('when the dead letter cannot be stored the bad signal is answered retry (the sender redelivers it); the good one is still stored', async () => {
    const { router, letters } = setup({ dlqStores: false });
    const reply = await router.takeForwarded({ from: 'sender', signals: [item('mm-2', { subject: signalSubject('risk') }), item('good-2'), item(corrOutside(3), { partition: 3 })] });
    expect(reply.verdicts).toEqual(['retry', 'stored', 'retry']);
    expect(letters.map((l) => l.reason)).toEqual(['agent_mismatch', 'partition_mismatch']);
  });

  it('a signal the fan-in refuses (too many agents) is dead-lettered and answered by the letter', async () => {
    const { router, letters } = setup({ intakeRejects: 'many-1' });
    const reply = await router.takeForwarded({ from: 'sender', signals: [item('many-1'), item('good-3')] });
    expect(reply.verdicts).toEqual(['stored', 'stored']);
    expect(letters.map((l) => [l.reason, l.corrId])).toEqual([['too_many_agents', 'many-1']]);
  });

  it('a valid signal of a partition we do not own is answered retry and neither taken nor dead-lettered', async () => {
    const mine = partitionOf('good-4', PARTITIONS);
    const notMine = corrOutside(mine);
    const { router, letters, taken } = setup({ owns: (p) => p === mine });
    const reply = await router.takeForwarded({ from: 'sender', signals: [item(notMine), item('good-4')] });
    expect(reply.verdicts).toEqual(['retry', 'stored']);
    expect(taken.map((t) => t.signal.corr_id)).toEqual(['good-4']);
    expect(letters).toEqual([]);
  });

  it('refusals are logged with the sender named', async () => {
    const { router, lines } = setup();
    await router.takeForwarded({ from: 'peer-9', signals: [item('mm-3', { subject: signalSubject('risk') })] });
    expect(lines.some((l) => l.includes('forwarded signal refused') && l.includes('"from":"peer-9"') && l.includes('agent_mismatch'))).toBe(true);
  });
});
