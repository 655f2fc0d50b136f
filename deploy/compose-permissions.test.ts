import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@at-orchestrator/contracts';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

// deploy/compose.yaml runs NATS with the shipped bus permissions (deploy/nats/permissions.conf) and
// each service as its role's user. Checked statically here; test/bus-permissions.int.test.ts has
// nats-server check compose/nats.conf itself.

const deploy = dirname(fileURLToPath(import.meta.url));
interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  profiles?: string[];
}
const compose = parse(readFileSync(join(deploy, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const natsConf = readFileSync(join(deploy, 'compose', 'nats.conf'), 'utf8');
const shippedPermissions = readFileSync(join(deploy, 'nats', 'permissions.conf'), 'utf8');

/** The value compose gives `${NAME:-default}` when NAME is not set. */
const interpolated = (value: string): string => value.replace(/\$\{(\w+):-([^}]*)\}/g, (_m, _name: string, fallback: string) => fallback);

/** user → { password variable, permissions variable } as compose/nats.conf declares them. */
const users = new Map(
  [...natsConf.matchAll(/user:\s*([\w-]+)\s*,?\s*password:\s*\$(\w+)(?:\s*,\s*permissions:\s*\$(\w+))?/g)].map((m) => [m[1]!, { password: m[2]!, permissions: m[3] }]),
);

const byRole = (role: string): [string, Service][] =>
  Object.entries(compose.services).filter(([, s]) => s.image === 'at-orchestrator:local' && s.command?.join(' ').startsWith(role));

describe('compose runs NATS with the shipped permissions', () => {
  it('mounts deploy/nats beside its configuration, which includes the shipped permissions', () => {
    const nats = compose.services.nats!;
    expect(nats.volumes).toContain('./nats:/etc/nats/shipped:ro');
    expect(natsConf).toMatch(/^include \.\/shipped\/permissions\.conf$/m);
    // Every permission block the users refer to comes from the shipped file, none is defined here.
    const referenced = [...users.values()].map((u) => u.permissions).filter((p): p is string => p !== undefined);
    expect(referenced.length).toBeGreaterThanOrEqual(5);
    for (const block of referenced) {
      expect(shippedPermissions).toMatch(new RegExp(`^${block} = \\{`, 'm'));
      expect(natsConf).not.toMatch(new RegExp(`^${block} =`, 'm'));
    }
  });

  it('gives nats-server every password its configuration reads', () => {
    const env = compose.services.nats!.environment ?? {};
    for (const { password } of users.values()) expect(Object.keys(env), password).toContain(password);
  });

  it.each([
    ['worker', 'worker', 'WORKER_PERMISSIONS', 3],
    ['coordinator', 'coordinator', 'COORDINATOR_PERMISSIONS', 2],
    ['sim sink', 'decisions', 'DECISIONS_PERMISSIONS', 1],
    ['status', 'operator', 'OPERATOR_PERMISSIONS', 1],
  ])('the %s services connect as %s (%s)', (role, user, permissions, count) => {
    const services = byRole(role);
    expect(services).toHaveLength(count);
    expect(users.get(user)?.permissions).toBe(permissions);
    const serverPassword = interpolated(compose.services.nats!.environment![users.get(user)!.password]!);
    for (const [name, s] of services) {
      expect(s.environment?.NATS_USER, name).toBe(user);
      expect(interpolated(s.environment?.NATS_PASSWORD ?? ''), name).toBe(serverPassword);
    }
  });

  it('the simulated agents publish as the three agents and nothing else', () => {
    const [[, agents]] = byRole('sim agents') as [[string, Service]];
    expect(agents.environment?.NATS_USER).toBe('simulated-agents');
    const block = /user: simulated-agents[\s\S]*?publish:\s*\{\s*allow:\s*\[([^\]]*)\]/.exec(natsConf)?.[1] ?? '';
    expect(block.split(',').map((s) => s.trim().replace(/"/g, ''))).toEqual(['signals.enriched.momentum', 'signals.enriched.risk', 'signals.enriched.correlation']);
  });

  it('workers and coordinators share CLUSTER_SECRET; only coordinators and the operator hold OPERATOR_TOKEN', () => {
    const cluster = [...byRole('worker'), ...byRole('coordinator')];
    const secrets = new Set(cluster.map(([, s]) => loadConfig(Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolated(v)]))).security.clusterSecrets.join()));
    expect(secrets.size).toBe(1);
    expect([...secrets][0]!.length).toBeGreaterThanOrEqual(16);
    for (const [name, s] of byRole('worker')) expect(s.environment, name).not.toHaveProperty('OPERATOR_TOKEN');
    const token = interpolated(byRole('status')[0]![1].environment!.OPERATOR_TOKEN!);
    for (const [name, s] of byRole('coordinator')) expect(interpolated(s.environment!.OPERATOR_TOKEN!), name).toBe(token);
    for (const [name, s] of [...byRole('sim'), ...byRole('status')]) expect(s.environment, name).not.toHaveProperty('CLUSTER_SECRET');
    // The operator's CLI starts only on demand.
    expect(byRole('status')[0]![1].profiles).toEqual(['tools']);
  });
});
