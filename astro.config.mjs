// @ts-check
import { defineConfig } from 'astro/config';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the page asks TensorFlow.js for its .wasm binaries (see src/app/tf-runtime.ts). */
const WASM_ROUTE = '/tfjs-wasm/';
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

const require = createRequire(import.meta.url);
const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));

/**
 * Serve TensorFlow.js' WASM binaries from the site itself: copied into the
 * build, and answered from node_modules by the dev server. The page then
 * never fetches from another origin (the library's default is a CDN).
 */
function tfjsWasm() {
  return {
    name: 'facegan:tfjs-wasm',
    hooks: {
      /** @param {{ server: import('vite').ViteDevServer }} options */
      'astro:server:setup': ({ server }) => {
        server.middlewares.use(async (req, res, next) => {
          const file = req.url?.startsWith(WASM_ROUTE) ? req.url.slice(WASM_ROUTE.length).split('?')[0] : '';
          if (!WASM_FILES.includes(file)) return next();
          res.setHeader('Content-Type', 'application/wasm');
          res.end(await readFile(join(wasmDir, file)));
        });
      },
      /** @param {{ dir: URL }} options */
      'astro:build:done': async ({ dir }) => {
        const out = join(fileURLToPath(dir), WASM_ROUTE);
        await mkdir(out, { recursive: true });
        await Promise.all(WASM_FILES.map((f) => copyFile(join(wasmDir, f), join(out, f))));
      },
    },
  };
}

export default defineConfig({
  output: 'static',
  integrations: [tfjsWasm()],
  server: {
    // Cross-origin isolation lets the WASM backend use threads (SharedArrayBuffer).
    // Static hosts without these headers still get WASM with SIMD.
    headers: {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    },
  },
  vite: {
    // TensorFlow.js is one large chunk by nature; the real budget (1 MB
    // gzipped) is checked by `npm run bench:web`.
    build: { chunkSizeWarningLimit: 2500 },
    // ES module workers, so the fine-tuning worker can load each backend with a dynamic import (its own chunk).
    // Worker assets named as Astro names the page's (Vite's worker default is [name]-[hash]): a file that
    // both import (face-api's 6.4 MB recogniser weights) is then one file in dist/, not two.
    worker: { format: 'es', rollupOptions: { output: { assetFileNames: '_astro/[name].[hash][extname]' } } },
    // TensorFlow.js' Node platform requires node-fetch; the page never uses it.
    resolve: { alias: { 'node-fetch': fileURLToPath(new URL('./src/app/no-node-fetch.ts', import.meta.url)) } },
    // Pre-bundled for `astro dev`, with one shared tfjs-core instance.
    optimizeDeps: {
      include: [
        '@tensorflow/tfjs-core',
        '@tensorflow/tfjs-layers',
        '@tensorflow/tfjs-backend-cpu',
        '@tensorflow/tfjs-backend-webgpu',
        '@tensorflow/tfjs-backend-webgl',
        '@tensorflow/tfjs-backend-wasm',
      ],
    },
  },
  devToolbar: { enabled: false },
});
