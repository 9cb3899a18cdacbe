// Nearest 2x + 3x3 convolution as one transposed convolution: the same images, a smaller graph.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { fuseUpsampledConvs } from '../src/lib/fuse-upsampling.ts';
import { buildGan, modelConfig } from '../src/lib/models.ts';
import { latentBatch } from '../src/lib/latent.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

describe('fused upsampling', () => {
  it('draws what nearest 2x then a 3x3 convolution (with bias) draws, at the borders too', async () => {
    const input = tfl.input({ shape: [5, 7, 4] });
    const up = tfl.layers.upSampling2d({ size: [2, 2], name: 'up' }).apply(input);
    const conv = tfl.layers
      .conv2d({ filters: 3, kernelSize: 3, padding: 'same', biasInitializer: 'randomNormal', name: 'conv' })
      .apply(up) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: conv });
    const fused = await fuseUpsampledConvs(model);
    expect(fused).not.toBe(model);
    expect(fused.layers.map((l) => l.getClassName())).toEqual(['InputLayer', 'Conv2DTranspose']);
    const x = tf.randomNormal([2, 5, 7, 4], 0, 1, 'float32', 1);
    expect(maxDiff(fused.predict(x) as tf.Tensor, model.predict(x) as tf.Tensor)).toBeLessThan(1e-5);
    // The model it came from is untouched.
    expect(model.layers.map((l) => l.getClassName())).toEqual(['InputLayer', 'UpSampling2D', 'Conv2D']);
    tf.dispose(x);
  });

  it("draws the pyramid generator's faces with its detail branch fused, and leaves other models as they are", async () => {
    const { generator } = buildGan({
      ...modelConfig('dcgan', 4, 100, undefined, 128),
      seed: 2,
      lastUpsample: 'pyramid',
    });
    const z = tf.tensor2d(latentBatch([1, 2, 3], 100), [3, 100]);
    const before = generator.predict(z) as tf.Tensor;
    // A branch that draws something: random weights in place of the grown branch's zero RGB layer.
    for (const [name, seed] of [
      ['g_detail4', 4],
      ['g_detail_rgb5', 3],
    ] as const) {
      const layer = generator.getLayer(name);
      layer.setWeights([tf.randomNormal(layer.getWeights()[0].shape, 0, 0.5, 'float32', seed)]);
    }
    const fused = await fuseUpsampledConvs(generator);
    expect(fused.getLayer('g_detail_rgb5').getClassName()).toBe('Conv2DTranspose');
    expect(() => fused.getLayer('g_detail_up5')).toThrow();
    // The block-mean upsampling feeds a convolution of 1x1: not a pair, kept.
    expect(fused.getLayer('g_detail_unpool').getClassName()).toBe('UpSampling2D');
    const a = fused.predict(z) as tf.Tensor;
    const b = generator.predict(z) as tf.Tensor;
    expect(maxDiff(b, before)).toBeGreaterThan(1e-3);
    expect(maxDiff(a, b)).toBeLessThan(1e-6);
    const g64 = buildGan({ ...modelConfig('dcgan', 4, 100), seed: 2 }).generator;
    expect(await fuseUpsampledConvs(g64)).toBe(g64);
    tf.dispose([z, before, a, b]);
  });
});
