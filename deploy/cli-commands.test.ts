import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from 'at-orchestrator';
import { parse, parseAllDocuments } from 'yaml';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { helm } from './helm/helm-cli.js';

// Every `at-orchestrator <subcommand>` that the image, compose, the chart, its NOTES and the deploy
// guide run or tell an operator to run must be a subcommand the CLI knows.

const deploy = dirname(fileURLToPath(import.meta.url));
const root = join(deploy, '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

function composeCommands(): string[][] {
  const compose = parse(read('deploy/compose.yaml'), { merge: true }) as { services: Record<string, { image?: string; command?: string[] }> };
  return Object.values(compose.services)
    .filter((s) => s.image === 'at-orchestrator:local')
    .map((s) => s.command ?? []);
}

function chartCommands(): string[][] {
  const result = helm(['template', 'orch', join(deploy, 'helm', 'at-orchestrator')]);
  expect(result.code, result.stderr).toBe(0);
  return parseAllDocuments(result.stdout)
    .map((d) => d.toJS() as { kind?: string; spec?: { template?: { spec: PodSpec } } & PodSpec } | null)
    .flatMap((d) => (d?.kind === 'Deployment' ? d.spec!.template!.spec.containers : d?.kind === 'Pod' ? d.spec!.containers : []))
    .map((c) => c.args);
}
interface PodSpec {
  containers: { args: string[] }[];
}

function dockerfileCommand(): string[] {
  const cmd = /^CMD (.*)$/m.exec(read('deploy/Dockerfile'))?.[1];
  return JSON.parse(cmd ?? '[]') as string[];
}

/** Subcommands an operator is told to run: `kubectl exec … -- at-orchestrator x`, `compose exec svc at-orchestrator x`. */
function documentedSubcommands(): string[] {
  const texts = [read('deploy/helm/at-orchestrator/templates/NOTES.txt'), existsSync(join(root, 'docs/deploy.md')) ? read('docs/deploy.md') : ''];
  return texts.flatMap((t) => [...t.matchAll(/(?:-- |exec \S+ )at-orchestrator ([a-z][\w-]*)/g)].map((m) => m[1]!));
}

async function help(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const write = (chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(write);
  vi.spyOn(process.stderr, 'write').mockImplementation(write);
  const code = await run(argv);
  return { code, out };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('every subcommand that deploy/ runs or documents exists', () => {
  const used = new Set([...composeCommands(), ...chartCommands(), dockerfileCommand()].map((argv) => argv[0]!));
  const documented = new Set(documentedSubcommands());

  it('finds the subcommands (coordinator, worker, status, sim, drain, …)', () => {
    expect([...used].sort()).toEqual(['coordinator', 'sim', 'status', 'worker']);
    expect([...documented]).toEqual(expect.arrayContaining(['status', 'workers', 'partitions', 'plan', 'rebalance', 'drain']));
  });

  it.each([...new Set([...used, ...documented])].sort())('%s', async (subcommand) => {
    const { code, out } = await help([subcommand, '--help']);
    expect(out).toMatch(new RegExp(`at-orchestrator ${subcommand}\\b`));
    expect(code).toBe(0);
  });

  it('sim takes the modes and options compose passes', async () => {
    const { out } = await help(['sim', '--help']);
    for (const argv of composeCommands().filter((a) => a[0] === 'sim')) {
      expect(out).toContain(`at-orchestrator sim ${argv[1]}`);
      for (const option of argv.filter((a) => a.startsWith('--'))) expect(out).toContain(option);
    }
  });
});
