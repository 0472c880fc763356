// Lint rules CI enforces (`npm run lint`). Formatting is Prettier's job, not ESLint's.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/fixtures/histories/**', '**/*.js', '**/*.cjs', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A promise nobody awaits loses its error; in workflow code it also hides non-determinism.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Initial values that loops overwrite before reading are clearer than definite-assignment tricks.
      'no-useless-assignment': 'off',
      // A let read by a closure made before its one assignment cannot be a const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
    },
  },
  {
    // The CLI loads each command's module, and what a build may not need, only when used (start-up time, BENCHMARKS.md).
    files: [
      'cli/main.ts',
      'cli/client.ts',
      'cli/client-commands.ts',
      'cli/specs/*.ts',
      'cli/follow.ts',
      'cli/connect.ts',
      'cli/snapshot.ts',
      'cli/dev/stack.ts',
      'cli/commands/execute.ts',
      'cli/commands/build-ref.ts',
    ],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, and activities
    // only by type (as temporalio/samples-typescript lints it).
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: builtinModules.map((name) => ({ name, message: 'workflow code is deterministic: do side effects in an activity' })),
          patterns: [
            { group: ['node:*'], message: 'workflow code is deterministic: do side effects in an activity' },
            {
              group: ['../activities/*', '!../activities/types'],
              message: 'workflows import activities by type only (activities/types.ts)',
            },
          ],
        },
      ],
    },
  },
);
