#!/usr/bin/env node
/**
 * The load driver's command line. See HELP in ./options.ts and docs/loadtest.md.
 *   pnpm --filter @at-orchestrator/loadtest run loadtest -- --scenario steady --rate 1000 --duration 30
 */
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { startPrivateInfrastructure, givenInfrastructure, type Infrastructure } from './infrastructure.js';
import { findK6, K6_SCRIPTS, k6Problems, runK6Scenario } from './k6-runner.js';
import { LatencyLog } from './latency-log.js';
import { HELP, parseLoadOptions, UsageError, type LoadOptions } from './options.js';
import {
  cpuPerDecision,
  defaultResultPath,
  formatTable,
  k6Version,
  machineInfo,
  problemsOf,
  redactOptions,
  summariseMachine,
  summariseResources,
  writeResult,
} from './report.js';
import { runNodeDriver } from './run.js';
import { LOADTEST_DIR } from './package-dir.js';
import { createTarget, type SystemUnderTest } from './targets/index.js';

export const RESULTS_DIR = join(LOADTEST_DIR, 'results');
export const RESULT_SCHEMA = 'at-orchestrator/loadtest-result@1';

const log = (line: string): void => {
  process.stderr.write(`[loadtest] ${line}\n`);
};

/** Runs one scenario end to end; returns the process exit code (0 ok, 1 failed checks, 2 usage). */
export async function main(argv: readonly string[]): Promise<number> {
  let o: LoadOptions | 'help';
  try {
    o = parseLoadOptions(argv, process.env);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${HELP}`);
      return 2;
    }
    throw err;
  }
  if (o === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const wantsK6 = K6_SCRIPTS[o.scenario] !== undefined && o.k6 !== 'off';
  const k6Bin = wantsK6 ? findK6() : undefined;
  if (o.k6 === 'on' && k6Bin === undefined) {
    process.stderr.write('--k6 on: no k6 binary found. Set K6_BIN or put k6 on PATH (k6 v1.0 or later).\n');
    return 2;
  }
  if (wantsK6 && k6Bin === undefined) log(`k6 not found (K6_BIN or PATH): running the ${o.scenario} scenario with the Node driver`);
  const useK6 = k6Bin !== undefined;
  if (useK6 && o.secure) {
    process.stderr.write('--secure: k6 connects over a plain WebSocket without credentials; use --k6 off (the Node driver)\n');
    return 2;
  }
  if (useK6 && o.latencyLog !== undefined) {
    process.stderr.write('--latency-log: only the Node driver writes it; use --k6 off\n');
    return 2;
  }
  // Opened before any server starts: a path that cannot be written is a usage error, not a failed run.
  let latencyLog: LatencyLog | undefined;
  if (o.latencyLog !== undefined) {
    try {
      latencyLog = new LatencyLog(o.latencyLog);
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      return 2;
    }
  }

  const startedAt = new Date();
  let infra: Infrastructure;
  try {
    infra =
      o.servers === 'private'
        ? await startPrivateInfrastructure({ websocket: useK6, secure: o.secure, log })
        : givenInfrastructure({ natsUrl: o.natsUrl!, redisUrl: o.redisUrl!, natsWsUrl: o.natsWsUrl }, process.env);
  } catch (err) {
    latencyLog?.close();
    throw err;
  }
  log(infra.describe());
  const target: SystemUnderTest = createTarget(o);
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('interrupted: stopping the target and the private servers (Ctrl-C again to quit at once)');
    void target
      .close()
      .catch(() => undefined)
      .then(() => infra.close())
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const resultPath = o.out ?? defaultResultPath(RESULTS_DIR, o.scenario, startedAt);
  const machine = machineInfo(infra, useK6 ? k6Version(k6Bin!) : undefined);
  const common = {
    schema: RESULT_SCHEMA,
    scenario: o.scenario,
    target: o.target,
    label: o.label,
    started_at: startedAt.toISOString(),
    command: `pnpm --filter @at-orchestrator/loadtest run loadtest -- ${(argv[0] === '--' ? argv.slice(1) : argv).join(' ')}`.trim(),
    options: redactOptions(o),
    servers: infra.describe(),
    machine,
  };
  try {
    if (useK6) {
      const r = await runK6Scenario(o, k6Bin!, resultPath.replace(/\.json$/, '.k6-summary.json'), { infra, target, log });
      machine.loadavg_end = loadavg().map((v) => Math.round(v * 100) / 100);
      const problems = k6Problems(r);
      // The driver does not see k6's decisions: no CPU per decision on this path.
      const resources = summariseResources(r.timeline, o.warmupSec);
      const machineCpu = summariseMachine(r.timeline, o.warmupSec);
      writeResult(resultPath, { ...common, driver: 'k6', finished_at: new Date().toISOString(), ok: problems.length === 0, problems, machine_cpu: machineCpu, resources, result: r });
      process.stdout.write(
        `\n${o.scenario} via k6 · target ${o.target}\n  summary ${JSON.stringify(r.summary)}\n  verdict ${problems.length === 0 ? 'OK' : `FAILED: ${problems.join('; ')}`}\n  result ${resultPath}\n`,
      );
      return problems.length === 0 ? 0 : 1;
    }
    const r = await runNodeDriver(o, { infra, target, log, progress: (line) => process.stderr.write(`${line}\n`), latencyLog });
    machine.loadavg_end = loadavg().map((v) => Math.round(v * 100) / 100);
    const problems = problemsOf(r);
    const resources = summariseResources(r.timeline, o.warmupSec, r.loadSeconds);
    const machineCpu = summariseMachine(r.timeline, o.warmupSec);
    const cpu = cpuPerDecision(r.timeline, o.warmupSec, r.loadSeconds);
    writeResult(resultPath, {
      ...common,
      driver: 'node',
      finished_at: new Date().toISOString(),
      ok: problems.length === 0,
      problems,
      machine_cpu: machineCpu,
      resources,
      ...(cpu ?? {}),
      result: r,
    });
    process.stdout.write(formatTable(o, r, resources, resultPath, problems, machineCpu, cpu));
    return problems.length === 0 ? 0 : 1;
  } finally {
    latencyLog?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await target.close().catch(() => undefined);
    await infra.close();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`loadtest: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
