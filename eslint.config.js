// Lint gate of `make lint` (run by `make test`): typescript-eslint's recommended-type-checked
// set, with type information from tsconfig.test.json (src/, native/, test/, e2e/, bench/).
// Formatting is prettier's job (.prettierrc.yaml): no stylistic rule is enabled here.
// STYLE.md 16: fix the finding, don't disable the rule.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    // Build output, dependencies, generated CRI types, Go sources of the test helpers.
    ignores: ['dist/**', 'build/**', 'node_modules/**', 'src/cri/generated/**', 'src/types/generated/**', 'src/types/cri/**', 'test/helpers/*go*/**'],
  },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A promise nobody awaits loses its rejection (an unhandled rejection ends the daemon).
      // node:test's test()/describe() are the exception: the runner awaits what they return.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] },
      ],
      // An async callback where a void one is expected (an event listener, forEach): its
      // rejection goes nowhere.
      '@typescript-eslint/no-misused-promises': 'error',
      // A promise returned un-awaited from a try block skips its catch and finally: the
      // cleanup stack's undo and a lock's release would run before the work ends.
      '@typescript-eslint/return-await': ['error', 'error-handling-correctness-only'],
      // A switch over a state or kind union without a default that misses a member.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
    },
  },
  {
    // This file and any other plain JavaScript: not in tsconfig, so no type information.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
