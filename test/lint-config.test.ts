import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/**
 * The repository's lint config refuses an import that reaches into another package by path (STYLE.md
 * habit 1), in packages/, loadtest/ and scripts/. Snippets are linted as the text of files that need
 * not exist. The import rules read no types, so the config is used as it is except that the parser
 * builds no TypeScript program and only the import rules run: seconds, not the half minute that
 * type-aware parsing of the packages costs.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const eslint = new ESLint({
  cwd: ROOT,
  overrideConfig: { languageOptions: { parserOptions: { project: null, projectService: false } } },
  ruleFilter: ({ ruleId }) => ruleId.startsWith('no-restricted-'),
});

/** Files standing in for each linted area: a package's sources, a benchmark of internals, the load driver, a plain-JS script. */
const IN_PACKAGE = 'packages/cli/src/deep-import.ts';
const IN_BENCHMARK = 'loadtest/engines/deep-import.ts';
const IN_LOAD_DRIVER = 'loadtest/src/deep-import.ts';
const IN_SCRIPT = 'scripts/deep-import.mjs';

async function ruleIds(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  if (result === undefined) throw new Error(`eslint returned no result for ${filePath}`);
  return result.messages.map((m) => m.ruleId ?? `fatal: ${m.message}`);
}

const DEEP_IMPORTS = [
  "import { OrchestratorWorker } from '../../worker/src/worker.js';",
  "import { x } from '@at-orchestrator/worker/dist/x.js';",
  "import { DecidedSet } from '../packages/worker/dist/internal.js';",
  "import type { Logger } from '../../../packages/runtime/src/logger.js';",
  "export { RuleSet } from '@at-orchestrator/worker/src/engines/index.js';",
];

describe('lint: no import of another package by path', () => {
  for (const filePath of [IN_PACKAGE, IN_BENCHMARK, IN_SCRIPT]) {
    it(`refuses each deep import in ${filePath}`, async () => {
      for (const line of DEEP_IMPORTS) {
        const code = filePath.endsWith('.mjs') ? line.replace('import type', 'import') : line;
        expect(await ruleIds(`${code}\n`, filePath), code).toEqual(['no-restricted-imports']);
      }
    });
  }

  it('refuses import() of a path into a package, literal or template', async () => {
    const root = "const root = '../../';\n";
    expect(await ruleIds(`${root}await import(\`\${root}packages/worker/dist/engines/ml/index.js\`);\n`, IN_SCRIPT)).toEqual(['no-restricted-syntax']);
    expect(await ruleIds("await import('../../packages/worker/dist/internal.js');\n", IN_SCRIPT)).toEqual(['no-restricted-syntax']);
  });

  it('accepts the faces: "." and "./internal" for benchmarks, "." for packages and scripts', async () => {
    expect(await ruleIds("import { DecidedSet } from '@at-orchestrator/worker/internal';\nexport { DecidedSet };\n", IN_BENCHMARK)).toEqual([]);
    expect(await ruleIds("import { loadConfig } from '@at-orchestrator/contracts';\nexport { loadConfig };\n", IN_BENCHMARK)).toEqual([]);
    expect(await ruleIds("export { z } from 'zod';\nexport { signalSubject } from './names.js';\n", IN_PACKAGE)).toEqual([]);
    expect(await ruleIds("const { runTrainCommand } = await import('@at-orchestrator/worker/internal');\nexport { runTrainCommand };\n", IN_SCRIPT)).toEqual([]);
  });

  it('keeps the load driver an outside client: no worker, runtime or coordinator import there', async () => {
    expect(await ruleIds("export { DecidedSet } from '@at-orchestrator/worker/internal';\n", IN_LOAD_DRIVER)).toEqual(['no-restricted-imports']);
    expect(await ruleIds("export { createLogger } from '@at-orchestrator/runtime';\n", IN_LOAD_DRIVER)).toEqual(['no-restricted-imports']);
    expect(await ruleIds("export { redactUrl } from '@at-orchestrator/contracts';\n", IN_LOAD_DRIVER)).toEqual([]);
  });
});
