// Lint: the rules that catch what the type checker does not — above all floating promises
// (STYLE.md habit 7) and reaching into another package's internals (habit 1). A package is imported
// by its name and one of the faces its package.json `exports` lists ("." for everyone, "./internal"
// for benchmarks, tools and tests of internals), never by a path into its src/ or dist/.
import tseslint from 'typescript-eslint';

const NOT_BY_PATH = 'Import another package by its name and one of its faces ("." or "./internal" in its exports), not by a path into its src/ or dist/.';

/** Import sources that reach into a package instead of going through a face. */
const DEEP_IMPORTS = [
  // @at-orchestrator/worker/dist/x.js, at-orchestrator/src/main.js
  { regex: '^(@at-orchestrator/[^/]+|at-orchestrator)/(src|dist)(/|$)', message: NOT_BY_PATH },
  // ../../packages/worker/dist/internal.js, /abs/path/packages/runtime/src/index.js
  { regex: '(^|/)packages/[^/]+/(src|dist)(/|$)', message: NOT_BY_PATH },
  // ../../worker/src/worker.js: out of one package and into a sibling's sources
  { regex: '^(\\.\\./)+[^./][^/]*/(src|dist)(/|$)', message: NOT_BY_PATH },
];

/** The same sources in import(), as a literal or in the text of a template (esquery regexes cannot hold a plain "/"). */
const deepSource = `/${DEEP_IMPORTS.map((p) => `(${p.regex})`).join('|').replaceAll('/', '\\x2F')}/`;
const DEEP_DYNAMIC_IMPORTS = [
  { selector: `ImportExpression > Literal[value=${deepSource}]`, message: NOT_BY_PATH },
  { selector: `ImportExpression > TemplateLiteral > TemplateElement[value.raw=${deepSource}]`, message: NOT_BY_PATH },
];

const noDeepImports = (extraPatterns = []) => ({
  'no-restricted-imports': ['error', { patterns: [...DEEP_IMPORTS, ...extraPatterns] }],
  'no-restricted-syntax': ['error', ...DEEP_DYNAMIC_IMPORTS],
});

const PROMISE_RULES = {
  '@typescript-eslint/no-floating-promises': 'error',
  '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
  '@typescript-eslint/await-thenable': 'error',
};

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', 'loadtest/results/**'] },
  {
    files: ['packages/*/src/**/*.ts', 'packages/*/test/**/*.ts', 'test/**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: {
      parserOptions: { project: ['packages/*/tsconfig.json', 'tsconfig.tests.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: { ...PROMISE_RULES, ...noDeepImports() },
  },
  {
    // The container, compose and Helm chart tests (deploy/tsconfig.json).
    files: ['deploy/**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: {
      parserOptions: { project: ['deploy/tsconfig.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: { ...PROMISE_RULES, ...noDeepImports() },
  },
  {
    // The load driver and seed baseline (tsconfig.json), the benchmarks of internals (engines/, micro/),
    // the k6 scripts as k6 runs them (k6/tsconfig.json: k6 runs the .ts files itself, nothing is
    // bundled) and the tests (tsconfig.tests.json).
    files: ['loadtest/**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: {
      parserOptions: {
        project: [
          'loadtest/tsconfig.json',
          'loadtest/engines/tsconfig.json',
          'loadtest/micro/tsconfig.json',
          'loadtest/k6/tsconfig.json',
          'loadtest/tsconfig.tests.json',
        ],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: { ...PROMISE_RULES, ...noDeepImports() },
  },
  {
    // The load driver is an outside client: it knows the contracts, never the worker's code
    // (docs/loadtest.md); it connects as every process does (connections). Only the benchmarks of
    // internals (engines/, micro/) import data-plane packages.
    files: ['loadtest/**/*.ts'],
    ignores: ['loadtest/engines/**', 'loadtest/micro/**'],
    rules: noDeepImports([
      {
        regex: '^(@at-orchestrator/(worker|runtime|coordinator)|at-orchestrator)(/|$)',
        message: 'The load driver is an outside client: contracts, connections, sim and local-servers only. Benchmarks of internals go in loadtest/engines or loadtest/micro.',
      },
    ]),
  },
  {
    // Plain JavaScript (scripts/, this file): no type information, the same import rules.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    rules: noDeepImports(),
  },
  {
    // Browser pages served as they are (the console): an ES module in the browser, no type-aware
    // rules; an undefined name or an unused one is an error, since nothing compiles these files.
    files: ['packages/*/src/**/page/**/*.js'],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: Object.fromEntries(
        [
          'window', 'document', 'location', 'navigator', 'console', 'sessionStorage', 'fetch', 'EventSource',
          'MessageEvent', 'HTMLElement', 'HTMLButtonElement', 'HTMLInputElement', 'HTMLSelectElement',
          'HTMLFormElement', 'HTMLDialogElement', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval',
          'requestAnimationFrame', 'performance', 'URL',
        ].map((name) => [name, 'readonly']),
      ),
    },
    rules: { 'no-undef': 'error', 'no-unused-vars': ['error', { caughtErrors: 'none' }] },
  },
);
