/**
 * Conv2D and Dense layers differentiated lazily (src/lib/lazy-gradients.ts), on
 * the reference cpu backend: the same gradients as tfjs-core's fused ops that
 * tfjs-layers uses, and only the halves a tape asks for (no filter gradients for
 * a frozen D, no gradient for the images D reads in its own step).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { installLayerGradients } from '../src/lib/layer-gradients.ts';
import { Rng } from '../src/lib/latent.ts';
import { buildDiscriminator, modelConfig } from '../src/lib/models.ts';

interface ConvLike {
  kernel: { read(): tf.Tensor };
  apply(x: tf.Tensor): tf.Tensor;
  strides: [number, number];
  padding: 'same' | 'valid';
}

const images = (n: number, seed: number) => {
  const rng = new Rng(seed);
  return tf.tensor4d(
    Float32Array.from({ length: n * 64 * 64 * 3 }, () => rng.normal() * 0.5),
    [n, 64, 64, 3],
  );
};

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

/** Kernel names run by `f` (tf.profile), with how often each ran. */
async function kernelCounts(f: () => tf.TensorContainer): Promise<Map<string, number>> {
  const info = await tf.profile(f);
  const counts = new Map<string, number>();
  for (const k of info.kernels) counts.set(k.name, (counts.get(k.name) ?? 0) + 1);
  return counts;
}

describe('lazy gradients', () => {
  let d: LayersModel;
  const convs = () => d.layers.filter((l) => l.getClassName() === 'Conv2D') as unknown as ConvLike[];

  beforeAll(async () => {
    await tf.setBackend('cpu');
    installLayerGradients();
    d = buildDiscriminator(modelConfig('dcgan', 8, 100, 3));
  });

  it('gives the fused convolution gradients, for the input and the filter', () => {
    const layer = convs()[1];
    const rng = new Rng(1);
    const x = tf.tensor4d(
      Float32Array.from({ length: 2 * 32 * 32 * 8 }, () => rng.normal()),
      [2, 32, 32, 8],
    );
    const kernel = layer.kernel.read() as tf.Variable;
    const loss = (y: tf.Tensor) => tf.sum(tf.square(y)) as tf.Scalar;
    const gxLayer = tf.grad((xs: tf.Tensor) => loss(layer.apply(xs)))(x);
    const gkLayer = tf.variableGrads(() => loss(layer.apply(x)), [kernel]).grads[kernel.name];
    const fused = (xs: tf.Tensor, k: tf.Tensor) =>
      loss(
        tf.fused.conv2d({ x: xs as tf.Tensor4D, filter: k as tf.Tensor4D, strides: layer.strides, pad: layer.padding }),
      );
    const [gxFused, gkFused] = tf.grads(fused)([x, kernel]);
    expect(maxDiff(gxLayer, gxFused)).toBeLessThan(1e-4);
    expect(maxDiff(gkLayer, gkFused)).toBeLessThan(1e-3);
    expect(tf.max(tf.abs(gkFused)).dataSync()[0]).toBeGreaterThan(1e-2);
    tf.dispose([x, gxLayer, gxFused, gkFused, gkLayer]);
  });

  it('runs no filter gradient for a frozen D, and no input gradient for the images D trains on', async () => {
    const x = images(2, 2);
    const layers = convs().length;
    // G's step through a frozen D: the gradient reaches D's input, never D's filters.
    const frozen = await kernelCounts(() =>
      tf.grad((xs: tf.Tensor) => tf.sum(d.apply(xs, { training: true }) as tf.Tensor))(x),
    );
    expect(frozen.get('Conv2DBackpropFilter') ?? 0).toBe(0);
    expect(frozen.get('Conv2DBackpropInput')).toBe(layers);
    // D's own step: every filter's gradient, and the input gradients of all layers but the first.
    const vars = d.trainableWeights.map((w) => w.read() as tf.Variable);
    const own = await kernelCounts(() => {
      const { value, grads } = tf.variableGrads(
        () => tf.sum(d.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
        vars,
      );
      return [value, ...Object.values(grads)];
    });
    expect(own.get('Conv2DBackpropFilter')).toBe(layers);
    expect(own.get('Conv2DBackpropInput')).toBe(layers - 1);
    x.dispose();
  });

  it("a Dense layer computes only the gradient the tape asks for, and the fused product's values", async () => {
    const dense = tfl.layers.dense({ units: 6, useBias: true });
    const rng = new Rng(4);
    const x = tf.tensor2d(
      Float32Array.from({ length: 5 * 7 }, () => rng.normal()),
      [5, 7],
    );
    dense.apply(x); // builds the weights
    const [kernel, bias] = dense.trainableWeights.map((w) => w.read() as tf.Variable);
    const loss = (y: tf.Tensor) => tf.sum(tf.square(y)) as tf.Scalar;
    const fused = (xs: tf.Tensor, k: tf.Tensor, b: tf.Tensor) =>
      loss(tf.fused.matMul({ a: xs as tf.Tensor2D, b: k as tf.Tensor2D, bias: b }));
    const [wx, wk, wb] = tf.grads(fused)([x, kernel, bias]);
    const gx = tf.grad((xs: tf.Tensor) => loss(dense.apply(xs) as tf.Tensor))(x);
    const { grads } = tf.variableGrads(() => loss(dense.apply(x) as tf.Tensor), [kernel, bias]);
    expect(maxDiff(gx, wx)).toBeLessThan(1e-4);
    expect(maxDiff(grads[kernel.name], wk)).toBeLessThan(1e-4);
    expect(maxDiff(grads[bias.name], wb)).toBeLessThan(1e-4);
    // Towards the input only (a frozen layer): one product for dx, none for the kernel's gradient.
    const toInput = await kernelCounts(() => tf.grad((xs: tf.Tensor) => loss(dense.apply(xs) as tf.Tensor))(x));
    const products = (toInput.get('BatchMatMul') ?? 0) + (toInput.get('_FusedMatMul') ?? 0);
    expect(products).toBe(2); // the forward product and dx
    tf.dispose([x, wx, wk, wb, gx, ...Object.values(grads)]);
  });
});
