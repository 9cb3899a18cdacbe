/**
 * The GAN training step of the Node trainer (`npm run train`), on any
 * TensorFlow.js backend, the browser's included (wasm-training.ts adds the
 * gradients WASM lacks). As in the original write-up: first D learns on real images
 * (label 1) and generated ones (label 0); then G learns through D, with D's
 * weights frozen, towards D's score 1.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { diffAugment, type DiffAugmentPolicy } from './diffaugment.ts';
import type { Rng } from './latent.ts';
import { registerSecondOrderGradients } from './second-order.ts';
import { installLayerGradients } from './layer-gradients.ts';

export const LOSSES = ['bce', 'hinge'] as const;
export type GanLoss = (typeof LOSSES)[number];

export interface TrainConfig {
  learningRate: number;
  /** D's own learning rate; null: the same as G's. A lower one holds back a D that wins too soon (d_fake near 0). */
  dLearningRate: number | null;
  beta1: number;
  beta2: number;
  /** One-sided label smoothing: real targets become 1 - labelSmoothing (0 disables; bce only). */
  labelSmoothing: number;
  /** bce: the original non-saturating cross-entropy; hinge: SAGAN/BigGAN's hinge loss. */
  loss: GanLoss;
  /** DiffAugment transforms applied to every image D sees, real and fake, in both steps (empty: none). */
  diffAugment: DiffAugmentPolicy;
  /** R1 penalty weight gamma on D's input gradient at real images (Mescheder et al. 2018); 0 disables. */
  r1Gamma: number;
  /** Apply R1 every this many D steps, scaled up to match (StyleGAN2's lazy regularisation). */
  r1Every: number;
  /**
   * G's layers before the one of this name stay fixed; null trains all of G. A pair grown to 128 px
   * can keep the 64 px model's structure (learnt on every photo) and let only the new stage learn detail.
   */
  gTrainFrom: string | null;
  /**
   * Weight of the half-size D's term in G's loss (0: no such term). A 128 px G has 4,248 full-size photos to learn
   * from, a 64 px one 12,976; a second D that judges G's output area-downscaled to 64 px against every 64 px photo
   * keeps G's faces as good at 64 as the bigger set makes them, while the full-size D teaches the detail.
   */
  halfSizeWeight: number;
}

export const DEFAULT_TRAIN: TrainConfig = {
  learningRate: 2e-4,
  dLearningRate: null,
  beta1: 0.5,
  beta2: 0.999,
  labelSmoothing: 0,
  loss: 'bce',
  diffAugment: [],
  r1Gamma: 0,
  r1Every: 16,
  gTrainFrom: null,
  halfSizeWeight: 0,
};

export interface StepResult {
  dLoss: number;
  gLoss: number;
  /** D's mean probability on real images, D(x). */
  dReal: number;
  /** D's mean probability on generated images, D(G(z)), after D's update. */
  dFake: number;
  /** The half-size D's mean probabilities on real 64 px photos and on G's downscaled images, when there is one. */
  dReal64?: number;
  dFake64?: number;
}

/** The 2x2 area average: what a 128 px image looks like to a 64 px model. */
export function halfSizeOf(images: tf.Tensor): tf.Tensor4D {
  return tf.avgPool(images as tf.Tensor4D, 2, 2, 'valid');
}

export class NonFiniteLossError extends Error {
  constructor(readonly result: StepResult) {
    super(`loss is not finite (D ${result.dLoss}, G ${result.gLoss}): stopping before it spreads into the weights`);
    this.name = 'NonFiniteLossError';
  }
}

/** Mean binary cross-entropy of logits against a constant label; stable for any logit. */
export function bceWithLogits(logits: tf.Tensor, label: number): tf.Scalar {
  return tf.tidy(() => {
    // max(x, 0) - x*y + log(1 + exp(-|x|))
    const x = logits;
    const loss = tf.add(tf.sub(tf.relu(x), tf.mul(x, label)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
    return tf.mean(loss) as tf.Scalar;
  });
}

/** Hinge loss for D: real logits pushed above 1, fake below -1. */
export function hingeD(realLogits: tf.Tensor, fakeLogits: tf.Tensor): tf.Scalar {
  return tf.tidy(
    () => tf.add(tf.mean(tf.relu(tf.sub(1, realLogits))), tf.mean(tf.relu(tf.add(1, fakeLogits)))) as tf.Scalar,
  );
}

const trainableVars = (m: LayersModel) => m.trainableWeights.map((w) => w.read() as tf.Variable);

/**
 * The variables of the layer named `from` and of every layer downstream of it in `m`'s graph (all of G when
 * `from` is null): in a chain, the layers from it on; in a graph with branches (the pyramid generator), only
 * its own branch, not a sibling that comes later in `m.layers`' depth order.
 */
export function trainableFrom(m: LayersModel, from: string | null): tf.Variable[] {
  if (from === null) return trainableVars(m);
  const first = m.layers.find((l) => l.name === from);
  if (!first)
    throw new Error(`no layer named "${from}" in ${m.name}: layers are ${m.layers.map((l) => l.name).join(', ')}`);
  const inModel = new Set(m.layers);
  const reached = new Set([first]);
  const queue = [first];
  while (queue.length > 0) {
    for (const node of queue.shift()!.outboundNodes) {
      const next = node.outboundLayer;
      if (next && inModel.has(next) && !reached.has(next)) {
        reached.add(next);
        queue.push(next);
      }
    }
  }
  // In m.layers' order, so that optimiser state lines up with the same variables on every call.
  return m.layers.filter((l) => reached.has(l)).flatMap((l) => l.trainableWeights.map((w) => w.read() as tf.Variable));
}

export class GanTrainer {
  readonly optD: tf.AdamOptimizer;
  readonly optG: tf.AdamOptimizer;
  /** The half-size D's optimiser (D's learning rate), when there is one. */
  readonly optD64: tf.AdamOptimizer | null;
  readonly config: TrainConfig;
  /** Steps taken (set it when resuming: lazy R1 runs on every r1Every-th step). */
  stepsDone = 0;
  /** Draws DiffAugment's random parameters; required when a policy is set. */
  private readonly rng: Rng | null;
  /** The variables the G step updates. */
  private readonly gVars: tf.Variable[];

  constructor(
    readonly generator: LayersModel,
    readonly discriminator: LayersModel,
    config: Partial<TrainConfig> = {},
    rng: Rng | null = null,
    /** Judges G's output at half size when config.halfSizeWeight > 0. */
    readonly discriminator64: LayersModel | null = null,
  ) {
    this.config = { ...DEFAULT_TRAIN, ...config };
    if (this.config.halfSizeWeight > 0 && !discriminator64)
      throw new Error('GanTrainer: halfSizeWeight > 0 needs a half-size discriminator');
    if (this.config.diffAugment.length > 0 && !rng)
      throw new Error('GanTrainer: DiffAugment needs an Rng for its random draws');
    if (!Number.isInteger(this.config.r1Every) || this.config.r1Every < 1)
      throw new Error(`GanTrainer: r1Every must be a whole number >= 1, got ${this.config.r1Every}`);
    if (!(this.config.r1Gamma >= 0)) throw new Error(`GanTrainer: r1Gamma must be >= 0, got ${this.config.r1Gamma}`);
    this.rng = rng;
    this.gVars = trainableFrom(generator, this.config.gTrainFrom);
    installLayerGradients();
    if (this.config.r1Gamma > 0) registerSecondOrderGradients();
    const { learningRate, dLearningRate, beta1, beta2 } = this.config;
    // epsilon 1e-8 as in PyTorch's Adam, which DCGAN's hyper-parameters were tuned with.
    this.optD = tf.train.adam(dLearningRate ?? learningRate, beta1, beta2, 1e-8);
    this.optG = tf.train.adam(learningRate, beta1, beta2, 1e-8);
    this.optD64 = discriminator64 ? tf.train.adam(dLearningRate ?? learningRate, beta1, beta2, 1e-8) : null;
  }

  private d64(x: tf.Tensor): tf.Tensor {
    return this.discriminator64!.apply(x, { training: true }) as tf.Tensor;
  }

  private d(x: tf.Tensor): tf.Tensor {
    return this.discriminator.apply(x, { training: true }) as tf.Tensor;
  }

  private g(z: tf.Tensor): tf.Tensor {
    return this.generator.apply(z, { training: true }) as tf.Tensor;
  }

  /** What D sees: the image after this step's DiffAugment draw, if any. */
  private aug(x: tf.Tensor): tf.Tensor4D {
    return this.rng ? diffAugment(x as tf.Tensor4D, this.rng, this.config.diffAugment) : (x as tf.Tensor4D);
  }

  private dLoss(realLogits: tf.Tensor, fakeLogits: tf.Tensor): tf.Scalar {
    if (this.config.loss === 'hinge') return hingeD(realLogits, fakeLogits);
    return tf.add(bceWithLogits(realLogits, 1 - this.config.labelSmoothing), bceWithLogits(fakeLogits, 0)) as tf.Scalar;
  }

  /** Non-saturating G loss for bce; -mean(D(G(z))) for hinge. */
  private gLoss(fakeLogits: tf.Tensor): tf.Scalar {
    return this.config.loss === 'hinge' ? (tf.neg(tf.mean(fakeLogits)) as tf.Scalar) : bceWithLogits(fakeLogits, 1);
  }

  /** (gamma / 2) E ||grad_x D(x)||^2 at the images D just saw as real, times r1Every (lazy). */
  private r1Penalty(real: tf.Tensor): tf.Scalar {
    const grad = tf.grad((x: tf.Tensor) => tf.sum(this.d(x)))(real);
    const perImage = tf.sum(tf.square(grad), [1, 2, 3]);
    return tf.mul(tf.mean(perImage), (this.config.r1Gamma / 2) * this.config.r1Every) as tf.Scalar;
  }

  private r1Due(): boolean {
    return this.config.r1Gamma > 0 && this.stepsDone % this.config.r1Every === 0;
  }

  /**
   * One D update then one G update. `real` is [N, 64, 64, 3] in [-1, 1], `z`
   * is [M, zDim]. Inputs are not disposed. Throws NonFiniteLossError
   * (after the update) if a loss is NaN or infinite.
   */
  async step(real: tf.Tensor4D, z: tf.Tensor2D, real64: tf.Tensor4D | null = null): Promise<StepResult> {
    const withR1 = this.r1Due();
    const halfSize = this.optD64 !== null;
    if (halfSize !== (real64 !== null))
      throw new Error('GanTrainer.step: pass 64 px real images exactly when the trainer has a half-size D');
    const stats = tf.tidy(() => {
      // D step. The fakes are made outside D's tape: no gradient flows into G here.
      // Augmentations are drawn outside the tapes too; they are constants to the optimiser.
      const fake = this.g(z);
      const realSeen = this.aug(real);
      const fakeSeen = this.aug(fake);
      let dRealMean!: tf.Scalar;
      const dLoss = this.optD.minimize(
        () => {
          const realLogits = this.d(realSeen);
          const fakeLogits = this.d(fakeSeen);
          dRealMean = tf.keep(tf.mean(tf.sigmoid(realLogits)));
          const loss = this.dLoss(realLogits, fakeLogits);
          return withR1 ? (tf.add(loss, this.r1Penalty(realSeen)) as tf.Scalar) : loss;
        },
        true,
        trainableVars(this.discriminator),
      )!;

      // The half-size D's step, on the same fakes.
      const half = halfSize ? this.halfSizeDStep(real64!, fake) : [];

      // G step: only G's variables (those from gTrainFrom on) are updated, so both Ds are frozen here. G's
      // gradient flows back through the augmentation (it is differentiable).
      let dFakeMean!: tf.Scalar;
      let dFake64Mean: tf.Scalar | null = null;
      const gLoss = this.optG.minimize(
        () => {
          const images = this.g(z);
          const logits = this.d(this.aug(images));
          dFakeMean = tf.keep(tf.mean(tf.sigmoid(logits)));
          const loss = this.gLoss(logits);
          if (!halfSize) return loss;
          const logits64 = this.d64(this.aug(halfSizeOf(images)));
          dFake64Mean = tf.keep(tf.mean(tf.sigmoid(logits64))) as tf.Scalar;
          return tf.add(loss, tf.mul(this.gLoss(logits64), this.config.halfSizeWeight)) as tf.Scalar;
        },
        true,
        this.gVars,
      )!;
      const out = tf.stack([dLoss, gLoss, dRealMean, dFakeMean, ...half, ...(dFake64Mean ? [dFake64Mean] : [])]);
      // tf.keep lifted the means out of the optimizers' scopes; release them here.
      tf.dispose([dRealMean, dFakeMean, ...half, ...(dFake64Mean ? [dFake64Mean] : [])]);
      return out;
    });
    // One read per step: every read is a sync point on GPU backends.
    const [dLoss, gLoss, dReal, dFake, dReal64, dFake64] = Array.from(await stats.data());
    stats.dispose();
    const result: StepResult = { dLoss, gLoss, dReal, dFake, ...(halfSize ? { dReal64, dFake64 } : {}) };
    this.stepsDone++;
    if (!Number.isFinite(dLoss) || !Number.isFinite(gLoss)) throw new NonFiniteLossError(result);
    return result;
  }

  /**
   * The half-size D's update: the full-size photos' 64 px set (real64) against G's images area-downscaled.
   * Returns its mean probability on the real images (kept for the caller to read and dispose).
   */
  private halfSizeDStep(real64: tf.Tensor4D, fake: tf.Tensor): tf.Scalar[] {
    const realSeen = this.aug(real64);
    const fakeSeen = this.aug(halfSizeOf(fake));
    let dRealMean!: tf.Scalar;
    this.optD64!.minimize(
      () => {
        const realLogits = this.d64(realSeen);
        dRealMean = tf.keep(tf.mean(tf.sigmoid(realLogits)));
        return this.dLoss(realLogits, this.d64(fakeSeen));
      },
      false,
      trainableVars(this.discriminator64!),
    );
    return [dRealMean];
  }

  dispose(): void {
    this.optD.dispose();
    this.optG.dispose();
    this.optD64?.dispose();
  }
}

/**
 * Faces per G call in `generate`: a 128 px G's last convolution on a batch of 128 needs a 302 M-value im2col
 * matrix on WebGL, over the 8192x8192 texture that software WebGL and many phones allow; 32 need a quarter.
 */
export const GENERATE_CHUNK = 32;

/** Run G in inference mode on latents [N, zDim], GENERATE_CHUNK at a time; returns [N, size, size, 3] in [-1, 1]. */
export function generate(generator: LayersModel, z: tf.Tensor2D): tf.Tensor4D {
  return tf.tidy(() => {
    const n = z.shape[0];
    if (n <= GENERATE_CHUNK) return generator.apply(z, { training: false }) as tf.Tensor4D;
    const parts: tf.Tensor4D[] = [];
    for (let at = 0; at < n; at += GENERATE_CHUNK) {
      const zs = tf.slice(z, [at, 0], [Math.min(GENERATE_CHUNK, n - at), -1]);
      parts.push(generator.apply(zs, { training: false }) as tf.Tensor4D);
    }
    return tf.concat(parts, 0);
  });
}
