import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The CLI's command files and the list in cli.ts once imported each other (through the Command
// type). A circle like that makes load order matter, so this keeps every package's own imports a
// tree. (Packages import each other by name only, and pnpm's workspace graph has no cycle either.)

const packagesDir = resolve(dirname(fileURLToPath(import.meta.url)), '../packages');
const packageSources = readdirSync(packagesDir, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => join(packagesDir, d.name, 'src'));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

/** Relative imports and re-exports of a file (type-only ones too), as absolute .ts paths. */
function localImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);
  return specifiers.map((s) => resolve(dirname(file), s).replace(/\.js$/, '.ts'));
}

function cycles(src: string, files: string[]): string[][] {
  const graph = new Map(files.map((f) => [f, localImports(f)]));
  const found: string[][] = [];
  const done = new Set<string>();
  const visit = (file: string, path: string[]) => {
    const at = path.indexOf(file);
    if (at >= 0) {
      found.push([...path.slice(at), file].map((f) => relative(src, f)));
      return;
    }
    if (done.has(file)) return;
    for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
    done.add(file);
  };
  for (const file of files) visit(file, []);
  return found;
}

describe.each(packageSources.map((src) => [relative(packagesDir, src), src]))('%s imports', (_name, src) => {
  const files = sources(src);

  it('resolves every relative import to a file of the package', () => {
    for (const file of files) {
      for (const target of localImports(file)) expect(files, `${relative(src, file)} imports ${relative(src, target)}`).toContain(target);
    }
  });

  it('has no import cycle', () => {
    expect(files.map((f) => relative(src, f))).toContain('index.ts');
    expect(cycles(src, files)).toEqual([]);
  });
});

it('covers every package, the CLI and the worker included', () => {
  expect(packageSources.map((s) => relative(packagesDir, s))).toEqual(expect.arrayContaining(['cli/src', 'worker/src', 'coordinator/src']));
});
