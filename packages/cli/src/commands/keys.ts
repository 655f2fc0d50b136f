import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, redactUrl, type OrchestratorConfig } from '@at-orchestrator/contracts';
import { Redis, RedisLink, createLogger } from '@at-orchestrator/runtime';
import { EXIT } from '../bus-connection.js';
import type { Command } from '../command.js';
import { migrateKeyLayout } from '../key-migration.js';

const USAGE = [
  'Usage: at-orchestrator keys migrate [--force]',
  '',
  'Moves a Redis keyspace of cluster protocol 1 (REDIS_URL or REDIS_SENTINELS, REDIS_KEY_PREFIX) to the',
  'key layout of protocol 2, where every key carries its partition\'s hash tag (docs/cluster.md, "Key',
  'layout"): open correlations, done-markers, late markers, partition epochs, the assignment table and',
  'the operator\'s settings keep their values and TTLs under their new names (RENAMENX). PARTITIONS must',
  'be the cluster\'s. Protocol 1\'s leader lease is left holding a tombstone, so no coordinator of',
  'protocol 1 can lead again. Run it once, every worker and coordinator stopped, before the processes',
  'of protocol 2 start; running it again moves nothing. To move to a Redis Cluster, migrate on the single',
  'Redis first, then import (redis-cli --cluster import).',
  '',
  'It refuses while a coordinator of protocol 1 holds its lease or a worker\'s heartbeat lives, or while',
  'protocol 2 already runs (its leader lease or a worker\'s heartbeat), unless --force; and, even with',
  '--force, when PARTITIONS differs from the number of partitions in the old table. A key whose new',
  'name exists already is never overwritten: it is left in place and listed, and the exit code is 3.',
  '',
  'Exit codes: 0 done, 1 Redis unreachable, 2 bad usage or configuration, 3 refused (processes running,',
  'PARTITIONS not the cluster\'s, or REDIS_CLUSTER_NODES given) or keys left in place.',
].join('\n');

/** `at-orchestrator keys migrate`: the one-off key layout change of cluster protocol 2. */
export const keysCommand: Command = {
  name: 'keys',
  summary: 'migrate a Redis keyspace to the hash-tagged key layout (once, processes stopped)',
  usage: USAGE,
  async run(argv) {
    const fail = (code: number, line: string): number => {
      process.stderr.write(`at-orchestrator keys: ${line}\n`);
      return code;
    };
    let parsed;
    try {
      parsed = parseArgs({ args: argv, allowPositionals: true, options: { force: { type: 'boolean', default: false } } });
    } catch (err) {
      return fail(EXIT.usage, `${(err as Error).message}\n${USAGE}`);
    }
    if (parsed.positionals.join(' ') !== 'migrate') return fail(EXIT.usage, `expected "migrate", got ${JSON.stringify(parsed.positionals.join(' '))}\n${USAGE}`);
    let config: OrchestratorConfig;
    try {
      config = loadConfig(process.env);
    } catch (err) {
      if (err instanceof ConfigError) return fail(EXIT.usage, `invalid configuration: ${err.message}`);
      throw err;
    }
    if (config.redis.cluster !== undefined) {
      return fail(EXIT.refused, 'REDIS_CLUSTER_NODES is set: a keyspace of cluster protocol 1 lives on one Redis; migrate it there (REDIS_URL or REDIS_SENTINELS), then import it into the cluster');
    }
    const log = createLogger({ service: 'at-orchestrator-cli', env: 'cli', level: 'silent' });
    let link: RedisLink<Redis>;
    try {
      link = new RedisLink<Redis>(config.redis.sentinel ?? config.redis.url ?? '', log, { name: 'at-orchestrator-cli-keys', access: config.redis, commandTimeoutMs: 30_000 });
    } catch (err) {
      if (err instanceof ConfigError) return fail(EXIT.usage, `invalid configuration: ${err.message}`);
      throw err;
    }
    try {
      if (!(await link.start())) return fail(EXIT.unreachable, 'Redis is unreachable');
      const result = await migrateKeyLayout(link.client, {
        prefix: config.redis.keyPrefix,
        partitions: config.partitions,
        force: parsed.values.force,
        say: (line) => process.stdout.write(`${line}\n`),
      });
      if (result.kind === 'busy') return fail(EXIT.refused, `${result.reason}: stop every worker and coordinator, then run this again; --force skips the check`);
      if (result.kind === 'wrong-partitions') return fail(EXIT.refused, `${result.reason}; nothing was moved`);
      if (result.conflicts.length > 0) {
        return fail(
          EXIT.refused,
          `${result.conflicts.length} key(s) left in place under their old names, their new name existing already (never overwritten; compare each with its new name and resolve by hand):\n${result.conflicts.join('\n')}`,
        );
      }
      return EXIT.ok;
    } catch (err) {
      return fail(EXIT.unreachable, redactUrl((err as Error).message));
    } finally {
      await link.close();
    }
  },
};
