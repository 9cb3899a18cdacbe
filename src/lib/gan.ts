/**
 * The GAN training step, shared by the Node trainer and the in-page
 * fine-tuner. As in the original write-up: first D learns on real images
 * (label 1) and generated ones (label 0); then G learns through D, with D's
 * weights frozen, towards D's score 1.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';

export interface TrainConfig {
  learningRate: number;
  beta1: number;
  beta2: number;
  /** One-sided label smoothing: real targets become 1 - labelSmoothing (0 disables). */
  labelSmoothing: number;
}

export const DEFAULT_TRAIN: TrainConfig = { learningRate: 2e-4, beta1: 0.5, beta2: 0.999, labelSmoothing: 0 };

export interface StepResult {
  dLoss: number;
  gLoss: number;
  /** D's mean probability on real images, D(x). */
  dReal: number;
  /** D's mean probability on generated images, D(G(z)), after D's update. */
  dFake: number;
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

const trainableVars = (m: LayersModel) => m.trainableWeights.map((w) => w.read() as tf.Variable);

export class GanTrainer {
  readonly optD: tf.AdamOptimizer;
  readonly optG: tf.AdamOptimizer;
  readonly config: TrainConfig;

  constructor(readonly generator: LayersModel, readonly discriminator: LayersModel, config: Partial<TrainConfig> = {}) {
    this.config = { ...DEFAULT_TRAIN, ...config };
    const { learningRate, beta1, beta2 } = this.config;
    // epsilon 1e-8 as in PyTorch's Adam, which DCGAN's hyper-parameters were tuned with.
    this.optD = tf.train.adam(learningRate, beta1, beta2, 1e-8);
    this.optG = tf.train.adam(learningRate, beta1, beta2, 1e-8);
  }

  private d(x: tf.Tensor): tf.Tensor {
    return this.discriminator.apply(x, { training: true }) as tf.Tensor;
  }

  private g(z: tf.Tensor): tf.Tensor {
    return this.generator.apply(z, { training: true }) as tf.Tensor;
  }

  /**
   * One D update then one G update. `real` is [N, 64, 64, 3] in [-1, 1], `z`
   * is [M, zDim]. Inputs are not disposed. Throws NonFiniteLossError
   * (after the update) if a loss is NaN or infinite.
   */
  async step(real: tf.Tensor4D, z: tf.Tensor2D): Promise<StepResult> {
    const stats = tf.tidy(() => {
      const realTarget = 1 - this.config.labelSmoothing;
      // D step. The fakes are made outside D's tape: no gradient flows into G here.
      const fake = this.g(z);
      let dRealMean!: tf.Scalar;
      const dLoss = this.optD.minimize(() => {
        const realLogits = this.d(real);
        const fakeLogits = this.d(fake);
        dRealMean = tf.keep(tf.mean(tf.sigmoid(realLogits)));
        return tf.add(bceWithLogits(realLogits, realTarget), bceWithLogits(fakeLogits, 0)) as tf.Scalar;
      }, true, trainableVars(this.discriminator))!;

      // G step: only G's variables are updated, so D is frozen here.
      let dFakeMean!: tf.Scalar;
      const gLoss = this.optG.minimize(() => {
        const logits = this.d(this.g(z));
        dFakeMean = tf.keep(tf.mean(tf.sigmoid(logits)));
        return bceWithLogits(logits, 1);
      }, true, trainableVars(this.generator))!;
      const out = tf.stack([dLoss, gLoss, dRealMean, dFakeMean]);
      // tf.keep lifted the means out of the optimizers' scopes; release them here.
      tf.dispose([dRealMean, dFakeMean]);
      return out;
    });
    // One read per step: every read is a sync point on GPU backends.
    const [dLoss, gLoss, dReal, dFake] = Array.from(await stats.data());
    stats.dispose();
    const result = { dLoss, gLoss, dReal, dFake };
    if (!Number.isFinite(dLoss) || !Number.isFinite(gLoss)) throw new NonFiniteLossError(result);
    return result;
  }

  dispose(): void {
    this.optD.dispose();
    this.optG.dispose();
  }
}

/** Run G in inference mode on latents [N, zDim]; returns [N, 64, 64, 3] in [-1, 1]. */
export function generate(generator: LayersModel, z: tf.Tensor2D): tf.Tensor4D {
  return tf.tidy(() => generator.apply(z, { training: false }) as tf.Tensor4D);
}
