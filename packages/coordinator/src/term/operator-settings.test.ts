import { describe, expect, it } from 'vitest';
import { memoryLogger } from '@at-orchestrator/runtime';
import { FakeRedis } from '../../test/fake-redis.js';
import type { PartitionPin } from '../assignment/index.js';
import { CoordinatorKeys } from '../coordinator-keys.js';
import { OperatorSettings } from './operator-settings.js';

const keys = new CoordinatorKeys('t');
const PARTITIONS = 12;

function setup(): { redis: FakeRedis; settings: OperatorSettings; lines: string[] } {
  const redis = new FakeRedis();
  const { log, lines } = memoryLogger('info');
  return { redis, settings: new OperatorSettings(redis.client, keys, PARTITIONS, log), lines };
}

/** Settings as Redis holds them: the paused string, the drain set, the pins hash. */
interface Stored {
  readonly paused?: string;
  readonly drains?: string[];
  readonly pins?: Record<string, string>;
}

/** Stores settings in the fake Redis as an earlier leader (or an operator) left them. */
function store(redis: FakeRedis, stored: Stored): void {
  if (stored.paused !== undefined) redis.strings.set(keys.paused(), stored.paused);
  if (stored.drains !== undefined) redis.sets.set(keys.draining(), new Set(stored.drains));
  if (stored.pins !== undefined) redis.hashes.set(keys.pins(), new Map(Object.entries(stored.pins)));
}

function liveOf(...ids: string[]): Map<string, unknown> {
  return new Map(ids.map((id) => [id, {}]));
}

/** The settings in memory, in a form toEqual compares. */
function memory(settings: OperatorSettings): { paused: boolean; drains: string[]; pins: Array<{ partition: number; worker: string }> } {
  return { paused: settings.paused, drains: [...settings.drains].sort(), pins: [...settings.pins].sort((a, b) => a.partition - b.partition) };
}

describe('OperatorSettings', () => {
  it('starts unpaused, with no drains and no pins', () => {
    expect(memory(setup().settings)).toEqual({ paused: false, drains: [], pins: [] });
  });

  describe('read', () => {
    it.each<{ name: string; stored: Stored; paused: boolean; pins: PartitionPin[] }>([
      { name: 'nothing stored', stored: {}, paused: false, pins: [] },
      { name: 'paused is "1"', stored: { paused: '1' }, paused: true, pins: [] },
      { name: 'any other paused value is not paused', stored: { paused: 'yes' }, paused: false, pins: [] },
      {
        name: 'pins inside the partition range',
        stored: { pins: { '0': 'w1', '11': 'w2' } },
        paused: false,
        pins: [
          { partition: 0, worker: 'w1' },
          { partition: 11, worker: 'w2' },
        ],
      },
      {
        name: 'pins outside the range, not a whole number or onto no one are ignored',
        stored: { pins: { '12': 'w1', '-1': 'w1', '1.5': 'w1', x: 'w1', '3': '', '4': 'w4' } },
        paused: false,
        pins: [{ partition: 4, worker: 'w4' }],
      },
    ])('$name', async ({ stored, paused, pins }) => {
      const { redis, settings } = setup();
      store(redis, stored);
      const read = await settings.read();
      expect(read.paused).toBe(paused);
      expect([...read.pins].sort((a, b) => a.partition - b.partition)).toEqual(pins);
    });

    it('returns the drained workers, and changes nothing in memory until adopted', async () => {
      const { redis, settings } = setup();
      store(redis, { paused: '1', drains: ['w1', 'w2'], pins: { '2': 'w3' } });
      const read = await settings.read();
      expect([...read.drains].sort()).toEqual(['w1', 'w2']);
      expect(memory(settings)).toEqual({ paused: false, drains: [], pins: [] });
    });
  });

  describe('adopt', () => {
    it.each<{ name: string; stored: Stored; live: string[]; drains: string[]; pins: Record<string, string>; gone: string[] }>([
      {
        name: 'every worker named is live: taken as read, Redis untouched',
        stored: { drains: ['w1'], pins: { '3': 'w2' } },
        live: ['w1', 'w2'],
        drains: ['w1'],
        pins: { '3': 'w2' },
        gone: [],
      },
      {
        name: 'a drained worker that is gone is dropped, in Redis too',
        stored: { drains: ['w1', 'w2'] },
        live: ['w2'],
        drains: ['w2'],
        pins: {},
        gone: ['w1'],
      },
      {
        name: 'pins onto a worker that is gone are dropped, in Redis too',
        stored: { pins: { '1': 'w1', '2': 'w2', '5': 'w1' } },
        live: ['w2'],
        drains: [],
        pins: { '2': 'w2' },
        gone: [],
      },
      {
        name: 'no live worker at all: every drain and pin goes',
        stored: { paused: '1', drains: ['w1'], pins: { '0': 'w2' } },
        live: [],
        drains: [],
        pins: {},
        gone: ['w1'],
      },
    ])('$name', async ({ stored, live, drains, pins, gone }) => {
      const { redis, settings } = setup();
      store(redis, stored);
      const returned = await settings.adopt(await settings.read(), liveOf(...live));
      expect([...returned].sort()).toEqual(gone);
      expect([...settings.drains].sort()).toEqual(drains);
      expect(Object.fromEntries(settings.pins.map((pin) => [String(pin.partition), pin.worker]))).toEqual(pins);
      expect(settings.paused).toBe(stored.paused === '1');
      expect(redis.members(keys.draining())).toEqual(drains);
      expect(redis.hash(keys.pins())).toEqual(pins);
    });

    it('logs each drained worker that is gone and the pins removed', async () => {
      const { redis, settings, lines } = setup();
      store(redis, { drains: ['w1'], pins: { '4': 'w9' } });
      await settings.adopt(await settings.read(), liveOf('w2'));
      expect(lines.filter((line) => line.includes('drained worker is gone'))).toHaveLength(1);
      expect(lines.filter((line) => line.includes('pins onto workers that are gone removed'))).toHaveLength(1);
    });
  });

  describe('operator changes', () => {
    it('drain adds the worker and removes its pins, in Redis and in memory', async () => {
      const { redis, settings } = setup();
      store(redis, { pins: { '1': 'w1', '2': 'w2' } });
      await settings.adopt(await settings.read(), liveOf('w1', 'w2'));
      await settings.drain('w1');
      expect(memory(settings)).toEqual({ paused: false, drains: ['w1'], pins: [{ partition: 2, worker: 'w2' }] });
      expect(redis.members(keys.draining())).toEqual(['w1']);
      expect(redis.hash(keys.pins())).toEqual({ '2': 'w2' });
    });

    it('a second drain of the same worker changes nothing more', async () => {
      const { redis, settings } = setup();
      await settings.drain('w1');
      await settings.drain('w1');
      expect(memory(settings).drains).toEqual(['w1']);
      expect(redis.members(keys.draining())).toEqual(['w1']);
    });

    it('pin replaces the partition\'s earlier pin and keeps the others', async () => {
      const { redis, settings } = setup();
      await settings.pin(3, 'w1');
      await settings.pin(4, 'w1');
      await settings.pin(3, 'w2');
      expect(memory(settings).pins).toEqual([
        { partition: 3, worker: 'w2' },
        { partition: 4, worker: 'w1' },
      ]);
      expect(redis.hash(keys.pins())).toEqual({ '3': 'w2', '4': 'w1' });
    });

    it('pause and resume set and clear the paused key', async () => {
      const { redis, settings } = setup();
      await settings.pause();
      expect(settings.paused).toBe(true);
      expect(redis.strings.get(keys.paused())).toBe('1');
      await settings.resume();
      expect(settings.paused).toBe(false);
      expect(redis.strings.has(keys.paused())).toBe(false);
    });

    it('what one leader set, the next reads back', async () => {
      const { redis, settings } = setup();
      await settings.pause();
      await settings.drain('w1');
      await settings.pin(7, 'w2');
      const next = new OperatorSettings(redis.client, keys, PARTITIONS, memoryLogger().log);
      await next.adopt(await next.read(), liveOf('w1', 'w2'));
      expect(memory(next)).toEqual(memory(settings));
    });
  });

  describe('with Redis unreachable', () => {
    it.each([
      { name: 'drain', change: (s: OperatorSettings) => s.drain('w2') },
      { name: 'pin', change: (s: OperatorSettings) => s.pin(5, 'w2') },
      { name: 'pause', change: (s: OperatorSettings) => s.pause() },
      { name: 'resume', change: (s: OperatorSettings) => s.resume() },
      { name: 'adopt that removes a gone worker', change: (s: OperatorSettings) => s.adopt({ paused: true, drains: new Set(['w9']), pins: [] }, liveOf('w1')) },
    ])('$name fails and memory keeps what Redis holds', async ({ change }) => {
      const { redis, settings } = setup();
      store(redis, { paused: '1', drains: ['w1'], pins: { '1': 'w1' } });
      await settings.adopt(await settings.read(), liveOf('w1', 'w2'));
      const before = memory(settings);
      redis.down = true;
      await expect(change(settings)).rejects.toThrow(/ECONNREFUSED/);
      expect(memory(settings)).toEqual(before);
    });

    it('read fails', async () => {
      const { redis, settings } = setup();
      redis.down = true;
      await expect(settings.read()).rejects.toThrow(/ECONNREFUSED/);
    });
  });
});
