// Flat config: recommended rules without type information, so `eslint .` stays fast.
// tsc --noEmit does the type checking.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Node's globals for the plain .js/.mjs files (typescript-eslint turns no-undef off for .ts).
const NODE_GLOBALS = Object.fromEntries(
  [
    'AbortController', 'AbortSignal', 'Buffer', 'URL', 'URLSearchParams', 'TextDecoder', 'TextEncoder',
    'clearImmediate', 'clearInterval', 'clearTimeout', 'console', 'fetch', 'global', 'performance',
    'process', 'queueMicrotask', 'setImmediate', 'setInterval', 'setTimeout', 'structuredClone',
  ].map((name) => [name, 'readonly']),
);

// Time and randomness that the protocol core never touches and the shells touch only through the clock seam.
const TIMER_GLOBALS = ['setTimeout', 'setInterval', 'setImmediate'].map((name) => ({ name, message: 'use the Clock seam (src/common/clock.ts)' }));
const CLOCK_PROPERTIES = [
  { object: 'Date', property: 'now', message: 'use the Clock seam (src/common/clock.ts)' },
  { object: 'Math', property: 'random', message: 'use the Clock seam (src/common/clock.ts)' },
];

export default defineConfig(
  globalIgnores(['node_modules/', 'dist/', 'src/gen/', 'data/', 'coverage/', 'out/', '.bench/']),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: NODE_GLOBALS,
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
    },
  },
  {
    // Library code logs through pino; only entry points and tooling may print.
    files: ['src/**/*.ts'],
    rules: { 'no-console': 'error' },
  },
  {
    files: ['src/cli/**', 'scripts/**', 'bench/**', 'test/**', 'bin/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // The protocol core is pure: no I/O, no clock, no randomness, nothing from the shells.
    files: ['src/protocol/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['node:*', '@grpc/*', 'level', 'abstract-level', 'pino', '../*/**', '!../protocol/**'], message: 'src/protocol is pure: it imports only its own modules.' }] }],
      'no-restricted-globals': ['error', ...TIMER_GLOBALS],
      'no-restricted-properties': ['error', ...CLOCK_PROPERTIES],
    },
  },
  {
    // The shells reach time and randomness only through the clock seam (src/common/clock.ts), so
    // that the simulator runs them unchanged; they import nothing from the simulator or the
    // fault toolkit (failpoints and mutant switches live in src/common).
    files: ['src/coordinator/**', 'src/participant/**', 'src/common/**', 'src/cluster/**'],
    ignores: ['src/common/clock.ts', 'src/common/within.ts', 'src/coordinator/grpc-server-transport.ts', 'src/cluster/leader-gated-transport.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['../sim/*', '../faults/*', '../testing/*', '../bench/*', '../demo/*'], message: 'the shells depend only on their seams, never on the simulator or the fault toolkit.' }] }],
      'no-restricted-globals': ['error', ...TIMER_GLOBALS],
      'no-restricted-properties': ['error', ...CLOCK_PROPERTIES],
    },
  },
  {
    // CommonJS files (the package check's require() consumer).
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', exports: 'writable', __dirname: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
