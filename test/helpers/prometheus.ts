import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { freePort } from '@at-orchestrator/local-servers';
import { vi } from 'vitest';
import { stringify } from 'yaml';

/** One scrape job: its name, `host:port` targets and the labels every target gets. */
export interface ScrapeJob {
  job: string;
  targets: string[];
  labels?: Record<string, string>;
}

export interface PrometheusTarget {
  scrapePool: string;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastScrape: string;
  lastError: string;
  labels: Record<string, string>;
}

/** Every prometheus a test started: none may outlive the test run. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/**
 * A real Prometheus server (Debian's `prometheus`, as scripts/lib.sh installs it) on a free port of
 * 127.0.0.1, with its configuration and TSDB in a temporary directory of its own.
 */
export class PrometheusServer {
  private readonly output: string[] = [];

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly url: string,
  ) {
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on('data', (chunk: Buffer) => {
        this.output.push(...chunk.toString().split('\n').filter((l) => l !== ''));
        if (this.output.length > 2_000) this.output.splice(0, 1_000);
      });
    }
  }

  static async start(jobs: readonly ScrapeJob[], { scrapeInterval = '1s', binary = 'prometheus' } = {}): Promise<PrometheusServer> {
    const dir = mkdtempSync(join(tmpdir(), 'prometheus-test-'));
    const config = {
      global: { scrape_interval: scrapeInterval, scrape_timeout: scrapeInterval, evaluation_interval: scrapeInterval },
      scrape_configs: jobs.map((j) => ({ job_name: j.job, static_configs: [{ targets: j.targets, ...(j.labels ? { labels: j.labels } : {}) }] })),
    };
    writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
    const port = await freePort();
    const child = spawn(
      binary,
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    running.add(child);
    child.once('exit', () => running.delete(child));
    const server = new PrometheusServer(child, dir, `http://127.0.0.1:${port}`);
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', resolve);
    });
    await spawned;
    try {
      await vi.waitFor(
        async () => {
          if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}:\n${server.output.slice(-20).join('\n')}`);
          const ready = await fetch(`${server.url}/-/ready`);
          if (!ready.ok) throw new Error(`prometheus not ready: ${ready.status}`);
        },
        { timeout: 20_000, interval: 100 },
      );
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  private async api<T>(path: string, params: Record<string, string | string[]> = {}): Promise<T> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) for (const v of [value].flat()) query.append(key, v);
    const response = await fetch(`${this.url}/api/v1/${path}?${query}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus /api/v1/${path} ${query}: ${body.error ?? response.status}`);
    return body.data;
  }

  async targets(): Promise<PrometheusTarget[]> {
    return (await this.api<{ activeTargets: PrometheusTarget[] }>('targets', { state: 'active' })).activeTargets;
  }

  /** The series that match a selector between start and end (unix seconds). */
  async series(selector: string, start: number, end = Date.now() / 1000): Promise<Record<string, string>[]> {
    return this.api<Record<string, string>[]>('series', { 'match[]': selector, start: start.toFixed(3), end: end.toFixed(3) });
  }

  /** An instant query's result. */
  async query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    return (await this.api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>('query', { query: expr })).result;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A vector selector of an expression: its metric name and label matchers, and the selector they make. */
export interface VectorSelector {
  metric: string | undefined;
  matchers: { label: string; op: string; value: string }[];
  /** `metric{label op "value", …}`, as /api/v1/series takes it in match[]. */
  selector: string;
}

/**
 * Every vector selector in a PromQL expression, found with the Prometheus project's own grammar
 * (@prometheus-io/lezer-promql): VectorSelector nodes of the syntax tree, with the label matchers
 * inside them. Throws on an expression the grammar does not accept.
 */
export function vectorSelectors(expr: string): VectorSelector[] {
  const tree = parser.parse(expr);
  const errors: number[] = [];
  tree.iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(node.from);
    },
  });
  if (errors.length > 0) throw new Error(`not PromQL (at ${errors.join(', ')}): ${expr}`);
  const text = (from: number, to: number) => expr.slice(from, to);
  const found: VectorSelector[] = [];
  const cursor = tree.cursor();
  do {
    if (cursor.name !== 'VectorSelector') continue;
    const node = cursor.node;
    const identifier = node.getChild('Identifier');
    const metric = identifier === null ? undefined : text(identifier.from, identifier.to);
    const matchers: VectorSelector['matchers'] = [];
    for (const matcher of node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) {
      const label = matcher.getChild('LabelName');
      const op = matcher.getChild('MatchOp');
      const value = matcher.getChild('StringLiteral');
      if (label === null || op === null || value === null) throw new Error(`a label matcher without a name, operator or value: ${text(matcher.from, matcher.to)}`);
      matchers.push({ label: text(label.from, label.to), op: text(op.from, op.to), value: text(value.from, value.to) });
    }
    if (node.getChild('LabelMatchers')?.getChild('QuotedLabelMatcher') != null) throw new Error(`quoted label names are not handled here: ${text(node.from, node.to)}`);
    const selector = `${metric ?? ''}{${matchers.map((m) => `${m.label}${m.op}${m.value}`).join(', ')}}`;
    found.push({ metric, matchers, selector });
  } while (cursor.next());
  return found;
}

/** The labels an aggregation groups by (`sum by (a, b) (…)`) and the vector selectors it aggregates. */
export interface Grouping {
  labels: string[];
  selectors: string[];
}

/** Every `by (…)` aggregation of a PromQL expression (a `without (…)` one is left out), by the same grammar. */
export function groupings(expr: string): Grouping[] {
  const tree = parser.parse(expr);
  const text = (from: number, to: number) => expr.slice(from, to);
  const found: Grouping[] = [];
  const cursor = tree.cursor();
  do {
    if (cursor.name !== 'AggregateExpr') continue;
    const node = cursor.node;
    const modifier = node.getChild('AggregateModifier');
    if (modifier === null || modifier.getChild('By') === null) continue;
    const labels = (modifier.getChild('GroupingLabels')?.getChildren('LabelName') ?? []).map((l) => text(l.from, l.to));
    const body = node.getChild('FunctionCallBody');
    const selectors = body === null ? [] : vectorSelectors(text(body.from, body.to)).map((s) => s.selector);
    found.push({ labels, selectors });
  } while (cursor.next());
  return found;
}
