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
import {
  buildGan,
  imageSize,
  isArch,
  isImageSize,
  modelConfig,
  type GanModels,
  type ModelConfig,
} from '../src/lib/models.ts';
import { growGan } from '../src/lib/growth.ts';
import { GanTrainer, NonFiniteLossError, generate, type StepResult } from '../src/lib/gan.ts';
import { WeightAverage, cloneModel } from '../src/lib/ema.ts';
import type { ModelManifest } from '../src/lib/weights.ts';
import { loadModelFile } from './model-files.ts';
import { Rng, latentBatch, sampleLatents } from '../src/lib/latent.ts';
import { gridRgba } from '../src/lib/images.ts';
import { BatchSampler, loadDataset, writeAtomic, type Dataset } from './data.ts';
import { loadCheckpoint, saveCheckpoint, type Optimizers, type RunState } from './checkpoint.ts';
import { exportModels } from './export.ts';
import type { TrainOptions } from './config.ts';
import { HELD_OUT_RULE } from './split.ts';

/** The sample grid always uses these seeds, so grids compare across steps and runs. */
export const SAMPLE_SEEDS = Array.from({ length: 64 }, (_, i) => i);

export interface Backend {
  name: string;
  detail: string;
}

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
type RunPaths = ReturnType<typeof runPaths>;

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
  const { lastUpsample, detailWidth } = manifest.model;
  const models: GanModels = {
    config: {
      ...modelConfig(arch, width, zDim, undefined, size),
      ...(lastUpsample ? { lastUpsample } : {}),
      ...(detailWidth ? { detailWidth } : {}),
    },
    generator: await loadModelFile(join(dir, manifest.generator.file)),
    discriminator: await loadModelFile(join(dir, manifest.discriminator.file)),
  };
  return {
    models,
    parent: { dir, name: manifest.name, ...(manifest.training ? { training: manifest.training } : {}) },
  };
}

/** A new run, or the saved one (its own options win over the command line, except how long to run and where to export). */
async function startModels(opts: TrainOptions, paths: RunPaths) {
  if (!opts.resume) {
    const rng = new Rng(opts.seed);
    if (opts.initFrom) {
      const loaded = await loadExported(opts.initFrom);
      // A grown pair's half-size D starts as the 64 px pair's own D: it already knows 64 px faces.
      const d64 = halfSizeWeight(opts) > 0 ? await startHalfSizeD(opts, loaded.models) : null;
      const models = await maybeGrow(loaded.models, opts);
      const own = {
        ...opts,
        arch: models.config.arch,
        width: models.config.width,
        zDim: models.config.zDim,
        size: imageSize(models.config),
        // G's last stage is the parent's, or the one it was grown with.
        gUpsample: models.config.lastUpsample ?? 'transposed',
        gDetailWidth: models.config.detailWidth ?? null,
        parent: loaded.parent,
      };
      return { opts: own, models, d64, state: null, rng, restore: noRestore, ema: null };
    }
    const models = buildGan({
      ...modelConfig(opts.arch, opts.width, opts.zDim, opts.seed, opts.size),
      ...(opts.gUpsample === 'transposed' ? {} : { lastUpsample: opts.gUpsample }),
      ...(opts.gDetailWidth ? { detailWidth: opts.gDetailWidth } : {}),
    });
    const d64 = halfSizeWeight(opts) > 0 ? await startHalfSizeD(opts, null) : null;
    return { opts, models, d64, state: null, rng, restore: noRestore, ema: null };
  }
  if (!existsSync(paths.checkpoint)) throw new ResumeError(`--resume: no checkpoint at ${paths.checkpoint}`);
  const ck = await loadCheckpoint<TrainOptions>(paths.checkpoint);
  const merged: TrainOptions = {
    ...ck.config,
    steps: opts.steps ?? (opts.epochs ? null : ck.config.steps),
    epochs: opts.steps ? null : (opts.epochs ?? ck.config.epochs),
    backend: opts.backend,
    convPrecision: opts.convPrecision,
    export: opts.export,
    exportDtype: opts.exportDtype,
    quiet: opts.quiet,
    maxMinutes: opts.maxMinutes,
    maxCpuMinutes: opts.maxCpuMinutes,
    out: opts.out,
    resume: true,
  };
  const config: ModelConfig = {
    ...modelConfig(merged.arch, merged.width, merged.zDim, undefined, merged.size ?? 64),
    // Checkpoints before --g-upsample existed drew with DCGAN's transposed convolution.
    ...(merged.gUpsample && merged.gUpsample !== 'transposed' ? { lastUpsample: merged.gUpsample } : {}),
    ...(merged.gDetailWidth ? { detailWidth: merged.gDetailWidth } : {}),
  };
  const models: GanModels = { config, generator: ck.generator, discriminator: ck.discriminator };
  if (halfSizeWeight(merged) > 0 && !ck.discriminator64)
    throw new ResumeError(`--resume: the checkpoint at ${paths.checkpoint} has no half-size D`);
  return {
    opts: merged,
    models,
    d64: ck.discriminator64 ?? null,
    state: ck.state,
    rng: new Rng(ck.state.rng),
    restore: ck.restoreOptimizers,
    ema: ck.ema ?? null,
  };
}

type Start = Awaited<ReturnType<typeof startModels>>;

const noRestore: (optimizers: Optimizers) => Promise<void> = async () => {};

/** The half-size D's weight in G's loss (checkpoints before it existed: none). */
const halfSizeWeight = (opts: TrainOptions) => opts.halfSizeD ?? 0;

/** The half-size D: a copy of a 64 px parent's D, else a new 64 px D of the run's architecture and width. */
async function startHalfSizeD(opts: TrainOptions, parent: GanModels | null): Promise<LayersModel> {
  if (parent && imageSize(parent.config) === 64) return cloneModel(parent.discriminator);
  const fresh = buildGan(modelConfig(opts.arch, opts.width, opts.zDim, opts.seed + 1, 64));
  fresh.generator.dispose();
  return fresh.discriminator;
}

export class ResumeError extends Error {}

/**
 * --init-from a 64 px pair with --size 128 grows it (src/lib/growth.ts); the same size is used as it is.
 * The new batch norm's statistics come from 256 fixed latents, so a grown start is reproducible.
 */
async function maybeGrow(
  models: GanModels,
  opts: Pick<TrainOptions, 'size' | 'seed' | 'gUpsample' | 'gDetailWidth'>,
): Promise<GanModels> {
  const { size, seed, gUpsample: lastUpsample } = opts;
  const from = imageSize(models.config);
  if (from === size) return models;
  if (from !== 64 || size !== 128)
    throw new ResumeError(`--init-from: a ${from} px pair cannot start a ${size} px run`);
  const z = tf.tensor2d(
    latentBatch(
      Array.from({ length: 256 }, (_, i) => 1_000_000 + i),
      models.config.zDim,
    ),
    [256, models.config.zDim],
  );
  try {
    return growGan(models, z, { seed, lastUpsample, ...(opts.gDetailWidth ? { detailWidth: opts.gDetailWidth } : {}) });
  } finally {
    z.dispose();
    models.generator.dispose();
    models.discriminator.dispose();
  }
}

/** A run, new or resumed, to its end (its length, a stop request, a spent budget or a diverged loss), then its export. */
export async function train(cliOpts: TrainOptions, backend: Backend, hooks: TrainHooks = {}): Promise<TrainOutcome> {
  const say = hooks.say ?? (() => {});
  const paths = runPaths(cliOpts.out);
  mkdirSync(paths.samples, { recursive: true });
  const start = await startModels(cliOpts, paths);
  const data = await loadRunData(start.opts, imageSize(start.models.config), hooks, say);
  const data64 = start.d64 ? await loadRunData(start.opts, 64, hooks, (l) => say(`half-size D's ${l}`)) : null;
  prepareRunFolder(start.opts, start.state, paths);
  const run = await Run.begin(start, data, data64, paths, say);
  announce(run, backend, say);
  hooks.onStart?.({ startStep: run.step, totalSteps: run.total, batch: run.opts.batch });

  const { status, message } = await trainSteps(run, hooks);
  if (status !== 'diverged') await run.finalSave();
  let exportDir: string | undefined;
  if ((status === 'finished' || status === 'budget') && run.opts.export) {
    await exportRun(run, data, backend, run.opts.export);
    exportDir = run.opts.export;
  }
  run.dispose();
  return { status, step: run.step, last: run.last, checkpoint: paths.checkpoint, exportDir, message };
}

/** The training images at the models' size (cached after the first run), and a line on what was used and skipped. */
async function loadRunData(
  opts: TrainOptions,
  size: number,
  hooks: TrainHooks,
  say: (line: string) => void,
): Promise<Dataset> {
  const data = await loadDataset(opts.data, {
    cacheDir: join(dirname(resolve(opts.out)), '.cache'),
    limit: opts.limit ?? undefined,
    onProgress: hooks.onDataProgress,
    size,
  });
  say(
    `data: ${data.files.length} training images from ${opts.data}${data.fromCache ? ' (cached)' : ''}; ` +
      `${data.heldOut} held out (${HELD_OUT_RULE}); ${data.skipped.length} skipped` +
      (data.tooSmall ? `; ${data.tooSmall} left out as smaller than ${data.size} px (never upsampled)` : ''),
  );
  for (const s of data.skipped) say(`skipped ${s.file}: ${s.reason}`);
  return data;
}

/** A new run records its options; a resumed one drops the log lines written after its checkpoint (they will be logged again). */
function prepareRunFolder(opts: TrainOptions, resumed: RunState | null, paths: RunPaths): void {
  if (!opts.resume) writeFileSync(paths.options, `${JSON.stringify(opts, null, 2)}\n`);
  if (resumed && existsSync(paths.log)) trimLog(paths.log, resumed.step);
}

/** The model, the recipe and where a resumed run picks up. */
function announce(run: Run, backend: Backend, say: (line: string) => void): void {
  const { opts, models } = run;
  say(
    `model: ${opts.arch} width ${opts.width} at ${imageSize(models.config)} px: G ${models.generator.countParams().toLocaleString('en-US')} params, ` +
      `D ${models.discriminator.countParams().toLocaleString('en-US')} params; backend ${backend.name} (${backend.detail})`,
  );
  say(`recipe: ${describeRecipe(opts)}`);
  if (run.resumed) say(`resumed at step ${run.step} of ${run.total}`);
}

/** Steps until the run's length, a stop request (checked after every step), a spent budget or a non-finite loss. */
async function trainSteps(run: Run, hooks: TrainHooks): Promise<{ status: TrainOutcome['status']; message?: string }> {
  const rate = new Throughput();
  while (run.step < run.total) {
    let result: StepResult;
    try {
      result = await run.trainStep();
    } catch (err) {
      if (!(err instanceof NonFiniteLossError)) throw err;
      return {
        status: 'diverged',
        message: `step ${run.step + 1}: ${err.message}; the last good checkpoint is kept at ${run.paths.checkpoint}`,
      };
    }
    const imagesPerSecond = rate.add(run.opts.batch);
    hooks.onStep?.({ step: run.step, totalSteps: run.total, result, imagesPerSecond });
    await run.afterStep(imagesPerSecond);
    // Steps resolve as microtasks; a macrotask turn lets signal handlers (Ctrl-C, SIGTERM) run.
    await new Promise((resolve) => setImmediate(resolve));
    if (hooks.shouldStop?.()) return { status: 'stopped' };
    if (run.clock.spent()) return { status: 'budget' };
  }
  return { status: 'finished' };
}

/**
 * Wall-clock and CPU time of a run, both carried over resumes, and its
 * budgets (--max-minutes for this process, --max-cpu-minutes in all). CPU
 * time counts every thread of this process (BLAS pools included), so
 * equal-compute comparisons hold on a machine shared with other work.
 */
class RunClock {
  private readonly t0 = performance.now();
  private readonly cpuAtStart = process.cpuUsage();
  private readonly wallBefore: number;
  /** CPU seconds before this process; null (unknown) for runs resumed from checkpoints older than CPU accounting. */
  readonly cpuBefore: number | null;
  private readonly deadline: number;
  private readonly cpuBudget: number;

  constructor(opts: TrainOptions, resumed: RunState | null) {
    this.wallBefore = resumed?.wallSeconds ?? 0;
    this.cpuBefore = resumed ? (resumed.cpuSeconds ?? null) : 0;
    this.deadline = opts.maxMinutes === null ? Infinity : this.t0 + opts.maxMinutes * 60_000;
    this.cpuBudget = opts.maxCpuMinutes === null ? Infinity : opts.maxCpuMinutes * 60;
  }

  wall(): number {
    return this.wallBefore + (performance.now() - this.t0) / 1000;
  }

  private cpuSinceStart(): number {
    const used = process.cpuUsage(this.cpuAtStart);
    return (used.user + used.system) / 1e6;
  }

  cpu(): number | null {
    return this.cpuBefore === null ? null : this.cpuBefore + this.cpuSinceStart();
  }

  /** Either budget spent (CPU time since this process started, when the total is unknown). */
  spent(): boolean {
    return performance.now() > this.deadline || (this.cpu() ?? this.cpuSinceStart()) > this.cpuBudget;
  }
}

/** Images per second, measured over windows of at least 2 s. */
class Throughput {
  private t = performance.now();
  private images = 0;
  private perSecond = 0;

  add(images: number): number {
    this.images += images;
    const now = performance.now();
    if (now - this.t > 2000) {
      this.perSecond = (this.images * 1000) / (now - this.t);
      this.t = now;
      this.images = 0;
    }
    return this.perSecond;
  }
}

/** A run's models, trainer and counters, and what it writes as it goes: the metrics log, sample grids, checkpoints. */
class Run {
  step: number;
  imagesSeen: number;
  last: StepResult | undefined;
  private readonly size: number;
  private readonly realBuf: Float32Array;
  private readonly realBuf64: Float32Array | null;

  private constructor(
    readonly opts: TrainOptions,
    readonly models: GanModels,
    readonly paths: RunPaths,
    readonly total: number,
    private readonly rng: Rng,
    private readonly trainer: GanTrainer,
    /** The moving average of G's weights, when the run keeps one. */
    private readonly average: WeightAverage | null,
    private readonly sampler: BatchSampler,
    /** Batches of 64 px photos for the half-size D, when the run has one. */
    private readonly sampler64: BatchSampler | null,
    readonly clock: RunClock,
    /** The checkpoint's state when the run resumed. */
    readonly resumed: RunState | null,
  ) {
    this.step = resumed?.step ?? 0;
    this.imagesSeen = resumed?.imagesSeen ?? 0;
    this.last = resumed?.last;
    this.size = imageSize(models.config);
    this.realBuf = new Float32Array(opts.batch * this.size * this.size * 3);
    this.realBuf64 = sampler64 ? new Float32Array(opts.batch * 64 * 64 * 3) : null;
  }

  static async begin(
    start: Start,
    data: Dataset,
    data64: Dataset | null,
    paths: RunPaths,
    say: (line: string) => void,
  ): Promise<Run> {
    const { opts, models, rng, state: resumed } = start;
    const trainer = new GanTrainer(
      models.generator,
      models.discriminator,
      {
        learningRate: opts.lr,
        // Checkpoints before this option existed trained D at G's rate.
        dLearningRate: opts.dLr ?? null,
        beta1: opts.beta1,
        labelSmoothing: opts.labelSmoothing,
        loss: opts.loss,
        diffAugment: opts.diffAugment,
        r1Gamma: opts.r1Gamma,
        r1Every: opts.r1Every,
        // Checkpoints before this option existed trained all of G.
        gTrainFrom: opts.gTrainFrom ?? null,
        halfSizeWeight: halfSizeWeight(opts),
      },
      rng,
      start.d64,
    );
    await start.restore({ d: trainer.optD, g: trainer.optG, d64: trainer.optD64 });
    trainer.stepsDone = resumed?.step ?? 0;
    // The average starts as a copy of G (a resume restores it); samples and the export use it.
    const average =
      opts.emaDecay === null
        ? null
        : new WeightAverage(
            models.generator,
            start.ema ?? (await cloneModel(models.generator)),
            { decay: opts.emaDecay, warmup: true },
            resumed?.emaUpdates ?? 0,
          );
    const sampler = new BatchSampler(data, rng, resumed?.sampler);
    const sampler64 = data64 ? new BatchSampler(data64, rng, resumed?.sampler64) : null;
    const clock = new RunClock(opts, resumed);
    if (clock.cpuBefore === null && opts.maxCpuMinutes !== null) {
      say('this checkpoint predates CPU-time accounting: --max-cpu-minutes counts from now');
    }
    return new Run(
      opts,
      models,
      paths,
      totalSteps(opts, data),
      rng,
      trainer,
      average,
      sampler,
      sampler64,
      clock,
      resumed,
    );
  }

  /** The generator samples and the export show: the average when the run keeps one. */
  get shown(): LayersModel {
    return this.average?.target ?? this.models.generator;
  }

  /** One optimisation step on the next batch (a NonFiniteLossError leaves the counters as they were). */
  async trainStep(): Promise<StepResult> {
    const { batch, zDim } = this.opts;
    const real = tf.tensor4d(this.sampler.next(batch, this.realBuf), [batch, this.size, this.size, 3]);
    const real64 = this.sampler64 && tf.tensor4d(this.sampler64.next(batch, this.realBuf64!), [batch, 64, 64, 3]);
    const z = tf.tensor2d(sampleLatents(this.rng, batch, zDim), [batch, zDim]);
    let result: StepResult;
    try {
      result = await this.trainer.step(real, z, real64);
    } finally {
      tf.dispose([real, z, ...(real64 ? [real64] : [])]);
    }
    this.last = result;
    this.average?.update();
    this.step++;
    this.imagesSeen += batch;
    return result;
  }

  /** What is due after a step: a metrics line, a sample grid, a checkpoint. */
  async afterStep(imagesPerSecond: number): Promise<void> {
    const { logEvery, sampleEvery, checkpointEvery } = this.opts;
    if (this.step % logEvery === 0 || this.step === this.total) this.logMetrics(imagesPerSecond);
    if (this.step % sampleEvery === 0) await this.sampleGrid();
    if (this.step % checkpointEvery === 0) await this.checkpoint();
  }

  private logMetrics(imagesPerSecond: number): void {
    const last = this.last!;
    const cpuSeconds = this.clock.cpu();
    appendFileSync(
      this.paths.log,
      `${JSON.stringify({
        step: this.step,
        epoch: this.sampler.epoch,
        d_loss: round(last.dLoss),
        g_loss: round(last.gLoss),
        d_real: round(last.dReal),
        d_fake: round(last.dFake),
        ...(last.dReal64 === undefined ? {} : { d_real64: round(last.dReal64), d_fake64: round(last.dFake64!) }),
        images_per_s: round(imagesPerSecond),
        wall_s: round(this.clock.wall()),
        ...(cpuSeconds === null ? {} : { cpu_s: round(cpuSeconds) }),
      })}\n`,
    );
  }

  private async sampleGrid(): Promise<void> {
    const grid = join(this.paths.samples, `step-${String(this.step).padStart(7, '0')}.png`);
    await writeSampleGrid(this.shown, this.opts.zDim, grid);
    copyFileSync(grid, this.paths.latestGrid);
  }

  state(): RunState {
    const cpuSeconds = this.clock.cpu();
    return {
      step: this.step,
      imagesSeen: this.imagesSeen,
      wallSeconds: this.clock.wall(),
      ...(cpuSeconds === null ? {} : { cpuSeconds }),
      rng: this.rng.getState(),
      sampler: this.sampler.snapshot(),
      ...(this.sampler64 ? { sampler64: this.sampler64.snapshot() } : {}),
      ...(this.last ? { last: this.last } : {}),
      ...(this.average ? { emaUpdates: this.average.updates } : {}),
    };
  }

  async checkpoint(): Promise<void> {
    await saveCheckpoint(
      this.paths.checkpoint,
      {
        config: this.opts,
        state: this.state(),
        generator: this.models.generator,
        discriminator: this.models.discriminator,
        ...(this.average ? { ema: this.average.target } : {}),
        ...(this.trainer.discriminator64 ? { discriminator64: this.trainer.discriminator64 } : {}),
      },
      { d: this.trainer.optD, g: this.trainer.optG, d64: this.trainer.optD64 },
    );
  }

  /** The end of a run that did not diverge: a checkpoint to resume from and the latest sample grid. */
  async finalSave(): Promise<void> {
    await this.checkpoint();
    await writeSampleGrid(this.shown, this.opts.zDim, this.paths.latestGrid);
  }

  dispose(): void {
    this.trainer.dispose();
    this.average?.target.dispose();
    this.models.generator.dispose();
    this.models.discriminator.dispose();
    this.trainer.discriminator64?.dispose();
  }
}

/** G (the average, when kept) and D for the site, with the manifest that says how they were trained. */
async function exportRun(run: Run, data: Dataset, backend: Backend, dir: string): Promise<void> {
  const { opts, models, step, imagesSeen, last } = run;
  const size = imageSize(models.config);
  const cpuSeconds = run.clock.cpu();
  await exportModels({
    dir,
    generator: run.shown,
    discriminator: models.discriminator,
    dtype: opts.exportDtype,
    sampleGridPng: run.paths.latestGrid,
    metricsLog: run.paths.log,
    manifest: {
      name: `facegan ${opts.arch}-${opts.width}${size === 64 ? '' : ` ${size}px`}`,
      // Less than one pass over the data is a smoke test, not a model: say so on the site.
      placeholder: imagesSeen < data.files.length,
      ...(imagesSeen < data.files.length
        ? { note: `short run (${step} steps, ${imagesSeen} images): a placeholder, not a trained model` }
        : {}),
      model: models.config,
      training: {
        steps: step,
        imagesSeen,
        epochs: round(imagesSeen / data.files.length),
        batch: opts.batch,
        learningRate: opts.lr,
        beta1: opts.beta1,
        labelSmoothing: opts.labelSmoothing,
        seed: opts.seed,
        recipe: recipe(opts),
        ...(opts.parent ? { initFrom: opts.parent } : {}),
        data: { dir: opts.data, images: data.files.length, skipped: data.skipped.length, heldOut: data.heldOut },
        wallSeconds: round(run.clock.wall()),
        ...(cpuSeconds === null ? {} : { cpuSeconds: round(cpuSeconds) }),
        backend: `${backend.name} (${backend.detail})`,
        machine: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}`,
        ...(last ? { finalMetrics: roundAll(last) } : {}),
      },
    },
  });
}

/** The techniques a run trains with, as recorded in the manifest. */
export function recipe(opts: TrainOptions) {
  return {
    loss: opts.loss,
    diffAugment: [...opts.diffAugment],
    r1: opts.r1Gamma > 0 ? { gamma: opts.r1Gamma, every: opts.r1Every } : null,
    ema: opts.emaDecay === null ? null : { decay: opts.emaDecay, warmup: true },
    ...(opts.gTrainFrom ? { gTrainFrom: opts.gTrainFrom } : {}),
    ...(opts.gUpsample === 'transposed' ? {} : { gUpsample: opts.gUpsample }),
    ...(opts.dLr !== null && opts.dLr !== undefined ? { dLearningRate: opts.dLr } : {}),
    ...(halfSizeWeight(opts) > 0 ? { halfSizeD: halfSizeWeight(opts) } : {}),
  };
}

function describeRecipe(opts: TrainOptions): string {
  const r = recipe(opts);
  return [
    `${r.loss} loss`,
    r.diffAugment.length ? `DiffAugment ${r.diffAugment.join('+')}` : 'no DiffAugment',
    r.r1 ? `R1 gamma ${r.r1.gamma} every ${r.r1.every}` : 'no R1',
    r.ema ? `EMA of G ${r.ema.decay} (samples and export use it)` : 'no EMA',
    ...(r.gTrainFrom ? [`G trained from ${r.gTrainFrom} on`] : []),
    ...(r.gUpsample === 'nearest' ? ['a resize-convolution (nearest, 3x3) last stage'] : []),
    ...(r.gUpsample === 'pyramid' ? ['G = the 64 px G doubled plus a detail branch (a Laplacian pyramid level)'] : []),
    ...(r.dLearningRate !== undefined ? [`D's learning rate ${r.dLearningRate}`] : []),
    ...(r.halfSizeD !== undefined
      ? [`a 64 px D on every 64 px photo judges G's images downscaled (weight ${r.halfSizeD})`]
      : []),
    ...(opts.parent ? [`starting from ${opts.parent.name} in ${opts.parent.dir}`] : []),
  ].join(', ');
}

function trimLog(path: string, lastStep: number): void {
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => {
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
