// Fine-tuning towards one person: projection, the pivotal-tuning session, the
// baked latent shift, and the identity measures of the eval.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import {
  copyGuardNote,
  DEFAULT_FINETUNE,
  EtaEstimator,
  FinetuneSession,
  finetuneConfig,
  stepWork,
} from '../src/lib/finetune.ts';
import { generate } from '../src/lib/gan.ts';
import { Rng, sampleLatents } from '../src/lib/latent.ts';
import { bakeLatentShift, likenessAt, shiftLatents, type LatentShift } from '../src/lib/latent-shift.ts';
import { LikenessFit } from '../src/lib/likeness.ts';
import * as tfl from '@tensorflow/tfjs-layers';
import { buildGan, modelConfig } from '../src/lib/models.ts';
import { meanLatent, projectPhotos } from '../src/lib/projection.ts';
import { fromArtifacts, toArtifacts } from '../src/lib/weights.ts';
import { NEAR_COPY_RMS, nearestPhotoDistances } from '../src/lib/near-copies.ts';
import { readFileSync } from 'node:fs';

const PIXELS = 64 * 64 * 3;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function smallGan(seed = 3) {
  return buildGan({ ...modelConfig('dcgan', 4, 16), seed });
}

async function faces(g: LayersModel, z: Float32Array): Promise<Float32Array> {
  const zDim = g.inputs[0].shape[1] as number;
  const t = tf.tensor2d(z, [z.length / zDim, zDim]);
  const out = generate(g, t);
  const data = (await out.data()) as Float32Array;
  tf.dispose([t, out]);
  return data;
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('baked latent shift', () => {
  it('G_baked(z) equals G(a*z + m*c), saves, loads, and bakes again on top of its bias', async () => {
    const { generator } = smallGan();
    const zDim = 16;
    const rng = new Rng(5);
    const z = sampleLatents(rng, 4, zDim);
    const shift = { scale: 0.8, pull: 0.7, centre: sampleLatents(rng, 1, zDim) };
    const baked = await bakeLatentShift(generator, shift);
    expect(baked.getLayer('g_project').weights.map((w) => w.originalName)).toEqual([
      'g_project/kernel',
      'g_project/bias',
    ]);
    expect(maxAbsDiff(await faces(baked, z), await faces(generator, shiftLatents(z, shift)))).toBeLessThan(1e-4);
    // A saved and reloaded baked model draws the same; a second shift composes.
    const loaded = await fromArtifacts(await toArtifacts(baked));
    expect(maxAbsDiff(await faces(loaded, z), await faces(baked, z))).toBeLessThan(1e-6);
    const second = { scale: 0.5, pull: 1, centre: sampleLatents(rng, 1, zDim) };
    const twice = await bakeLatentShift(loaded, second);
    expect(
      maxAbsDiff(await faces(twice, z), await faces(generator, shiftLatents(shiftLatents(z, second), shift))),
    ).toBeLessThan(1e-4);
    // The input model is untouched.
    expect(generator.getLayer('g_project').weights).toHaveLength(1);
    [baked, loaded, twice, generator].forEach((m) => m.dispose());
  });
});

describe('likeness control', () => {
  it("goes from plain sampling (0) to the run's shift (1) and beyond", () => {
    const shift = { scale: 0.8, pull: 0.7, centre: new Float32Array([1, 2]) };
    expect(likenessAt(shift, 0)).toMatchObject({ scale: 1, pull: 0 });
    expect(likenessAt(shift, 1)).toMatchObject({ scale: 0.8, pull: 0.7 });
    const more = likenessAt(shift, 1.5);
    expect(more.scale).toBeCloseTo(0.7, 9);
    expect(more.pull).toBeCloseTo(1.05, 9);
    expect(Array.from(shiftLatents(new Float32Array([1, 1]), likenessAt(shift, 0)))).toEqual([1, 1]);
  });
});

/** An untrained DCGAN draws nearly flat grey; larger kernels (unit-variance activations) give it images worth matching. */
function scaleUp(generator: LayersModel): void {
  for (const name of ['g_project', 'g_deconv1', 'g_deconv2', 'g_deconv3', 'g_deconv4']) {
    const layer = generator.getLayer(name);
    const [k] = layer.getWeights();
    const fanIn = name === 'g_project' ? 16 : (k.shape[3] as number) * 4;
    const scaled = tf.mul(k, 1 / (0.02 * Math.sqrt(fanIn)));
    layer.setWeights([scaled]);
    scaled.dispose();
  }
}

/** A stand-in recogniser: 8x8-pooled pixels, 192 values (differentiable, cheap). */
function poolingEmbedder() {
  return {
    fn: (x: tf.Tensor4D) => tf.tidy(() => tf.reshape(tf.avgPool(x, 8, 8, 'valid'), [x.shape[0], -1]) as tf.Tensor2D),
    dispose: () => {},
  };
}

describe('likeness fit', () => {
  it("moves the samples' mean descriptor onto the photos', on latents it never saw, within the norm budget", async () => {
    // A generator whose faces depend on z smoothly: one tanh Dense layer.
    const g = tfl.sequential({
      layers: [
        tfl.layers.dense({
          inputShape: [16],
          units: PIXELS,
          activation: 'tanh',
          kernelInitializer: tfl.initializers.randomNormal({ stddev: 0.3, seed: 1 }),
        }),
        tfl.layers.reshape({ targetShape: [64, 64, 3] }),
      ],
    });
    const embed = poolingEmbedder();
    const truth = sampleLatents(new Rng(21), 4, 16).map((v, i) => 0.3 * v + (i % 16 < 8 ? 0.6 : -0.6));
    const photos = tf.tensor4d(await faces(g, truth), [4, 64, 64, 3]);
    const before = tf.memory().numTensors;
    const fit = new LikenessFit(g, embed.fn, photos, new Float32Array(16), {
      steps: 40,
      batch: 8,
      learningRate: 0.1,
      margin: 0,
      scale: 0.8,
    });
    const z = sampleLatents(new Rng(99), 64, 16);
    const centreDistance = (shift: LatentShift) =>
      tf.tidy(() => {
        const target = tf.mean(embed.fn(photos), 0);
        const d = tf.mean(embed.fn(g.apply(tf.tensor2d(shiftLatents(z, shift), [64, 16])) as tf.Tensor4D), 0);
        return tf.norm(tf.sub(d, target)).dataSync()[0];
      });
    const start = fit.shift();
    let first = NaN;
    while (!fit.finished) {
      const loss = await fit.step();
      if (fit.stepsDone === 1) first = loss;
    }
    const fitted = fit.shift();
    expect(fit.lastLoss).toBeLessThan(first);
    expect(centreDistance(fitted)).toBeLessThan(0.5 * centreDistance(start));
    // |c|^2 stays near the (1 - a^2) share of zDim that the scale a = 0.8 leaves.
    expect(fitted.centre.reduce((s, v) => s + v * v, 0) / 16).toBeLessThan(0.36 + 0.1);
    fit.dispose();
    expect(tf.memory().numTensors).toBe(before);
    photos.dispose();
    g.dispose();
  });

  it('refuses a start of the wrong size and bad settings', () => {
    const { generator } = smallGan();
    const photos = tf.zeros([1, 64, 64, 3]) as tf.Tensor4D;
    const embed = poolingEmbedder().fn;
    expect(() => new LikenessFit(generator, embed, photos, new Float32Array(3))).toThrow(/16/);
    expect(() => new LikenessFit(generator, embed, photos, new Float32Array(16), { scale: 1.5 })).toThrow(/scale/);
    photos.dispose();
    generator.dispose();
  });
});

describe('projection', () => {
  it('recovers a latent well enough to reconstruct a face the generator drew', async () => {
    const { generator, discriminator } = smallGan();
    scaleUp(generator);
    const zTrue = sampleLatents(new Rng(11), 2, 16);
    const photos = await faces(generator, zTrue);
    const crops = [photos.slice(0, PIXELS), photos.slice(PIXELS)];
    const before = await projectPhotos(generator, discriminator, crops, { steps: 0, candidates: 8, priorWeight: 0 });
    const after = await projectPhotos(generator, discriminator, crops, {
      steps: 20,
      candidates: 8,
      learningRate: 0.05,
      priorWeight: 0,
    });
    const err = (r: Float32Array) => r.reduce((s, v, i) => s + (v - photos[i]) ** 2, 0) / r.length;
    expect(err(after.reconstructions)).toBeLessThan(err(before.reconstructions) * 0.5);
    // Seeded: the same call gives the same latents.
    const again = await projectPhotos(generator, discriminator, crops, {
      steps: 20,
      candidates: 8,
      learningRate: 0.05,
      priorWeight: 0,
    });
    expect(again.latents).toEqual(after.latents);
    expect(meanLatent(after.latents, 16)).toHaveLength(16);
  });
});

describe('pivotal tuning session', () => {
  it('projects, tunes towards the photos, counts both phases, and leaks no tensors', async () => {
    const { generator, discriminator } = smallGan();
    const rng = new Rng(2);
    const crops = [0, 1, 2].map(() => Float32Array.from({ length: PIXELS }, () => rng.uniform() * 0.4 - 0.2));
    const before = tf.memory().numTensors;
    const session = new FinetuneSession(generator, discriminator, crops, {
      projectionSteps: 3,
      steps: 4,
      batch: 2,
      localityBatch: 2,
      learningRate: 1e-3,
    });
    expect(session.totalSteps).toBe(7);
    expect(await session.reconstructions()).toBeNull();
    const phases: string[] = [];
    while (!session.finished) phases.push((await session.step()).phase);
    expect(phases).toEqual(['project', 'project', 'project', 'tune', 'tune', 'tune', 'tune']);
    expect((await session.reconstructions())!.length).toBe(3 * PIXELS);
    const shift = session.shift();
    expect(shift.scale).toBe(DEFAULT_FINETUNE.likenessScale);
    const baked = await session.bake();
    session.dispose();
    baked.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it("the identity term pulls faces drawn where the export samples towards the photos' descriptor, and needs a recogniser", async () => {
    const embed = poolingEmbedder();
    const rng = new Rng(4);
    // Two bright photos: far, in the stand-in recogniser's pooled pixels, from what an untrained G draws.
    const crops = [0, 1].map(() => Float32Array.from({ length: PIXELS }, () => 0.4 + rng.uniform() * 0.4));
    const photos = tf.tensor4d([...crops[0], ...crops[1]], [2, 64, 64, 3]);
    const target = tf.tidy(() => tf.mean(embed.fn(photos), 0, true));
    const z = sampleLatents(new Rng(9), 16, 16);
    const distance = async (identityTuneWeight: number) => {
      const { generator, discriminator } = smallGan();
      scaleUp(generator);
      const before = tf.memory().numTensors;
      const session = new FinetuneSession(
        generator,
        discriminator,
        crops,
        {
          projectionSteps: 1,
          steps: 12,
          batch: 2,
          localityBatch: 2,
          learningRate: 1e-2,
          identityTuneWeight,
          likenessMargin: 0,
        },
        embed.fn,
      );
      while (!session.finished) await session.step();
      const baked = await session.bake();
      const d = tf.tidy(() => {
        const samples = embed.fn(generate(baked, tf.tensor2d(z, [16, 16])));
        return tf.mean(tf.sum(tf.squaredDifference(samples, target), 1)).dataSync()[0];
      });
      session.dispose();
      baked.dispose();
      expect(tf.memory().numTensors).toBe(before);
      generator.dispose();
      discriminator.dispose();
      return d;
    };
    const without = await distance(0);
    const withTerm = await distance(5);
    expect(withTerm).toBeLessThan(0.5 * without);
    const { generator, discriminator } = smallGan();
    const session = new FinetuneSession(generator, discriminator, crops, {
      projectionSteps: 1,
      steps: 1,
      identityTuneWeight: 1,
    });
    await expect(async () => {
      while (!session.finished) await session.step();
    }).rejects.toThrow(/embedder/);
    tf.dispose([photos, target]);
  });

  it('the copy guard lowers the pull while the samples copy a photo, keeps it when they do not or when it only reports, and bakes what it chose', async () => {
    const run = async (crops: Float32Array[], maxCopyShare: number) => {
      const { generator, discriminator } = smallGan();
      const session = new FinetuneSession(generator, discriminator, crops, {
        projectionSteps: 1,
        steps: 1,
        batch: 2,
        localityBatch: 2,
        copyCheckSamples: 8,
        maxCopyShare,
      });
      while (!session.finished) await session.step();
      const shift = session.shift();
      const baked = await session.bake();
      const z = sampleLatents(new Rng(5), 2, 16);
      const same = maxAbsDiff(await faces(baked, z), await faces(session.sampler, shiftLatents(z, shift)));
      const checks = [...session.copyChecks];
      session.dispose();
      baked.dispose();
      return { pull: shift.pull, checks, same };
    };
    // An untrained G draws nearly the same grey face everywhere: a photo of that face is copied at every pull.
    const { generator } = smallGan();
    const grey = await faces(generator, sampleLatents(new Rng(6), 1, 16));
    const copied = await run([grey], 0.06);
    expect(copied.checks.map((c) => c.pull)).toEqual([0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0]);
    expect(copied.checks.every((c) => c.share === 1)).toBe(true);
    expect(copied.pull).toBe(0);
    expect(copied.same).toBeLessThan(1e-4);
    // Photos of loud noise are nothing G can draw: the first pull passes.
    const rng = new Rng(7);
    const noise = [0, 1].map(() => Float32Array.from({ length: PIXELS }, () => (rng.uniform() < 0.5 ? -1 : 1)));
    const kept = await run(noise, 0.06);
    expect(kept.checks).toEqual([{ pull: 0.7, share: 0 }]);
    expect(kept.pull).toBe(0.7);
    // Report only (the default): measured once, the configured pull kept.
    const off = await run([grey], 1);
    expect(off.checks).toEqual([{ pull: 0.7, share: 1 }]);
    expect(off.pull).toBe(0.7);
  });

  it('the adversarial term trains a D of its own, never the given D, changes what G learns, and leaks no tensors', async () => {
    const rng = new Rng(8);
    const crops = [0, 1].map(() => Float32Array.from({ length: PIXELS }, () => rng.uniform() * 0.8 - 0.4));
    const tune = async (adversarialWeight: number) => {
      const { generator, discriminator } = smallGan();
      const dBefore = discriminator.getWeights().map((w) => w.dataSync().slice() as Float32Array);
      const before = tf.memory().numTensors;
      const session = new FinetuneSession(generator, discriminator, crops, {
        projectionSteps: 1,
        steps: 3,
        batch: 2,
        localityBatch: 2,
        adversarialBatch: 2,
        adversarialWeight,
        criticBlock: 2,
        learningRate: 1e-2,
        maxCopyShare: 1,
      });
      while (!session.finished) await session.step();
      const g = generator.getLayer('g_deconv4').getWeights()[0].dataSync().slice() as Float32Array;
      const dAfter = discriminator.getWeights().map((w) => w.dataSync().slice() as Float32Array);
      session.dispose();
      expect(tf.memory().numTensors).toBe(before);
      expect(dAfter.every((w, i) => maxAbsDiff(w, dBefore[i]) === 0)).toBe(true);
      generator.dispose();
      discriminator.dispose();
      return g;
    };
    expect(maxAbsDiff(await tune(1), await tune(0))).toBeGreaterThan(1e-4);
  });

  it('tunes only the first tunedLayers weighted layers of G; mirrored copies get pivots of their own', async () => {
    const { generator, discriminator } = smallGan();
    const rng = new Rng(4);
    const crops = [0, 1].map(() => Float32Array.from({ length: PIXELS }, () => rng.uniform() * 0.8 - 0.4));
    const snapshot = (name: string) => generator.getLayer(name).getWeights()[0].dataSync().slice() as Float32Array;
    const [project, last] = [snapshot('g_project'), snapshot('g_deconv4')];
    const config = {
      projectionSteps: 2,
      steps: 3,
      batch: 4,
      localityBatch: 0,
      learningRate: 1e-2,
      tunedLayers: 2,
      augment: true,
      pivotNoise: 0,
    };
    const session = new FinetuneSession(generator, discriminator, crops, config);
    while (!session.finished) await session.step();
    expect(maxAbsDiff(snapshot('g_project'), project)).toBeGreaterThan(0);
    expect(maxAbsDiff(snapshot('g_deconv4'), last)).toBe(0);
    expect(session.originals).toBe(2);
    expect(session.latents()!.length).toBe(4 * 16);
    session.dispose();
  });

  it("tunes a pyramid's 64 px base on the photos downscaled and keeps its branch; all of it with baseOnly false", async () => {
    const rng = new Rng(8);
    const crops = [0, 1].map(() => Float32Array.from({ length: 4 * PIXELS }, () => rng.uniform() * 0.8 - 0.4));
    const config = {
      projectionSteps: 2,
      steps: 3,
      batch: 2,
      localityBatch: 2,
      learningRate: 1e-2,
      pivotNoise: 0.5,
      copyCheckSamples: 4,
    };
    const run = async (baseOnly: boolean) => {
      const { generator, discriminator } = buildGan({
        ...modelConfig('dcgan', 4, 16, undefined, 128),
        seed: 3,
        lastUpsample: 'pyramid',
      });
      const snapshot = (name: string) => generator.getLayer(name).getWeights()[0].dataSync().slice() as Float32Array;
      const before = { base: snapshot('g_deconv4'), branch: snapshot('g_detail4') };
      const tensors = tf.memory().numTensors;
      const session = new FinetuneSession(generator, discriminator, crops, { ...config, baseOnly });
      const losses: number[] = [];
      while (!session.finished) losses.push((await session.step()).loss);
      expect(losses.every(Number.isFinite)).toBe(true);
      // Drawn, baked and exported at the pyramid's own size.
      expect((await session.reconstructions())!.length).toBe(2 * 4 * PIXELS);
      const baked = await session.bake();
      expect(baked.outputs[0].shape).toEqual([null, 128, 128, 3]);
      const moved = {
        base: maxAbsDiff(snapshot('g_deconv4'), before.base),
        branch: maxAbsDiff(snapshot('g_detail4'), before.branch),
      };
      const tunesBase = session.tunesBase;
      session.dispose();
      baked.dispose();
      expect(tf.memory().numTensors).toBe(tensors);
      generator.dispose();
      discriminator.dispose();
      return { moved, tunesBase };
    };
    const base = await run(true);
    expect(base.tunesBase).toBe(true);
    expect(base.moved.base).toBeGreaterThan(0);
    expect(base.moved.branch).toBe(0);
    const all = await run(false);
    expect(all.tunesBase).toBe(false);
    expect(all.moved.branch).toBeGreaterThan(0);
  });

  it('runs the likeness steps after tuning when given a face embedder, and leaves G as it was', async () => {
    const { generator, discriminator } = smallGan();
    const embed = poolingEmbedder();
    const rng = new Rng(6);
    const crops = [0, 1].map(() => Float32Array.from({ length: PIXELS }, () => rng.uniform() * 0.8 - 0.4));
    const config = {
      projectionSteps: 2,
      steps: 2,
      batch: 2,
      localityBatch: 0,
      likenessSteps: 3,
      likenessBatch: 2,
      likenessMargin: 0,
    };
    expect(new FinetuneSession(generator, discriminator, crops, config).totalSteps).toBe(4);
    const before = tf.memory().numTensors;
    const session = new FinetuneSession(generator, discriminator, crops, config, embed.fn);
    expect(session.totalSteps).toBe(7);
    const phases: string[] = [];
    let start: ReturnType<typeof session.shift> | null = null;
    let weights: Float32Array | null = null;
    while (!session.finished) {
      if (session.phase === 'likeness' && !start) {
        start = session.shift();
        weights = generator.getLayer('g_project').getWeights()[0].dataSync().slice() as Float32Array;
      }
      phases.push((await session.step()).phase);
    }
    expect(phases).toEqual(['project', 'project', 'tune', 'tune', 'likeness', 'likeness', 'likeness']);
    const fitted = session.shift();
    expect(fitted).toMatchObject({ scale: DEFAULT_FINETUNE.likenessScale, pull: 1 });
    expect(
      maxAbsDiff(
        fitted.centre,
        start!.centre.map((v) => v * start!.pull),
      ),
    ).toBeGreaterThan(0);
    expect(generator.getLayer('g_project').getWeights()[0].dataSync()).toEqual(weights);
    (await session.bake()).dispose();
    session.dispose();
    expect(tf.memory().numTensors).toBe(before);
    embed.dispose();
  });

  it('takes a 128 px pair with 128 px crops (projecting them at 128 px), and refuses crops or a discriminator of another size', async () => {
    const big = buildGan({ ...modelConfig('dcgan', 2, 16, undefined, 128), seed: 5 });
    const side = 128 * 128 * 3;
    const rng = new Rng(8);
    const crops = [0, 1].map(() => Float32Array.from({ length: side }, () => rng.uniform() * 0.8 - 0.4));
    const before = tf.memory().numTensors;
    // The session's projection, made cheap: the whole run at 128 px is the fine-tune page's e2e test.
    const projected = await projectPhotos(big.generator, big.discriminator, crops, { steps: 1, candidates: 2 });
    expect(projected.reconstructions.length).toBe(2 * side);
    new FinetuneSession(big.generator, big.discriminator, crops, { augment: true }).dispose();
    expect(tf.memory().numTensors).toBe(before);
    const small = smallGan();
    const crop64 = new Float32Array(PIXELS);
    expect(() => new FinetuneSession(big.generator, big.discriminator, [crop64])).toThrow(/not a 128x128x3 image/);
    expect(() => new FinetuneSession(big.generator, small.discriminator, crops)).toThrow(/reads 64 px images/);
    expect(() => new FinetuneSession(small.generator, small.discriminator, crops)).toThrow(/not a 64x64x3 image/);
    await expect(projectPhotos(big.generator, null, [crop64])).rejects.toThrow(/not a 128x128x3 image/);
  });

  it('rejects bad settings by name', () => {
    expect(() => finetuneConfig({ pivotNoise: -1 })).toThrow(/pivotNoise/);
    expect(() => finetuneConfig({ steps: 0, projectionSteps: 0 })).toThrow(/both be 0/);
    expect(() => finetuneConfig({ projectionSteps: 1.5 })).toThrow(/whole number/);
    expect(() => finetuneConfig({ tunedLayers: 2.5 })).toThrow(/tunedLayers/);
    expect(() => finetuneConfig({ criticBlock: 3 })).toThrow(/criticBlock must be 1, 2, 4 or 8/);
  });
});

describe('near-copies', () => {
  it('a sample that is a photo (or its mirror image) is a near copy; others are not', () => {
    const rng = new Rng(9);
    const photo = Float32Array.from({ length: PIXELS }, () => rng.uniform() * 2 - 1);
    const mirrored = new Float32Array(PIXELS);
    for (let y = 0; y < 64; y++)
      for (let x = 0; x < 64; x++)
        for (let c = 0; c < 3; c++) mirrored[(y * 64 + 63 - x) * 3 + c] = photo[(y * 64 + x) * 3 + c];
    const other = Float32Array.from({ length: PIXELS }, () => rng.uniform() * 2 - 1);
    const samples = new Float32Array(3 * PIXELS);
    samples.set(photo, 0);
    samples.set(mirrored, PIXELS);
    samples.set(other, 2 * PIXELS);
    const near = nearestPhotoDistances(samples, photo);
    expect(near[0]).toBe(0);
    expect(near[1]).toBe(0);
    expect(near[2]).toBeGreaterThan(0.5);
  });
});

describe('copy guard note', () => {
  it('says nothing before tuning, the share when the pull was kept, and both pulls and shares when it was lowered', () => {
    expect(copyGuardNote([])).toBe('');
    expect(copyGuardNote([{ pull: 0.7, share: 0.02 }])).toMatch(/2% of faces the model draws are near-copies/);
    const note = copyGuardNote([
      { pull: 0.7, share: 0.2 },
      { pull: 0.6, share: 0.09 },
      { pull: 0.5, share: 0.04 },
    ]);
    expect(note).toMatch(/20% of faces came out as copies/);
    expect(note).toMatch(/pull 0.5 instead of 0.7; 4% copies/);
  });
});

describe('near-copy bound', () => {
  it("is the calibration's, at each size the likeness judges are calibrated for", () => {
    for (const size of [64, 128]) {
      const cal = JSON.parse(readFileSync(`training/eval/likeness-calibration-${size}.json`, 'utf8')) as {
        nearCopyRms: number;
      };
      expect(NEAR_COPY_RMS[size]).toBeCloseTo(cal.nearCopyRms, 4);
    }
  });
});

describe('time left', () => {
  /** A run's true cost when a step costs 10 ms per image it draws: projection 6 photos, tuning 8 + 8 locality. */
  const plan = (projectLeft: number, tuneLeft: number) => [
    ...(projectLeft > 0 ? [{ phase: 'project' as const, steps: projectLeft, work: 6 }] : []),
    { phase: 'tune' as const, steps: tuneLeft, work: 16 },
  ];

  it('prices tuning from the projection pace before tuning starts, within 30% of the true time', () => {
    const eta = new EtaEstimator();
    expect(eta.secondsLeft(plan(200, 400))).toBeNull();
    eta.record('project', 900, 6); // shader compilation: the first step is slow and then forgotten
    for (let i = 1; i < 20; i++) eta.record('project', 60 * (1 + 0.1 * Math.sin(i)), 6);
    const truth = (180 * 60 + 400 * 160) / 1000;
    const estimate = eta.secondsLeft(plan(180, 400))!;
    expect(Math.abs(estimate - truth) / truth).toBeLessThan(0.3);
    // Counting every step at the projection's pace, as a single average would, misses by more than half.
    expect(Math.abs((580 * 60) / 1000 - truth) / truth).toBeGreaterThan(0.5);
    // Once tuning runs, its own pace takes over.
    for (let i = 0; i < 10; i++) eta.record('tune', 200, 16);
    expect(eta.secondsLeft(plan(0, 100))).toBeCloseTo(20, 5);
    expect(eta.stepsPerSecond()).toBeCloseTo(5, 5);
  });

  it("does not jump at a phase's slow first step: until its second, the phase is priced from the pace before", () => {
    const eta = new EtaEstimator();
    for (let i = 0; i < 20; i++) eta.record('project', 60, 6);
    const before = eta.secondsLeft(plan(0, 400))!;
    eta.record('tune', 5000, 16); // the tuning graph's first step: new kernels, new buffers
    expect(eta.secondsLeft(plan(0, 399))!).toBeCloseTo((before * 399) / 400, 5);
    eta.record('tune', 170, 16);
    expect(eta.secondsLeft(plan(0, 398))).toBeCloseTo((398 * 170) / 1000, 5);
  });

  it("a session lists the steps left per phase with each step's work", () => {
    const { generator, discriminator } = smallGan();
    const crops = [0, 1, 2].map(() => new Float32Array(PIXELS));
    const session = new FinetuneSession(generator, discriminator, crops, {
      projectionSteps: 3,
      steps: 4,
      batch: 2,
      localityBatch: 5,
    });
    // A projection step moves every photo's latent; a tuning step draws its pivots and locality faces, each costing
    // 1.4 projected images (their gradient reaches G's weights too).
    const [project, tune] = session.remaining;
    expect(project).toEqual({ phase: 'project', steps: 3, work: 3 });
    expect(tune.phase).toBe('tune');
    expect(tune.steps).toBe(4);
    expect(tune.work).toBeCloseTo(1.4 * (2 + 5), 9);
    session.dispose();
    // The identity term's faces go through the recogniser, each costing 1.5 projected images, spread over the steps it runs on.
    const withTerm = (identityTuneEvery: number) =>
      stepWork(
        finetuneConfig({
          batch: 2,
          localityBatch: 5,
          identityTuneWeight: 0.5,
          identityTuneBatch: 4,
          identityTuneEvery,
        }),
        3,
        'tune',
      );
    expect(withTerm(1)).toBeCloseTo(1.4 * (2 + 5) + 1.5 * 4, 9);
    expect(withTerm(4)).toBeCloseTo(1.4 * (2 + 5) + 1.5, 9);
  });
});
