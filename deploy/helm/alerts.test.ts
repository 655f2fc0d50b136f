import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { helm } from './helm-cli.js';
import type { K8sObject } from './k8s-schemas.js';

// The chart's PrometheusRule checked by Prometheus' own promtool (Debian's prometheus package, as
// scripts/lib.sh installs it): `check rules` on the rules as `helm template` renders them, and
// `test rules` on deploy/prometheus/alerts.test.yaml, which must test every alert. And the Grafana
// dashboard: valid, and shipped by the chart byte for byte.

const here = dirname(fileURLToPath(import.meta.url));
const chart = join(here, 'at-orchestrator');
const deploy = join(here, '..');
const repo = join(deploy, '..');
const DASHBOARD_FILE = join(chart, 'dashboards', 'at-orchestrator.json');
const UNIT_TESTS_FILE = join(deploy, 'prometheus', 'alerts.test.yaml');
/** The name alerts.test.yaml's rule_files gives the rendered rules (beside it). */
const RULES_FILE_NAME = 'at-orchestrator.rules.yaml';
const RELEASE = 'orch';
const NAMESPACE = 'trading';
const MONITORING_API = 'monitoring.coreos.com/v1';

interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleSpec {
  groups: { name: string; rules: AlertRule[] }[];
}
interface UnitTests {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: { eval_time: string; alertname: string; exp_alerts: unknown[] }[] }[];
}

function render(extra: readonly string[] = []): K8sObject[] {
  const result = helm(['template', RELEASE, chart, '--namespace', NAMESPACE, '--kube-version', '1.30.0', ...extra]);
  if (result.code !== 0) throw new Error(`helm template failed:\n${result.stderr}`);
  return parseAllDocuments(result.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((d): d is K8sObject => d !== null);
}

const kindOf = (docs: readonly K8sObject[], kind: string, suffix = '') => docs.filter((d) => d.kind === kind && d.metadata.name.endsWith(suffix));
const ruleSpecOf = (docs: readonly K8sObject[]): RuleSpec => {
  const [rule, ...more] = kindOf(docs, 'PrometheusRule');
  if (rule === undefined || more.length > 0) throw new Error(`expected one PrometheusRule, found ${1 + more.length - (rule === undefined ? 1 : 0)}`);
  return (rule as unknown as { spec: RuleSpec }).spec;
};
const alertsOf = (spec: RuleSpec): AlertRule[] => spec.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);

function promtool(args: readonly string[], cwd: string): { code: number; output: string } {
  const result = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (result.error) throw new Error(`promtool could not run (Debian package prometheus; scripts/lib.sh ensure_test_tools): ${result.error.message}`);
  return { code: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}

const work = mkdtempSync(join(tmpdir(), 'alerts-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const withOperator = render(['--api-versions', MONITORING_API]);
const spec = ruleSpecOf(withOperator);
const alerts = alertsOf(spec);
const unitTestsText = readFileSync(UNIT_TESTS_FILE, 'utf8');
const unitTests = parse(unitTestsText) as UnitTests;

/** Writes the rendered rules and a copy of the unit tests side by side in a directory of its own. */
function workDir(name: string, rules: RuleSpec, tests: string): string {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, RULES_FILE_NAME), stringify(rules));
  writeFileSync(join(dir, 'alerts.test.yaml'), tests);
  return dir;
}

describe('the PrometheusRule', () => {
  it('is rendered only when the cluster serves monitoring.coreos.com/v1 and metrics.prometheusRule.enabled', () => {
    expect(kindOf(render(), 'PrometheusRule')).toEqual([]);
    expect(kindOf(render(['--api-versions', MONITORING_API, '--set', 'metrics.prometheusRule.enabled=false']), 'PrometheusRule')).toEqual([]);
    const labelled = render(['--api-versions', MONITORING_API, '--set', 'metrics.prometheusRule.labels.release=kube-prometheus-stack']);
    expect(kindOf(labelled, 'PrometheusRule')[0]!.metadata.labels).toMatchObject({ release: 'kube-prometheus-stack', 'app.kubernetes.io/instance': RELEASE });
  });

  it('has the alerts the runbook describes, each with a severity, a summary, a description and a runbook section that exists', () => {
    expect(alerts.map((a) => a.alert)).toEqual([
      'OrchestratorNoLeader',
      'OrchestratorPartitionsUnowned',
      'OrchestratorFencedWrites',
      'OrchestratorDeadLetters',
      'OrchestratorBacklogGrowing',
      'OrchestratorDecisionLatencyHigh',
      'OrchestratorRedisDegraded',
      'OrchestratorDecisionUnpublished',
    ]);
    // GitHub's anchors of docs/observability.md's headings.
    const docs = readFileSync(join(repo, 'docs', 'observability.md'), 'utf8');
    const anchors = new Set([...docs.matchAll(/^#+ (.+)$/gm)].map((m) => m[1]!.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')));
    for (const a of alerts) {
      expect(a.labels?.severity, a.alert).toMatch(/^(critical|warning)$/);
      expect(a.annotations?.summary, a.alert).toBeTruthy();
      expect(a.annotations?.description, a.alert).toBeTruthy();
      const runbook = a.annotations?.runbook_url ?? '';
      expect(runbook, a.alert).toBe(`docs/observability.md#${a.alert!.toLowerCase()}`);
      expect([...anchors], `docs/observability.md has no section for ${a.alert}`).toContain(runbook.split('#')[1]);
    }
  });

  it('pads no expression with `or vector(…)`, and selects only this release (namespace, its Services as jobs)', () => {
    const scope = `namespace="${NAMESPACE}", job=~"${RELEASE}-at-orchestrator-coordinator|${RELEASE}-at-orchestrator-worker"`;
    for (const a of alerts) {
      expect(a.expr, a.alert).not.toMatch(/\bor\s+vector\s*\(/);
      const selectors = [...a.expr.matchAll(/orchestrator_\w+\{([^}]*)\}/g)];
      expect(selectors.length, a.alert).toBeGreaterThan(0);
      for (const [, matchers] of selectors) expect(matchers, a.alert).toContain(scope);
    }
  });

  it('takes its thresholds and durations from the values', () => {
    // A values file, as numbers with a fraction arrive from one (helm 3.8's --set makes "2.5" a string).
    const values = join(work, 'alert-values.yaml');
    writeFileSync(
      values,
      stringify({
        metrics: {
          prometheusRule: {
            alerts: {
              decisionLatency: { seconds: 2.5, window: '2m' },
              backlogGrowing: { floor: 2_000_000 },
              noLeader: { for: '30s' },
              redisDegraded: { severity: 'warning' },
            },
          },
        },
      }),
    );
    const custom = alertsOf(ruleSpecOf(render(['--api-versions', MONITORING_API, '--values', values])));
    const byName = (name: string) => custom.find((a) => a.alert === name)!;
    expect(byName('OrchestratorDecisionLatencyHigh').expr).toMatch(/\[2m\]\)\)\) > 2\.5$/);
    expect(byName('OrchestratorBacklogGrowing').expr).toContain('} > 2000000\n');
    expect(byName('OrchestratorNoLeader').for).toBe('30s');
    expect(byName('OrchestratorRedisDegraded').labels).toEqual({ severity: 'warning' });
    const refused = helm(['template', RELEASE, chart, '--set', 'metrics.prometheusRule.alerts.fencedWrites.window=0']);
    expect(refused.stderr).toContain('metrics.prometheusRule.alerts.fencedWrites.window');
    expect(refused.code).not.toBe(0);
  });

  it('promtool check rules: the rendered rules are valid', () => {
    const dir = workDir('check', spec, unitTestsText);
    const result = promtool(['check', 'rules', RULES_FILE_NAME], dir);
    expect(result.output).toContain(`SUCCESS: ${spec.groups.flatMap((g) => g.rules).length} rules found`);
    expect(result.code).toBe(0);
  });

  it('promtool test rules: deploy/prometheus/alerts.test.yaml passes against the rendered rules', () => {
    expect(unitTests.rule_files).toEqual([RULES_FILE_NAME]);
    const dir = workDir('test', spec, unitTestsText);
    const result = promtool(['test', 'rules', 'alerts.test.yaml'], dir);
    expect(result.output).toContain('SUCCESS');
    expect(result.output).not.toContain('FAILED');
    expect(result.code).toBe(0);
  });

  it('and promtool would catch a wrong expectation there (the harness is not vacuous)', () => {
    const wrong = unitTestsText.replace('pod: orch-at-orchestrator-worker-1\n            exp_annotations:\n              summary: Worker orch-at-orchestrator-worker-1 decides without Redis', 'pod: orch-at-orchestrator-worker-2\n            exp_annotations:\n              summary: Worker orch-at-orchestrator-worker-1 decides without Redis');
    expect(wrong).not.toBe(unitTestsText);
    const dir = workDir('wrong', spec, wrong);
    const result = promtool(['test', 'rules', 'alerts.test.yaml'], dir);
    expect(result.output).toContain('FAILED');
    expect(result.code).not.toBe(0);
  });

  it('every alert has a unit test that sees it fire and one evaluation where it must not', () => {
    const evals = unitTests.tests.flatMap((t) => t.alert_rule_test ?? []);
    const names = alerts.map((a) => a.alert!);
    const fires = new Set(evals.filter((e) => e.exp_alerts.length > 0).map((e) => e.alertname));
    const silent = new Set(evals.filter((e) => e.exp_alerts.length === 0).map((e) => e.alertname));
    expect(names.filter((n) => !fires.has(n)), 'alerts never seen firing in alerts.test.yaml').toEqual([]);
    expect(names.filter((n) => !silent.has(n)), 'alerts never seen silent in alerts.test.yaml').toEqual([]);
    expect(evals.map((e) => e.alertname).filter((n) => !names.includes(n)), 'tests of alerts the chart does not have').toEqual([]);
  });
});

describe('the Grafana dashboard', () => {
  const text = readFileSync(DASHBOARD_FILE, 'utf8');
  const dashboard = JSON.parse(text) as {
    uid: string;
    schemaVersion: number;
    templating: { list: { name: string; type: string; query: unknown; datasource?: unknown }[] };
    panels: { id: number; type: string; title: string; datasource?: { type: string; uid: string }; targets?: { expr: string; datasource: { uid: string } }[] }[];
  };
  const panels = dashboard.panels.filter((p) => p.type !== 'row');

  it('is JSON of a current Grafana, on a ${datasource} variable of type prometheus, with no data source uid written in', () => {
    expect(dashboard.uid).toBe('at-orchestrator');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(panels.length).toBeGreaterThanOrEqual(15);
    expect(panels.length).toBeLessThanOrEqual(20);
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    const uids = [...text.matchAll(/"uid":\s*"([^"]*)"/g)].map((m) => m[1]);
    expect(new Set(uids)).toEqual(new Set(['${datasource}', '-- Grafana --', 'at-orchestrator']));
    for (const p of panels) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) expect(t.datasource.uid, p.title).toBe('${datasource}');
    }
  });

  it("every query is PromQL that promtool accepts (Grafana's variables replaced), with no `or vector(…)` padding", () => {
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
    for (const { title, expr } of exprs) expect(expr, title).not.toMatch(/\bor\s+vector\s*\(/);
    const asRules: RuleSpec = {
      groups: [
        {
          name: 'dashboard-queries',
          rules: exprs.map(({ expr }, i) => ({
            record: `dashboard:query_${i}`,
            expr: expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '1m').replaceAll('$__range', '1h').replaceAll('$namespace', '.*'),
          })),
        },
      ],
    };
    expect(JSON.stringify(asRules)).not.toContain('$');
    const dir = workDir('dashboard', asRules, '');
    const result = promtool(['check', 'rules', RULES_FILE_NAME], dir);
    expect(result.output).toContain(`SUCCESS: ${exprs.length} rules found`);
    expect(result.code).toBe(0);
  });

  it('the chart ships it in a ConfigMap for the Grafana sidecar, the same bytes as the file', () => {
    const [map, ...more] = kindOf(render(), 'ConfigMap', '-dashboard');
    expect(more).toEqual([]);
    expect(map!.metadata.labels).toMatchObject({ grafana_dashboard: '1' });
    expect((map as unknown as { data: Record<string, string> }).data).toEqual({ 'at-orchestrator.json': text });
    expect(text.endsWith('}\n')).toBe(true);
  });

  it('its label, extra labels and annotations come from the values, and it can be left out', () => {
    const docs = render([
      '--set',
      'metrics.grafanaDashboard.labelKey=dashboards.example.com/grafana',
      '--set-string',
      'metrics.grafanaDashboard.labelValue=yes',
      '--set',
      'metrics.grafanaDashboard.annotations.grafana_folder=Trading',
      '--set',
      'metrics.grafanaDashboard.labels.team=execution',
    ]);
    const map = kindOf(docs, 'ConfigMap', '-dashboard')[0]!;
    expect(map.metadata.labels).toMatchObject({ 'dashboards.example.com/grafana': 'yes', team: 'execution' });
    expect(map.metadata.labels).not.toHaveProperty('grafana_dashboard');
    expect(map.metadata.annotations).toEqual({ grafana_folder: 'Trading' });
    expect(kindOf(render(['--set', 'metrics.grafanaDashboard.enabled=false']), 'ConfigMap', '-dashboard')).toEqual([]);
  });
});
