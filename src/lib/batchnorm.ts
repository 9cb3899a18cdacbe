/**
 * Training-mode batch normalization with its gradient in closed form.
 *
 * tfjs-layers normalises a training batch with tf.moments and tf.batchNorm,
 * and autodiff then walks back through both: batch norm's own gradient, then
 * the mean and variance back through Mean, Square and Sub, each a pass over
 * the activation plus the adds that merge the three paths into dx: about 15
 * full-size passes and 30 kernel calls per layer. The closed form needs the two
 * per-channel sums sum(dy) and sum(dy (x - mean)) and one more pass:
 *
 *   dx = gamma rstd (dy - sum(dy) / N - (x - mean) rstd^2 sum(dy (x - mean)) / N)
 *
 * with rstd = 1 / sqrt(variance + eps). installBatchNormGradients() routes
 * BatchNormalization layers in training mode through it, on every backend (and,
 * in inference mode under a tape, through batchNormInference below); the
 * forward pass, the moving averages and the saved model are exactly tfjs-layers'.
 * A backend may register the BATCH_NORM_TRAIN_GRAD kernel to do the gradient in
 * fused passes, and CHANNEL_MOMENTS for the batch's statistics (the Node
 * trainer's native backend does both); elsewhere they are composed of ordinary ops.
 *
 * The composed gradient is itself differentiable, so a gradient of a gradient
 * (R1's penalty on D's input gradient) goes through it too, and agrees with
 * autodiff through tfjs-layers' path (tests/batchnorm.test.ts); the fused
 * kernel, which has no gradient, is used only where nothing records the
 * backward pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/** Inputs dy, x, mean, variance, gamma; attr epsilon; outputs [dx, dgamma, dbeta]. */
export const BATCH_NORM_TRAIN_GRAD = 'FaceganBatchNormTrainGrad';
/** Input x [..., C]; outputs [mean, variance], each [C]: tf.moments over every axis but the last, in one kernel. */
export const CHANNEL_MOMENTS = 'FaceganChannelMoments';

const gradientDepth = () => (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth;

/** The closed-form gradient as ordinary ops (differentiable, any backend). */
function composedGrad(
  dy: tf.Tensor,
  x: tf.Tensor,
  mean: tf.Tensor,
  variance: tf.Tensor,
  gamma: tf.Tensor,
  epsilon: number,
): tf.Tensor[] {
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const n = x.size / x.shape[x.rank - 1];
  const rstd = tf.rsqrt(tf.add(variance, epsilon));
  const xmu = tf.sub(x, mean);
  const sumDy = tf.sum(dy, axes);
  const sumDyXmu = tf.sum(tf.mul(dy, xmu), axes);
  const centred = tf.sub(tf.sub(dy, tf.div(sumDy, n)), tf.mul(xmu, tf.div(tf.mul(sumDyXmu, tf.square(rstd)), n)));
  return [tf.mul(centred, tf.mul(gamma, rstd)), tf.mul(sumDyXmu, rstd), sumDy];
}

function closedFormGrad(dy: tf.Tensor, [x, mean, variance, gamma]: tf.Tensor[], epsilon: number): tf.Tensor[] {
  // A fused kernel only where nothing records this backward pass for a further derivative.
  if (gradientDepth() === 0 && tf.getKernel(BATCH_NORM_TRAIN_GRAD, tf.getBackend())) {
    return tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD, { dy, x, mean, variance, gamma }, { epsilon }) as tf.Tensor[];
  }
  return composedGrad(dy, x, mean, variance, gamma, epsilon);
}

function channelMoments(x: tf.Tensor, axes: number[]): { mean: tf.Tensor; variance: tf.Tensor } {
  // The kernel has no gradient. The statistics need one where the backward pass is itself recorded (taped
  // inside another tape, as R1's inner gradient is): the composed backward then differentiates through them.
  if (gradientDepth() > 1 || !tf.getKernel(CHANNEL_MOMENTS, tf.getBackend())) return tf.moments(x, axes);
  const [mean, variance] = tf.engine().runKernel(CHANNEL_MOMENTS, { x }, {}) as tf.Tensor[];
  return { mean, variance };
}

/**
 * x [..., C] normalised over every axis but the last with the batch's own
 * statistics, then scaled by gamma and shifted by beta (all float32). Returns
 * the output and the batch's mean and (biased) variance, as tfjs-layers does.
 */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number) {
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  // Outside the custom gradient: on the tape, but on no path to a loss, so backprop skips them.
  const { mean, variance } = channelMoments(x, axes);
  // tfjs types a custom gradient's arguments as one list: (x, gamma, beta, save) here.
  const normalise = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, g, b] = args as tf.Tensor[];
    (args[3] as tf.GradSaveFunc)([xs, mean, variance, g]);
    return {
      value: tf.batchNorm(xs, mean, variance, b, g, epsilon),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => closedFormGrad(dy, saved, epsilon),
    };
  });
  return { y: normalise(x, gamma, beta), mean, variance };
}

/**
 * Inference-mode batch norm (the moving statistics) as one per-channel scale and shift, x a + b. The forward pass
 * is tf.batchNorm's to rounding; the gradient is what makes it worth having: tfjs-core's gradient of tf.batchNorm
 * tiles the per-channel factor to the input's full size before multiplying, a full-size tensor made for nothing
 * (a fifth of a fine-tuning step on WASM, where G and D run with their moving statistics under a tape), while the
 * broadcast product's gradient needs only dy a and the per-channel sums.
 */
export function batchNormInference(
  x: tf.Tensor,
  mean: tf.Tensor,
  variance: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
): tf.Tensor {
  return tf.tidy(() => {
    const a = tf.mul(gamma, tf.rsqrt(tf.add(variance, epsilon)));
    return tf.add(tf.mul(x, a), tf.sub(beta, tf.mul(mean, a)));
  });
}

/** The BatchNormalization fields its call() uses (tfjs-layers 4.x). */
interface BatchNormLayer {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tfl.LayerVariable;
  beta: tfl.LayerVariable;
  movingMean: tfl.LayerVariable;
  movingVariance: tfl.LayerVariable;
}
type Call = (this: BatchNormLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }) => tf.Tensor;

/** tfjs-layers' moving-average update, op for op. */
function movingAverage(variable: tfl.LayerVariable, value: tf.Tensor, momentum: number): void {
  tf.tidy(() => {
    const orig = variable.read();
    variable.write(tf.sub(orig, tf.mul(tf.sub(orig, value), 1 - momentum)));
  });
}

let installed = false;

/**
 * Routes BatchNormalization (last axis, centred and scaled, float32) through batchNormTraining in training mode,
 * and through batchNormInference in inference mode while a gradient is recorded (projection and fine-tuning).
 */
export function installBatchNormGradients(): void {
  if (installed) return;
  installed = true;
  const proto = Object.getPrototypeOf(tfl.layers.batchNormalization({})) as { call: Call };
  const original = proto.call;
  proto.call = function (this: BatchNormLayer, inputs, kwargs) {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const lastAxis = this.axis === -1 || this.axis === x.rank - 1;
    const supported = lastAxis && this.center && this.scale && x.dtype === 'float32' && x.rank >= 2;
    if (supported && kwargs?.training !== true && gradientDepth() > 0) {
      const [mean, variance] = [this.movingMean.read(), this.movingVariance.read()];
      return batchNormInference(x, mean, variance, this.gamma.read(), this.beta.read(), this.epsilon);
    }
    if (!supported || kwargs?.training !== true) return original.call(this, inputs, kwargs);
    return tf.tidy(() => {
      const { y, mean, variance } = batchNormTraining(x, this.gamma.read(), this.beta.read(), this.epsilon);
      movingAverage(this.movingMean, mean, this.momentum);
      movingAverage(this.movingVariance, variance, this.momentum);
      return y;
    });
  };
}
