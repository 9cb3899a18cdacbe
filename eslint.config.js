// @ts-check
// ESLint 9 flat config: typescript-eslint's recommended rules (not type-aware, to keep `npm run lint` fast)
// and eslint-plugin-astro's recommended rules for the .astro pages and components.
import js from '@eslint/js';
import astro from 'eslint-plugin-astro';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    // Build output, dependencies, generated types, the native addon's build, static assets, local caches.
    ignores: [
      'dist/',
      'node_modules/',
      '.astro/',
      'native/build/',
      'public/',
      '.cache/',
      '.scratch/',
      'runs/',
      'test-results/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...astro.configs.recommended,
  {
    languageOptions: {
      // The code runs in Node (training, tests, benches, configs), in pages and in web workers.
      globals: { ...globals.node, ...globals.browser, ...globals.worker },
    },
  },
);
