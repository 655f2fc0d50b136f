/**
 * What `WAIT 1` after the claim script would cost (docs/cluster.md, "What a failover can lose"):
 * the worker's own claim script (four correlations a batch, as at a low rate) against a primary with
 * one replica on loopback, alone and followed by `WAIT 1 100`; three rounds of 2,000 each, p50 and p99.
 *   cd loadtest && node --conditions=source --import tsx micro/redis-wait-cost.ts
 */
import { Redis } from 'ioredis';
import { RedisKeys } from '@at-orchestrator/contracts';
import { RedisSentinelSet } from '@at-orchestrator/local-servers';
import { CorrelationStore } from '@at-orchestrator/worker';

const set = await RedisSentinelSet.start();
try {
  const primary = (await set.primary()) ?? 0;
  const redis = new Redis(set.servers[primary]!.url);
  // The replica is attached once WAIT can count it.
  while ((await redis.wait(1, 1_000)) < 1) process.stderr.write('waiting for the replica\n');
  const keys = new RedisKeys('wait-cost', 64);
  const store = new CorrelationStore(redis, keys, { stateSec: 60, idempotencySec: 600 });
  for (let p = 0; p < 64; p++) await redis.set(keys.epoch(p), '4');
  const batch = (tag: string) =>
    Array.from({ length: 4 }, (_, k) => {
      const corrId = `${tag}-${k}`;
      return { corrId, partition: keys.partitionOf(corrId), epoch: 4, agents: ['momentum', 'risk'] };
    });
  const round = async (withWait: boolean, n: number): Promise<string> => {
    const ms: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await store.claim(batch(`${withWait ? 'w' : 'n'}${Math.random().toString(36).slice(2)}`), 'w1');
      if (withWait) await redis.wait(1, 100);
      ms.push(performance.now() - t0);
    }
    ms.sort((a, b) => a - b);
    return `p50 ${ms[Math.floor(n / 2)]!.toFixed(3)} ms, p99 ${ms[Math.floor(n * 0.99)]!.toFixed(3)} ms`;
  };
  await round(false, 500);
  await round(true, 500);
  for (let r = 0; r < 3; r++) console.log(`claim: ${await round(false, 2_000)} · claim + WAIT 1: ${await round(true, 2_000)}`);
  redis.disconnect();
} finally {
  await set.dispose();
}
