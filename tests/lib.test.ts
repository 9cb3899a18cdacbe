// The isomorphic library: architectures, latents, preprocessing, weight files.
import { describe, expect, it, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  ARCHS,
  buildGan,
  discriminatorImageSize,
  generatorImageSize,
  imageSideOf,
  modelConfig,
} from '../src/lib/models.ts';
import { Rng, latentBatch, latentFromSeed, slerp } from '../src/lib/latent.ts';
import { alignedFaceCrop, cropResize, flipHorizontal, gridRgba, squareSide, toRgba } from '../src/lib/images.ts';
import { float16Bits, fromArtifacts, fromFiles, quantizeFloat16, toArtifacts, toFiles } from '../src/lib/weights.ts';
import { bceWithLogits, generate, GENERATE_CHUNK, trainableFrom } from '../src/lib/gan.ts';
import { growGan } from '../src/lib/growth.ts';
import { loadExported } from '../training/train.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const trainable = (m: { trainableWeights: { shape: (number | null)[] }[] }) =>
  m.trainableWeights.reduce((n, w) => n + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0);

describe('architectures', () => {
  it("seed-classic has the write-up's exact parameter counts", () => {
    const { generator, discriminator } = buildGan(modelConfig('seed-classic'));
    expect(generator.countParams()).toBe(34_031_363);
    expect(discriminator.countParams()).toBe(25_901_953);
  });

  it('dcgan has the trainable parameters of the reference PyTorch DCGAN at any width', () => {
    // PyTorch dcgan/main.py: convs without bias, BatchNorm affine; our D adds one bias on its logit.
    const pytorchG = (nz: number, w: number) =>
      nz * 8 * w * 16 +
      8 * w * 4 * w * 16 +
      4 * w * 2 * w * 16 +
      2 * w * w * 16 +
      w * 3 * 16 +
      2 * (8 * w + 4 * w + 2 * w + w);
    const pytorchD = (w: number) =>
      3 * w * 16 + w * 2 * w * 16 + 2 * w * 4 * w * 16 + 4 * w * 8 * w * 16 + 8 * w * 16 + 2 * (2 * w + 4 * w + 8 * w);
    for (const w of [16, 64]) {
      const { generator, discriminator } = buildGan(modelConfig('dcgan', w));
      expect(trainable(generator)).toBe(pytorchG(100, w));
      expect(trainable(discriminator)).toBe(pytorchD(w) + 1);
    }
    expect(trainable(buildGan(modelConfig('dcgan', 64)).generator)).toBe(3_576_704);
  });

  it.each(ARCHS)('%s: G maps z to 64x64x3 in [-1, 1], D maps images to one logit', (arch) => {
    const gan = buildGan(modelConfig(arch, arch === 'seed-classic' ? undefined : 8));
    const z = tf.randomNormal([2, 100]);
    const img = gan.generator.predict(z) as tf.Tensor;
    expect(img.shape).toEqual([2, 64, 64, 3]);
    expect(tf.min(img).dataSync()[0]).toBeGreaterThanOrEqual(-1);
    expect(tf.max(img).dataSync()[0]).toBeLessThanOrEqual(1);
    expect(tf.max(img).dataSync()[0] - tf.min(img).dataSync()[0]).toBeGreaterThan(0);
    const logit = gan.discriminator.predict(img) as tf.Tensor;
    expect(logit.shape).toEqual([2, 1]);
    tf.dispose([z, img, logit]);
  });

  it("dcgan at 128 px: G draws 128x128x3, D reads it; the layers up to 32 px are the 64 px model's", () => {
    const small = buildGan(modelConfig('dcgan', 8));
    const big = buildGan(modelConfig('dcgan', 8, 100, undefined, 128));
    const z = tf.randomNormal([2, 100]);
    const img = big.generator.predict(z) as tf.Tensor;
    expect(img.shape).toEqual([2, 128, 128, 3]);
    const logit = big.discriminator.predict(img) as tf.Tensor;
    expect(logit.shape).toEqual([2, 1]);
    // One stage of w channels more in G (4x4 kernel, no bias, BN), a 16-channel linear input layer in D.
    expect(trainable(big.generator) - trainable(small.generator)).toBe(8 * 8 * 16 + 2 * 8);
    expect(trainable(big.discriminator) - trainable(small.discriminator)).toBe(3 * 16 * 16 + (16 - 3) * 8 * 16);
    for (const name of [
      'g_project',
      'g_deconv1',
      'g_deconv2',
      'g_deconv3',
      'd_conv1',
      'd_conv2',
      'd_conv3',
      'd_logit',
    ]) {
      const model = name.startsWith('g') ? 'generator' : 'discriminator';
      expect(big[model].getLayer(name).getWeights()[0].shape).toEqual(
        small[model].getLayer(name).getWeights()[0].shape,
      );
    }
    expect(() => modelConfig('seed-classic', undefined, 100, undefined, 128)).toThrow(/64x64/);
    tf.dispose([z, img, logit]);
  });

  it('a grown 128 px pair starts as the 64 px pair at twice the size, and leaks nothing', async () => {
    // The shipped pair: a trained G draws smooth features, which the new stage upsamples.
    const { models: small } = await loadExported('models/g64');
    const z = tf.tensor2d(
      latentBatch(
        Array.from({ length: 64 }, (_, i) => i),
        100,
      ),
      [64, 100],
    );
    const before = tf.memory().numTensors;
    const big = growGan(small, z);
    const made = big.generator.weights.length + big.discriminator.weights.length;
    expect(tf.memory().numTensors - before).toBe(made);
    const zs = tf.slice(z, 0, 4);
    const [g64, g128] = [small.generator.predict(zs) as tf.Tensor4D, big.generator.predict(zs) as tf.Tensor4D];
    // G128, averaged back to 64 px, draws what G64 draws (the new stage is a nearest-neighbour upsampling).
    const down = tf.avgPool(g128, 2, 2, 'valid');
    // (An untrained G draws faint images, so compare shapes: the correlation of the two, pixel by pixel.)
    const corr = (a: tf.Tensor, b: tf.Tensor) =>
      tf.tidy(() => {
        const [x, y] = [tf.sub(a, tf.mean(a)), tf.sub(b, tf.mean(b))];
        return tf.div(tf.sum(tf.mul(x, y)), tf.mul(tf.norm(x), tf.norm(y))).dataSync()[0];
      });
    expect(corr(down, g64)).toBeGreaterThan(0.9);
    const fresh = buildGan(modelConfig('dcgan', 8, 100, 6, 128)).generator.predict(zs) as tf.Tensor4D;
    const freshDown = tf.avgPool(fresh, 2, 2, 'valid');
    expect(Math.abs(corr(freshDown, g64))).toBeLessThan(0.5);
    tf.dispose([fresh, freshDown]);
    // D128 on a 2x-upsampled image is exactly D64 on the image.
    const up = tf.image.resizeNearestNeighbor(g64, [128, 128]);
    const [d64, d128] = [small.discriminator.predict(g64) as tf.Tensor, big.discriminator.predict(up) as tf.Tensor];
    const dd = tf.max(tf.abs(tf.sub(d64, d128))).dataSync()[0];
    expect(dd).toBeLessThan(1e-4 * Math.max(1, tf.max(tf.abs(d64)).dataSync()[0]));
    expect(() => growGan(big, z)).toThrow(/64 px dcgan/);
    tf.dispose([z, zs, g64, g128, down, up, d64, d128]);
    [small, big].forEach((m) => {
      m.generator.dispose();
      m.discriminator.dispose();
    });
  });

  it('a pyramid 128 px generator is the 64 px one doubled plus detail with zero block means, trained on its own', async () => {
    const { models: small } = await loadExported('models/g64');
    const z = tf.tensor2d(latentBatch([1, 2, 3, 4], 100), [4, 100]);
    const big = growGan(small, z, { lastUpsample: 'pyramid', detailWidth: 16 });
    expect(big.generator.outputs[0].shape).toEqual([null, 128, 128, 3]);
    // A branch of 16 channels reads the base's 32 (its 32 px features) and writes RGB from 16.
    expect(big.config.detailWidth).toBe(16);
    expect(big.generator.getLayer('g_detail4').getWeights()[0].shape).toEqual([4, 4, 16, 32]);
    expect(big.generator.getLayer('g_detail_rgb5').getWeights()[0].shape).toEqual([3, 3, 16, 3]);
    const g64 = small.generator.predict(z) as tf.Tensor4D;
    const at0 = big.generator.predict(z) as tf.Tensor4D;
    const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
    // At first the detail branch draws nothing: the 64 px faces, doubled.
    expect(maxDiff(at0, tf.image.resizeNearestNeighbor(g64, [128, 128]))).toBeLessThan(1e-5);
    // Whatever the branch draws, the 128 px face area-downscaled is the 64 px face.
    const rgb = big.generator.getLayer('g_detail_rgb5');
    const [k] = rgb.getWeights();
    rgb.setWeights([tf.randomNormal(k.shape, 0, 0.5, 'float32', 3)]);
    const drawn = big.generator.predict(z) as tf.Tensor4D;
    expect(maxDiff(drawn, at0)).toBeGreaterThan(0.05);
    expect(maxDiff(tf.avgPool(drawn, 2, 2, 'valid'), g64)).toBeLessThan(1e-5);
    // --g-train-from g_detail4 trains the branch alone: none of the 64 px G's weights, though its RGB layer comes
    // later in the layer list.
    const trained = trainableFrom(big.generator, 'g_detail4').map((v) => v.name.split('/')[0]);
    expect(new Set(trained)).toEqual(new Set(['g_detail4', 'g_detail_bn4', 'g_detail_rgb5']));
    expect(big.generator.getLayer('g_detail_negate').trainableWeights).toEqual([]);
    tf.dispose([z, g64, at0, drawn]);
    [small, big].forEach((m) => {
      m.generator.dispose();
      m.discriminator.dispose();
    });
  });

  it('generate draws a large batch in chunks (WebGL texture limits), the same faces as one call', () => {
    const g = buildGan({ ...modelConfig('dcgan', 4, 100, undefined, 128), seed: 2, lastUpsample: 'pyramid' }).generator;
    const n = GENERATE_CHUNK * 2 + 3;
    const z = tf.tensor2d(
      latentBatch(
        Array.from({ length: n }, (_, i) => i),
        100,
      ),
      [n, 100],
    );
    const whole = g.apply(z, { training: false }) as tf.Tensor4D;
    const chunked = generate(g, z);
    expect(chunked.shape).toEqual([n, 128, 128, 3]);
    expect(tf.max(tf.abs(tf.sub(whole, chunked))).dataSync()[0]).toBeLessThan(1e-5);
    tf.dispose([z, whole, chunked]);
    g.dispose();
  });

  it('the same seed builds the same weights, another seed different ones', () => {
    const w = (seed: number) =>
      buildGan(modelConfig('dcgan', 4, 100, seed))
        .generator.getWeights()[0]
        .dataSync();
    expect(Array.from(w(7))).toEqual(Array.from(w(7)));
    expect(Array.from(w(7))).not.toEqual(Array.from(w(8)));
  });
});

describe('latents', () => {
  it('a seed gives the same standard-normal z every time, seeds differ', () => {
    const a = latentFromSeed(42);
    expect(a).toHaveLength(100);
    expect(Array.from(latentFromSeed(42))).toEqual(Array.from(a));
    expect(Array.from(latentFromSeed(43))).not.toEqual(Array.from(a));
    const many = latentBatch(Array.from({ length: 200 }, (_, i) => i));
    const mean = many.reduce((s, v) => s + v, 0) / many.length;
    const variance = many.reduce((s, v) => s + (v - mean) ** 2, 0) / many.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
  });

  it('a Rng restored from its state continues the same sequence', () => {
    const r = new Rng(5);
    r.normal(); // leaves a pending Box-Muller sample
    const copy = new Rng(r.getState());
    expect([r.normal(), r.uniform(), r.normal()]).toEqual([copy.normal(), copy.uniform(), copy.normal()]);
  });

  it('slerp hits both ends and keeps the norm between them', () => {
    const a = latentFromSeed(1),
      b = latentFromSeed(2);
    const norm = (v: Float32Array) => Math.hypot(...v);
    expect(Array.from(slerp(a, b, 0))).toEqual(Array.from(a).map((x) => expect.closeTo(x, 5)));
    expect(Array.from(slerp(a, b, 1))).toEqual(Array.from(b).map((x) => expect.closeTo(x, 5)));
    const mid = slerp(a, b, 0.5);
    const lerpMid = a.map((x, i) => (x + b[i]) / 2);
    expect(norm(mid)).toBeGreaterThan(norm(lerpMid));
    expect(Math.abs(norm(mid) - (norm(a) + norm(b)) / 2)).toBeLessThan(0.05 * norm(a));
  });
});

describe('image sizes', () => {
  it("a loaded model's image side comes from its shapes: 64 or 128, anything else refused", () => {
    for (const size of [64, 128] as const) {
      const { generator, discriminator } = buildGan(modelConfig('dcgan', 4, 16, undefined, size));
      expect(generatorImageSize(generator)).toBe(size);
      expect(discriminatorImageSize(discriminator)).toBe(size);
      expect(discriminatorImageSize(generator)).toBeNull();
      expect(() => generatorImageSize(discriminator)).toThrow(/not a face generator/);
    }
    expect(imageSideOf([null, 96, 96, 3])).toBeNull();
    expect(imageSideOf([null, 128, 64, 3])).toBeNull();
    expect(imageSideOf([null, 128, 128, 1])).toBeNull();
  });

  it('reads the side of square images off their values', () => {
    expect(squareSide(128 * 128 * 3)).toBe(128);
    expect(squareSide(8 * 64 * 64 * 3, 8)).toBe(64);
    expect(squareSide(128 * 128 * 4, 1, 4)).toBe(128);
    expect(() => squareSide(64 * 64 * 3 + 3)).toThrow(/not 1 square/);
  });
});

describe('images', () => {
  it('area resize averages exactly and scales to [-1, 1]', () => {
    // 4x4 RGB: left half black, right half white; 2x2 output is black | white.
    const data = new Uint8Array(4 * 4 * 3);
    for (let y = 0; y < 4; y++) for (let x = 2; x < 4; x++) data.fill(255, (y * 4 + x) * 3, (y * 4 + x) * 3 + 3);
    const out = cropResize({ data, width: 4, height: 4, channels: 3 }, { left: 0, top: 0, size: 4 }, 2);
    expect(Array.from(out)).toEqual([-1, -1, -1, 1, 1, 1, -1, -1, -1, 1, 1, 1]);
    // A 3-wide crop into 2 pixels: each output covers 1.5 source pixels.
    const half = cropResize({ data, width: 4, height: 4, channels: 3 }, { left: 1, top: 0, size: 3 }, 2);
    expect(half[0]).toBeCloseTo((255 * 0.5) / 1.5 / 127.5 - 1, 5);
  });

  it('the face crop of an aligned CelebA image is a centred square inside it', () => {
    for (const [w, h] of [
      [178, 218],
      [89, 109],
    ]) {
      const box = alignedFaceCrop(w, h);
      expect(box.left).toBeGreaterThanOrEqual(0);
      expect(box.top + box.size).toBeLessThanOrEqual(h);
      expect(Math.abs(box.left + box.size / 2 - w / 2)).toBeLessThanOrEqual(1);
      expect(box.size).toBeGreaterThan(0.7 * w);
    }
  });

  it('flip mirrors rows and round-trips; toRgba and grids give opaque bytes', () => {
    const src = Float32Array.from({ length: 64 * 64 * 3 }, (_, i) => (i % 255) / 127.5 - 1);
    const once = flipHorizontal(src, new Float32Array(src.length));
    expect(Array.from(once.subarray(0, 3))).toEqual(Array.from(src.subarray(63 * 3, 64 * 3)));
    expect(Array.from(flipHorizontal(once, new Float32Array(src.length)))).toEqual(Array.from(src));
    const rgba = toRgba(src);
    expect(rgba[3]).toBe(255);
    expect(rgba[0]).toBe(0);
    const grid = gridRgba(new Float32Array(4 * 64 * 64 * 3), 4, 2);
    expect([grid.width, grid.height]).toEqual([2 * 64 + 3 * 2, 2 * 64 + 3 * 2]);
  });
});

describe('weights', () => {
  it('float16 bits match IEEE half precision', () => {
    expect(float16Bits(1)).toBe(0x3c00);
    expect(float16Bits(-2)).toBe(0xc000);
    expect(float16Bits(65504)).toBe(0x7bff);
    expect(float16Bits(1e6)).toBe(0x7c00);
    expect(float16Bits(5.960464477539063e-8)).toBe(0x0001);
    expect(float16Bits(0.1)).toBe(0x2e66);
  });

  it('a generator survives export to files and back, in float32 exactly and in float16 closely', async () => {
    const g = buildGan(modelConfig('dcgan', 4, 100, 3)).generator;
    const z = tf.tensor2d(latentBatch([1, 2]), [2, 100]);
    const want = (g.predict(z) as tf.Tensor).dataSync();
    for (const half of [false, true]) {
      let art = await toArtifacts(g);
      if (half) art = quantizeFloat16(art);
      const files = toFiles(art, 'generator');
      const json = JSON.parse(JSON.stringify(files.modelJson));
      const back = await fromArtifacts(fromFiles(json, [...files.shards.values()]));
      const got = (back.predict(z) as tf.Tensor).dataSync();
      const maxErr = Math.max(...Array.from(got, (v, i) => Math.abs(v - want[i])));
      expect(maxErr).toBeLessThan(half ? 0.02 : 1e-7);
      expect(files.weightBytes).toBe(half ? g.countParams() * 2 : g.countParams() * 4);
    }
  });
});

describe('loss', () => {
  it('BCE on logits is finite for huge logits and matches the formula', () => {
    const x = tf.tensor1d([-1000, -2, 0, 3, 1000]);
    const l1 = bceWithLogits(x, 1).dataSync()[0];
    const ref = [1000, Math.log1p(Math.exp(2)), Math.log(2), Math.log1p(Math.exp(-3)), 0];
    expect(l1).toBeCloseTo(ref.reduce((a, b) => a + b) / 5, 4);
    expect(Number.isFinite(bceWithLogits(x, 0).dataSync()[0])).toBe(true);
  });
});
