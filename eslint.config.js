import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

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
  {
    files: ['shared/domain/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            'node:*',
            'express',
            'bullmq',
            'ioredis',
            'undici',
            'kafkajs',
            '@opentelemetry/*',
            '@dtm-ts/adapters*',
            '@dtm-ts/engine*',
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
