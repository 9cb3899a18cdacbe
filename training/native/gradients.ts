/**
 * Cheaper gradients for the ops that batch norm is built from, used only
 * while `native` is the active backend (every other backend keeps
 * tfjs-core's own gradient, which each of these delegates to).
 *
 * tfjs-core writes FusedBatchNorm's gradient as about ten full-size
 * element-wise passes plus a tile, Sum's and Mean's as a multiply by a
 * tensor of ones, and relu's and leaky relu's as a mask plus two passes.
 * Here batch norm's per-channel sums come from one native read of x and dy,
 * dx is one broadcast multiply, Sum/Mean gradients are one broadcast copy
 * and activation gradients one native pass. The mathematics is unchanged, which the kernel tests
 * check against the cpu backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
// In Node, tfjs-core's gradients are registered by tfjs-layers' bundle on import. Importing it here
// means there is always an original to delegate to, and that it cannot later overwrite these overrides.
import '@tensorflow/tfjs-layers';
import type { NativeAddon } from './addon.ts';
import { NATIVE_BACKEND } from './backend.ts';
import { ACTIVATION_GRAD } from './elementwise-kernels.ts';

type GradFunc = tf.GradConfig['gradFunc'];

const onNative = () => tf.getBackend() === NATIVE_BACKEND;
/**
 * True while a gradient is itself being recorded for differentiation (a
 * gradient inside a gradient tape, as for an R1 penalty). The fast gradients
 * compute per-channel constants in JavaScript, which a tape cannot see
 * through, so then tfjs-core's own, differentiable gradient runs instead.
 */
const recording = () => (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0;

function override(kernelName: string, nativeGrad: (original: GradFunc) => GradFunc): void {
  const original = tf.getGradient(kernelName);
  if (!original) throw new Error(`tfjs-core has no gradient for ${kernelName}`);
  const fast = nativeGrad(original.gradFunc);
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) =>
      onNative() && !recording() ? fast(dy, saved, attrs) : original.gradFunc(dy, saved, attrs),
  });
}

/** dy reshaped to x's rank (reduced axes of size 1), then broadcast back to x's shape: one copy. */
function broadcastBack(dy: tf.Tensor, x: tf.Tensor, axis: number | number[], divisor: number): tf.Tensor {
  const expanded = x.shape.slice();
  tf.util.parseAxisParam(axis, x.shape).forEach((a) => {
    expanded[a] = 1;
  });
  let d = tf.reshape(dy, expanded);
  if (divisor !== 1) d = tf.div(d, tf.scalar(divisor));
  return tf.broadcastTo(tf.cast(d, 'float32'), x.shape);
}

/** The backend's own array, read without dataSync() so that it stays eligible for buffer reuse; not kept. */
const peek = (t: tf.Tensor) => (tf.backend() as MathBackendCPU).data.get(t.dataId).values as Float32Array;

function batchNormGrad(addon: NativeAddon, original: GradFunc): GradFunc {
  return (dyIn, saved, attrs) => {
    const dy = dyIn as tf.Tensor; // FusedBatchNorm has one output
    const [x, mean, variance, scale] = saved;
    const channels = x.shape[x.shape.length - 1];
    const perChannel = (t?: tf.Tensor) => !t || (t.rank === 1 && t.shape[0] === channels);
    const float = [dy, x, mean, variance, scale].every((t) => !t || t.dtype === 'float32');
    if (!float || x.rank < 2 || mean.rank !== 1 || ![mean, variance, scale].every(perChannel)) {
      return original(dyIn, saved, attrs);
    }
    const eps = Number((attrs as { varianceEpsilon?: number }).varianceEpsilon ?? 0.001);
    const varV = peek(variance),
      scaleV = scale ? peek(scale) : null;
    const rsqrt = Float64Array.from(varV, (v) => 1 / Math.sqrt(v + eps));
    const gamma = (c: number) => (scaleV ? scaleV[c] : 1);
    // One pass over x and dy, done on first use and shared by the closures (plain arrays: nothing to dispose).
    let stats: { sumDy: Float64Array; sumDyXmu: Float64Array } | null = null;
    const sums = () => {
      if (!stats) {
        stats = { sumDy: new Float64Array(channels), sumDyXmu: new Float64Array(channels) };
        addon.batchNormGradStats(peek(x), peek(dy), channels, peek(mean), stats.sumDy, stats.sumDyXmu);
      }
      return stats;
    };
    const perC = (f: (c: number) => number) => tf.tensor1d(Float32Array.from({ length: channels }, (_, c) => f(c)));
    return {
      x: () =>
        tf.mul(
          dy,
          perC((c) => gamma(c) * rsqrt[c]),
        ),
      mean: () => perC((c) => -gamma(c) * rsqrt[c] * sums().sumDy[c]),
      variance: () => perC((c) => -0.5 * rsqrt[c] ** 3 * gamma(c) * sums().sumDyXmu[c]),
      scale: () => perC((c) => rsqrt[c] * sums().sumDyXmu[c]),
      offset: () => perC((c) => sums().sumDy[c]),
    };
  };
}

/** Relu's and leaky relu's gradients as one native pass instead of a mask, a select or step, and a multiply. */
function activationGrad(relu: boolean): (original: GradFunc) => GradFunc {
  return (original) => (dy, saved, attrs) => {
    const [x] = saved;
    const d = dy as tf.Tensor;
    if (x.dtype !== 'float32' || d.dtype !== 'float32') return original(dy, saved, attrs);
    const alpha = relu ? 0 : Number((attrs as { alpha?: number }).alpha ?? 0.2);
    return { x: () => tf.engine().runKernel(ACTIVATION_GRAD, { dy: d, x }, { alpha, relu }) as tf.Tensor };
  };
}

let registered = false;

/** Installs the native-only gradients once per process. */
export function registerNativeGradients(addon: NativeAddon): void {
  if (registered) return;
  registered = true;
  override('FusedBatchNorm', (original) => batchNormGrad(addon, original));
  override('Relu', activationGrad(true));
  override('LeakyRelu', activationGrad(false));
  override('Sum', () => (dy, [x], attrs) => {
    const d = broadcastBack(dy as tf.Tensor, x, (attrs as { axis: number | number[] }).axis, 1);
    return { x: () => d };
  });
  override('Mean', () => (dy, [x], attrs) => {
    const axis = (attrs as { axis: number | number[] }).axis;
    const reduced = tf.util.parseAxisParam(axis, x.shape).reduce((n, a) => n * x.shape[a], 1);
    return { x: () => broadcastBack(dy as tf.Tensor, x, axis, reduced) };
  });
}
