import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@at-orchestrator/contracts';
import { validate } from 'dockerfile-utils';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

// No container engine runs here, so the image is checked statically: Dockerfile syntax (the parser
// behind the VS Code Dockerfile support), then its consistency with the packages it builds.

const deploy = dirname(fileURLToPath(import.meta.url));
const root = join(deploy, '..');
const dockerfile = readFileSync(join(deploy, 'Dockerfile'), 'utf8');
const readJson = (path: string) => JSON.parse(readFileSync(join(root, path), 'utf8')) as Record<string, unknown>;

interface Instruction {
  keyword: string;
  args: string;
}

/** Instructions with continuation lines joined and comments dropped, grouped by build stage. */
function stages(text: string): Instruction[][] {
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const result: Instruction[][] = [];
  for (const line of logical) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (keyword.toUpperCase() === 'FROM') result.push([]);
    result.at(-1)?.push({ keyword: keyword.toUpperCase(), args });
  }
  return result;
}

const all = stages(dockerfile);
const runtime = all.at(-1)!;
const build = all[0]!;
const only = (stage: Instruction[], keyword: string) => {
  const found = stage.filter((i) => i.keyword === keyword);
  expect(found, keyword).toHaveLength(1);
  return found[0]!.args;
};

describe('deploy/Dockerfile', () => {
  it('has no syntax problems', () => {
    expect(validate(dockerfile).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it('builds in one stage and runs from another that starts fresh from the Node image', () => {
    expect(all).toHaveLength(2);
    expect(build[0]!.args).toMatch(/ AS build$/);
    expect(runtime[0]!.args).toBe('${NODE_IMAGE} AS runtime');
    const nodeImage = /^ARG NODE_IMAGE=node:(\d+)-/m.exec(dockerfile);
    // The image's Node satisfies the workspace's engines field.
    const engines = (readJson('package.json').engines as { node: string }).node;
    expect(Number(nodeImage?.[1])).toBeGreaterThanOrEqual(Number(/(\d+)/.exec(engines)?.[1]));
    expect(only(runtime, 'COPY')).toBe('--from=build /out /app');
  });

  it('installs from the lockfile, builds with the workspace script and deploys only the bin package', () => {
    const cli = readJson('packages/cli/package.json') as { name: string; bin: Record<string, string> };
    const runs = build.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.some((r) => r.includes('pnpm install --frozen-lockfile') && r.includes(`--filter "${cli.name}..."`))).toBe(true);
    expect(runs).toContain('pnpm build');
    expect(readJson('package.json').scripts).toHaveProperty('build');
    expect(runs.some((r) => r.includes(`pnpm --filter ${cli.name} --prod deploy`) && r.endsWith(' /out'))).toBe(true);
    // The root project is installed too (TypeScript lives there): its name must match the filter.
    expect(runs.some((r) => r.includes(`--filter "${String(readJson('package.json').name)}"`))).toBe(true);
  });

  it('runs the bin under tini as a non-root user, with an exec-form entrypoint so SIGTERM reaches node', () => {
    const cli = readJson('packages/cli/package.json') as { bin: Record<string, string> };
    const main = `/app/${cli.bin['at-orchestrator']!.replace(/^\.\//, '')}`;
    const entrypoint = JSON.parse(only(runtime, 'ENTRYPOINT')) as string[];
    expect(entrypoint.slice(0, 3)).toEqual(['/usr/bin/tini', '--', 'node']);
    expect(entrypoint.at(-1)).toBe(main);
    expect(runtime.some((i) => i.keyword === 'RUN' && /apt-get install .*\btini\b/.test(i.args))).toBe(true);
    const user = only(runtime, 'USER');
    expect(user).toMatch(/^\d+:\d+$/); // numeric, so that Kubernetes' runAsNonRoot can verify it
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
    // Everything after USER runs as that user: nothing may be written into the image at run time.
    expect(runtime.findIndex((i) => i.keyword === 'USER')).toBeGreaterThan(runtime.findIndex((i) => i.keyword === 'RUN' && i.args.includes('/usr/local/bin/at-orchestrator')));
    expect(only(runtime, 'STOPSIGNAL')).toBe('SIGTERM');
    expect(JSON.parse(only(runtime, 'CMD'))).toEqual(['worker']);
  });

  it('puts the CLI on PATH for `kubectl exec … at-orchestrator <subcommand>`, running what the entrypoint runs', () => {
    const entrypoint = JSON.parse(only(runtime, 'ENTRYPOINT')) as string[];
    const wrapper = runtime.find((i) => i.keyword === 'RUN' && i.args.includes('/usr/local/bin/at-orchestrator'))!.args;
    expect(wrapper).toContain(`exec ${entrypoint.slice(2).join(' ')} "$@"`);
    expect(wrapper).toContain('chmod 0755 /usr/local/bin/at-orchestrator');
  });

  it("exposes and health-checks the code's default HTTP_PORT on /ready", () => {
    const port = loadConfig({}).httpPort;
    expect(only(runtime, 'EXPOSE')).toBe(String(port));
    const healthcheck = only(runtime, 'HEALTHCHECK');
    expect(healthcheck).toContain(`(process.env.HTTP_PORT || '${port}') + '/ready'`);
  });
});

/** A .dockerignore pattern as a regular expression over context-relative paths. */
function ignorePattern(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (pattern.startsWith('**/', i)) {
      re += '(?:.*/)?';
      i += 2;
    } else if (pattern.startsWith('**', i)) {
      re += '.*';
      i += 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

describe('.dockerignore', () => {
  const patterns = readFileSync(join(root, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  // Docker excludes a path when it, or a folder above it, matches; the last matching pattern wins.
  const ignored = (path: string) => {
    const parts = path.split('/');
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let result = false;
    for (const p of patterns) {
      const negated = p.startsWith('!');
      const re = ignorePattern(negated ? p.slice(1) : p);
      if (candidates.some((c) => re.test(c))) result = !negated;
    }
    return result;
  };

  it('keeps what is built on the host out of the build context', () => {
    for (const path of ['node_modules/x', 'packages/worker/node_modules/x', 'packages/worker/dist/index.js', '.git/HEAD', 'packages/cli/dist/.tsbuildinfo', 'deploy/node_modules/.cache/helm']) {
      expect(ignored(path), path).toBe(true);
    }
  });

  it('keeps every file the build stage needs', () => {
    const workspace = parse(readFileSync(join(root, 'pnpm-workspace.yaml'), 'utf8')) as { packages: string[] };
    const projects = workspace.packages.flatMap((glob) =>
      glob.endsWith('/*') ? readdirSync(join(root, glob.slice(0, -2))).map((d) => `${glob.slice(0, -2)}/${d}`) : [glob],
    );
    const needed = [
      'package.json',
      'pnpm-lock.yaml',
      'pnpm-workspace.yaml',
      'tsconfig.json',
      'tsconfig.base.json',
      'scripts/copy-assets.mjs',
      // pnpm install --frozen-lockfile needs every workspace project's manifest.
      ...projects.map((p) => `${p}/package.json`),
      ...projects.filter((p) => p.startsWith('packages/')).map((p) => `${p}/tsconfig.json`),
    ];
    for (const path of needed) {
      expect(existsSync(join(root, path)), `${path} exists`).toBe(true);
      expect(ignored(path), path).toBe(false);
    }
    // Sources, and the assets that scripts/copy-assets.mjs copies beside them: Lua scripts, the
    // workflow rules, the ML model. Each must exist, so that a path that moved fails here.
    const sources = [
      'packages/worker/src/index.ts',
      'packages/worker/src/engines/workflow/default-rules.yaml',
      'packages/worker/src/engines/ml/model.json',
      'packages/worker/src/state/scripts/claim-decisions.lua',
      'packages/coordinator/src/index.ts',
      'packages/coordinator/src/table/scripts/commit-assignment.lua',
    ];
    for (const path of sources) {
      expect(existsSync(join(root, path)), `${path} exists`).toBe(true);
      expect(ignored(path), path).toBe(false);
    }
  });

  it('keeps every Lua script of every package', () => {
    const lua = (dir: string): string[] =>
      readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
        const path = `${dir}/${entry.name}`;
        if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name === 'dist' ? [] : lua(path);
        return entry.name.endsWith('.lua') ? [path] : [];
      });
    const scripts = lua('packages');
    expect(scripts.length).toBeGreaterThan(0);
    expect(scripts.filter(ignored)).toEqual([]);
  });
});
