// The 64 px view of a 128 px pyramid pair: its base draws the face the pyramid draws area-downscaled, and the
// half-size D judges a 64 px face as the 128 px D judges it doubled.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { buildGan, modelConfig } from '../src/lib/models.ts';
import { latentBatch } from '../src/lib/latent.ts';
import { halfSizeDiscriminator, isPyramid, pyramidBase } from '../src/lib/pyramid.ts';
import { featureExtractor } from '../src/lib/projection.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

function pyramidPair() {
  const gan = buildGan({ ...modelConfig('dcgan', 4, 100, undefined, 128), seed: 2, lastUpsample: 'pyramid' });
  // A branch that draws something: random weights in place of its zero RGB layer.
  const rgb = gan.generator.getLayer('g_detail_rgb5');
  rgb.setWeights([tf.randomNormal(rgb.getWeights()[0].shape, 0, 0.5, 'float32', 3)]);
  return gan;
}

describe('the 64 px view of a pyramid pair', () => {
  it("the base draws the pyramid's face area-downscaled, and tuning it tunes the pyramid's base only", () => {
    const { generator } = pyramidPair();
    expect(isPyramid(generator)).toBe(true);
    expect(isPyramid(buildGan(modelConfig('dcgan', 4)).generator)).toBe(false);
    const base = pyramidBase(generator);
    expect(base.outputs[0].shape).toEqual([null, 64, 64, 3]);
    const z = tf.tensor2d(latentBatch([1, 2], 100), [2, 100]);
    const big = generator.predict(z) as tf.Tensor4D;
    const small = base.predict(z) as tf.Tensor4D;
    expect(maxDiff(tf.avgPool(big, 2, 2, 'valid'), small)).toBeLessThan(1e-5);
    // Shared weights: the base's layers are the pyramid's, and the branch is not among them.
    const names = base.trainableWeights.map((w) => w.originalName);
    expect(names.some((n) => n.startsWith('g_detail'))).toBe(false);
    const project = base.getLayer('g_project');
    expect(project).toBe(generator.getLayer('g_project'));
    project.setWeights(project.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 1, 'float32', 7 + i)));
    const after = generator.predict(z) as tf.Tensor4D;
    expect(maxDiff(after, big)).toBeGreaterThan(1e-3);
    tf.dispose([z, big, small, after]);
  });

  it('the half-size D judges a 64 px face, features and logit, as the 128 px D judges it doubled', async () => {
    const { discriminator } = pyramidPair();
    const half = await halfSizeDiscriminator(discriminator);
    expect(half.inputs[0].shape).toEqual([null, 64, 64, 3]);
    const x = tf.randomUniform([3, 64, 64, 3], -1, 1, 'float32', 5) as tf.Tensor4D;
    const doubled = tf.image.resizeNearestNeighbor(x, [128, 128]);
    expect(maxDiff(half.predict(x) as tf.Tensor, discriminator.predict(doubled) as tf.Tensor)).toBeLessThan(1e-4);
    const a = featureExtractor(half)!.predict(x) as tf.Tensor;
    const b = featureExtractor(discriminator)!.predict(doubled) as tf.Tensor;
    expect(a.shape).toEqual(b.shape);
    expect(maxDiff(a, b)).toBeLessThan(1e-4);
    // A copy: changing it leaves the 128 px D as it was.
    const first = half.getLayer('d_in');
    expect(first).not.toBe(discriminator.getLayer('d_in'));
    tf.dispose([x, doubled, a, b]);
  });

  it('refuses a 64 px pair with a clear error', async () => {
    const { generator, discriminator } = buildGan(modelConfig('dcgan', 4));
    expect(() => pyramidBase(generator)).toThrow(/not a pyramid generator/);
    await expect(halfSizeDiscriminator(discriminator)).rejects.toThrow(/not a 128 px pyramid discriminator/);
  });
});
