import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { REALISTIC_MIX, SimulatedAgents } from '@at-orchestrator/sim';
import { freePort } from '@at-orchestrator/local-servers';
import { signalSubject } from '@at-orchestrator/contracts';
import { helm } from '../deploy/helm/helm-cli.js';
import { ClusterHarness } from './helpers/cluster.js';
import { PrometheusServer, groupings, vectorSelectors, type VectorSelector } from './helpers/prometheus.js';
import { CliProcess, DecisionLog, Stack } from './helpers/stack.js';

// The dashboard and the alerts query series that exist. A real cluster (2 coordinators, 2 workers,
// then a third worker: a handoff) decides simulated traffic and dead-letters a malformed signal, while
// a real Prometheus scrapes every process's /metrics each second. Then every vector selector of every
// dashboard query and of every alert as `helm template` renders it — found with Prometheus' own PromQL
// grammar — must match at least one series Prometheus stored during the run.
//
// Prometheus labels the targets as the chart's ServiceMonitor would (prometheus-operator): job = the
// coordinator's or the worker's Service, namespace = the release's; the alerts select on both.

const CHART = new URL('../deploy/helm/at-orchestrator', import.meta.url).pathname;
const DASHBOARD = new URL('../deploy/helm/at-orchestrator/dashboards/at-orchestrator.json', import.meta.url).pathname;
const RELEASE = 'orch';
const NAMESPACE = 'trading';
/** Grafana's variables in the dashboard's queries, as Grafana would fill them in ($namespace: All). */
const GRAFANA_VARIABLES: Record<string, string> = { $__rate_interval: '1m', $__interval: '1m', $__range: '1h', $namespace: '.*' };

interface RenderedChart {
  alerts: { alert: string; expr: string }[];
  services: { coordinator: string; worker: string };
}

function renderChart(): RenderedChart {
  const result = helm(['template', RELEASE, CHART, '--namespace', NAMESPACE, '--kube-version', '1.30.0', '--api-versions', 'monitoring.coreos.com/v1']);
  if (result.code !== 0) throw new Error(`helm template failed:\n${result.stderr}`);
  const docs = parseAllDocuments(result.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string; labels: Record<string, string> }; spec: unknown });
  const rule = docs.find((d) => d.kind === 'PrometheusRule');
  if (rule === undefined) throw new Error('the chart rendered no PrometheusRule');
  const alerts = (rule.spec as { groups: { rules: { alert?: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules).filter((r): r is { alert: string; expr: string } => r.alert !== undefined);
  const service = (component: string) => {
    const s = docs.find((d) => d.kind === 'Service' && d.metadata.labels['app.kubernetes.io/component'] === component);
    if (s === undefined) throw new Error(`the chart rendered no ${component} Service`);
    return s.metadata.name;
  };
  return { alerts, services: { coordinator: service('coordinator'), worker: service('worker') } };
}

/** Every PromQL query of the dashboard: the panels' targets, and the selectors in its variables' label_values(). */
function dashboardQueries(): { where: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels: { title: string; targets?: { refId: string; expr: string }[] }[];
    templating: { list: { name: string; type: string; query: unknown }[] };
  };
  const fill = (expr: string) => Object.entries(GRAFANA_VARIABLES).reduce((e, [name, value]) => e.replaceAll(name, value), expr);
  const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: fill(t.expr) })));
  for (const v of dashboard.templating.list.filter((v) => v.type === 'query')) {
    const text = typeof v.query === 'string' ? v.query : (v.query as { query: string }).query;
    const inner = /^label_values\((.+),\s*\w+\)$/.exec(text)?.[1];
    if (inner === undefined) throw new Error(`variable ${v.name}: not a label_values(selector, label) query: ${text}`);
    queries.push({ where: `variable $${v.name}`, expr: fill(inner) });
  }
  return queries;
}

let stack: Stack;
let cluster: ClusterHarness;
let prometheus: PrometheusServer | undefined;

beforeAll(async () => {
  stack = await Stack.start();
});
afterAll(async () => {
  await prometheus?.stop();
  await cluster?.stopAll();
  await stack?.stop();
});

describe('observability against a live Prometheus', () => {
  it('every selector of the dashboard and of the rendered alerts matches series a running cluster exports', async () => {
    const chart = renderChart();
    const queries = [...dashboardQueries(), ...chart.alerts.map((a) => ({ where: `alert ${a.alert}`, expr: a.expr }))];
    expect(queries.filter((q) => /\bor\s+vector\s*\(/.test(q.expr)).map((q) => q.where)).toEqual([]);

    // Every process on an HTTP port chosen here, so that Prometheus knows its targets before they start.
    cluster = new ClusterHarness(stack, { DECISION_TIMEOUT_SEC: '2' });
    const ports = new Map<string, number>();
    for (const id of ['coord-a', 'coord-b', 'w1', 'w2', 'w3']) ports.set(id, await freePort());
    const targets = (ids: string[]) => ids.map((id) => `127.0.0.1:${ports.get(id)}`);
    const runStart = Date.now() / 1000;
    prometheus = await PrometheusServer.start([
      { job: chart.services.coordinator, targets: targets(['coord-a', 'coord-b']), labels: { namespace: NAMESPACE } },
      { job: chart.services.worker, targets: targets(['w1', 'w2', 'w3']), labels: { namespace: NAMESPACE } },
    ]);
    const startCoordinator = async (id: string) => {
      const env = cluster.env({ COORDINATOR_ID: id, HTTP_PORT: String(ports.get(id)) });
      cluster.coordinators.set(id, await CliProcess.started(env, 30_000, ['coordinator'], /"msg":"coordinator started"/));
    };
    const startWorker = async (id: string) => {
      cluster.workers.set(id, await CliProcess.started(cluster.env({ WORKER_ID: id, HTTP_PORT: String(ports.get(id)) })));
    };
    await startCoordinator('coord-a');
    await startCoordinator('coord-b');
    await Promise.all(['w1', 'w2'].map(startWorker));
    await cluster.waitForBalance(['w1', 'w2']);

    // Traffic with every outcome (trade, no trade, timeouts at the 2 s deadline, late signals), a third
    // worker joining half-way (graceful handoffs), and a message that is not JSON (a dead letter).
    const decisions = new DecisionLog(stack.js, 'obs-');
    await decisions.start();
    const agents = new SimulatedAgents(stack.nc);
    const count = 1_500;
    const done = agents.run({ rate: 300, count, seed: 14, prefix: 'obs', mix: { ...REALISTIC_MIX, missingRisk: 0.05, garbage: 0 } });
    await decisions.waitFor(300);
    await startWorker('w3');
    await stack.js.publish(signalSubject('momentum'), new TextEncoder().encode('{not json'));
    await cluster.waitForBalance(['w1', 'w2', 'w3']);
    await done;
    expect(agents.published).toBe(count);
    await decisions.waitFor(count);
    decisions.stop();
    expect(decisions.duplicates()).toEqual([]);

    // Prometheus has scraped every process since then, the dead letter and a graceful handoff included.
    const settledAt = Date.now();
    await vi.waitFor(
      async () => {
        const active = await prometheus!.targets();
        const late = active.filter((t) => t.health !== 'up' || Date.parse(t.lastScrape) < settledAt);
        if (active.length !== 5 || late.length > 0) throw new Error(`targets not all scraped since the run: ${JSON.stringify(active.map((t) => [t.scrapeUrl, t.health, t.lastScrape, t.lastError]))}`);
        const letters = await prometheus!.query('sum(orchestrator_dlq_total{reason="not_json"})');
        if (Number(letters[0]?.value[1] ?? 0) < 1) throw new Error('the dead letter is not scraped yet');
        const graceful = await prometheus!.query('sum(orchestrator_handoffs_total{outcome="graceful"})');
        if (Number(graceful[0]?.value[1] ?? 0) < 1) throw new Error('no graceful handoff scraped yet');
      },
      { timeout: 30_000, interval: 250 },
    );

    const selectors = new Map<string, { selector: VectorSelector; where: string[] }>();
    for (const q of queries) {
      for (const s of vectorSelectors(q.expr)) {
        const entry = selectors.get(s.selector) ?? { selector: s, where: [] };
        entry.where.push(q.where);
        selectors.set(s.selector, entry);
      }
    }
    const empty: string[] = [];
    for (const [text, { where }] of selectors) {
      const series = await prometheus.series(text, runStart - 60);
      if (series.length === 0) empty.push(`${text}  (${[...new Set(where)].join('; ')})`);
    }
    const metrics = new Set([...selectors.values()].map((s) => s.selector.metric));
    console.log(
      `[observability] ${selectors.size} distinct selectors (${metrics.size} metrics) from ${queries.length} queries ` +
        `(${queries.length - chart.alerts.length} dashboard, ${chart.alerts.length} alerts) checked against a live Prometheus: ${selectors.size - empty.length} match`,
    );
    expect(empty).toEqual([]);
    expect(selectors.size).toBeGreaterThan(20);

    // The dashboard's legends name what its queries group by: the series carry those labels
    // (exported_instance: the process's own `instance` label, WORKER_ID or COORDINATOR_ID, which the
    // target's `instance` label shadows).
    const unlabelled: string[] = [];
    let groupingsChecked = 0;
    for (const q of queries.filter((q) => q.where.startsWith('panel '))) {
      for (const g of groupings(q.expr)) {
        for (const selector of g.selectors) {
          const series = await prometheus.series(selector, runStart - 60);
          for (const label of g.labels) {
            groupingsChecked += 1;
            if (!series.some((s) => s[label] !== undefined && s[label] !== '')) unlabelled.push(`${q.where}: ${selector} has no series with ${label}`);
          }
        }
      }
    }
    console.log(`[observability] ${groupingsChecked} dashboard groupings (by label) checked: ${groupingsChecked - unlabelled.length} labels present`);
    expect(unlabelled).toEqual([]);
    const workerIds = (await prometheus.series('orchestrator_degraded', runStart - 60)).map((s) => s.exported_instance).sort();
    expect(workerIds).toEqual(['w1', 'w2', 'w3']);
    // Every metric the dashboard or the alerts use is one of the orchestrator's.
    expect([...metrics].filter((m) => m === undefined || !m.startsWith('orchestrator_'))).toEqual([]);
  });
});
