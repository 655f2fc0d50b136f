import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@at-orchestrator/contracts';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { helm } from './helm-cli.js';

/**
 * The chart's production-trust values: NATS and Redis credentials and TLS files from existing Secrets,
 * the control plane's keys (generated or existing), each given only to the roles that need them, and
 * the NetworkPolicy on by default with its selectors. Rendered by the real helm binary.
 */

const here = dirname(fileURLToPath(import.meta.url));
const chart = join(here, 'at-orchestrator');
const production = join(here, 'test-values', 'production.yaml');

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; fieldRef?: unknown };
}
interface Container {
  env: EnvVar[];
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface Volume {
  name: string;
  secret?: { secretName: string; items: { key: string; path: string }[] };
}
interface Doc {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
}

function render(...args: string[]): Doc[] {
  const result = helm(['template', 'orch', chart, '--namespace', 'trading', ...args]);
  if (result.code !== 0) throw new Error(`helm template failed:\n${result.stderr}`);
  return parseAllDocuments(result.stdout)
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null);
}

function refusal(...args: string[]): string {
  const result = helm(['template', 'orch', chart, ...args]);
  expect(result.code).not.toBe(0);
  return result.stderr;
}

/** The pod of a role: worker, coordinator, or operator (the helm test pod). */
function pod(docs: Doc[], role: 'worker' | 'coordinator' | 'operator'): { c: Container; volumes: Volume[] } {
  const doc =
    role === 'operator'
      ? docs.find((d) => d.kind === 'Pod' && d.metadata.name.endsWith('-status'))
      : docs.find((d) => d.kind === 'Deployment' && d.metadata.name.endsWith(`-${role}`));
  if (doc === undefined) throw new Error(`no ${role} pod`);
  const spec = doc.kind === 'Pod' ? doc.spec : doc.spec.template.spec;
  return { c: spec.containers[0] as Container, volumes: spec.volumes as Volume[] };
}

const envOf = (c: Container) => Object.fromEntries(c.env.map((e) => [e.name, e]));
const names = (c: Container) => c.env.map((e) => e.name);
const secretRef = (c: Container, name: string) => envOf(c)[name]?.valueFrom?.secretKeyRef;

/** Every NATS_*_FILE and REDIS_*_FILE variable points into a read-only mount whose Secret projects that very file. */
function filesAreMounted(p: { c: Container; volumes: Volume[] }): Record<string, string> {
  const files: Record<string, string> = {};
  for (const e of p.c.env.filter((x) => /^(NATS|REDIS)_\w+_FILE$/.test(x.name))) {
    const path = e.value!;
    const mount = p.c.volumeMounts.find((m) => path.startsWith(`${m.mountPath}/`));
    expect(mount, `${e.name}=${path}`).toMatchObject({ readOnly: true });
    const volume = p.volumes.find((v) => v.name === mount!.name)!;
    expect(volume.secret?.items.map((i) => i.path), e.name).toContain(path.slice(mount!.mountPath.length + 1));
    files[e.name] = `${volume.secret!.secretName}:${path.slice(mount!.mountPath.length + 1)}`;
  }
  return files;
}

describe('control plane keys (CLUSTER_SECRET, OPERATOR_TOKEN)', () => {
  it('are generated into a Secret the chart keeps when none is given, and each role gets only what it needs', () => {
    const docs = render();
    const control = docs.find((d) => d.kind === 'Secret' && d.metadata.name === 'orch-at-orchestrator-control')!;
    expect(control.metadata.annotations).toMatchObject({ 'helm.sh/resource-policy': 'keep' });
    for (const key of ['CLUSTER_SECRET', 'OPERATOR_TOKEN']) {
      expect(Buffer.from(control.data![key]!, 'base64').toString()).toMatch(/^[A-Za-z0-9]{48}$/);
    }
    expect(control.data!.CLUSTER_SECRET).not.toBe(control.data!.OPERATOR_TOKEN);

    const worker = pod(docs, 'worker').c;
    const coordinator = pod(docs, 'coordinator').c;
    const operator = pod(docs, 'operator').c;
    expect(secretRef(worker, 'CLUSTER_SECRET')).toEqual({ name: control.metadata.name, key: 'CLUSTER_SECRET' });
    expect(secretRef(worker, 'CLUSTER_SECRET_PREVIOUS')).toEqual({ name: control.metadata.name, key: 'CLUSTER_SECRET_PREVIOUS', optional: true });
    expect(names(worker)).not.toContain('OPERATOR_TOKEN');
    expect(names(coordinator)).toEqual(expect.arrayContaining(['CLUSTER_SECRET', 'CLUSTER_SECRET_PREVIOUS', 'OPERATOR_TOKEN']));
    // The operator signs its requests and can forge no control message.
    expect(secretRef(operator, 'OPERATOR_TOKEN')).toEqual({ name: control.metadata.name, key: 'OPERATOR_TOKEN' });
    expect(names(operator)).not.toContain('CLUSTER_SECRET');
    // A worker that also runs a coordinator candidate answers operators too.
    expect(names(pod(render('--set', 'worker.embeddedCoordinator=true'), 'worker').c)).toContain('OPERATOR_TOKEN');
  });

  it('come from controlPlane.existingSecret when it is set, and then the chart makes no Secret for them', () => {
    const docs = render('--values', production);
    expect(docs.filter((d) => d.kind === 'Secret')).toEqual([]);
    for (const role of ['worker', 'coordinator'] as const) {
      expect(secretRef(pod(docs, role).c, 'CLUSTER_SECRET')).toEqual({ name: 'at-orchestrator-control', key: 'CLUSTER_SECRET' });
    }
    expect(secretRef(pod(docs, 'operator').c, 'OPERATOR_TOKEN')).toEqual({ name: 'at-orchestrator-control', key: 'OPERATOR_TOKEN' });
  });
});

describe('NATS and Redis credentials and TLS from existing Secrets', () => {
  it('production: each role mounts only its own .creds, the CA and client certificates of NATS and Redis; the variables point at them', () => {
    const docs = render('--values', production);
    expect(filesAreMounted(pod(docs, 'worker'))).toEqual({
      NATS_CREDS_FILE: 'at-orchestrator-nats-creds:worker.creds',
      NATS_TLS_CA_FILE: 'at-orchestrator-nats-tls:ca.crt',
      NATS_TLS_CERT_FILE: 'at-orchestrator-nats-tls:tls.crt',
      NATS_TLS_KEY_FILE: 'at-orchestrator-nats-tls:tls.key',
      REDIS_TLS_CA_FILE: 'at-orchestrator-redis-tls:ca.crt',
      REDIS_TLS_CERT_FILE: 'at-orchestrator-redis-tls:tls.crt',
      REDIS_TLS_KEY_FILE: 'at-orchestrator-redis-tls:tls.key',
    });
    expect(filesAreMounted(pod(docs, 'coordinator')).NATS_CREDS_FILE).toBe('at-orchestrator-nats-creds:coordinator.creds');
    // The helm test pod talks to the leader over NATS only: its own credential, no Redis.
    expect(filesAreMounted(pod(docs, 'operator'))).toEqual({
      NATS_CREDS_FILE: 'at-orchestrator-nats-creds:operator.creds',
      NATS_TLS_CA_FILE: 'at-orchestrator-nats-tls:ca.crt',
      NATS_TLS_CERT_FILE: 'at-orchestrator-nats-tls:tls.crt',
      NATS_TLS_KEY_FILE: 'at-orchestrator-nats-tls:tls.key',
    });
    const worker = pod(docs, 'worker').c;
    expect(envOf(worker).NATS_TLS_REQUIRED?.value).toBe('true');
    expect(secretRef(worker, 'REDIS_USERNAME')).toEqual({ name: 'at-orchestrator-redis-acl', key: 'username', optional: true });
    expect(secretRef(worker, 'REDIS_PASSWORD')).toEqual({ name: 'at-orchestrator-redis-acl', key: 'password' });
    expect(names(pod(docs, 'operator').c).filter((n) => n.startsWith('REDIS_'))).toEqual([]);
    // What the code makes of it.
    const env = Object.fromEntries(worker.env.map((e) => [e.name, e.value ?? `${e.valueFrom?.secretKeyRef?.key ?? 'pod'}-0123456789abcdef`]));
    const config = loadConfig({ ...env, NATS_URL: 'tls://nats:4222', REDIS_URL: 'rediss://redis:6380' });
    expect(config.nats.auth.tls.required).toBe(true);
    expect(config.security.clusterSecrets).toHaveLength(2);
  });

  it.each([
    ['password', { NATS_USER: 'worker-user', NATS_PASSWORD: 'worker-password' }],
    ['token', { NATS_TOKEN: 'token' }],
  ])('nats.auth.method=%s: the role reads its keys of the Secret', (method, keys) => {
    const docs = render('--set', `nats.auth.method=${method}`, '--set', 'nats.auth.existingSecret=nats-users');
    const worker = pod(docs, 'worker').c;
    for (const [variable, key] of Object.entries(keys)) expect(secretRef(worker, variable)).toEqual({ name: 'nats-users', key });
    if (method === 'password') expect(secretRef(pod(docs, 'operator').c, 'NATS_USER')).toEqual({ name: 'nats-users', key: 'operator-user' });
    expect(names(worker).filter((n) => n.endsWith('_FILE'))).toEqual([]);
  });

  it('nats.auth.method=nkey: the role mounts its seed', () => {
    const docs = render('--set', 'nats.auth.method=nkey', '--set', 'nats.auth.existingSecret=nats-nkeys');
    expect(filesAreMounted(pod(docs, 'coordinator'))).toEqual({ NATS_NKEY_SEED_FILE: 'nats-nkeys:coordinator.nk' });
  });

  it('by default nothing is mounted and no credential variable is set besides the control plane keys', () => {
    const docs = render();
    const worker = pod(docs, 'worker');
    expect(worker.volumes.map((v) => v.name)).toEqual(['tmp']);
    expect(names(worker.c).filter((n) => /^(NATS|REDIS)_/.test(n))).toEqual([]);
  });
});

describe('NetworkPolicy', () => {
  it('is on by default: ingress from the metrics scraper, egress only to the NATS and Redis selectors on their ports (and DNS)', () => {
    const policy = render().find((d) => d.kind === 'NetworkPolicy')!;
    expect(policy.spec.ingress[0].from).toContainEqual({
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
    });
    const [dns, nats, redis, ...more] = policy.spec.egress;
    expect(dns.to).toBeUndefined();
    expect(dns.ports.map((p: { port: number }) => p.port)).toEqual([53, 53]);
    expect(nats).toEqual({
      to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'nats' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'nats' } } }],
      ports: [{ port: 4222, protocol: 'TCP' }],
    });
    expect(redis.to).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'redis' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis' } } }]);
    expect(more).toEqual([]);
  });

  it('takes the selectors from the values (a peer with only a podSelector stays in the namespace)', () => {
    const policy = render(
      '--set', 'networkPolicy.redis.namespaceSelector=null',
      '--set', 'networkPolicy.redis.podSelector.matchLabels.app=cache',
      '--set', 'networkPolicy.redis.ports={6380}',
      '--set', 'networkPolicy.nats.namespaceSelector.matchLabels.team=messaging',
    ).find((d) => d.kind === 'NetworkPolicy')!;
    expect(policy.spec.egress[2]).toEqual({
      to: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis', app: 'cache' } } }],
      ports: [{ port: 6380, protocol: 'TCP' }],
    });
    expect(policy.spec.egress[1].to[0].namespaceSelector.matchLabels).toEqual({ 'kubernetes.io/metadata.name': 'nats', team: 'messaging' });
  });
});

describe('bad values are refused with a message naming them', () => {
  it.each([
    [['--set', 'nats.auth.method=creds'], /nats\.auth\.method=creds needs nats\.auth\.existingSecret/],
    [['--set', 'nats.auth.method=kerberos', '--set', 'nats.auth.existingSecret=s'], /nats\.auth\.method: nats\.auth\.method must be one of/],
    [['--set', 'nats.tls.clientCertificate=true'], /nats\.tls\.clientCertificate needs nats\.tls\.existingSecret/],
    [['--set', 'redis.tls.clientCertificate=true'], /redis\.tls\.clientCertificate needs redis\.tls\.existingSecret/],
    [['--set', 'networkPolicy.nats.namespaceSelector=null', '--set', 'networkPolicy.nats.podSelector=null'], /networkPolicy\.nats needs a namespaceSelector or a podSelector/],
    [['--set', 'networkPolicy.metricsScraper.namespaceSelector=null', '--set', 'networkPolicy.metricsScraper.podSelector=null'], /networkPolicy\.metricsScraper needs/],
    [['--set', 'networkPolicy.redis.ports=null'], /networkPolicy\.redis: ports is required/],
    [['--set', 'networkPolicy.nats.podSelector.app=nats'], /networkPolicy\.nats\.podSelector: Additional property app is not allowed/],
    [['--set', 'controlPlane.secret=abc'], /controlPlane: Additional property secret is not allowed/],
  ])('%j', (args, message) => {
    expect(refusal(...args)).toMatch(message);
  });

  it('a NetworkPolicy turned off needs no selectors', () => {
    const docs = render('--set', 'networkPolicy.enabled=false', '--set', 'networkPolicy.nats.namespaceSelector=null', '--set', 'networkPolicy.nats.podSelector=null');
    expect(docs.map((d) => d.kind)).not.toContain('NetworkPolicy');
  });
});
