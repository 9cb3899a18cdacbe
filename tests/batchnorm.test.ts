/**
 * Training-mode batch norm with the closed-form gradient (src/lib/batchnorm.ts)
 * against tfjs-layers' own path (tf.moments + tf.batchNorm, differentiated by
 * autodiff) on the reference cpu backend: the same output and moving averages,
 * the same gradients, and the same gradient of a gradient.
 */
import { describe, expect, it, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { batchNormTraining, installBatchNormGradients } from '../src/lib/batchnorm.ts';
import { Rng } from '../src/lib/latent.ts';

const EPS = 1e-5,
  MOMENTUM = 0.9;

const data = (shape: number[], seed: number, scale = 1, shift = 0) => {
  const rng = new Rng(seed);
  return tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => shift + scale * rng.normal()),
    shape,
  );
};

const axesOf = (x: tf.Tensor) => x.shape.slice(0, -1).map((_, i) => i);

/** What tfjs-layers computes in training mode (differentiated by autodiff). */
function reference(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) {
  const { mean, variance } = tf.moments(x, axesOf(x));
  return tf.batchNorm(x, mean, variance, beta, gamma, EPS);
}

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

function layerFor(shape: number[], gamma: tf.Tensor, beta: tf.Tensor) {
  const c = shape[shape.length - 1];
  const layer = tfl.layers.batchNormalization({ momentum: MOMENTUM, epsilon: EPS });
  layer.build(shape);
  layer.setWeights([gamma, beta, tf.zeros([c]), tf.ones([c])]);
  return layer;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  installBatchNormGradients();
});

describe('training-mode batch norm, closed-form gradient', () => {
  const shapes = [
    [4, 5, 3, 6],
    [7, 3],
  ];

  it.each(shapes.map((s) => [s]))(
    'batchNormTraining on %j: the same output as tfjs-layers, gradients of x, gamma, beta to 1e-5',
    (shape) => {
      const c = shape[shape.length - 1];
      const x = data(shape, 1, 2, 0.5),
        dy = data(shape, 2),
        gamma = data([c], 3, 0.1, 1),
        beta = data([c], 4, 0.1);
      const fast = (xs: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => batchNormTraining(xs, g, b, EPS).y;
      expect(maxDiff(fast(x, gamma, beta), reference(x, gamma, beta)), 'forward').toBe(0);
      const weighted = (f: typeof fast) => (xs: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(f(xs, g, b), dy));
      const got = tf.grads(weighted(fast))([x, gamma, beta]);
      const want = tf.grads(weighted(reference))([x, gamma, beta]);
      ['x', 'gamma', 'beta'].forEach((name, i) => expect(maxDiff(got[i], want[i]), name).toBeLessThan(1e-5));
    },
  );

  it('a BatchNormalization layer in training mode: same output, moving averages and gamma/beta gradients', () => {
    const shape = [6, 4, 4, 5];
    const x = data(shape, 5, 1.5, -0.3),
      dy = data(shape, 6),
      gamma = data([5], 7, 0.1, 1),
      beta = data([5], 8, 0.1);
    const layer = layerFor(shape, gamma, beta);
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, dy)) as tf.Scalar,
      layer.trainableWeights.map((w) => w.read() as tf.Variable),
    );
    const want = tf.grads((g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(reference(x, g, b), dy)))([gamma, beta]);
    expect(value.dataSync()[0]).toBeCloseTo(tf.sum(tf.mul(reference(x, gamma, beta), dy)).dataSync()[0], 4);
    layer.trainableWeights.forEach((w, i) =>
      expect(maxDiff(grads[(w.read() as tf.Variable).name], want[i]), w.name).toBeLessThan(1e-5),
    );
    // One update of the moving averages, by tfjs-layers' formula.
    const { mean, variance } = tf.moments(x, axesOf(x));
    const [movingMean, movingVariance] = layer.getWeights().slice(2);
    expect(maxDiff(movingMean, tf.mul(mean, 1 - MOMENTUM)), 'moving mean').toBeLessThan(1e-7);
    expect(maxDiff(movingVariance, tf.add(MOMENTUM, tf.mul(variance, 1 - MOMENTUM))), 'moving variance').toBeLessThan(
      1e-6,
    );
    // Another training step leaves no tensor behind.
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      tf.variableGrads(
        () => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, dy)) as tf.Scalar,
        layer.trainableWeights.map((w) => w.read() as tf.Variable),
      );
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it("a gradient of a gradient (R1) through the closed form equals autodiff through tfjs-layers' path", () => {
    const shape = [2, 1, 2, 4];
    const x = data(shape, 9, 1.2),
      dy = data(shape, 10),
      gamma = data([4], 11, 0.1, 1),
      beta = data([4], 12, 0.1);
    const layer = layerFor(shape, gamma, beta);
    // d/dx of |d/dx sum(BN(x) dy)|^2 on a batch of 4 per channel, where the batch statistics' own dependence
    // on x is large: a backward pass that held them constant would be far off.
    const penalty = (f: (xs: tf.Tensor) => tf.Tensor) =>
      tf.grad((xs: tf.Tensor) => {
        const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(f(v), dy)))(xs);
        return tf.sum(tf.square(g));
      })(x);
    const got = penalty((v) => layer.apply(v, { training: true }) as tf.Tensor);
    const want = penalty((v) => reference(v, gamma, beta));
    expect(maxDiff(got, want)).toBeLessThan(1e-4);
    expect(tf.max(tf.abs(want)).dataSync()[0]).toBeGreaterThan(1e-3); // a real second derivative, not zeros
  });
});

describe('inference-mode batch norm under a tape (projection, fine-tuning)', () => {
  it("the layer with its moving statistics: tf.batchNorm's output and gradients, and no full-size tiled factor", async () => {
    const shape = [3, 4, 4, 6];
    const x = data(shape, 13, 1.3, 0.2),
      dy = data(shape, 14),
      gamma = data([6], 15, 0.2, 1),
      beta = data([6], 16, 0.1),
      mean = data([6], 17, 0.3),
      variance = tf.abs(data([6], 18, 0.5, 1));
    const layer = layerFor(shape, gamma, beta);
    layer.setWeights([gamma, beta, mean, variance]);
    const want = (xs: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.batchNorm(xs, mean, variance, b, g, EPS);
    const [gamma0, beta0] = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const loss = (y: tf.Tensor) => tf.sum(tf.mul(y, dy)) as tf.Scalar;
    // Outside a tape the layer is tfjs-layers' own; under one, the affine form agrees with it.
    expect(maxDiff(layer.apply(x, { training: false }) as tf.Tensor, want(x, gamma, beta))).toBe(0);
    const dx = tf.grad((xs: tf.Tensor) => loss(layer.apply(xs, { training: false }) as tf.Tensor))(x);
    const { grads } = tf.variableGrads(() => loss(layer.apply(x, { training: false }) as tf.Tensor), [gamma0, beta0]);
    const [wx, wg, wb] = tf.grads((xs: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => loss(want(xs, g, b)))([
      x,
      gamma,
      beta,
    ]);
    expect(maxDiff(dx, wx), 'x').toBeLessThan(1e-5);
    expect(maxDiff(grads[gamma0.name], wg), 'gamma').toBeLessThan(1e-4);
    expect(maxDiff(grads[beta0.name], wb), 'beta').toBeLessThan(1e-4);
    const kernels = (await tf.profile(() => tf.grad((xs: tf.Tensor) => loss(layer.apply(xs) as tf.Tensor))(x))).kernels;
    expect(kernels.map((k) => k.name)).not.toContain('Tile');
  });
});
