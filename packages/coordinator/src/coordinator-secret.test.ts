import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@at-orchestrator/contracts';
import { memoryLogger } from '@at-orchestrator/runtime';
import { Coordinator } from './coordinator.js';

describe('Coordinator without CLUSTER_SECRET', () => {
  it('refuses to be built, with a ConfigError naming the variable; with one it is built (nothing connects before start)', () => {
    const { log } = memoryLogger();
    expect(() => new Coordinator({ config: loadConfig({}), log })).toThrow(ConfigError);
    expect(() => new Coordinator({ config: loadConfig({}), log })).toThrow(/^CLUSTER_SECRET is not set: /);
    expect(new Coordinator({ config: loadConfig({ CLUSTER_SECRET: 'a-cluster-secret-of-some-length' }), log }).state).toBe('idle');
  });
});
