import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@at-orchestrator/contracts';
import { memoryLogger } from '@at-orchestrator/runtime';
import { OrchestratorWorker } from './worker.js';

describe('OrchestratorWorker without CLUSTER_SECRET', () => {
  it('a coordinated worker refuses to be built with a ConfigError naming the variable; a self-owned one needs none', async () => {
    const { log } = memoryLogger();
    const config = loadConfig({});
    expect(() => new OrchestratorWorker({ config, log })).toThrow(ConfigError);
    expect(() => new OrchestratorWorker({ config, log, ownership: 'coordinated' })).toThrow(/^CLUSTER_SECRET is not set: /);
    const alone = new OrchestratorWorker({ config, log, ownership: 'self' });
    expect(alone.state).toBe('idle');
    await alone.close();
  });
});
