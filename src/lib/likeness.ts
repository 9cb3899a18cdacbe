/**
 * Likeness by where the generator is sampled, not by what it draws: the
 * latent centre c of the shift z' = a*z + c is optimised so that faces drawn
 * from it carry the person's face descriptor (their photos' mean), with G
 * left as it is. G's weights are not touched, so the faces stay exactly as
 * clean as G's own; the shift then bakes into G's first Dense layer like
 * any other (latent-shift.ts).
 *
 * Why not only the mean of the photos' pivots: a pivot reproduces a photo's
 * pixels (pose, light, background) as much as the person, so their mean
 * lands on an average face. Fitting c through the recogniser pulls along
 * the directions that carry identity, measured on fresh random z each step,
 * so c works for the whole distribution rather than for a few latents.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { FaceEmbedder } from './identity.ts';
import { Rng, sampleLatents } from './latent.ts';
import type { LatentShift } from './latent-shift.ts';

export interface LikenessFitConfig {
  /** Adam steps on c. */
  steps: number;
  /** Random latents per step. */
  batch: number;
  learningRate: number;
  /** a in z' = a*z + c: how much of the random latent is kept (variety). */
  scale: number;
  /**
   * Weight of keeping |z'| where G was trained (|z|^2 ~ zDim): c may use
   * the (1 - a^2) share of the norm that the scale gives up, and pays for more.
   */
  priorWeight: number;
  /**
   * Descriptor distance under which a sample is not pulled any closer: the
   * fit moves the faces that do not yet look like the person and leaves the
   * variety of those that do (a plain mean distance shrinks it).
   */
  margin: number;
  seed: number;
}

export const DEFAULT_LIKENESS_FIT: LikenessFitConfig = {
  steps: 60,
  batch: 8,
  learningRate: 0.05,
  scale: 0.9,
  priorWeight: 1,
  margin: 0.4,
  seed: 7,
};

/** Fits the centre step by step; the caller owns the loop (progress, pause). */
export class LikenessFit {
  readonly config: LikenessFitConfig;
  private readonly zDim: number;
  private readonly c: tf.Variable;
  private readonly target: tf.Tensor2D;
  private readonly opt: tf.AdamOptimizer;
  private readonly rng: Rng;
  /** c as of the last step, read back asynchronously (the live samples and a stop mid-fit use it). */
  private current: Float32Array;
  stepsDone = 0;
  lastLoss = NaN;

  /**
   * `photos` [N, size, size, 3] in [-1, 1] (the generator's size): the person; `start`: the centre to
   * start from (e.g. pull * mean of the pivots), zDim values.
   */
  constructor(
    private readonly generator: LayersModel,
    private readonly embed: FaceEmbedder,
    photos: tf.Tensor4D,
    start: Float32Array,
    config: Partial<LikenessFitConfig> = {},
  ) {
    this.config = { ...DEFAULT_LIKENESS_FIT, ...config };
    this.zDim = generator.inputs[0].shape[1] as number;
    if (start.length !== this.zDim)
      throw new Error(`likeness start has ${start.length} values, the generator takes ${this.zDim}`);
    const { steps, batch, learningRate, scale, priorWeight, margin } = this.config;
    if (!Number.isInteger(steps) || steps < 0)
      throw new Error(`likeness steps must be a whole number >= 0, got ${steps}`);
    if (!Number.isInteger(batch) || batch < 1)
      throw new Error(`likeness batch must be a whole number >= 1, got ${batch}`);
    if (!(learningRate > 0) || !(scale >= 0 && scale <= 1) || !(priorWeight >= 0) || !(margin >= 0)) {
      throw new Error('likeness learningRate must be > 0, scale from 0 to 1, priorWeight and margin >= 0');
    }
    this.current = start.slice();
    const initial = tf.tensor2d(start, [1, this.zDim]);
    this.c = tf.variable(initial, true);
    initial.dispose();
    this.target = tf.tidy(() => tf.mean(embed(photos), 0, true) as tf.Tensor2D);
    this.opt = tf.train.adam(learningRate, 0.9, 0.999, 1e-8);
    this.rng = new Rng(this.config.seed);
  }

  get finished(): boolean {
    return this.stepsDone >= this.config.steps;
  }

  /** One Adam step on c; returns the loss before it (mean squared descriptor distance beyond the margin, plus the norm term). */
  async step(): Promise<number> {
    const { batch, scale, priorWeight, margin } = this.config;
    const z = tf.tensor2d(sampleLatents(this.rng, batch, this.zDim), [batch, this.zDim]);
    const budget = 1 - scale * scale;
    const loss = tf.tidy(
      () =>
        this.opt.minimize(
          () => {
            const shifted = tf.add(tf.mul(z, scale), this.c) as tf.Tensor2D;
            const faces = this.generator.apply(shifted, { training: false }) as tf.Tensor4D;
            const d2 = tf.sum(tf.squaredDifference(this.embed(faces), this.target), 1);
            const d = tf.mean(tf.relu(tf.sub(d2, margin * margin)));
            const excess = tf.relu(tf.sub(tf.div(tf.sum(tf.square(this.c)), this.zDim), budget));
            return tf.add(d, tf.mul(tf.square(excess), priorWeight * this.zDim)) as tf.Scalar;
          },
          true,
          [this.c],
        )!,
    );
    z.dispose();
    [this.lastLoss] = await loss.data();
    this.current = (await this.c.data()).slice() as Float32Array;
    loss.dispose();
    this.stepsDone++;
    if (!Number.isFinite(this.lastLoss)) throw new Error(`likeness loss is not finite (${this.lastLoss})`);
    return this.lastLoss;
  }

  /** The shift as fitted so far: z' = scale*z + c (pull 1). */
  shift(): LatentShift {
    return { scale: this.config.scale, pull: 1, centre: this.current.slice() };
  }

  dispose(): void {
    tf.dispose([this.c, this.target]);
    this.opt.dispose();
  }
}
