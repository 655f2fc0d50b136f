import { describe, expect, it } from 'vitest';
import { PULL_EXPIRES_MS, pullExpiryFor } from './signal-consumer.js';

describe('pullExpiryFor', () => {
  it('keeps pull requests short in a NATS cluster, where only missed heartbeats reveal a lost consumer leader', () => {
    expect(pullExpiryFor({ cluster: 'orchestrator-bus' })).toBe(5_000);
    expect(PULL_EXPIRES_MS.cluster).toBe(5_000);
  });

  it("uses nats.js's 30 s on a single server (no cluster in its INFO), whose heartbeats cost it CPU per message", () => {
    expect(pullExpiryFor({})).toBe(30_000);
    expect(pullExpiryFor({ cluster: '' })).toBe(30_000);
    expect(pullExpiryFor(undefined)).toBe(30_000);
  });
});
