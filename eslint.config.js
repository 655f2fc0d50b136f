// Type-aware lint: the rules that catch what the type checker does not — above all floating
// promises (STYLE.md habit 7) and reaching into another package's internals (habit 1).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'deploy/**', 'loadtest/**', 'coverage/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  {
    files: ['packages/*/src/**/*.ts', 'packages/*/test/**/*.ts', 'test/**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: {
      parserOptions: { project: ['packages/*/tsconfig.json', 'tsconfig.tests.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/await-thenable': 'error',
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@at-orchestrator/*/src/*', '@at-orchestrator/*/dist/*'], message: 'Import a package through its face (index.ts), not its internals.' },
            { group: ['../../*/src/*', '../../../packages/*/src/*'], message: 'Import another package by its name, not by path.' },
          ],
        },
      ],
    },
  },
);
