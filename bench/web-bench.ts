/**
 * Web budgets, measured on the built site in headless Chromium (with WebGPU
 * turned on): cold time to the first faces and time to draw 16 faces on
 * WebGPU, WebGL and WASM, the home page's JavaScript on each (gzipped, .wasm
 * excluded: only the running backend's code is downloaded) and the
 * generator's weights; and fine-tuning steps per second (batch 16) of the
 * shipped pair on WebGPU, WebGL and WASM; and the same 16 faces and cold start on WASM with a 128 px
 * generator published in /models/, next to the 64 px one, with their ratio. Prints JSON; exits 1 when a
 * budget is exceeded.
 *
 *   npm run bench:web            (builds into .cache/e2e-bench when stale)
 *   BENCH_BATCHES=10 FINETUNE_BENCH_STEPS=12 npm run bench:web
 *   BENCH_BACKENDS=webgpu,wasm npm run bench:web      (a subset)
 *   FINETUNE_BENCH_BATCH=4 npm run bench:web          (smaller fine-tuning batches, for software GPUs)
 *   FINETUNE_BENCH_STEPS=0 npm run bench:web          (no fine-tuning rows)
 *   npm run bench:web -- --models128 DIR              (the 128 px pair in DIR, as `npm run train -- --size 128`
 *                                                      exports it; by default models/g128-pyramid, the
 *                                                      128 px candidate, as e2e/grown-models.ts publishes it)
 * Each row is also written to stderr as soon as it is measured; a backend
 * that fails gets a row with the error, and the others are still measured.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import type { Browser, Response } from 'playwright-core';
import { grownPair, publishPair } from '../e2e/grown-models.ts';
import { buildSite, launchBrowser, startPreview, WEBGPU_ARGS } from '../e2e/helpers.ts';
import { benchFinetune } from './finetune-bench.ts';

const BUDGET = { pageJsGzipBytes: 1024 * 1024, generatorWeightBytes: 8 * 1024 * 1024 };
const BATCHES = Number(process.env.BENCH_BATCHES ?? 5);

interface BackendRun {
  backend: string;
  label: string;
  coldFirstFacesMs: number;
  /** Of those, when the backend had started and when G was built (its weights loaded meanwhile). */
  coldBackendReadyMs: number;
  coldModelReadyMs: number;
  /** Median of BATCHES "Generate" clicks after the first grid (16 faces each). */
  generate16Ms: number;
  generate16AllMs: number[];
  /** The page's JavaScript on this backend, gzipped. */
  pageJsGzipBytes: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const bodyOf = (res: Response) => res.body().catch(() => Buffer.alloc(0));

/**
 * A visitor's browser is already running: one visit to a page without TensorFlow.js (in a context of its own, so
 * nothing is cached for the measured visits) starts the browser's processes, which the first measured visit
 * would otherwise pay for (about half a second here).
 */
async function warmBrowser(browser: Browser, origin: string): Promise<void> {
  const context = await browser.newContext();
  await (await context.newPage()).goto(`${origin}/about`);
  await context.close();
}

/** One cold visit (fresh context, empty cache) on one backend, then BATCHES regenerations. */
async function runBackend(browser: Browser, origin: string, backend: string) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const responses: Response[] = [];
  page.on('response', (r) => responses.push(r));
  await page.goto(`${origin}/?backend=${backend}`);
  await page.waitForSelector('#faces[data-generation="1"]', { timeout: 180_000 });
  for (let i = 2; i <= BATCHES + 1; i++) {
    await page.click('#generate');
    await page.waitForSelector(`#faces[data-generation="${i}"]`, { timeout: 180_000 });
  }
  const timing = await page.evaluate(() => ({
    backendReady: performance.getEntriesByName('facegan:backend-ready')[0].startTime,
    modelReady: performance.getEntriesByName('facegan:model-ready')[0].startTime,
    first: performance.getEntriesByName('facegan:first-faces')[0].startTime,
    batches: performance.getEntriesByName('facegan:generate').map((e) => e.duration),
    label: document.getElementById('backend')!.textContent ?? '',
    name: document.getElementById('backend')!.dataset.backend ?? '',
  }));
  if (timing.name !== backend)
    throw new Error(`asked for ${backend} but the page ran on ${timing.name} (${timing.label})`);
  const warm = timing.batches.slice(1);
  const run: BackendRun = {
    backend,
    label: timing.label,
    coldFirstFacesMs: Math.round(timing.first),
    coldBackendReadyMs: Math.round(timing.backendReady),
    coldModelReadyMs: Math.round(timing.modelReady),
    generate16Ms: Math.round(median(warm)),
    generate16AllMs: warm.map(Math.round),
    pageJsGzipBytes: 0,
  };
  // Bodies can only be read while the context is open.
  const sizes = await transferSizes(responses);
  run.pageJsGzipBytes = sizes.pageJsGzipBytes;
  await context.close();
  return { run, sizes };
}

async function transferSizes(responses: Response[]) {
  let pageJsGzipBytes = 0;
  let pageJsRawBytes = 0;
  let generatorWeightBytes = 0;
  for (const res of responses) {
    const path = new URL(res.url()).pathname;
    if (path.endsWith('.js') || res.request().resourceType() === 'script') {
      const body = await bodyOf(res);
      pageJsRawBytes += body.length;
      pageJsGzipBytes += gzipSync(body, { level: 9 }).length;
    } else if (/\/models\/generator(\.json|\.weights.*\.bin)$/.test(path)) {
      generatorWeightBytes += (await bodyOf(res)).length;
    }
  }
  return { pageJsGzipBytes, pageJsRawBytes, generatorWeightBytes };
}

/** The 128 px pair to time: `--models128 DIR`, or the shipped pair grown to 128 px. */
async function pair128(): Promise<string> {
  const { values } = parseArgs({ options: { models128: { type: 'string' } } });
  if (!values.models128) return grownPair();
  const dir = resolve(values.models128);
  if (!existsSync(join(dir, 'generator.json'))) throw new Error(`--models128: no generator.json in ${dir}`);
  return dir;
}

/**
 * The home page on WASM with the 128 px pair in /models/ (a site copy of its own), beside the 64 px run
 * made on the same browser: what drawing at 128 px costs a visitor, cold and per 16 faces.
 */
async function runWasm128(browser: Browser, models: string, wasm64: BackendRun) {
  const dir = await buildSite('bench-128');
  publishPair(models, dir);
  const server = await startPreview(dir);
  try {
    const { run, sizes } = await runBackend(browser, server.origin, 'wasm');
    const ratio = (a: number, b: number) => Math.round((100 * a) / b) / 100;
    return {
      models,
      wasm: run,
      generatorWeightBytes: sizes.generatorWeightBytes,
      ratioTo64: {
        generate16: ratio(run.generate16Ms, wasm64.generate16Ms),
        coldFirstFaces: ratio(run.coldFirstFacesMs, wasm64.coldFirstFacesMs),
      },
    };
  } finally {
    await server.close();
  }
}

async function main(): Promise<void> {
  const models128 = await pair128();
  const server = await startPreview(await buildSite('bench'));
  // WebGPU through SwiftShader where there is no GPU (forced with ?backend=webgpu).
  const browser = await launchBrowser(WEBGPU_ARGS);
  const only = (process.env.BENCH_BACKENDS ?? 'webgpu,webgl,wasm').split(',') as ('webgpu' | 'webgl' | 'wasm')[];
  try {
    await warmBrowser(browser, server.origin);
    const runs = [];
    for (const backend of only) {
      runs.push(await runBackend(browser, server.origin, backend));
      console.error(JSON.stringify(runs.at(-1)!.run));
    }
    // The 64 px WASM row to compare with: the one above, or one made for it.
    const wasm64 = runs.find((r) => r.run.backend === 'wasm') ?? (await runBackend(browser, server.origin, 'wasm'));
    const size128 = await runWasm128(browser, models128, wasm64.run);
    console.error(JSON.stringify({ size128 }));
    const finetuneSteps = Number(process.env.FINETUNE_BENCH_STEPS ?? 6);
    const finetuneBatch = Number(process.env.FINETUNE_BENCH_BATCH ?? 16);
    const finetune = [];
    for (const backend of finetuneSteps > 0 ? only : []) {
      const row = await benchFinetune(browser, server.origin, backend, {
        batch: finetuneBatch,
        steps: finetuneSteps,
      }).catch((err: unknown) => ({
        backend,
        batch: finetuneBatch,
        error: err instanceof Error ? err.message.split('\n')[0] : String(err),
      }));
      finetune.push(row);
      console.error(JSON.stringify(row));
    }
    // The budget holds for the largest download, whichever backend it is.
    const sizes = runs.map((r) => r.sizes).reduce((a, b) => (b.pageJsGzipBytes > a.pageJsGzipBytes ? b : a));
    const budgets = {
      pageJsGzipBytes: {
        value: sizes.pageJsGzipBytes,
        limit: BUDGET.pageJsGzipBytes,
        ok: sizes.pageJsGzipBytes <= BUDGET.pageJsGzipBytes,
      },
      generatorWeightBytes: {
        value: sizes.generatorWeightBytes,
        limit: BUDGET.generatorWeightBytes,
        ok: sizes.generatorWeightBytes <= BUDGET.generatorWeightBytes,
      },
    };
    console.log(
      JSON.stringify(
        { batches: BATCHES, backends: runs.map((r) => r.run), size128, finetune, ...sizes, budgets },
        null,
        2,
      ),
    );
    if (!Object.values(budgets).every((b) => b.ok)) process.exitCode = 1;
  } finally {
    await browser.close();
    await server.close();
  }
}

await main();
