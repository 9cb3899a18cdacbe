/**
 * Fine-tuning speed on the built site in headless Chromium: steps per second
 * of the fine-tune page's worker (batch 16 by default) on WebGPU, WebGL and WASM.
 * The page marks each completed step (`facegan:finetune-step`); the first
 * WARMUP steps (shader compilation, first allocations) are left out and the
 * rest timed between marks.
 *
 * Standalone:  npx tsx bench/finetune-bench.ts
 *   FINETUNE_BENCH_WIDTH=16  fine-tune a fresh DCGAN of that width instead of
 *                           the shipped pair (which needs public/models/discriminator.json)
 *   FINETUNE_BENCH_STEPS=12  steps per backend (default 12, of which 2 warm-up)
 *   FINETUNE_BENCH_TIMEOUT_S=1800  how long one backend's run may take
 *   FINETUNE_BENCH_FULL=wasm  instead: one whole run with the page's default
 *                           settings on 10 photos of a held-out person, on that
 *                           backend, timed from the click to the finished model
 *                           (the "at most 5 minutes of WASM" goal), per phase
 *   FINETUNE_BENCH_MODELS=models/g128-pyramid  another pair as the site's /models/
 *                           (a site copy of its own), e.g. the 128 px candidate
 * From another bench: `benchFinetune(browser, origin, 'webgl', { modelBase })`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { celebaFile, heldOutIdentityPhotos, identityPhotos } from '../e2e/fixtures/photos.ts';

export interface FinetuneBenchOptions {
  batch?: number;
  steps?: number;
  warmup?: number;
  /** Path on the site of the pair to fine-tune (default: the shipped /models/). */
  modelBase?: string;
}

export interface FinetuneBenchResult {
  backend: string;
  batch: number;
  stepsTimed: number;
  stepsPerSecond: number;
  imagesPerSecond: number;
  /** Median milliseconds per step after warm-up. */
  medianStepMs: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One fresh page: 8 photos of one CelebA identity in, `steps` fine-tuning steps on `backend`, timed. */
export async function benchFinetune(
  browser: Browser,
  origin: string,
  backend: 'webgpu' | 'webgl' | 'wasm',
  options: FinetuneBenchOptions = {},
): Promise<FinetuneBenchResult> {
  const { batch = 16, steps = 12, warmup = 2, modelBase = '/models/' } = options;
  if (steps <= warmup + 1) throw new Error(`steps (${steps}) must exceed warm-up (${warmup}) by at least 2`);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${origin}/finetune/?backend=${backend}&model=${encodeURIComponent(modelBase)}`);
    await page
      .locator('#ft-backend[data-backend]:not([data-backend=""]), #train-error:not([hidden])')
      .first()
      .waitFor({ timeout: 120_000 });
    const running = await page.locator('#ft-backend').getAttribute('data-backend');
    if (running !== backend)
      throw new Error(
        `asked for ${backend} but the fine-tuner runs on ${running}: ${await page.locator('#train-error').textContent()}`,
      );
    await page.setInputFiles('#photo-input', identityPhotos(8).files.map(celebaFile));
    await page.locator('#train-start:enabled').waitFor({ timeout: 180_000 });
    await page.fill('input[name=steps]', String(steps));
    // Tuning steps only: the likeness fit's pace is measured by e2e/finetune-likeness.test.ts.
    await page.fill('input[name=likenessSteps]', '0');
    await page.fill('input[name=batch]', String(batch));
    await page.click('#train-start');
    // Software GPUs (SwiftShader) take minutes per step of the shipped pair at batch 16.
    await page
      .locator('#train-status[data-done]')
      .waitFor({ timeout: Number(process.env.FINETUNE_BENCH_TIMEOUT_S ?? 1800) * 1000 });
    const done = await page.locator('#train-status').getAttribute('data-done');
    if (done !== 'finished')
      throw new Error(`fine-tuning on ${backend} did not finish: ${await page.locator('#train-status').textContent()}`);
    const times = await page.evaluate(() =>
      performance.getEntriesByName('facegan:finetune-step').map((e) => e.startTime),
    );
    const deltas = times.slice(warmup + 1).map((t, i) => t - times[warmup + i]);
    const ms = median(deltas);
    return {
      backend,
      batch,
      stepsTimed: deltas.length,
      stepsPerSecond: 1000 / ms,
      imagesPerSecond: (1000 * batch) / ms,
      medianStepMs: ms,
    };
  } finally {
    await context.close();
  }
}

export interface FullRunResult {
  backend: string;
  photos: number;
  totalSeconds: number;
  /** Seconds per phase, from the page's step marks. */
  phases: Record<string, number>;
  /**
   * How far the page's estimate of the run's length (time so far + its "time left") was from the steps' true length,
   * as a share of it, over the steps after the first 10%: the largest and the median error, and the share within 30%.
   */
  estimate: { maxError: number; medianError: number; within30: number; from: number };
}

type StepMark = { t: number; step: number; secondsLeft: number | null };

/** The time-left estimate judged against the run: |elapsed + left - true length| / true length, per step. */
export function estimateErrors(marks: readonly StepMark[], started: number, total: number) {
  const end = marks.at(-1)!.t;
  const length = end - started;
  const from = Math.ceil(total / 10);
  const errors = marks
    .filter((m) => m.step >= from && m.secondsLeft !== null)
    .map((m) => Math.abs(m.t - started + m.secondsLeft! * 1000 - length) / length)
    .sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    maxError: round(errors.at(-1) ?? NaN),
    medianError: round(errors[errors.length >> 1] ?? NaN),
    /** Share of those steps whose estimate was within 30% of the true length (the page's promise). */
    within30: round(errors.filter((e) => e <= 0.3).length / errors.length),
    from,
  };
}

/** One whole default run on `backend`: 10 photos in, the page's settings untouched, click to done. */
export async function benchFullRun(
  browser: Browser,
  origin: string,
  backend: 'webgpu' | 'webgl' | 'wasm',
  photos = 10,
): Promise<FullRunResult> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${origin}/finetune/?backend=${backend}`);
    await page.locator('#ft-backend[data-backend]:not([data-backend=""])').waitFor({ timeout: 120_000 });
    await page.setInputFiles('#photo-input', heldOutIdentityPhotos(photos).files.map(celebaFile));
    await page.locator('#train-start:enabled').waitFor({ timeout: 300_000 });
    const form = await page.evaluate(() =>
      Object.fromEntries(new FormData(document.getElementById('train-form') as HTMLFormElement)),
    );
    const started = await page.evaluate(() => performance.now());
    await page.click('#train-start');
    await page
      .locator('#train-status[data-done]')
      .waitFor({ timeout: Number(process.env.FINETUNE_BENCH_TIMEOUT_S ?? 1800) * 1000 });
    const done = await page.locator('#train-status').getAttribute('data-done');
    if (done !== 'finished')
      throw new Error(`fine-tuning on ${backend} did not finish: ${await page.locator('#train-status').textContent()}`);
    const ended = await page.evaluate(() => performance.now());
    const marks: StepMark[] = await page.evaluate(() =>
      performance.getEntriesByName('facegan:finetune-step').map((e) => {
        const detail = (e as PerformanceMark).detail as { step: number; secondsLeft: number | null };
        return { t: e.startTime, step: detail.step, secondsLeft: detail.secondsLeft };
      }),
    );
    // Phase boundaries from the form's step counts: projection, tuning, likeness.
    const bounds = [Number(form.projectionSteps), Number(form.projectionSteps) + Number(form.steps)];
    const timeAt = (step: number) => (step === 0 ? started : (marks.find((m) => m.step === step)?.t ?? started));
    const last = marks.at(-1)?.step ?? 0;
    const phases = {
      projection: (timeAt(bounds[0]) - started) / 1000,
      tuning: (timeAt(bounds[1]) - timeAt(bounds[0])) / 1000,
      likeness: (timeAt(last) - timeAt(bounds[1])) / 1000,
      'bake and finish': (ended - timeAt(last)) / 1000,
    };
    const estimate = estimateErrors(marks, started, last);
    return { backend, photos, totalSeconds: (ended - started) / 1000, phases, estimate };
  } finally {
    await context.close();
  }
}

/** A fresh DCGAN pair of `width` in `<outDir>/bench-models/`, for machines without the shipped pair. */
export async function writeBenchModel(outDir: string, width: number): Promise<string> {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-cpu');
  const { buildGan, modelConfig } = await import('../src/lib/models.ts');
  const { toArtifacts, toFiles } = await import('../src/lib/weights.ts');
  await tf.setBackend('cpu');
  const dir = join(outDir, 'bench-models');
  mkdirSync(dir, { recursive: true });
  const gan = buildGan({ ...modelConfig('dcgan', width), seed: 1 });
  for (const [name, model] of [
    ['generator', gan.generator],
    ['discriminator', gan.discriminator],
  ] as const) {
    const files = toFiles(await toArtifacts(model), name);
    writeFileSync(join(dir, `${name}.json`), JSON.stringify(files.modelJson));
    for (const [shard, bytes] of files.shards) writeFileSync(join(dir, shard), bytes);
  }
  return '/bench-models/';
}

async function main(): Promise<void> {
  const { buildSite, launchBrowser, startPreview, WEBGPU_ARGS } = await import('../e2e/helpers.ts');
  // Another pair (e.g. models/g128-pyramid) as the site's /models/, on a site copy of its own.
  const models = process.env.FINETUNE_BENCH_MODELS;
  const outDir = await buildSite(models ? 'bench-finetune-models' : 'bench-finetune');
  if (models) (await import('../e2e/grown-models.ts')).publishPair(resolve(models), outDir);
  const full = process.env.FINETUNE_BENCH_FULL as 'webgpu' | 'webgl' | 'wasm' | undefined;
  if (full) {
    const server = await startPreview(outDir);
    const browser = await launchBrowser(WEBGPU_ARGS);
    try {
      console.log(JSON.stringify(await benchFullRun(browser, server.origin, full), null, 2));
    } finally {
      await browser.close();
      await server.close();
    }
    return;
  }
  const width = process.env.FINETUNE_BENCH_WIDTH ? Number(process.env.FINETUNE_BENCH_WIDTH) : null;
  const modelBase = width ? await writeBenchModel(outDir, width) : '/models/';
  const steps = Number(process.env.FINETUNE_BENCH_STEPS ?? 12);
  const server = await startPreview(outDir);
  const browser = await launchBrowser(WEBGPU_ARGS);
  try {
    const results: FinetuneBenchResult[] = [];
    for (const backend of ['webgpu', 'webgl', 'wasm'] as const)
      results.push(await benchFinetune(browser, server.origin, backend, { modelBase, steps }));
    console.log(JSON.stringify({ model: width ? `dcgan width ${width} (fresh)` : modelBase, results }, null, 2));
  } finally {
    await browser.close();
    await server.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
