import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_VARIABLES, CONNECTION_VARIABLES, loadConfig } from '@at-orchestrator/contracts';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { HELM_VERSION, helm } from './helm-cli.js';
import { type K8sObject, unknownFields, validateObject } from './k8s-schemas.js';

const here = dirname(fileURLToPath(import.meta.url));
const chart = join(here, 'at-orchestrator');
const testValues = join(here, 'test-values');
const RELEASE = 'orch';
const NAMESPACE = 'trading';
const KUBE_VERSION = '1.30.0';
const MONITORING_API = 'monitoring.coreos.com/v1';

/** Variables that secrets carry; those the chart sets itself (pod identities, role, mounted files). */
const SECRET_VARIABLES = ['NATS_URL', 'REDIS_URL', 'REDLOCK_URLS'];
/** Node.js's own variables the chart sets (not the orchestrator's configuration): the worker's heap limit. */
const NODE_VARIABLES = ['NODE_OPTIONS'];
const CHART_VARIABLES = [
  'WORKER_ID',
  'COORDINATOR_ID',
  'COORDINATOR',
  'RULES_FILE',
  'ML_MODEL_FILE',
  // From redis.sentinels and redis.sentinelMaster (instead of redis.url), into the ConfigMap.
  'REDIS_SENTINELS',
  'REDIS_SENTINEL_MASTER',
  // From redis.clusterNodes (instead of redis.url), into the ConfigMap.
  'REDIS_CLUSTER_NODES',
  // From nats.auth, nats.tls, redis.auth, redis.tls and controlPlane: secret keys and mounted files.
  ...CONNECTION_VARIABLES,
  'CLUSTER_SECRET',
  'CLUSTER_SECRET_PREVIOUS',
  'OPERATOR_TOKEN',
];

interface Render {
  docs: K8sObject[];
  templates: Set<string>;
}

function template(valueFiles: readonly string[], extra: readonly string[] = []): Render {
  const args = ['template', RELEASE, chart, '--namespace', NAMESPACE, '--kube-version', KUBE_VERSION];
  for (const file of valueFiles) args.push('--values', join(testValues, file));
  const result = helm([...args, ...extra]);
  if (result.code !== 0) throw new Error(`helm template ${valueFiles.join(' ')} failed:\n${result.stderr}`);
  const docs = parseAllDocuments(result.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((d): d is K8sObject => d !== null);
  const templates = new Set([...result.stdout.matchAll(/^# Source: at-orchestrator\/(templates\/\S+)$/gm)].map((m) => m[1]!));
  return { docs, templates };
}

function find(docs: readonly K8sObject[], kind: string, nameSuffix = ''): K8sObject {
  const doc = docs.find((d) => d.kind === kind && d.metadata.name.endsWith(nameSuffix));
  if (doc === undefined) throw new Error(`no ${kind} named *${nameSuffix} among ${docs.map((d) => `${d.kind}/${d.metadata.name}`).join(', ')}`);
  return doc;
}

const kinds = (docs: readonly K8sObject[]) => docs.map((d) => d.kind);

// Loosely typed views of the rendered objects; the schemas have already checked their shape.
const podSpecOf = (doc: K8sObject): any => (doc.kind === 'Pod' ? (doc as any).spec : (doc as any).spec.template.spec);
const specOf = (doc: K8sObject): any => (doc as any).spec;
const dataOf = (doc: K8sObject): Record<string, string> => ((doc as any).data ?? (doc as any).stringData ?? {}) as Record<string, string>;

/** The value sets that must render: the chart's defaults, and each file in test-values/. */
const VALUE_SETS: Record<string, { files: string[]; apiVersions: string[] }> = {
  defaults: { files: [], apiVersions: [] },
  'defaults + prometheus-operator': { files: [], apiVersions: [MONITORING_API] },
  hpa: { files: ['hpa.yaml'], apiVersions: [] },
  keda: { files: ['keda.yaml'], apiVersions: ['keda.sh/v1alpha1'] },
  production: { files: ['production.yaml'], apiVersions: [MONITORING_API] },
  ml: { files: ['ml.yaml'], apiVersions: [] },
  'code defaults': { files: ['code-defaults.yaml'], apiVersions: [] },
  sentinel: { files: ['sentinel.yaml'], apiVersions: [] },
  'redis cluster': { files: ['redis-cluster.yaml'], apiVersions: [] },
};

const renders = new Map<string, Render>();
function rendered(name: string): Render {
  let r = renders.get(name);
  if (r === undefined) {
    const set = VALUE_SETS[name]!;
    r = template(set.files, set.apiVersions.flatMap((v) => ['--api-versions', v]));
    renders.set(name, r);
  }
  return r;
}

describe(`the helm binary`, () => {
  it(`is the pinned official release ${HELM_VERSION}`, () => {
    const result = helm(['version', '--short']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^${HELM_VERSION.replace(/\./g, '\\.')}\\+g[0-9a-f]+`));
  });
});

describe('helm lint --strict', () => {
  it.each(Object.entries(VALUE_SETS))('passes with %s', (_name, set) => {
    const result = helm(['lint', '--strict', chart, ...set.files.flatMap((f) => ['--values', join(testValues, f)])]);
    expect(result.stderr + result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(result.code).toBe(0);
  });
});

describe('every rendered document matches its schema', () => {
  it.each(Object.keys(VALUE_SETS))('%s', (name) => {
    const { docs } = rendered(name);
    expect(docs.length).toBeGreaterThan(5);
    const invalid: string[] = [];
    for (const doc of docs) {
      try {
        validateObject(doc);
      } catch (err) {
        invalid.push((err as Error).message);
      }
    }
    expect(invalid).toEqual([]);
  });

  it('and has no field its kind does not know (a typo the API server would drop or refuse)', () => {
    const docs = Object.keys(VALUE_SETS).flatMap((name) => rendered(name).docs.map((doc) => ({ label: `${name}: ${doc.kind}/${doc.metadata.name}`, doc })));
    expect(unknownFields(docs)).toEqual([]);
  }, 30_000);

  it('and every template file renders in at least one value set', () => {
    const seen = new Set(Object.keys(VALUE_SETS).flatMap((name) => [...rendered(name).templates]));
    const files = readdirSync(join(chart, 'templates'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.yaml'))
      .map((e) => relative(chart, join(e.parentPath, e.name)));
    expect(files.length).toBeGreaterThan(8);
    expect(files.filter((f) => !seen.has(f))).toEqual([]);
  });
});

describe('workers and coordinators', () => {
  it('defaults: 2 coordinators, 3 workers, no autoscaler', () => {
    const { docs } = rendered('defaults');
    expect(specOf(find(docs, 'Deployment', '-coordinator')).replicas).toBe(2);
    expect(specOf(find(docs, 'Deployment', '-worker')).replicas).toBe(3);
    expect(kinds(docs)).not.toContain('HorizontalPodAutoscaler');
    expect(kinds(docs)).not.toContain('ScaledObject');
  });

  it('each role runs its subcommand of the one image', () => {
    const { docs } = rendered('defaults');
    const coordinator = podSpecOf(find(docs, 'Deployment', '-coordinator')).containers[0];
    const worker = podSpecOf(find(docs, 'Deployment', '-worker')).containers[0];
    expect(coordinator.args).toEqual(['coordinator']);
    expect(worker.args).toEqual(['worker']);
    expect(coordinator.image).toBe(worker.image);
    expect(worker.image).toBe('at-orchestrator:0.1.0');
    expect(podSpecOf(find(rendered('production').docs, 'Deployment', '-worker')).containers[0].image).toBe(
      'registry.example.com/trading/at-orchestrator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    );
  });

  it('pods are spread across zones and nodes, per role', () => {
    const worker = podSpecOf(find(rendered('defaults').docs, 'Deployment', '-worker'));
    expect(worker.topologySpreadConstraints.map((c: { topologyKey: string }) => c.topologyKey)).toEqual([
      'topology.kubernetes.io/zone',
      'kubernetes.io/hostname',
    ]);
    for (const c of worker.topologySpreadConstraints) {
      expect(c.labelSelector.matchLabels['app.kubernetes.io/component']).toBe('worker');
    }
    expect(podSpecOf(find(rendered('ml').docs, 'Deployment', '-worker')).topologySpreadConstraints).toBeUndefined();
  });

  it('rollouts add a worker before removing one, and each role has a PodDisruptionBudget', () => {
    const { docs } = rendered('defaults');
    for (const role of ['-coordinator', '-worker']) {
      expect(specOf(find(docs, 'Deployment', role)).strategy.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    }
    expect(specOf(find(docs, 'PodDisruptionBudget', '-coordinator')).minAvailable).toBe(1);
    expect(specOf(find(docs, 'PodDisruptionBudget', '-worker')).maxUnavailable).toBe(1);
  });
});

describe('autoscaling', () => {
  it('HPA: autoscaling/v2 on CPU and both custom metrics, fast up and slow down; the worker Deployment has no replicas', () => {
    const { docs } = rendered('hpa');
    const worker = find(docs, 'Deployment', '-worker');
    expect(specOf(worker)).not.toHaveProperty('replicas');
    expect(specOf(find(docs, 'Deployment', '-coordinator')).replicas).toBe(2);
    const hpa = find(docs, 'HorizontalPodAutoscaler');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    const spec = specOf(hpa);
    expect(spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: worker.metadata.name });
    expect([spec.minReplicas, spec.maxReplicas]).toEqual([4, 20]);
    expect(spec.metrics.map((m: { type: string }) => m.type)).toEqual(['Resource', 'External', 'Pods']);
    expect(spec.metrics[1].external.metric.selector.matchLabels).toEqual({ stream_name: 'trading-events', consumer_name: 'orchestrator-consumer' });
    expect(spec.behavior.scaleUp.stabilizationWindowSeconds).toBe(0);
    expect(spec.behavior.scaleDown.stabilizationWindowSeconds).toBeGreaterThanOrEqual(300);
    expect(kinds(docs)).not.toContain('ScaledObject');
  });

  it('KEDA: a ScaledObject on the shared consumer lag plus market hours in New York, no HPA, no replicas', () => {
    const { docs } = rendered('keda');
    expect(kinds(docs)).not.toContain('HorizontalPodAutoscaler');
    const worker = find(docs, 'Deployment', '-worker');
    expect(specOf(worker)).not.toHaveProperty('replicas');
    const spec = specOf(find(docs, 'ScaledObject'));
    expect(spec.scaleTargetRef.name).toBe(worker.metadata.name);
    expect([spec.minReplicaCount, spec.maxReplicaCount]).toEqual([2, 30]);
    const byType = Object.fromEntries(spec.triggers.map((t: { type: string; metadata: unknown }) => [t.type, t.metadata]));
    expect(Object.keys(byType)).toEqual(['nats-jetstream', 'cron', 'cpu']);
    // The stream and consumer come from the same settings the workers read.
    expect(byType['nats-jetstream']).toMatchObject({ stream: 'signals-prod', consumer: 'orchestrator-prod', account: '$G', lagThreshold: '1000000' });
    expect(byType.cron).toEqual({ timezone: 'America/New_York', start: '25 9 * * 1-5', end: '5 16 * * 1-5', desiredReplicas: '6' });
    expect(spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies).toEqual([{ type: 'Pods', value: 1, periodSeconds: 120 }]);
  });

  it.each([
    ['25 9 * * 1-5', true],
    ['*/15 9-16 * * MON-FRI', true],
    ['0 9 ? * 1,2,3,4,5', true],
    ['25 9 * *', false],
    ['60 9 * * 1-5', false],
    ['25 24 * * 1-5', false],
    ['25 9 * * 1-5 2026', false],
    ['09:25', false],
  ])('cron start %j is accepted: %s', (cron, ok) => {
    const result = helm(['template', RELEASE, chart, '--set', 'keda.enabled=true', '--set-string', `keda.cron.start=${cron.replaceAll(',', '\\,')}`]);
    if (ok) expect(result.stderr).toBe('');
    else expect(result.stderr).toContain('keda.cron.start: Does not match pattern');
    expect(result.code === 0).toBe(ok);
  });
});

describe('ServiceMonitor', () => {
  it('is rendered only when the cluster serves monitoring.coreos.com/v1', () => {
    expect(kinds(rendered('defaults').docs)).not.toContain('ServiceMonitor');
    const monitor = find(rendered('defaults + prometheus-operator').docs, 'ServiceMonitor');
    expect(specOf(monitor).endpoints).toEqual([{ port: 'http', path: '/metrics', interval: '15s', scrapeTimeout: '10s' }]);
    // It selects both roles' Services.
    const services = rendered('defaults').docs.filter((d) => d.kind === 'Service');
    expect(services).toHaveLength(2);
    for (const service of services) expect(service.metadata.labels).toMatchObject(specOf(monitor).selector.matchLabels);
    expect(find(rendered('production').docs, 'ServiceMonitor').metadata.labels).toMatchObject({ release: 'kube-prometheus-stack' });
  });
});

describe('pods', () => {
  const allPods = () =>
    Object.keys(VALUE_SETS).flatMap((name) =>
      rendered(name)
        .docs.filter((d) => d.kind === 'Deployment' || d.kind === 'Pod')
        .map((d) => [`${name}: ${d.kind}/${d.metadata.name}`, podSpecOf(d)] as const),
    );

  it('run as non-root with a read-only root filesystem, no privilege escalation and no capabilities', () => {
    const pods = allPods();
    expect(pods.length).toBeGreaterThan(10);
    for (const [where, pod] of pods) {
      expect(pod.securityContext, where).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.securityContext.runAsUser, where).toBeGreaterThan(0);
      expect(pod.automountServiceAccountToken, where).toBe(false);
      for (const c of pod.containers) {
        expect(c.securityContext, where).toEqual({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          privileged: false,
          capabilities: { drop: ['ALL'] },
        });
        expect(c.volumeMounts, where).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
        expect(c.resources?.requests?.memory, where).toBeDefined();
        expect(c.resources?.limits?.memory, where).toBeDefined();
      }
    }
  });

  it('probe /health and /ready on the port the process listens on (HTTP_PORT)', () => {
    for (const [name, port] of [['defaults', 8080], ['production', 9090]] as const) {
      const { docs } = rendered(name);
      for (const role of ['-coordinator', '-worker']) {
        const c = podSpecOf(find(docs, 'Deployment', role)).containers[0];
        expect(c.ports).toEqual([{ name: 'http', containerPort: port, protocol: 'TCP' }]);
        expect(c.startupProbe.httpGet).toEqual({ path: '/health', port: 'http' });
        expect(c.livenessProbe.httpGet).toEqual({ path: '/health', port: 'http' });
        expect(c.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'http' });
        expect(specOf(find(docs, 'Service', role)).ports[0].port).toBe(port);
      }
    }
  });

  it('get longer to stop than preStop + the drain (SHUTDOWN_GRACE_SEC)', () => {
    for (const name of ['defaults', 'production']) {
      const { docs } = rendered(name);
      const grace = Number(dataOf(find(docs, 'ConfigMap')).SHUTDOWN_GRACE_SEC ?? loadConfig({}).shutdownGraceMs / 1000);
      for (const role of ['-coordinator', '-worker']) {
        const pod = podSpecOf(find(docs, 'Deployment', role));
        const preStop = pod.containers[0].lifecycle.preStop.exec.command;
        expect(preStop[0]).toBe('sleep');
        expect(pod.terminationGracePeriodSeconds, `${name} ${role}`).toBeGreaterThan(Number(preStop[1]) + grace);
      }
    }
  });

  it('roll when a setting changes', () => {
    const checksum = (r: Render): string => specOf(find(r.docs, 'Deployment', '-worker')).template.metadata.annotations['checksum/config'];
    const before = checksum(rendered('defaults'));
    const after = checksum(template([], ['--set', 'config.LOG_LEVEL=debug']));
    expect(before).toMatch(/^[0-9a-f]{64}$/);
    expect(after).not.toBe(before);
  });

  it('helm test runs `at-orchestrator status` with the release settings', () => {
    const { docs } = rendered('defaults');
    const pod = find(docs, 'Pod', '-status');
    expect(pod.metadata.annotations).toMatchObject({ 'helm.sh/hook': 'test' });
    const c = podSpecOf(pod).containers[0];
    expect(c.args).toEqual(['status']);
    expect(c.envFrom).toEqual(podSpecOf(find(docs, 'Deployment', '-coordinator')).containers[0].envFrom);
    expect(kinds(rendered('ml').docs)).not.toContain('Pod');
  });
});

describe('settings and secrets', () => {
  it('credentials go in a Secret, never in the ConfigMap', () => {
    const { docs } = rendered('defaults');
    const config = dataOf(find(docs, 'ConfigMap'));
    const secret = find(docs, 'Secret');
    for (const name of SECRET_VARIABLES) expect(config).not.toHaveProperty(name);
    expect(Object.keys(dataOf(secret)).sort()).toEqual(['NATS_URL', 'REDIS_URL']);
    expect(Object.keys(dataOf(find(rendered('ml').docs, 'Secret'))).sort()).toEqual(['NATS_URL', 'REDIS_URL', 'REDLOCK_URLS']);
    const envFrom = podSpecOf(find(docs, 'Deployment', '-worker')).containers[0].envFrom;
    expect(envFrom).toContainEqual({ secretRef: { name: secret.metadata.name } });
  });

  it('existingSecret: no Secret is rendered and the pods read the named one', () => {
    const { docs } = rendered('production');
    expect(kinds(docs)).not.toContain('Secret');
    for (const role of ['-coordinator', '-worker']) {
      expect(podSpecOf(find(docs, 'Deployment', role)).containers[0].envFrom).toContainEqual({ secretRef: { name: 'at-orchestrator-connections' } });
    }
  });

  it('the values schema refuses unknown keys at every level (maps of labels and the like hold strings only)', () => {
    const loose: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (typeof node !== 'object' || node === null) return;
      const n = node as Record<string, unknown>;
      if (n.type === 'object' && path !== '.global') {
        const ok = n.properties !== undefined ? n.additionalProperties === false : (n.additionalProperties as { type?: string } | undefined)?.type === 'string';
        if (!ok) loose.push(path || '(root)');
      }
      for (const [key, child] of Object.entries(n)) walk(child, key === 'properties' || key === 'items' ? path : `${path}.${key}`);
    };
    const schema = JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8')) as { properties: Record<string, unknown> };
    for (const [key, child] of Object.entries(schema.properties)) walk(child, `.${key}`);
    walk({ ...schema, properties: {} }, '');
    expect(loose).toEqual([]);
  });

  it('the values schema offers exactly the variables the code reads, less secrets and those the chart sets', () => {
    const schema = JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8')) as {
      properties: { config: { properties: Record<string, unknown>; additionalProperties: boolean } };
    };
    const offered = Object.keys(schema.properties.config.properties);
    expect([...offered, ...SECRET_VARIABLES, ...CHART_VARIABLES].sort()).toEqual([...CONFIG_VARIABLES].sort());
    expect(schema.properties.config.additionalProperties).toBe(false);
  });

  it.each(Object.keys(VALUE_SETS))('%s: every pod environment is a configuration the code accepts', (name) => {
    const { docs } = rendered(name);
    const configMap = dataOf(find(docs, 'ConfigMap'));
    const secrets = kinds(docs).includes('Secret')
      ? dataOf(find(docs, 'Secret'))
      : { NATS_URL: 'nats://nats:4222', REDIS_URL: 'redis://redis:6379' }; // what existingSecret holds
    for (const key of [...Object.keys(configMap), ...Object.keys(secrets)]) expect(CONFIG_VARIABLES).toContain(key);
    for (const workload of docs.filter((d) => d.kind === 'Deployment' || d.kind === 'Pod')) {
      const c = podSpecOf(workload).containers[0];
      const env: Record<string, string> = { ...configMap, ...secrets };
      for (const e of c.env as { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { key: string } } }[]) {
        expect([...CHART_VARIABLES, ...NODE_VARIABLES], `${workload.metadata.name} sets ${e.name}`).toContain(e.name);
        // A key of a Secret: a value as long as the code asks of a secret.
        const fromSecret = e.valueFrom?.secretKeyRef !== undefined ? `${e.valueFrom.secretKeyRef.key}-0123456789abcdef` : '';
        env[e.name] = e.value ?? (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name' ? `${workload.metadata.name}-7d9f8c6b5-x2x4q` : fromSecret);
      }
      expect(() => loadConfig(env), workload.metadata.name).not.toThrow();
    }
  });

  it('the production values reach the code as written', () => {
    const { docs } = rendered('production');
    const config = loadConfig({ ...dataOf(find(docs, 'ConfigMap')), NATS_URL: 'nats://n:4222', REDIS_URL: 'redis://r:6379' });
    expect(config).toMatchObject({
      profile: 'workflow',
      orchestratorType: 'workflow',
      enableWorkflowEngine: true,
      requiredAgents: ['momentum', 'risk', 'correlation'],
      minAgentsRequired: 2,
      decisionTimeoutMs: 2500,
      httpPort: 9090,
      partitions: 128,
      shutdownGraceMs: 15_000,
    });
  });

  it('whole numbers from a values file reach the code as integers, however large', () => {
    const { docs } = rendered('ml');
    expect(dataOf(find(docs, 'ConfigMap')).MAX_SIGNAL_BYTES).toBe('1048576');
    expect(loadConfig({ ...dataOf(find(docs, 'ConfigMap')), ...dataOf(find(docs, 'Secret')) }).maxSignalBytes).toBe(1_048_576);
  });

  describe('STREAM_REPLICAS', () => {
    const replicasOf = (r: Render): string | undefined => dataOf(find(r.docs, 'ConfigMap')).STREAM_REPLICAS;
    it.each([
      { name: 'one server in nats.url', args: ['--set', 'nats.url=nats://nats-0.nats:4222'], want: undefined },
      { name: 'several servers in nats.url', args: ['--set', 'nats.url=nats://nats-0.nats:4222\\,nats://nats-1.nats:4222\\,nats://nats-2.nats:4222'], want: '3' },
      { name: 'two servers in nats.url (seeds of a larger cluster)', args: ['--set', 'nats.url=nats://nats-0.nats:4222\\,nats://nats-1.nats:4222'], want: '3' },
      { name: 'several servers, config.STREAM_REPLICAS set', args: ['--set', 'nats.url=nats://a:4222\\,nats://b:4222', '--set', 'config.STREAM_REPLICAS=5'], want: '5' },
      { name: 'several servers, config.STREAM_REPLICAS=1 on purpose', args: ['--set', 'nats.url=nats://a:4222\\,nats://b:4222', '--set', 'config.STREAM_REPLICAS=1'], want: '1' },
      { name: 'existingSecret (the chart cannot read the URL)', args: ['--set', 'existingSecret=conn', '--set', 'nats.url=nats://a:4222\\,nats://b:4222'], want: undefined },
      { name: 'existingSecret and config.STREAM_REPLICAS', args: ['--set', 'existingSecret=conn', '--set', 'config.STREAM_REPLICAS=3'], want: '3' },
    ])('$name → $want', ({ args, want }) => {
      const r = template([], args);
      expect(replicasOf(r)).toBe(want);
      const config = loadConfig({ ...dataOf(find(r.docs, 'ConfigMap')), NATS_URL: 'nats://n:4222', REDIS_URL: 'redis://r:6379' });
      expect(config.nats.streamReplicas).toBe(Number(want ?? '1'));
    });

    it('the ml value set (two servers in nats.url) renders 3; production (existingSecret) leaves it to the code', () => {
      expect(replicasOf(rendered('ml'))).toBe('3');
      expect(replicasOf(rendered('production'))).toBeUndefined();
    });

    it.each(['0', '6', 'three'])('config.STREAM_REPLICAS=%s is refused by the schema', (value) => {
      const result = helm(['template', RELEASE, chart, '--set-string', `config.STREAM_REPLICAS=${value}`]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('config.STREAM_REPLICAS');
    });
  });

  describe('Redis behind Sentinel', () => {
    it('redis.sentinels and redis.sentinelMaster reach the code, no REDIS_URL anywhere', () => {
      const { docs } = rendered('sentinel');
      const configMap = dataOf(find(docs, 'ConfigMap'));
      expect(configMap).toMatchObject({
        REDIS_SENTINELS: 'redis-node-0.redis-headless.redis:26379,redis-node-1.redis-headless.redis:26379,redis-node-2.redis-headless.redis:26379',
        REDIS_SENTINEL_MASTER: 'mymaster',
        STREAM_REPLICAS: '3',
      });
      const secret = dataOf(find(docs, 'Secret', 'at-orchestrator'));
      expect(Object.keys(secret)).toEqual(['NATS_URL']);
      const config = loadConfig({ ...configMap, ...secret });
      expect(config.redis.url).toBeUndefined();
      expect(config.redis.sentinel).toEqual({
        sentinels: [0, 1, 2].map((i) => ({ host: `redis-node-${i}.redis-headless.redis`, port: 26379 })),
        masterName: 'mymaster',
        password: undefined,
      });
    });

    it('the Sentinels\' password comes from the redis.auth Secret (key sentinel-password, optional), for workers and coordinators only', () => {
      const { docs } = rendered('sentinel');
      for (const role of ['-worker', '-coordinator']) {
        const env = podSpecOf(find(docs, 'Deployment', role)).containers[0].env as Array<{ name: string; valueFrom?: unknown }>;
        expect(env.find((e) => e.name === 'REDIS_SENTINEL_PASSWORD')?.valueFrom).toEqual({ secretKeyRef: { name: 'orchestrator-redis-acl', key: 'sentinel-password', optional: true } });
      }
      const testPod = podSpecOf(find(docs, 'Pod')).containers[0].env as Array<{ name: string }>;
      expect(testPod.map((e) => e.name)).not.toContain('REDIS_SENTINEL_PASSWORD');
      // Without Sentinel, no such variable (the code would refuse it without REDIS_SENTINELS).
      const plain = podSpecOf(find(template([], ['--set', 'redis.auth.existingSecret=acl']).docs, 'Deployment', '-worker')).containers[0].env as Array<{ name: string }>;
      expect(plain.map((e) => e.name)).not.toContain('REDIS_SENTINEL_PASSWORD');
    });

    it("the NetworkPolicy opens the Sentinels' ports on the redis peer, each once", () => {
      const redisEgress = (r: Render): number[] => {
        const policy = specOf(find(r.docs, 'NetworkPolicy'));
        return (policy.egress as Array<{ to?: unknown; ports: Array<{ port: number }> }>)[2]!.ports.map((p) => p.port);
      };
      expect(redisEgress(rendered('defaults'))).toEqual([6379]);
      expect(redisEgress(rendered('sentinel'))).toEqual([6379, 26379]);
      expect(redisEgress(template(['sentinel.yaml'], ['--set', 'redis.sentinels=a:26379\\,b:26380\\,c:6379']))).toEqual([6379, 26379, 26380]);
    });

    it.each([
      [['--set', 'redis.sentinels=s0:26379', '--set', 'redis.sentinelMaster=m'], /redis\.url and redis\.sentinels are both set/],
      [['--set', 'redis.url=', '--set', 'redis.sentinels=s0:26379'], /redis\.sentinels needs redis\.sentinelMaster/],
      [['--set', 'redis.sentinelMaster=m'], /redis\.sentinelMaster needs redis\.sentinels/],
      [['--set', 'redis.url=', '--set', 'redis.sentinels=redis://s0:26379', '--set', 'redis.sentinelMaster=m'], /redis\.sentinels: Does not match pattern/],
      [['--set', 'redis.url='], /nats\.url and redis\.url are required .* \(redis\.sentinels with redis\.sentinelMaster, or redis\.clusterNodes, may stand for redis\.url\)/],
    ])('refuses %j', (args, message) => {
      const result = helm(['template', RELEASE, chart, ...args]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(message);
    });
  });

  describe('Redis Cluster', () => {
    it('redis.clusterNodes reaches the code, no REDIS_URL anywhere, no Sentinel password', () => {
      const { docs } = rendered('redis cluster');
      const configMap = dataOf(find(docs, 'ConfigMap'));
      expect(configMap).toMatchObject({
        REDIS_CLUSTER_NODES: 'redis-cluster-0.redis-cluster-headless.redis:6379,redis-cluster-1.redis-cluster-headless.redis:6379,redis-cluster-2.redis-cluster-headless.redis:6379',
      });
      expect(configMap).not.toHaveProperty('REDIS_SENTINELS');
      const secret = dataOf(find(docs, 'Secret', 'at-orchestrator'));
      expect(Object.keys(secret)).toEqual(['NATS_URL']);
      const config = loadConfig({ ...configMap, ...secret });
      expect(config.redis).toMatchObject({ url: undefined, sentinel: undefined, cluster: { nodes: [0, 1, 2].map((i) => ({ host: `redis-cluster-${i}.redis-cluster-headless.redis`, port: 6379 })) } });
      const env = podSpecOf(find(docs, 'Deployment', '-worker')).containers[0].env as Array<{ name: string }>;
      expect(env.map((e) => e.name)).toContain('REDIS_PASSWORD');
      expect(env.map((e) => e.name)).not.toContain('REDIS_SENTINEL_PASSWORD');
    });

    it("the NetworkPolicy opens the nodes' ports on the redis peer, each once", () => {
      const redisEgress = (r: Render): number[] => {
        const policy = specOf(find(r.docs, 'NetworkPolicy'));
        return (policy.egress as Array<{ to?: unknown; ports: Array<{ port: number }> }>)[2]!.ports.map((p) => p.port);
      };
      expect(redisEgress(rendered('redis cluster'))).toEqual([6379]);
      expect(redisEgress(template(['redis-cluster.yaml'], ['--set', 'redis.clusterNodes=a:7000\\,b:7001\\,c:6379']))).toEqual([6379, 7000, 7001]);
    });

    it.each([
      [['--set', 'redis.clusterNodes=r0:6379'], /redis\.url and redis\.clusterNodes are both set/],
      [['--set', 'redis.url=', '--set', 'redis.clusterNodes=r0:6379', '--set', 'redis.sentinels=s0:26379', '--set', 'redis.sentinelMaster=m'], /redis\.sentinels and redis\.clusterNodes are both set/],
      [['--set', 'redis.url=', '--set', 'redis.clusterNodes=redis://r0:6379'], /redis\.clusterNodes: Does not match pattern/],
    ])('refuses %j', (args, message) => {
      const result = helm(['template', RELEASE, chart, ...args]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(message);
    });
  });

  it("the chart assumes the code's defaults where it needs a setting", () => {
    const defaults = loadConfig({});
    const { docs } = rendered('code defaults');
    expect(dataOf(find(docs, 'ConfigMap'))).toEqual({});
    expect(podSpecOf(find(docs, 'Deployment', '-worker')).containers[0].ports[0].containerPort).toBe(defaults.httpPort);
    const keda = template(['code-defaults.yaml'], ['--set', 'keda.enabled=true']);
    const lag = specOf(find(keda.docs, 'ScaledObject')).triggers[0].metadata;
    expect([lag.stream, lag.consumer]).toEqual([defaults.nats.stream, defaults.nats.durable]);
    // The drain check uses the code's SHUTDOWN_GRACE_SEC: preStop 5 s + the drain is not enough, one more second is.
    const drainSec = defaults.shutdownGraceMs / 1000;
    const at = (grace: number) => helm(['template', RELEASE, chart, '--values', join(testValues, 'code-defaults.yaml'), '--set', `worker.terminationGracePeriodSeconds=${grace}`]);
    expect(at(5 + drainSec).code).not.toBe(0);
    expect(at(5 + drainSec + 1).code).toBe(0);
  });

  it('workers leave leadership to the coordinator Deployment unless embeddedCoordinator is set', () => {
    const env = (r: Render, role: string) =>
      Object.fromEntries(podSpecOf(find(r.docs, 'Deployment', role)).containers[0].env.map((e: { name: string; value?: string }) => [e.name, e.value]));
    expect(env(rendered('defaults'), '-worker').COORDINATOR).toBe('off');
    expect(env(rendered('defaults'), '-coordinator')).not.toHaveProperty('COORDINATOR');
    expect(env(template([], ['--set', 'worker.embeddedCoordinator=true']), '-worker').COORDINATOR).toBe('embedded');
    const config = loadConfig({ NATS_URL: 'nats://n:4222', REDIS_URL: 'redis://r:6379', COORDINATOR: env(rendered('defaults'), '-worker').COORDINATOR });
    expect(config.cluster.coordinator).toBe('off');
  });
});

describe('memory', () => {
  it("workers' V8 heap is limited below the pod's memory limit (NODE_OPTIONS from worker.heapLimitMiB), so garbage is collected before the limit", () => {
    const env = (r: Render) =>
      Object.fromEntries(podSpecOf(find(r.docs, 'Deployment', '-worker')).containers[0].env.map((e: { name: string; value?: string }) => [e.name, e.value]));
    expect(env(rendered('defaults')).NODE_OPTIONS).toBe('--max-old-space-size=384');
    expect(env(template([], ['--set', 'worker.heapLimitMiB=900'])).NODE_OPTIONS).toBe('--max-old-space-size=900');
    const limit = podSpecOf(find(rendered('defaults').docs, 'Deployment', '-worker')).containers[0].resources.limits.memory as string;
    expect(Number(/^(\d+)Mi$/.exec(limit)![1])).toBeGreaterThan(384 + 64);
    expect(() => template([], ['--set', 'worker.heapLimitMiB=10'])).toThrow(/heapLimitMiB/);
  });
});

describe('files and network', () => {
  it('the rules file and the ml model are mounted read-only where RULES_FILE and ML_MODEL_FILE point', () => {
    const production = podSpecOf(find(rendered('production').docs, 'Deployment', '-worker'));
    const rulesEnv = production.containers[0].env.find((e: { name: string }) => e.name === 'RULES_FILE');
    expect(rulesEnv.value).toBe('/etc/at-orchestrator/rules/rules.yaml');
    expect(production.containers[0].volumeMounts).toContainEqual({ name: 'rules', mountPath: '/etc/at-orchestrator/rules', readOnly: true });
    const rulesMap = find(rendered('production').docs, 'ConfigMap', '-rules');
    expect(parse(dataOf(rulesMap)['rules.yaml']!)).toMatchObject({ version: 1, default: { required_agents: ['momentum', 'risk'] } });
    expect(production.volumes).toContainEqual({
      name: 'rules',
      configMap: { name: rulesMap.metadata.name, items: [{ key: 'rules.yaml', path: 'rules.yaml' }] },
    });

    const ml = podSpecOf(find(rendered('ml').docs, 'Deployment', '-worker'));
    const env = Object.fromEntries(ml.containers[0].env.map((e: { name: string; value?: string }) => [e.name, e.value]));
    expect(env.ML_MODEL_FILE).toBe('/etc/at-orchestrator/model/model-2026-11.json');
    expect(ml.volumes).toContainEqual({ name: 'model', persistentVolumeClaim: { claimName: 'orchestrator-models', readOnly: true } });
    expect(ml.volumes).toContainEqual({ name: 'rules', configMap: { name: 'trading-rules', items: [{ key: 'rules.yaml', path: 'rules.yaml' }] } });
    // Coordinators need neither.
    const coordinator = podSpecOf(find(rendered('ml').docs, 'Deployment', '-coordinator'));
    expect(coordinator.volumes.map((v: { name: string }) => v.name)).toEqual(['tmp']);
  });

  it('NetworkPolicy: the HTTP port from the metrics scraper and the listed namespaces; out only DNS, NATS, Redis and the listed ports', () => {
    // On by default since production trust (docs/security.md); the selectors are tested in chart-security.test.ts.
    expect(kinds(rendered('defaults').docs)).toContain('NetworkPolicy');
    expect(kinds(template([], ['--set', 'networkPolicy.enabled=false']).docs)).not.toContain('NetworkPolicy');
    const spec = specOf(find(rendered('production').docs, 'NetworkPolicy'));
    expect(spec.ingress).toEqual([
      {
        from: [
          { podSelector: {} },
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
            podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
          },
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'trading-ops' } } },
        ],
        ports: [{ port: 'http', protocol: 'TCP' }],
      },
    ]);
    const egressPorts = spec.egress.flatMap((rule: { ports: { port: number; protocol: string }[] }) => rule.ports.map((p) => `${p.protocol}/${p.port}`));
    expect(egressPorts.sort()).toEqual(['TCP/26379', 'TCP/4222', 'TCP/53', 'TCP/6379', 'UDP/53']);
  });
});

describe('invalid values are refused with a message that names the problem', () => {
  const refuse = (file: string) => helm(['template', RELEASE, chart, '--values', join(testValues, 'invalid', file)]);
  const lint = (file: string) => helm(['lint', '--strict', chart, '--values', join(testValues, 'invalid', file)]);

  // values.schema.json: helm install, helm template and helm lint all refuse these.
  it.each([
    ['hpa-and-keda.yaml', /keda\.enabled: keda\.enabled does not match: false/],
    ['unknown-key.yaml', /worker: Additional property replicas is not allowed/],
    ['bad-cron.yaml', /keda\.cron\.start: Does not match pattern/],
    ['secret-in-config.yaml', /config: Additional property REDIS_URL is not allowed/],
    ['bad-setting.yaml', /config\.MIN_AGENTS_REQUIRED/],
    ['run-as-root.yaml', /podSecurityContext\.runAsNonRoot/],
  ])('%s (schema)', (file, message) => {
    const rendering = refuse(file);
    expect(rendering.stderr).toMatch(message);
    expect(rendering.code).not.toBe(0);
    const linting = lint(file);
    expect(linting.stdout + linting.stderr).toMatch(message);
    expect(linting.code).not.toBe(0);
  });

  // Template checks (`fail`): helm install and helm template refuse; helm lint only reports them,
  // because lint runs templates in a mode where `fail` is informational.
  it.each([
    ['short-grace.yaml', /worker\.terminationGracePeriodSeconds \(30\) must be greater than worker\.preStopSleepSeconds \(5\) \+ SHUTDOWN_GRACE_SEC \(30\)/],
    ['rules-without-source.yaml', /rules\.enabled needs rules\.inline or rules\.existingConfigMap/],
    ['no-connection.yaml', /nats\.url and redis\.url are required unless existingSecret names a Secret/],
  ])('%s (template check)', (file, message) => {
    const rendering = refuse(file);
    expect(rendering.stderr).toMatch(message);
    expect(rendering.code).not.toBe(0);
    expect(lint(file).stderr).toMatch(message);
  });

  it('every file in test-values/invalid is exercised above', () => {
    expect(readdirSync(join(testValues, 'invalid')).sort()).toEqual(
      [
        'bad-cron.yaml',
        'bad-setting.yaml',
        'hpa-and-keda.yaml',
        'no-connection.yaml',
        'rules-without-source.yaml',
        'run-as-root.yaml',
        'secret-in-config.yaml',
        'short-grace.yaml',
        'unknown-key.yaml',
      ],
    );
  });
});
