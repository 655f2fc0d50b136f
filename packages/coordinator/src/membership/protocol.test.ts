import { describe, expect, it } from 'vitest';
import { CLUSTER_PROTOCOL, WorkerHeartbeat } from '@at-orchestrator/contracts';
import { describeProtocol, protocolRefusal } from './protocol.js';

function hb(protocol: number | undefined): WorkerHeartbeat {
  return { id: 'w1', capacity: 1, load: 0, version: '0.1.0', draining: false, started_at: '2026-01-01T00:00:00Z', owned: [], ...(protocol === undefined ? {} : { protocol }) };
}

describe('protocolRefusal', () => {
  it.each([
    { worker: 1, leader: 1, refused: false },
    { worker: 2, leader: 2, refused: false },
    { worker: 2, leader: 1, refused: true },
    { worker: 1, leader: 2, refused: true },
    { worker: 0, leader: 1, refused: true },
    // A worker older than the check states none: it speaks protocol 1.
    { worker: undefined, leader: 1, refused: false },
    { worker: undefined, leader: 2, refused: true },
  ])('a worker of protocol $worker under a leader of protocol $leader: refused $refused', ({ worker, leader, refused }) => {
    const refusal = protocolRefusal(hb(worker), leader);
    if (!refused) {
      expect(refusal).toBeNull();
      return;
    }
    expect(refusal).toMatchObject({ protocol: worker ?? null, expected: leader });
    // The message names the worker and both protocols.
    expect(refusal!.message).toContain('worker w1 ');
    expect(refusal!.message).toContain(`cluster protocol ${describeProtocol(worker)}, the leader ${leader}: refused`);
  });

  it('defaults to this build\'s CLUSTER_PROTOCOL, which a heartbeat of this build carries', () => {
    expect(protocolRefusal(hb(CLUSTER_PROTOCOL))).toBeNull();
    expect(protocolRefusal(hb(CLUSTER_PROTOCOL + 1))?.expected).toBe(CLUSTER_PROTOCOL);
  });

  it('a heartbeat without a protocol still parses (workers older than the check); a later leader says what it means', () => {
    const { protocol: _omitted, ...old } = hb(1);
    expect(WorkerHeartbeat.parse(old).protocol).toBeUndefined();
    expect(protocolRefusal(WorkerHeartbeat.parse(old), 2)?.message).toContain('speaks cluster protocol none (a build older than the protocol check: 1), the leader 2: refused');
  });
});
