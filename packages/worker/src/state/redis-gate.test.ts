import { describe, expect, it, vi } from 'vitest';
import { ConfigError } from '@at-orchestrator/contracts';
import { memoryLogger, type RedisLink } from '@at-orchestrator/runtime';
import { RedisGate } from './redis-gate.js';

/** A RedisLink stand-in: the test says when Redis comes and goes, and what its policy is. */
function fakeRedis(o: { upAtStart: boolean; policy: string }) {
  const listeners: Array<(up: boolean) => void> = [];
  const state = { policy: o.policy, configCalls: 0, failConfig: false };
  const client = {
    config: vi.fn(async () => {
      state.configCalls += 1;
      if (state.failConfig) throw new Error('connection lost');
      return ['maxmemory-policy', state.policy];
    }),
    info: vi.fn(async () => {
      if (state.failConfig) throw new Error('connection lost');
      return `maxmemory_policy:${state.policy}\r\n`;
    }),
  };
  const link = {
    client,
    start: vi.fn(async () => {
      if (o.upAtStart) for (const l of listeners) l(true);
      return o.upAtStart;
    }),
    onAvailability: (l: (up: boolean) => void) => {
      listeners.push(l);
      return () => undefined;
    },
  };
  const set = (up: boolean) => {
    for (const l of listeners) l(up);
  };
  return { link: link as unknown as RedisLink, set, state, client };
}

function gate(redis: RedisLink) {
  const recover = vi.fn(async () => {});
  const onRefused = vi.fn();
  const degraded = { set: vi.fn() };
  const g = new RedisGate({ redis, degraded: degraded as never, recover, onRefused, log: memoryLogger('silent').log });
  return { g, recover, onRefused, degraded };
}

describe('RedisGate', () => {
  it('Redis up and safe at start: the policy is checked once, then the worker recovers', async () => {
    const r = fakeRedis({ upAtStart: true, policy: 'noeviction' });
    const { g, recover, degraded } = gate(r.link);
    await expect(g.start()).resolves.toBe(true);
    expect(r.state.configCalls).toBe(1);
    expect(recover).toHaveBeenCalled();
    expect(degraded.set).toHaveBeenLastCalledWith(0);
  });

  it('an evicting Redis at start: start throws the ConfigError and nothing is recovered', async () => {
    const r = fakeRedis({ upAtStart: true, policy: 'allkeys-lru' });
    const { g, recover, onRefused } = gate(r.link);
    await expect(g.start()).rejects.toThrow(ConfigError);
    await expect(g.start()).rejects.toThrow(/maxmemory-policy allkeys-lru/);
    expect(recover).not.toHaveBeenCalled();
    expect(onRefused).not.toHaveBeenCalled();
  });

  it('Redis down at start: degraded, and checked then recovered when it first comes', async () => {
    const r = fakeRedis({ upAtStart: false, policy: 'noeviction' });
    const { g, recover, degraded } = gate(r.link);
    await expect(g.start()).resolves.toBe(false);
    expect(degraded.set).toHaveBeenLastCalledWith(1);
    expect(r.state.configCalls).toBe(0);
    r.set(true);
    await vi.waitFor(() => expect(recover).toHaveBeenCalledTimes(1));
    expect(r.state.configCalls).toBe(1);
    // Every later return recovers again; the policy is not read again.
    r.set(false);
    r.set(true);
    await vi.waitFor(() => expect(recover).toHaveBeenCalledTimes(2));
    expect(r.state.configCalls).toBe(1);
  });

  it('first reached after start and evicting: the worker is told to stop, nothing recovered', async () => {
    const r = fakeRedis({ upAtStart: false, policy: 'volatile-lru' });
    const { g, recover, onRefused } = gate(r.link);
    await g.start();
    r.set(true);
    await vi.waitFor(() => expect(onRefused).toHaveBeenCalledTimes(1));
    expect(onRefused.mock.calls[0]![0]).toBeInstanceOf(ConfigError);
    expect(recover).not.toHaveBeenCalled();
  });

  it('Redis lost while its policy was read: read again at the next connection', async () => {
    const r = fakeRedis({ upAtStart: false, policy: 'noeviction' });
    const { g, recover, onRefused } = gate(r.link);
    await g.start();
    r.state.failConfig = true;
    r.set(true);
    await vi.waitFor(() => expect(r.client.info).toHaveBeenCalledTimes(1));
    // Let the failed check settle (Redis would come back much later than this).
    await new Promise((resolve) => setImmediate(resolve));
    expect(recover).not.toHaveBeenCalled();
    expect(onRefused).not.toHaveBeenCalled();
    r.state.failConfig = false;
    r.set(true);
    await vi.waitFor(() => expect(recover).toHaveBeenCalledTimes(1));
    expect(r.state.configCalls).toBe(2);
  });
});
