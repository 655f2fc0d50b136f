import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_VARIABLES, loadConfig } from '@at-orchestrator/contracts';
import { describe, expect, it } from 'vitest';

// docs/deploy.md tells operators which variables exist and what they default to: it must say what
// the code does.

const guide = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'deploy.md'), 'utf8');
const settings = guide.slice(guide.indexOf('### Settings'), guide.indexOf('### What the chart creates'));

/** Rows of the settings table: backticked variable names in the first cell, their defaults in the second. */
function rows(): { names: string[]; defaults: string[] }[] {
  const ticked = (cell: string) => [...cell.matchAll(/`([^`]*)`/g)].map((m) => m[1]!);
  return settings
    .split('\n')
    .filter((line) => /^\| `[A-Z_]+`/.test(line))
    .map((line) => {
      const [, names = '', defaults = ''] = line.split('|');
      return { names: ticked(names), defaults: ticked(defaults) };
    });
}

describe('docs/deploy.md', () => {
  it('names every variable the code reads', () => {
    expect(CONFIG_VARIABLES.filter((name) => !guide.includes(`\`${name}\``))).toEqual([]);
  });

  it("gives the code's default for every variable in its settings table", () => {
    const table = rows();
    expect(table.length).toBeGreaterThan(15);
    const defaults = loadConfig({});
    for (const { names, defaults: documented } of table) {
      expect(documented, names.join(', ')).toHaveLength(names.length);
      names.forEach((name, i) => {
        // Setting a variable to its default changes nothing.
        expect(loadConfig({ [name]: documented[i] }), `${name}=${documented[i]}`).toEqual(defaults);
      });
    }
  });
});
