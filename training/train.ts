/**
 * The training loop: data in, checkpoints, logs, sample grids and an export
 * out. The step itself is src/lib/gan.ts, the same code the page runs.
 */
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { buildGan, imageSize, isArch, isImageSize, modelConfig, type GanModels, type ImageSize } from '../src/lib/models.ts';
import { growGan } from '../src/lib/growth.ts';
import { GanTrainer, NonFiniteLossError, generate, type StepResult } from '../src/lib/gan.ts';
import { WeightAverage, cloneModel } from '../src/lib/ema.ts';
import type { ModelManifest } from '../src/lib/weights.ts';
import { loadModelFile } from './model-files.ts';
import { Rng, latentBatch, sampleLatents } from '../src/lib/latent.ts';
import { gridRgba } from '../src/lib/images.ts';
import { BatchSampler, loadDataset, writeAtomic, type Dataset } from './data.ts';
import { loadCheckpoint, saveCheckpoint, type RunState } from './checkpoint.ts';
import { exportModels } from './export.ts';
import type { TrainOptions } from './config.ts';
import { HELD_OUT_RULE } from './split.ts';

/** The sample grid always uses these seeds, so grids compare across steps and runs. */
export const SAMPLE_SEEDS = Array.from({ length: 64 }, (_, i) => i);

export interface Backend { name: string; detail: string }

export interface TrainHooks {
  /** Human-readable lines (start-up, skipped files, saves). */
  say?: (line: string) => void;
  onDataProgress?: (done: number, total: number) => void;
  onStart?: (info: { startStep: number; totalSteps: number; batch: number }) => void;
  onStep?: (info: { step: number; totalSteps: number; result: StepResult; imagesPerSecond: number }) => void;
  /** Checked after every step: true stops the run with a checkpoint (SIGINT / SIGTERM). */
  shouldStop?: () => boolean;
}

export interface TrainOutcome {
  /** budget: --max-minutes or --max-cpu-minutes ran out; exported like a finished run, and resumable. */
  status: 'finished' | 'budget' | 'stopped' | 'diverged';
  step: number;
  last?: StepResult;
  checkpoint: string;
  exportDir?: string;
  message?: string;
}

export const runPaths = (out: string) => ({
  checkpoint: join(out, 'checkpoint.bin'),
  log: join(out, 'metrics.jsonl'),
  options: join(out, 'options.json'),
  samples: join(out, 'samples'),
  latestGrid: join(out, 'samples', 'latest.png'),
});

export async function writeSampleGrid(generator: LayersModel, zDim: number, path: string): Promise<void> {
  const z = tf.tensor2d(latentBatch(SAMPLE_SEEDS, zDim), [SAMPLE_SEEDS.length, zDim]);
  const images = generate(generator, z);
  const pixels = (await images.data()) as Float32Array;
  const size = images.shape[1];
  tf.dispose([z, images]);
  const grid = gridRgba(pixels, SAMPLE_SEEDS.length, 8, size);
  mkdirSync(dirname(path), { recursive: true });
  await sharp(Buffer.from(grid.data.buffer), { raw: { width: grid.width, height: grid.height, channels: 4 } })
    .png({ compressionLevel: 9, adaptiveFiltering: true }) // lossless: the site and README show this file
    .toFile(path);
}

function totalSteps(opts: TrainOptions, data: Dataset): number {
  return opts.steps ?? Math.max(1, Math.ceil(((opts.epochs ?? 1) * data.files.length) / opts.batch));
}

/** What a run started from when it began with --init-from: the parent export's name and training. */
export type Parent = NonNullable<TrainOptions['parent']>;

/** G and D from an exported folder; arch, width and zDim come from its manifest. */
export async function loadExported(dir: string): Promise<{ models: GanModels; parent: Parent }> {
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) throw new ResumeError(`--init-from: no manifest.json in ${dir}`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as ModelManifest;
  const { arch, width, zDim } = manifest.model;
  const size = imageSize(manifest.model);
  if (!isArch(arch)) throw new ResumeError(`--init-from: unknown architecture "${arch}" in ${manifestPath}`);
  if (!isImageSize(size)) throw new ResumeError(`--init-from: unknown image size ${size} in ${manifestPath}`);
  const models: GanModels = {
    config: modelConfig(arch, width, zDim, undefined, size),
    generator: await loadModelFile(join(dir, manifest.generator.file)),
    discriminator: await loadModelFile(join(dir, manifest.discriminator.file)),
  };
  return { models, parent: { dir, name: manifest.name, ...(manifest.training ? { training: manifest.training } : {}) } };
}

/** A new run, or the saved one (its own options win over the command line, except how long to run and where to export). */
async function startModels(opts: TrainOptions, paths: ReturnType<typeof runPaths>) {
  if (!opts.resume) {
    const rng = new Rng(opts.seed);
    if (opts.initFrom) {
      const loaded = await loadExported(opts.initFrom);
      const models = await maybeGrow(loaded.models, opts.size, opts.seed);
      const own = { ...opts, arch: models.config.arch, width: models.config.width, zDim: models.config.zDim, size: imageSize(models.config), parent: loaded.parent };
      return { opts: own, models, state: null, rng, restore: async () => {}, ema: null };
    }
    const models = buildGan(modelConfig(opts.arch, opts.width, opts.zDim, opts.seed, opts.size));
    return { opts, models, state: null, rng, restore: async () => {}, ema: null };
  }
  if (!existsSync(paths.checkpoint)) throw new ResumeError(`--resume: no checkpoint at ${paths.checkpoint}`);
  const ck = await loadCheckpoint<TrainOptions>(paths.checkpoint);
  const merged: TrainOptions = {
    ...ck.config,
    steps: opts.steps ?? (opts.epochs ? null : ck.config.steps), epochs: opts.steps ? null : (opts.epochs ?? ck.config.epochs),
    backend: opts.backend, convPrecision: opts.convPrecision, export: opts.export, exportDtype: opts.exportDtype, quiet: opts.quiet,
    maxMinutes: opts.maxMinutes, maxCpuMinutes: opts.maxCpuMinutes, out: opts.out, resume: true,
  };
  const config = modelConfig(merged.arch, merged.width, merged.zDim, undefined, merged.size ?? 64);
  const models: GanModels = { config, generator: ck.generator, discriminator: ck.discriminator };
  return { opts: merged, models, state: ck.state, rng: new Rng(ck.state.rng), restore: ck.restoreOptimizers, ema: ck.ema ?? null };
}

export class ResumeError extends Error {}

/**
 * --init-from a 64 px pair with --size 128 grows it (src/lib/growth.ts); the same size is used as it is.
 * The new batch norm's statistics come from 256 fixed latents, so a grown start is reproducible.
 */
async function maybeGrow(models: GanModels, size: ImageSize, seed: number): Promise<GanModels> {
  const from = imageSize(models.config);
  if (from === size) return models;
  if (from !== 64 || size !== 128) throw new ResumeError(`--init-from: a ${from} px pair cannot start a ${size} px run`);
  const z = tf.tensor2d(latentBatch(Array.from({ length: 256 }, (_, i) => 1_000_000 + i), models.config.zDim), [256, models.config.zDim]);
  try {
    return growGan(models, z, seed);
  } finally {
    z.dispose();
    models.generator.dispose();
    models.discriminator.dispose();
  }
}

export async function train(cliOpts: TrainOptions, backend: Backend, hooks: TrainHooks = {}): Promise<TrainOutcome> {
  const say = hooks.say ?? (() => {});
  const paths = runPaths(cliOpts.out);
  mkdirSync(paths.samples, { recursive: true });
  const start = await startModels(cliOpts, paths);
  const opts = start.opts;
  const { models, rng } = start;

  const data = await loadDataset(opts.data, {
    cacheDir: join(dirname(resolve(opts.out)), '.cache'),
    limit: opts.limit ?? undefined,
    onProgress: hooks.onDataProgress,
    size: imageSize(models.config),
  });
  say(`data: ${data.files.length} training images from ${opts.data}${data.fromCache ? ' (cached)' : ''}; ` +
    `${data.heldOut} held out (${HELD_OUT_RULE}); ${data.skipped.length} skipped` +
    (data.tooSmall ? `; ${data.tooSmall} left out as smaller than ${data.size} px (never upsampled)` : ''));
  for (const s of data.skipped) say(`skipped ${s.file}: ${s.reason}`);
  if (!opts.resume) writeFileSync(paths.options, `${JSON.stringify(opts, null, 2)}\n`);
  // Lines logged after the checkpoint we resume from will be logged again: drop them.
  if (start.state && existsSync(paths.log)) trimLog(paths.log, start.state.step);

  const trainer = new GanTrainer(models.generator, models.discriminator, {
    learningRate: opts.lr, beta1: opts.beta1, labelSmoothing: opts.labelSmoothing,
    loss: opts.loss, diffAugment: opts.diffAugment, r1Gamma: opts.r1Gamma, r1Every: opts.r1Every,
  }, rng);
  await start.restore(trainer.optD, trainer.optG);
  const st = start.state;
  trainer.stepsDone = st?.step ?? 0;
  // The average starts as a copy of G (a resume restores it); samples and the export use it.
  const average = opts.emaDecay === null ? null : new WeightAverage(
    models.generator, start.ema ?? await cloneModel(models.generator), { decay: opts.emaDecay, warmup: true }, st?.emaUpdates ?? 0);
  const shown = average?.target ?? models.generator;
  const sampler = new BatchSampler(data, rng, st?.sampler);
  let step = st?.step ?? 0;
  let imagesSeen = st?.imagesSeen ?? 0;
  const wallBefore = st?.wallSeconds ?? 0;
  const total = totalSteps(opts, data);
  const t0 = performance.now();
  const wall = () => wallBefore + (performance.now() - t0) / 1000;
  const deadline = opts.maxMinutes === null ? Infinity : t0 + opts.maxMinutes * 60_000;
  // CPU time counts every thread of this process (BLAS pools included), so equal-compute
  // comparisons hold on a machine shared with other work. Unknown for runs resumed from older checkpoints.
  const cpuBefore = st ? (st.cpuSeconds ?? null) : 0;
  const cpuAtStart = process.cpuUsage();
  const cpuSinceStart = () => {
    const used = process.cpuUsage(cpuAtStart);
    return (used.user + used.system) / 1e6;
  };
  const cpu = (): number | null => (cpuBefore === null ? null : cpuBefore + cpuSinceStart());
  const cpuBudget = opts.maxCpuMinutes === null ? Infinity : opts.maxCpuMinutes * 60;
  if (cpuBefore === null && opts.maxCpuMinutes !== null) {
    say('this checkpoint predates CPU-time accounting: --max-cpu-minutes counts from now');
  }

  const state = (): RunState => {
    const cpuSeconds = cpu();
    return {
      step, imagesSeen, wallSeconds: wall(), ...(cpuSeconds === null ? {} : { cpuSeconds }),
      rng: rng.getState(), sampler: sampler.snapshot(), ...(last ? { last } : {}),
      ...(average ? { emaUpdates: average.updates } : {}),
    };
  };
  const checkpoint = async () => {
    await saveCheckpoint(paths.checkpoint, {
      config: opts, state: state(), generator: models.generator, discriminator: models.discriminator,
      ...(average ? { ema: average.target } : {}),
    }, trainer.optD, trainer.optG);
  };

  say(`model: ${opts.arch} width ${opts.width} at ${imageSize(models.config)} px: G ${models.generator.countParams().toLocaleString('en-US')} params, ` +
    `D ${models.discriminator.countParams().toLocaleString('en-US')} params; backend ${backend.name} (${backend.detail})`);
  say(`recipe: ${describeRecipe(opts)}`);
  if (st) say(`resumed at step ${step} of ${total}`);
  hooks.onStart?.({ startStep: step, totalSteps: total, batch: opts.batch });

  const size = imageSize(models.config);
  const realBuf = new Float32Array(opts.batch * size * size * 3);
  let last: StepResult | undefined = st?.last;
  let rateT = performance.now(), rateImages = 0, imagesPerSecond = 0;
  let status: TrainOutcome['status'] = 'finished';
  let message: string | undefined;
  while (step < total) {
    const real = tf.tensor4d(sampler.next(opts.batch, realBuf), [opts.batch, size, size, 3]);
    const z = tf.tensor2d(sampleLatents(rng, opts.batch, opts.zDim), [opts.batch, opts.zDim]);
    try {
      last = await trainer.step(real, z);
    } catch (err) {
      if (!(err instanceof NonFiniteLossError)) throw err;
      status = 'diverged';
      message = `step ${step + 1}: ${err.message}; the last good checkpoint is kept at ${paths.checkpoint}`;
      break;
    } finally {
      tf.dispose([real, z]);
    }
    average?.update();
    step++;
    imagesSeen += opts.batch;
    rateImages += opts.batch;
    const now = performance.now();
    if (now - rateT > 2000) { imagesPerSecond = (rateImages * 1000) / (now - rateT); rateT = now; rateImages = 0; }
    hooks.onStep?.({ step, totalSteps: total, result: last, imagesPerSecond });
    if (step % opts.logEvery === 0 || step === total) {
      const cpuSeconds = cpu();
      appendFileSync(paths.log, `${JSON.stringify({
        step, epoch: sampler.epoch, d_loss: round(last.dLoss), g_loss: round(last.gLoss), d_real: round(last.dReal),
        d_fake: round(last.dFake), images_per_s: round(imagesPerSecond), wall_s: round(wall()),
        ...(cpuSeconds === null ? {} : { cpu_s: round(cpuSeconds) }),
      })}\n`);
    }
    if (step % opts.sampleEvery === 0) {
      const grid = join(paths.samples, `step-${String(step).padStart(7, '0')}.png`);
      await writeSampleGrid(shown, opts.zDim, grid);
      copyFileSync(grid, paths.latestGrid);
    }
    if (step % opts.checkpointEvery === 0) await checkpoint();
    // Steps resolve as microtasks; a macrotask turn lets signal handlers (Ctrl-C, SIGTERM) run.
    await new Promise((resolve) => setImmediate(resolve));
    if (hooks.shouldStop?.()) { status = 'stopped'; break; }
    if (performance.now() > deadline || (cpu() ?? cpuSinceStart()) > cpuBudget) { status = 'budget'; break; }
  }

  if (status !== 'diverged') {
    await checkpoint();
    await writeSampleGrid(shown, opts.zDim, paths.latestGrid);
  }
  let exportDir: string | undefined;
  if ((status === 'finished' || status === 'budget') && opts.export) {
    const cpuSeconds = cpu();
    await exportModels({
      dir: opts.export, generator: shown, discriminator: models.discriminator, dtype: opts.exportDtype,
      sampleGridPng: paths.latestGrid, metricsLog: paths.log,
      manifest: {
        name: `facegan ${opts.arch}-${opts.width}${size === 64 ? '' : ` ${size}px`}`,
        // Less than one pass over the data is a smoke test, not a model: say so on the site.
        placeholder: imagesSeen < data.files.length,
        ...(imagesSeen < data.files.length ? { note: `short run (${step} steps, ${imagesSeen} images): a placeholder, not a trained model` } : {}),
        model: models.config,
        training: {
          steps: step, imagesSeen, epochs: round(imagesSeen / data.files.length), batch: opts.batch,
          learningRate: opts.lr, beta1: opts.beta1, labelSmoothing: opts.labelSmoothing, seed: opts.seed,
          recipe: recipe(opts),
          ...(opts.parent ? { initFrom: opts.parent } : {}),
          data: { dir: opts.data, images: data.files.length, skipped: data.skipped.length, heldOut: data.heldOut },
          wallSeconds: round(wall()), ...(cpuSeconds === null ? {} : { cpuSeconds: round(cpuSeconds) }), backend: `${backend.name} (${backend.detail})`,
          machine: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}`,
          ...(last ? { finalMetrics: roundAll(last) } : {}),
        },
      },
    });
    exportDir = opts.export;
  }
  trainer.dispose();
  average?.target.dispose();
  models.generator.dispose();
  models.discriminator.dispose();
  return { status, step, last, checkpoint: paths.checkpoint, exportDir, message };
}

/** The techniques a run trains with, as recorded in the manifest. */
export function recipe(opts: TrainOptions) {
  return {
    loss: opts.loss,
    diffAugment: [...opts.diffAugment],
    r1: opts.r1Gamma > 0 ? { gamma: opts.r1Gamma, every: opts.r1Every } : null,
    ema: opts.emaDecay === null ? null : { decay: opts.emaDecay, warmup: true },
  };
}

function describeRecipe(opts: TrainOptions): string {
  const r = recipe(opts);
  return [
    `${r.loss} loss`,
    r.diffAugment.length ? `DiffAugment ${r.diffAugment.join('+')}` : 'no DiffAugment',
    r.r1 ? `R1 gamma ${r.r1.gamma} every ${r.r1.every}` : 'no R1',
    r.ema ? `EMA of G ${r.ema.decay} (samples and export use it)` : 'no EMA',
    ...(opts.parent ? [`starting from ${opts.parent.name} in ${opts.parent.dir}`] : []),
  ].join(', ');
}

function trimLog(path: string, lastStep: number): void {
  const kept = readFileSync(path, 'utf8').split('\n').filter((line) => {
    try {
      return line !== '' && (JSON.parse(line) as { step: number }).step <= lastStep;
    } catch {
      return false; // a line cut short by a crash
    }
  });
  writeAtomic(path, kept.map((l) => `${l}\n`).join(''));
}

const round = (x: number) => Math.round(x * 10000) / 10000;
function roundAll<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'number' ? round(v) : v])) as T;
}
