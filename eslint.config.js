import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

/** Libraries that talk to the world: only adapters and services wire them. */
const IO_LIBRARIES = [
  'express',
  'bullmq',
  'ioredis',
  'undici',
  'kafkajs',
  'pg',
  'mysql2',
  '@eventstore/*',
  '@grpc/*',
  'pino',
];

/** Node's globals that do I/O, read the environment or the clock of the process. */
const NODE_GLOBALS = [
  'process',
  'Buffer',
  'console',
  'setTimeout',
  'setInterval',
  'setImmediate',
  'clearTimeout',
  'clearInterval',
  'clearImmediate',
  'queueMicrotask',
  'fetch',
  'require',
  'module',
  '__dirname',
  '__filename',
  'global',
  'performance',
  'crypto',
];

const DOMAIN_TESTS = ['shared/domain/**/*.test.ts', 'shared/domain/**/*.unit-support.ts'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'dist/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: { allowDefaultProject: ['*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  // The fences: dependencies point inward (domain <- ports <- engine <- adapters <- services).
  {
    // The domain is pure: it imports only itself (no I/O, no config, no logging, no telemetry, no
    // validation library: the edge validates) and uses no Node globals (time arrives on commands).
    files: ['shared/domain/**'],
    ignores: DOMAIN_TESTS,
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(?!\\.{1,2}/)', message: 'The domain imports only itself.' }] },
      ],
      'no-restricted-globals': ['error', ...NODE_GLOBALS.map((name) => ({ name, message: 'The domain does no I/O.' }))],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Time arrives on the command (metadata.now).' },
        { object: 'Math', property: 'random', message: 'The domain is deterministic.' },
      ],
    },
  },
  {
    // Domain tests may use vitest and the decider spec of shared/testing, nothing else.
    files: DOMAIN_TESTS,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!\\.{1,2}/|vitest$|@dtm-ts/testing/decider-spec$)',
              message: 'Domain tests import only the domain, vitest and the decider spec.',
            },
          ],
        },
      ],
    },
  },
  {
    // Ports are contracts: types and the domain's types, nothing that runs.
    files: ['shared/ports/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(?!\\.{1,2}/|@dtm-ts/domain$)', message: 'Ports import only the domain.' }] },
      ],
      'no-restricted-globals': ['error', ...NODE_GLOBALS.map((name) => ({ name, message: 'Ports do no I/O.' }))],
    },
  },
  {
    // The engine drives transactions through ports; which product serves a port is the adapters' business.
    files: ['shared/engine/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@dtm-ts/adapters*', '@dtm-ts/runtime*', '@dtm-ts/api*', '@dtm-ts/worker*', '@dtm-ts/tm*'],
              message: 'The engine reaches the world through ports.',
            },
            { group: IO_LIBRARIES, message: 'The engine reaches the world through ports (wire it in an adapter).' },
          ],
        },
      ],
    },
  },
  {
    // The console's front-end: browser modules served as they are (no TypeScript, no build step).
    files: ['services/api/console/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      globals: { ...globals.browser },
      parserOptions: { projectService: false, program: null, project: false },
    },
  },
  {
    files: ['**/main.ts', 'bench/**', 'test/**', '.ci/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // Tests lean on vitest's asymmetric matchers (typed any) and async callbacks with nothing to await.
    files: ['test/**', '**/*.test.ts', 'bench/**'],
    rules: {
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
    },
  },
);
