/**
 * Fine-tuning a pretrained generator/discriminator pair on a few face crops:
 * the settings and their checks, the batch source (random picks with
 * augmentation), one step through the shared GanTrainer, and an ETA.
 * Isomorphic: the page's worker drives it, and Node can too.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { DEFAULT_AUGMENT, NO_AUGMENT, augmentBatch, validateAugment, type AugmentOptions } from './augment.ts';
import { DEFAULT_TRAIN, GanTrainer, type StepResult } from './gan.ts';
import { Rng, sampleLatents } from './latent.ts';
import { CHANNELS, IMAGE_SIZE } from './models.ts';

export interface FinetuneConfig {
  steps: number;
  batch: number;
  /** Lower than from-scratch training (2e-4): the pretrained weights are already good. */
  learningRate: number;
  beta1: number;
  augment: boolean;
  /** Redraw the live sample grid every this many steps. */
  sampleEvery: number;
  seed: number;
}

/** About a minute or two on a laptop GPU with the shipped 64-wide DCGAN. */
export const DEFAULT_FINETUNE: FinetuneConfig = {
  steps: 300,
  batch: 16,
  learningRate: 1e-4,
  beta1: DEFAULT_TRAIN.beta1,
  augment: true,
  sampleEvery: 10,
  seed: 1,
};

export const LIMITS = {
  steps: [1, 100_000],
  batch: [1, 128],
  learningRate: [1e-7, 1e-2],
  beta1: [0, 0.999],
  sampleEvery: [1, 10_000],
} as const;

/** Fill in defaults and reject values that cannot train, with the field's name in the message. */
export function finetuneConfig(partial: Partial<FinetuneConfig> = {}): FinetuneConfig {
  const cfg = { ...DEFAULT_FINETUNE, ...partial };
  for (const [key, [lo, hi]] of Object.entries(LIMITS) as [keyof typeof LIMITS, readonly [number, number]][]) {
    const v = cfg[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) {
      throw new Error(`${key} must be a number from ${lo} to ${hi}, got ${String(v)}`);
    }
  }
  for (const key of ['steps', 'batch', 'sampleEvery', 'seed'] as const) {
    if (!Number.isInteger(cfg[key])) throw new Error(`${key} must be a whole number, got ${cfg[key]}`);
  }
  return cfg;
}

const PIXELS = IMAGE_SIZE * IMAGE_SIZE * CHANNELS;

export function validateCrops(crops: readonly Float32Array[]): void {
  if (crops.length === 0) throw new Error('no face crops to fine-tune on: add at least one photo');
  crops.forEach((c, i) => {
    if (!(c instanceof Float32Array) || c.length !== PIXELS) throw new Error(`crop ${i} is not a ${IMAGE_SIZE}x${IMAGE_SIZE}x3 image`);
  });
}

/**
 * Real batches from the crops: every crop once per pass, in a fresh order
 * each pass, so small sets are seen evenly; augmented when enabled.
 */
export class CropBatches {
  private order: number[] = [];

  constructor(private readonly crops: readonly Float32Array[], private readonly rng: Rng, private readonly augment: AugmentOptions) {
    validateCrops(crops);
    validateAugment(augment);
  }

  private nextIndex(): number {
    if (this.order.length === 0) this.order = this.rng.shuffle(this.crops.map((_, i) => i));
    return this.order.pop()!;
  }

  next(batch: number): tf.Tensor4D {
    const picks = Array.from({ length: batch }, () => this.nextIndex());
    return tf.tensor4d(augmentBatch(this.crops, picks, this.rng, this.augment), [batch, IMAGE_SIZE, IMAGE_SIZE, CHANNELS]);
  }
}

/** Steps through one fine-tuning run; the caller owns the loop (pause, stop, progress). */
export class FinetuneSession {
  readonly config: FinetuneConfig;
  readonly trainer: GanTrainer;
  private readonly batches: CropBatches;
  private readonly rng: Rng;
  private readonly zDim: number;
  stepsDone = 0;

  constructor(readonly generator: LayersModel, readonly discriminator: LayersModel, crops: readonly Float32Array[], config: Partial<FinetuneConfig> = {}) {
    this.config = finetuneConfig(config);
    this.rng = new Rng(this.config.seed);
    this.batches = new CropBatches(crops, this.rng, this.config.augment ? DEFAULT_AUGMENT : NO_AUGMENT);
    this.zDim = generator.inputs[0].shape[1] as number;
    this.trainer = new GanTrainer(generator, discriminator, { learningRate: this.config.learningRate, beta1: this.config.beta1 });
  }

  get finished(): boolean {
    return this.stepsDone >= this.config.steps;
  }

  async step(): Promise<StepResult> {
    const real = this.batches.next(this.config.batch);
    const z = tf.tensor2d(sampleLatents(this.rng, this.config.batch, this.zDim), [this.config.batch, this.zDim]);
    try {
      const result = await this.trainer.step(real, z);
      this.stepsDone++;
      return result;
    } finally {
      real.dispose();
      z.dispose();
    }
  }

  dispose(): void {
    this.trainer.dispose();
  }
}

/**
 * Time left from the recent pace: an exponential average of step times,
 * ignoring the first step (shader compilation makes it many times slower).
 */
export class EtaEstimator {
  private avgMs: number | null = null;
  private samples = 0;

  constructor(private readonly smoothing = 0.15) {}

  record(stepMs: number): void {
    this.samples++;
    if (this.samples === 1 && stepMs > 0) {
      this.avgMs = stepMs;
      return;
    }
    if (this.samples === 2) this.avgMs = stepMs;
    else this.avgMs = this.avgMs! + this.smoothing * (stepMs - this.avgMs!);
  }

  stepsPerSecond(): number | null {
    return this.avgMs && this.avgMs > 0 ? 1000 / this.avgMs : null;
  }

  secondsLeft(stepsLeft: number): number | null {
    return this.avgMs === null ? null : (stepsLeft * this.avgMs) / 1000;
  }
}

/** "1 min 05 s", "42 s": for the progress line. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return 'estimating…';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** Mean absolute difference between two models' weights of the same layout (how far fine-tuning moved G). */
export async function meanWeightChange(a: LayersModel, b: LayersModel): Promise<number> {
  const wa = a.getWeights(), wb = b.getWeights();
  if (wa.length !== wb.length) throw new Error('models have different weight layouts');
  let sum = 0, count = 0;
  for (let i = 0; i < wa.length; i++) {
    const d = tf.tidy(() => tf.sum(tf.abs(tf.sub(wa[i], wb[i]))));
    sum += (await d.data())[0];
    d.dispose();
    count += wa[i].size;
  }
  return count ? sum / count : 0;
}
