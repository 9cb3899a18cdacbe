/**
 * Latent projection (GAN inversion): find, for each photo, the latent z whose
 * generated face reconstructs it. Adam on z alone (the generator is fixed, in
 * inference mode), from the best of a few random starts, against a pixel loss
 * plus a feature loss on the discriminator's intermediate activations (which
 * care about shapes more than exact pixels), with a prior that keeps z at the
 * norm Gaussian latents have. Isomorphic and seeded: the page's worker, the
 * Node fine-tuner and later features (editing a photo) share it.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { generate } from './gan.ts';
import type { FaceEmbedder } from './identity.ts';
import { squaredDistances } from './identity.ts';
import { Rng, sampleLatents } from './latent.ts';
import { CHANNELS, discriminatorImageSize, generatorImageSize, type ImageSize } from './models.ts';
import { installLayerGradients } from './layer-gradients.ts';

export interface ProjectionConfig {
  /** Adam steps on z. */
  steps: number;
  learningRate: number;
  /** Weight of the discriminator-feature loss next to the pixel loss (0: pixels only). */
  featureWeight: number;
  /** Weight of the penalty on |z| / sqrt(zDim) straying from 1. */
  priorWeight: number;
  /** Random starts tried per photo; the one with the lowest loss (pixels, plus identity when given) is kept. */
  candidates: number;
  /** Weight of the squared face-descriptor distance, photo to face, when an identity embedder is given. */
  identityWeight: number;
  seed: number;
}

export const DEFAULT_PROJECTION: ProjectionConfig = {
  steps: 150,
  learningRate: 0.05,
  featureWeight: 1,
  priorWeight: 0.1,
  candidates: 64,
  identityWeight: 1,
  seed: 1,
};

/**
 * "Start from your photo" (one photo, in the page, on the main thread's
 * backend): pixels plus identity, no discriminator (the home page does not
 * load D), fewer steps and starts than fine-tuning's batch projection.
 * `npm run directions -- --projection-only` measures exactly this.
 */
export const PHOTO_PROJECTION: Partial<ProjectionConfig> = {
  steps: 60,
  candidates: 32,
  featureWeight: 0,
  identityWeight: 1,
};

/** Layers whose output is the feature loss's "perceptual" space, first one found wins (dcgan: 8x8 maps). */
const FEATURE_LAYERS = ['d_lrelu2', 'd_lrelu1', 'd_conv2'];

/**
 * A model from D's input to an intermediate activation, sharing D's weights
 * (no copy), or null when D has none of the known layers.
 */
export function featureExtractor(discriminator: LayersModel | null): LayersModel | null {
  if (!discriminator) return null;
  for (const name of FEATURE_LAYERS) {
    let layer: tfl.layers.Layer;
    try {
      layer = discriminator.getLayer(name);
    } catch {
      continue;
    }
    return tfl.model({
      inputs: discriminator.inputs,
      outputs: layer.output as tfl.SymbolicTensor,
      name: `features_${name}`,
    });
  }
  return null;
}

/** Pixel MSE plus featureWeight times feature MSE, per the batch (inputs [N, size, size, 3]). */
export function reconstructionLoss(
  fake: tf.Tensor4D,
  real: tf.Tensor4D,
  features: LayersModel | null,
  featureWeight: number,
): tf.Scalar {
  return tf.tidy(() => {
    let loss = tf.mean(tf.squaredDifference(fake, real)) as tf.Scalar;
    if (features && featureWeight > 0) {
      const ff = features.apply(fake, { training: false }) as tf.Tensor;
      const fr = features.apply(real, { training: false }) as tf.Tensor;
      loss = tf.add(loss, tf.mul(tf.mean(tf.squaredDifference(ff, fr)), featureWeight));
    }
    return loss;
  });
}

function checkConfig(c: ProjectionConfig): void {
  const ok = (v: number, lo: number, hi: number) => Number.isFinite(v) && v >= lo && v <= hi;
  if (!ok(c.steps, 0, 100_000) || !Number.isInteger(c.steps))
    throw new Error(`projection steps must be a whole number from 0 to 100000, got ${c.steps}`);
  if (!ok(c.learningRate, 1e-6, 10))
    throw new Error(`projection learningRate must be from 1e-6 to 10, got ${c.learningRate}`);
  if (!ok(c.featureWeight, 0, 1e6)) throw new Error(`projection featureWeight must be >= 0, got ${c.featureWeight}`);
  if (!ok(c.identityWeight, 0, 1e6)) throw new Error(`projection identityWeight must be >= 0, got ${c.identityWeight}`);
  if (!ok(c.priorWeight, 0, 1e6)) throw new Error(`projection priorWeight must be >= 0, got ${c.priorWeight}`);
  if (!ok(c.candidates, 1, 4096) || !Number.isInteger(c.candidates))
    throw new Error(`projection candidates must be a whole number from 1 to 4096, got ${c.candidates}`);
}

/**
 * Projects a set of photos (each size x size x 3 in [-1, 1], at the
 * generator's own size) step by step; the caller owns the loop (progress,
 * pause). All photos are optimised together as one batch.
 */
export class Projector {
  readonly config: ProjectionConfig;
  readonly count: number;
  readonly zDim: number;
  /** The side of the generator's faces, which the photos must have. */
  readonly size: ImageSize;
  private readonly targets: tf.Tensor4D;
  /** Created by `init()` (the first `step()`): picking the starts reads from the device, which must be async on WebGPU. */
  private z: tf.Variable | null = null;
  /** The latents as of the last step, read back asynchronously (never `dataSync`, which WebGPU in Node cannot do). */
  private current: Float32Array | null = null;
  private readonly opt: tf.AdamOptimizer;
  private readonly features: LayersModel | null;
  /** The face-identity term: the embedder and each photo's descriptor, or null without one. */
  private readonly identity: { embed: FaceEmbedder; targets: tf.Tensor2D } | null;
  stepsDone = 0;
  lastLoss = NaN;

  /**
   * `identity`, when given, adds the squared face-descriptor distance between
   * each photo and its face to the loss (and to the choice of start): pixels
   * and D's features carry pose, light and colour more than who it is.
   */
  constructor(
    readonly generator: LayersModel,
    discriminator: LayersModel | null,
    photos: readonly Float32Array[],
    config: Partial<ProjectionConfig> = {},
    identity?: FaceEmbedder,
  ) {
    this.config = { ...DEFAULT_PROJECTION, ...config };
    checkConfig(this.config);
    installLayerGradients();
    if (photos.length === 0) throw new Error('nothing to project: no photos');
    this.size = pairImageSize(generator, discriminator);
    photos.forEach((p, i) => {
      if (p.length !== this.pixels)
        throw new Error(`photo ${i} is not a ${this.size}x${this.size}x${CHANNELS} image, the generator's size`);
    });
    const pixels = this.pixels;
    this.count = photos.length;
    this.zDim = generator.inputs[0].shape[1] as number;
    const flat = new Float32Array(this.count * pixels);
    photos.forEach((p, i) => flat.set(p, i * pixels));
    this.targets = tf.tensor4d(flat, [this.count, this.size, this.size, CHANNELS]);
    this.features = featureExtractor(discriminator);
    this.identity =
      identity && this.config.identityWeight > 0
        ? { embed: identity, targets: tf.tidy(() => identity(this.targets)) }
        : null;
    this.opt = tf.train.adam(this.config.learningRate, 0.9, 0.999, 1e-8);
  }

  /** Values in one face. */
  private get pixels(): number {
    return this.size * this.size * CHANNELS;
  }

  /** Per photo, the random start (of `candidates`) whose face is nearest in pixels (and identity, when given). */
  private async initialLatents(): Promise<Float32Array> {
    const { candidates } = this.config;
    const pixels = this.pixels;
    const rng = new Rng(this.config.seed);
    const pool = sampleLatents(rng, candidates, this.zDim);
    const errors = tf.tidy(() => {
      const faces = generate(this.generator, tf.tensor2d(pool, [candidates, this.zDim]));
      // [count, candidates]: mean squared pixel error of every start against every photo.
      const f = tf.reshape(faces, [1, candidates, pixels]);
      const t = tf.reshape(this.targets, [this.count, 1, pixels]);
      const pixelErrors = tf.mean(tf.squaredDifference(f, t), 2);
      if (!this.identity) return pixelErrors;
      const d = this.identity.embed(faces);
      const dim = d.shape[1];
      const ids = tf.sum(
        tf.squaredDifference(
          tf.reshape(d, [1, candidates, dim]),
          tf.reshape(this.identity.targets, [this.count, 1, dim]),
        ),
        2,
      );
      return tf.add(pixelErrors, tf.mul(ids, this.config.identityWeight));
    });
    const best = tf.argMin(errors, 1);
    const picks = await best.data();
    tf.dispose([errors, best]);
    const out = new Float32Array(this.count * this.zDim);
    picks.forEach((c, i) => out.set(pool.subarray(c * this.zDim, (c + 1) * this.zDim), i * this.zDim));
    return out;
  }

  /** Pick each photo's start; `step()` does this itself, call it before reading `latents()` of a 0-step run. */
  async init(): Promise<void> {
    if (this.z) return;
    this.current = await this.initialLatents();
    const start = tf.tensor2d(this.current, [this.count, this.zDim]);
    this.z = tf.variable(start, true);
    start.dispose();
  }

  /** Whether the starts are picked, so that `latents()` has something to give. */
  get started(): boolean {
    return this.current !== null;
  }

  get finished(): boolean {
    return this.stepsDone >= this.config.steps;
  }

  /** One Adam step on every photo's z; returns the mean loss before it. */
  async step(): Promise<number> {
    await this.init();
    const z = this.z!;
    const loss = tf.tidy(
      () =>
        this.opt.minimize(
          () => {
            const fake = this.generator.apply(z, { training: false }) as tf.Tensor4D;
            let rec = reconstructionLoss(fake, this.targets, this.features, this.config.featureWeight);
            if (this.identity) {
              const ids = tf.mean(squaredDistances(this.identity.embed(fake), this.identity.targets));
              rec = tf.add(rec, tf.mul(ids, this.config.identityWeight));
            }
            const norm = tf.div(tf.norm(z, 'euclidean', 1), Math.sqrt(this.zDim));
            const prior = tf.mean(tf.square(tf.sub(norm, 1)));
            return tf.add(rec, tf.mul(prior, this.config.priorWeight)) as tf.Scalar;
          },
          true,
          [z],
        )!,
    );
    [this.lastLoss] = await loss.data();
    loss.dispose();
    this.current = (await z.data()) as Float32Array;
    this.stepsDone++;
    if (!Number.isFinite(this.lastLoss)) throw new Error(`projection loss is not finite (${this.lastLoss})`);
    return this.lastLoss;
  }

  /** The current latents, row-major [count, zDim] (a copy). */
  latents(): Float32Array {
    if (!this.current) throw new Error('Projector: call init() or step() before latents()');
    return this.current.slice();
  }

  /** The generator's faces for the current latents, [count * size * size * 3] in [-1, 1]. */
  async reconstructions(generator: LayersModel = this.generator): Promise<Float32Array> {
    await this.init();
    const out = tf.tidy(() => generator.apply(this.z!, { training: false }) as tf.Tensor);
    const data = (await out.data()) as Float32Array;
    out.dispose();
    return data;
  }

  dispose(): void {
    tf.dispose([this.targets, ...(this.z ? [this.z] : []), ...(this.identity ? [this.identity.targets] : [])]);
    this.z = null;
    this.opt.dispose();
  }
}

/**
 * The side of the generator's faces, which photos must have and the discriminator (when given, for its
 * features) must read; a readable error when the two models disagree.
 */
export function pairImageSize(generator: LayersModel, discriminator: LayersModel | null): ImageSize {
  const size = generatorImageSize(generator);
  const dSize = discriminator ? discriminatorImageSize(discriminator) : size;
  if (dSize !== size)
    throw new Error(`the discriminator reads ${dSize ?? 'no'} px images, the generator draws ${size} px`);
  return size;
}

/** Project photos to latents in one call (Node, tests): latents [count, zDim] and their reconstructions. */
export async function projectPhotos(
  generator: LayersModel,
  discriminator: LayersModel | null,
  photos: readonly Float32Array[],
  config: Partial<ProjectionConfig> = {},
  identity?: FaceEmbedder,
): Promise<{ latents: Float32Array; reconstructions: Float32Array; loss: number }> {
  const p = new Projector(generator, discriminator, photos, config, identity);
  try {
    await p.init();
    while (!p.finished) await p.step();
    return { latents: p.latents(), reconstructions: await p.reconstructions(), loss: p.lastLoss };
  } finally {
    p.dispose();
  }
}

/** The mean of latent rows [count, zDim]. */
export function meanLatent(latents: Float32Array, zDim: number): Float32Array {
  const count = latents.length / zDim;
  if (!Number.isInteger(count) || count === 0) throw new Error('meanLatent: no whole rows');
  const m = new Float32Array(zDim);
  for (let r = 0; r < count; r++) for (let k = 0; k < zDim; k++) m[k] += latents[r * zDim + k];
  for (let k = 0; k < zDim; k++) m[k] /= count;
  return m;
}
