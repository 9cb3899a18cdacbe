// The training recipe's parts: DiffAugment, the moving average of G, the losses and R1.
import { describe, expect, it, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { FULL_POLICY, cutoutMasks, diffAugment, parsePolicy, shiftMatrices } from '../src/lib/diffaugment.ts';
import { WeightAverage, cloneModel } from '../src/lib/ema.ts';
import { GanTrainer, hingeD } from '../src/lib/gan.ts';
import { Rng } from '../src/lib/latent.ts';
import { buildGan, modelConfig } from '../src/lib/models.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A [n, 64, 64, 3] batch whose every value is distinct, so moved pixels can be traced. */
const ramp = (n: number) =>
  tf.tidy(() => tf.reshape(tf.div(tf.range(0, n * 64 * 64 * 3), n * 64 * 64 * 3), [n, 64, 64, 3]) as tf.Tensor4D);

describe('DiffAugment', () => {
  it('parses policies and names the bad op', () => {
    expect(parsePolicy('color,translation,cutout')).toEqual(['color', 'translation', 'cutout']);
    expect(parsePolicy('none')).toEqual([]);
    expect(parsePolicy('')).toEqual([]);
    expect(() => parsePolicy('color,blur')).toThrow(/unknown DiffAugment op "blur"/);
  });

  it('translation moves whole pixels and fills the uncovered border with zeros', () => {
    const m = shiftMatrices([2, -1], 4);
    // Row i of image 0 reads source row i + 2; rows 2 and 3 fall outside and stay empty.
    expect(Array.from(m.subarray(0, 16))).toEqual([0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(m.subarray(16, 32))).toEqual([0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);

    const x = ramp(3);
    const y = diffAugment(x, new Rng(4), ['translation']);
    const xv = x.arraySync(),
      yv = y.arraySync();
    for (let b = 0; b < 3; b++) {
      // Find the shift: the output pixel that holds source pixel (32, 32).
      const target = xv[b][32][32][0];
      let found: [number, number] | null = null;
      for (let i = 0; i < 64 && !found; i++)
        for (let j = 0; j < 64; j++) if (yv[b][i][j][0] === target) found = [i - 32, j - 32];
      expect(found).not.toBeNull();
      const [dy, dx] = found!;
      expect(Math.abs(dy)).toBeLessThanOrEqual(8);
      expect(Math.abs(dx)).toBeLessThanOrEqual(8);
      for (let i = 0; i < 64; i++) {
        for (let j = 0; j < 64; j++) {
          const si = i - dy,
            sj = j - dx;
          const inside = si >= 0 && si < 64 && sj >= 0 && sj < 64;
          expect(yv[b][i][j]).toEqual(inside ? xv[b][si][sj] : [0, 0, 0]);
        }
      }
    }
    tf.dispose([x, y]);
  });

  it('colour is brightness, then saturation, then contrast, as in the paper', () => {
    const x = tf.randomUniform([3, 64, 64, 3], -1, 1, 'float32', 9) as tf.Tensor4D;
    const y = diffAugment(x, new Rng(6), ['color']);
    // The paper's three steps one after another, with the same draws (all brightness, then saturation, then contrast).
    const rng = new Rng(6);
    const b = [0, 1, 2].map(() => rng.uniform() - 0.5),
      sat = [0, 1, 2].map(() => rng.uniform() * 2),
      k = [0, 1, 2].map(() => rng.uniform() + 0.5);
    const expected = tf.tidy(() => {
      const per = (v: number[]) => tf.tensor4d(v, [3, 1, 1, 1]);
      let r = tf.add(x, per(b));
      const m1 = tf.mean(r, 3, true);
      r = tf.add(tf.mul(tf.sub(r, m1), per(sat)), m1);
      const m2 = tf.mean(r, [1, 2, 3], true);
      return tf.add(tf.mul(tf.sub(r, m2), per(k)), m2);
    });
    expect(tf.max(tf.abs(tf.sub(y, expected))).dataSync()[0]).toBeLessThan(1e-5);
    tf.dispose([x, y, expected]);
  });

  it('cutout zeroes one square of half the side, clipped at the border', () => {
    const m = cutoutMasks(
      [
        [32, 32],
        [0, 63],
      ],
      64,
      64,
    );
    const zeros = (b: number) => m.subarray(b * 4096, (b + 1) * 4096).filter((v) => v === 0).length;
    expect(zeros(0)).toBe(32 * 32);
    expect(zeros(1)).toBe(16 * 17); // centred on the corner: rows 0..15, columns 47..63
    expect(m[0 * 4096 + 16 * 64 + 16]).toBe(0);
    expect(m[0 * 4096 + 15 * 64 + 16]).toBe(1);
  });

  it('is reproducible for a seed, differs between seeds and between images, and keeps the shape', () => {
    const x = tf.tidy(() => tf.sub(tf.mul(ramp(4), 2), 1) as tf.Tensor4D);
    const a = diffAugment(x, new Rng(1), FULL_POLICY);
    const b = diffAugment(x, new Rng(1), FULL_POLICY);
    const c = diffAugment(x, new Rng(2), FULL_POLICY);
    expect(a.shape).toEqual([4, 64, 64, 3]);
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    expect(tf.max(tf.abs(tf.sub(a, c))).dataSync()[0]).toBeGreaterThan(0.1);
    expect(diffAugment(x, new Rng(1), [])).toBe(x);
    tf.dispose([x, a, b, c]);
  });

  it('passes gradients back to the image (G learns through it)', () => {
    const x = tf.randomUniform([2, 64, 64, 3], -1, 1, 'float32', 5) as tf.Tensor4D;
    const gradOf = (policy: typeof FULL_POLICY) =>
      tf
        .grad((img: tf.Tensor) => tf.sum(tf.square(diffAugment(img as tf.Tensor4D, new Rng(3), policy))))(x)
        .dataSync();
    // Geometry alone: pixels shifted out or cut out get no gradient, the rest do.
    const geometric = gradOf(['translation', 'cutout']);
    const share = geometric.filter((v) => v !== 0).length / geometric.length;
    expect(share).toBeGreaterThan(0.4);
    expect(share).toBeLessThan(0.95);
    // Colour works through image means, so with it every pixel gets some gradient.
    const full = gradOf(FULL_POLICY);
    expect(full.every(Number.isFinite)).toBe(true);
    expect(full.filter((v) => v !== 0).length).toBe(full.length);
    x.dispose();
  });
});

describe('moving average of G', () => {
  it('ramps its decay up, then averages each weight as decay * old + (1 - decay) * new', async () => {
    const { generator } = buildGan(modelConfig('dcgan', 4, 100, 1));
    const average = await cloneModel(generator);
    const ema = new WeightAverage(generator, average, { decay: 0.99, warmup: true });
    expect(ema.currentDecay()).toBeCloseTo(0.1, 6);
    const before = average.getWeights().map((w) => w.dataSync().slice());
    // Move G's weights by +1 everywhere; the average moves by (1 - decay).
    generator.setWeights(generator.getWeights().map((w) => tf.add(w, 1)));
    ema.update();
    average.getWeights().forEach((w, i) => {
      const v = w.dataSync();
      for (let j = 0; j < v.length; j += 97) expect(v[j]).toBeCloseTo(before[i][j] + 0.9, 5);
    });
    for (let i = 0; i < 2000; i++) ema.updates++;
    expect(ema.currentDecay()).toBe(0.99);
    expect(() => new WeightAverage(generator, buildGan(modelConfig('dcgan', 8, 100, 1)).generator)).toThrow(
      /same weight layout/,
    );
    expect(() => new WeightAverage(generator, average, { decay: 1, warmup: false })).toThrow(/decay/);
  });
});

describe('losses and regularisers', () => {
  it('hinge loss is zero once real logits pass 1 and fake ones pass -1', () => {
    expect(hingeD(tf.tensor1d([2, 3]), tf.tensor1d([-2, -5])).dataSync()[0]).toBe(0);
    expect(hingeD(tf.tensor1d([0]), tf.tensor1d([0])).dataSync()[0]).toBe(2);
  });

  it("DiffAugment needs an Rng, and R1 changes D's update", async () => {
    const gan = buildGan(modelConfig('dcgan', 2, 100, 1));
    expect(() => new GanTrainer(gan.generator, gan.discriminator, { diffAugment: FULL_POLICY })).toThrow(
      /needs an Rng/,
    );
    const start = gan.discriminator.getWeights().map((w) => w.clone());
    const startG = gan.generator.getWeights().map((w) => w.clone());
    const real = tf.randomUniform([2, 64, 64, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
    const z = tf.randomNormal([2, 100], 0, 1, 'float32', 2) as tf.Tensor2D;
    const afterOneStep = async (r1Gamma: number) => {
      gan.discriminator.setWeights(start);
      gan.generator.setWeights(startG);
      const trainer = new GanTrainer(gan.generator, gan.discriminator, { r1Gamma, r1Every: 1, learningRate: 1e-2 });
      const before = tf.memory().numTensors;
      const result = await trainer.step(real, z);
      expect(Number.isFinite(result.dLoss)).toBe(true);
      const weights = gan.discriminator.getWeights().map((w) => Array.from(w.dataSync()));
      trainer.dispose();
      expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
      return { result, weights };
    };
    const plain = await afterOneStep(0);
    const penalised = await afterOneStep(10);
    // The penalty is part of D's loss, so it raises the reported loss and changes the step.
    expect(penalised.result.dLoss).toBeGreaterThan(plain.result.dLoss);
    const differ = penalised.weights.some((w, i) => w.some((v, j) => Math.abs(v - plain.weights[i][j]) > 1e-7));
    expect(differ).toBe(true);
    tf.dispose([real, z, ...start, ...startG]);
  });
});

describe('training only part of G', () => {
  it("gTrainFrom keeps G's earlier layers fixed, trains the rest and all of D, and names a missing layer", async () => {
    const gan = buildGan(modelConfig('dcgan', 2, 100, 1));
    expect(() => new GanTrainer(gan.generator, gan.discriminator, { gTrainFrom: 'g_nope' })).toThrow(
      /no layer named "g_nope".*g_deconv4/,
    );
    const snapshot = (layers: { getWeights(): tf.Tensor[] }[]) =>
      layers.map((l) => l.getWeights().map((w) => Array.from(w.dataSync())));
    const layers = gan.generator.layers;
    const cut = layers.findIndex((l) => l.name === 'g_deconv3');
    const beforeG = snapshot(layers);
    const beforeD = snapshot(gan.discriminator.layers);
    const trainer = new GanTrainer(gan.generator, gan.discriminator, { gTrainFrom: 'g_deconv3', learningRate: 1e-2 });
    const real = tf.randomUniform([2, 64, 64, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
    const z = tf.randomNormal([2, 100], 0, 1, 'float32', 2) as tf.Tensor2D;
    await trainer.step(real, z);
    const afterG = snapshot(layers);
    const moved = (a: number[][], b: number[][]) => a.some((w, i) => w.some((v, j) => v !== b[i][j]));
    // Batch norm's moving statistics follow the batch in any layer; its learnt scale and shift may not.
    const learnt = (i: number) => layers[i].trainableWeights.length;
    for (let i = 0; i < cut; i++) {
      const fixed = layers[i].getWeights().map((_, k) => k < learnt(i));
      expect(afterG[i].filter((_, k) => fixed[k])).toEqual(beforeG[i].filter((_, k) => fixed[k]));
    }
    expect(moved(afterG[cut], beforeG[cut])).toBe(true);
    expect(snapshot(gan.discriminator.layers).some((w, i) => moved(w, beforeD[i]))).toBe(true);
    trainer.dispose();
    tf.dispose([real, z]);
  });

  it("dLearningRate sets D's step apart from G's: at 0, D stays where it was while G learns", async () => {
    const gan = buildGan(modelConfig('dcgan', 2, 100, 1));
    const learnt = (m: { trainableWeights: { read(): tf.Tensor }[] }) =>
      m.trainableWeights.map((w) => Array.from(w.read().dataSync()));
    const [beforeG, beforeD] = [learnt(gan.generator), learnt(gan.discriminator)];
    const trainer = new GanTrainer(gan.generator, gan.discriminator, { learningRate: 1e-2, dLearningRate: 0 });
    const real = tf.randomUniform([2, 64, 64, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
    const z = tf.randomNormal([2, 100], 0, 1, 'float32', 2) as tf.Tensor2D;
    await trainer.step(real, z);
    expect(learnt(gan.discriminator)).toEqual(beforeD);
    expect(learnt(gan.generator).some((w, i) => w.some((v, j) => v !== beforeG[i][j]))).toBe(true);
    trainer.dispose();
    tf.dispose([real, z]);
  });
});
