import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { Matrix } from 'ml-matrix';
import sharp from 'sharp';
import { toRgba } from '../src/lib/images.ts';
import { Rng } from '../src/lib/latent.ts';
import { squaredDistances } from '../src/lib/identity.ts';
import { IMAGE_SIZE, modelConfig } from '../src/lib/models.ts';
import { projectPhotos } from '../src/lib/projection.ts';
import { registerWasmTrainingKernels } from '../src/lib/wasm-training.ts';
import { toArtifacts, toFiles } from '../src/lib/weights.ts';
import {
  evaluateFolder,
  evaluateGenerator,
  evaluateHeldOut,
  evaluateImages,
  evaluateUntrained,
  realDescriptors,
} from '../training/eval/evaluate.ts';
import { DescriptorCache } from '../training/eval/descriptor-cache.ts';
import { describeFaces, detectFaces, disposeFaceNets, faceNets } from '../training/eval/face-nets.ts';
import { loadModelFile } from '../training/model-files.ts';
import { frechetDistance, gaussianStats, traceSqrtProduct, type GaussianStats } from '../training/eval/frechet.ts';
import {
  boxDownscale,
  DEFAULT_DATA_DIR,
  generatorImages,
  heldOutFiles,
  heldOutFilesAt,
  largeEnough,
  loadAligned,
  pickFiles,
  trainingFilesAt,
  untrainedGenerator,
} from '../training/eval/sources.ts';

const SHIPPED_GENERATOR = new URL('../public/models/generator.json', import.meta.url).pathname;

/** `count` rows of `dim` normal features with per-dimension scale and shift. */
function normalRows(rng: Rng, count: number, dim: number, scale: (i: number) => number, shift = 0): Float64Array {
  const rows = new Float64Array(count * dim);
  for (let r = 0; r < count; r++) for (let i = 0; i < dim; i++) rows[r * dim + i] = rng.normal() * scale(i) + shift;
  return rows;
}

function diagonalStats(mean: number[], variance: number[]): GaussianStats {
  const dim = mean.length;
  const cov = new Float64Array(dim * dim);
  variance.forEach((v, i) => {
    cov[i * dim + i] = v;
  });
  return { dim, count: 1000, mean: Float64Array.from(mean), cov };
}

describe('Fréchet distance', () => {
  const rng = new Rng(7);
  const base = gaussianStats(
    normalRows(rng, 400, 8, (i) => 1 + i / 4),
    8,
  );

  it('is ~0 between a set and itself', () => {
    expect(frechetDistance(base, base)).toBeLessThan(1e-9);
  });

  it('grows with a mean shift, by exactly |shift|^2 when covariances are equal', () => {
    const shifted = (s: number): GaussianStats => ({ ...base, mean: base.mean.map((m) => m + s) });
    const small = frechetDistance(base, shifted(0.5));
    const large = frechetDistance(base, shifted(1));
    expect(small).toBeCloseTo(8 * 0.25, 6);
    expect(large).toBeCloseTo(8 * 1, 6);
    expect(large).toBeGreaterThan(small);
  });

  it('matches the closed form for diagonal Gaussians: |mu1 - mu2|^2 + sum (sigma1 - sigma2)^2', () => {
    const a = diagonalStats([0, 1, 2], [1, 4, 9]);
    const b = diagonalStats([1, 1, 0], [4, 1, 0.25]);
    const expected = 1 + 0 + 4 + ((1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 0.5) ** 2);
    expect(frechetDistance(a, b)).toBeCloseTo(expected, 9);
  });

  it('takes the square root of a non-symmetric product correctly (2x2: tr sqrt M = sqrt(tr M + 2 sqrt det M))', () => {
    const s1 = new Matrix([
      [2, 1],
      [1, 3],
    ]);
    const s2 = new Matrix([
      [1, -0.5],
      [-0.5, 2],
    ]);
    const m = s1.mmul(s2);
    const det = m.get(0, 0) * m.get(1, 1) - m.get(0, 1) * m.get(1, 0);
    expect(traceSqrtProduct(s1, s2)).toBeCloseTo(Math.sqrt(m.trace() + 2 * Math.sqrt(det)), 10);
    // Inputs are left untouched.
    expect(s1.to2DArray()).toEqual([
      [2, 1],
      [1, 3],
    ]);
  });

  it('is close to 0 for two samples of one distribution and far for different ones', () => {
    const other = gaussianStats(
      normalRows(rng, 400, 8, (i) => 1 + i / 4),
      8,
    );
    const wider = gaussianStats(
      normalRows(rng, 400, 8, (i) => 3 * (1 + i / 4)),
      8,
    );
    expect(frechetDistance(base, other)).toBeLessThan(1);
    expect(frechetDistance(base, wider)).toBeGreaterThan(10 * frechetDistance(base, other));
  });

  it('rejects bad input clearly', () => {
    expect(() => gaussianStats(new Float64Array(7), 2)).toThrow(/whole number/);
    expect(() => gaussianStats(new Float64Array(2), 2)).toThrow(/at least 2/);
    expect(() => gaussianStats([0, NaN, 1, 2], 2)).toThrow(/NaN/);
    expect(() => frechetDistance(base, diagonalStats([0], [1]))).toThrow(/dimensions differ/);
  });
});

describe('held-out descriptor cache', () => {
  it('returns what was saved, across instances, and misses once a photo changes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'facegan-cache-'));
    try {
      const photo = join(dir, '000001.jpg');
      writeFileSync(photo, 'pixels');
      const descriptor = Float32Array.from({ length: 128 }, (_, i) => Math.fround(i / 7 - 3));
      const cache = new DescriptorCache(join(dir, 'cache'), '1.7.15', 'wasm');
      expect(cache.get(photo)).toBeUndefined();
      cache.set(photo, descriptor);
      cache.save();
      expect(new DescriptorCache(join(dir, 'cache'), '1.7.15', 'wasm').get(photo)).toEqual(descriptor);
      // Another backend or face-api version has its own entries.
      expect(new DescriptorCache(join(dir, 'cache'), '1.7.15', 'cpu').get(photo)).toBeUndefined();
      utimesSync(photo, new Date(0), new Date(0));
      expect(new DescriptorCache(join(dir, 'cache'), '1.7.15', 'wasm').get(photo)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps 64 px and 128 px descriptors of one photo apart (64 by default)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'facegan-cache-'));
    try {
      const photo = join(dir, '000001.jpg');
      writeFileSync(photo, 'pixels');
      const at64 = Float32Array.from({ length: 128 }, (_, i) => Math.fround(i / 9));
      const at128 = Float32Array.from({ length: 128 }, (_, i) => Math.fround(-(i + 1) / 9));
      const open = (size?: number) => new DescriptorCache(join(dir, 'cache'), '1.7.15', 'wasm', size);
      const small = open(64);
      small.set(photo, at64);
      small.save();
      expect(open(128).get(photo)).toBeUndefined();
      const large = open(128);
      large.set(photo, at128);
      large.save();
      expect(open().get(photo)).toEqual(at64);
      expect(open(128).get(photo)).toEqual(at128);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('boxDownscale', () => {
  it('shrinks a 128 px batch to 64 px by exact 2x2 means', () => {
    const rng = new Rng(12);
    const size = 128;
    const images = new Float32Array(2 * size * size * 3).map(() => rng.uniform() * 2 - 1);
    const small = boxDownscale(images, size);
    expect(small.length).toBe(2 * 64 * 64 * 3);
    const at = (n: number, y: number, x: number, c: number) => images[((n * size + y) * size + x) * 3 + c];
    for (let n = 0; n < 2; n++) {
      for (let y = 0; y < 64; y++) {
        for (let x = 0; x < 64; x++) {
          for (let c = 0; c < 3; c++) {
            const mean =
              (at(n, 2 * y, 2 * x, c) +
                at(n, 2 * y, 2 * x + 1, c) +
                at(n, 2 * y + 1, 2 * x, c) +
                at(n, 2 * y + 1, 2 * x + 1, c)) /
              4;
            expect(small[((n * 64 + y) * 64 + x) * 3 + c]).toBe(Math.fround(mean));
          }
        }
      }
    }
    expect(() => boxDownscale(new Float32Array(100), size)).toThrow(/cannot shrink/);
  });
});

describe('face evaluation', () => {
  const PIXELS = IMAGE_SIZE * IMAGE_SIZE * 3;
  let real: Float32Array;

  beforeAll(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
    const files = pickFiles(heldOutFiles().files, 40, 3);
    real = await loadAligned(DEFAULT_DATA_DIR, files);
  });

  afterAll(() => disposeFaceNets());

  it('finds faces in real held-out photos and rarely in noise', async () => {
    const realFound = await detectFaces(real);
    expect(realFound.filter(Boolean).length / realFound.length).toBeGreaterThanOrEqual(0.85);

    const rng = new Rng(11);
    const noise = new Float32Array(20 * PIXELS).map(() => rng.uniform() * 2 - 1);
    const noiseFound = await detectFaces(noise);
    expect(noiseFound.filter(Boolean).length / noiseFound.length).toBeLessThanOrEqual(0.1);
  });

  it('puts an untrained generator much further from held-out photos than held-out halves are from each other', async () => {
    const opts = { samples: 64, seed: 1, reference: 64, cacheDir: null };
    const floor = await evaluateHeldOut(opts);
    const ceiling = await evaluateUntrained(modelConfig('dcgan', 16), opts);
    expect(floor.samples).toBe(64);
    expect(floor.reference.images).toBe(64);
    expect(floor.detection_rate).toBeGreaterThan(0.85);
    expect(ceiling.detection_rate).toBeLessThan(0.1);
    expect(ceiling.fid).toBeGreaterThan(3 * floor.fid);
  });

  it('differentiates the face descriptor: the embedder matches describeFaces, and its gradient is finite and not zero', async () => {
    registerWasmTrainingKernels();
    const { embedder } = faceNets();
    const batch = real.slice(0, 3 * PIXELS);
    const reference = await describeFaces(batch);
    const x = tf.tensor4d(batch, [3, IMAGE_SIZE, IMAGE_SIZE, 3]);
    const target = tf.tensor2d(reference.slice(0, 128), [1, 128]);
    const d = embedder(x);
    const grad = tf.grad((v: tf.Tensor) =>
      tf.sum(squaredDistances(embedder(v as tf.Tensor4D), tf.tile(target, [3, 1]))),
    )(x);
    const [got, g] = [await d.data(), await grad.data()];
    tf.dispose([x, d, grad]);
    got.forEach((v, i) => expect(v).toBeCloseTo(reference[i], 4));
    expect(g.every(Number.isFinite)).toBe(true);
    // Photo 0 is its own target (zero distance, zero gradient); the other two are pulled towards it.
    const norm = (k: number) => Math.hypot(...g.subarray(k * PIXELS, (k + 1) * PIXELS));
    expect(norm(0)).toBeLessThan(1e-6);
    expect(norm(1)).toBeGreaterThan(1e-3);
    expect(norm(2)).toBeGreaterThan(1e-3);
    // A batch of one (the page projects one photo) takes another path through face-api's input.
    const one = tf.tensor4d(real.slice(PIXELS, 2 * PIXELS), [1, IMAGE_SIZE, IMAGE_SIZE, 3]);
    const g1 = tf.grad((v: tf.Tensor) => tf.sum(squaredDistances(embedder(v as tf.Tensor4D), target)))(one);
    expect(Math.hypot(...(await g1.data()))).toBeCloseTo(norm(1), 3);
    tf.dispose([one, g1, target]);
  });

  it('projects held-out photos closer by face descriptor with the identity term than without it', async () => {
    registerWasmTrainingKernels();
    const generator = await loadModelFile(SHIPPED_GENERATOR);
    const photos = [real.slice(0, PIXELS), real.slice(5 * PIXELS, 6 * PIXELS)];
    const settings = { steps: 12, candidates: 8, featureWeight: 0 };
    const { embedder } = faceNets();
    const tensors = tf.memory().numTensors;
    const plain = await projectPhotos(generator, null, photos, { ...settings, identityWeight: 0 }, embedder);
    const withIdentity = await projectPhotos(generator, null, photos, { ...settings, identityWeight: 1 }, embedder);
    expect(tf.memory().numTensors).toBe(tensors);
    generator.dispose();
    const target = await describeFaces(Float32Array.from([...photos[0], ...photos[1]]));
    const distances = async (faces: Float32Array) => {
      const d = await describeFaces(faces);
      return [0, 1].map((i) =>
        Math.hypot(...d.subarray(i * 128, (i + 1) * 128).map((v, k) => v - target[i * 128 + k])),
      );
    };
    const [a, b] = [await distances(plain.reconstructions), await distances(withIdentity.reconstructions)];
    expect(b[0]).toBeLessThan(a[0]);
    expect(b[1]).toBeLessThan(a[1]);
    // Closer than two photos of one person usually are (0.46 in the calibration): it found the person, not just a face.
    expect(Math.max(...b)).toBeLessThan(0.46);
  }, 120_000);

  it('gives the same result for the same seed, another for another seed, and leaks no tensors', async () => {
    const opts = { samples: 8, seed: 5, reference: 24, cacheDir: null };
    const config = modelConfig('dcgan', 8);
    const first = await evaluateUntrained(config, opts);
    const tensors = tf.memory().numTensors;
    const again = await evaluateUntrained(config, opts);
    expect(again).toEqual(first);
    expect(tf.memory().numTensors).toBe(tensors);
    const other = await evaluateUntrained(config, { ...opts, seed: 6 });
    expect(other.fid).not.toBe(first.fid);
  });

  it('evaluates a generator saved as model.json plus shards like the same model in memory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'facegan-eval-'));
    try {
      const config = modelConfig('dcgan', 8);
      const model = untrainedGenerator(config, 9);
      const files = toFiles(await toArtifacts(model), 'generator');
      writeFileSync(join(dir, 'generator.json'), JSON.stringify(files.modelJson));
      for (const [name, bytes] of files.shards) writeFileSync(join(dir, name), bytes);
      const opts = { samples: 10, seed: 2, reference: 64, cacheDir: null };
      const inMemory = await evaluateImages('memory', await generatorImages(model, opts.samples, opts.seed), opts);
      model.dispose();
      const fromDisk = await evaluateGenerator(join(dir, 'generator.json'), opts);
      expect(fromDisk.source).toBe(join(dir, 'generator.json'));
      expect(fromDisk.samples).toBe(10);
      expect(fromDisk.fid).toBeCloseTo(inMemory.fid, 6);
      expect(fromDisk.detection_rate).toBe(inMemory.detection_rate);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('judges a folder of saved 64x64 images like the same images in memory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'facegan-images-'));
    try {
      const count = 8;
      const images = real.subarray(0, count * PIXELS);
      for (let i = 0; i < count; i++) {
        const rgba = toRgba(images, i * PIXELS);
        await sharp(Buffer.from(rgba.buffer), { raw: { width: IMAGE_SIZE, height: IMAGE_SIZE, channels: 4 } })
          .png()
          .toFile(join(dir, `face${i}.png`));
      }
      writeFileSync(join(dir, 'notes.txt'), 'not an image');
      const opts = { samples: 500, seed: 1, reference: 24, cacheDir: null };
      const fromFolder = await evaluateFolder(dir, opts);
      const inMemory = await evaluateImages('memory', images, opts);
      expect(fromFolder.samples).toBe(count);
      expect(fromFolder.detection_rate).toBe(inMemory.detection_rate);
      // PNG stores 8-bit pixels: the same faces up to rounding.
      expect(fromFolder.fid).toBeCloseTo(inMemory.fid, 3);
      await expect(evaluateFolder(join(dir, 'missing'), opts)).rejects.toThrow(/not found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('judges 128 px faces at 128 and, shrunk 2x2, at 64 exactly as 64 px faces are', async () => {
    const opts = { samples: 6, seed: 1, reference: 8, cacheDir: null };
    const model = untrainedGenerator(modelConfig('dcgan', 4, 100, undefined, 128), 3);
    const images = await generatorImages(model, opts.samples, opts.seed);
    model.dispose();
    const both = await evaluateImages('g128', images, { ...opts, size: 128 });
    const as64 = await evaluateImages('g64', boxDownscale(images, 128), opts);
    expect(both.size).toBe(128);
    expect(both.samples).toBe(6);
    expect(both.at128).toBeDefined();
    expect(both.at64).toBeDefined();
    // The top level is the generator's own size, as callers reading fid / detection_rate expect.
    expect(both.fid).toBe(both.at128!.fid);
    expect(both.detection_rate).toBe(both.at128!.detection_rate);
    expect(both.at64).toEqual({
      detection_rate: as64.detection_rate,
      fid: as64.fid,
      reference: as64.reference,
      detector: as64.detector,
      descriptor: as64.descriptor,
    });
    expect(both.at64!.fid).not.toBe(both.at128!.fid);
    expect(both.at128!.reference).toEqual({ split: expect.stringContaining('>= 128px'), images: 8 });
    expect(both.at128!.detector).toContain('128px face downscaled to 96px');
    expect(as64.size).toBe(64);
    expect(as64.at64).toBeUndefined();
  });

  it('draws the training-photo floor from training people only, large enough for its size, the same for a seed', async () => {
    const heldOut = new Set(heldOutFiles().files);
    const picked = await trainingFilesAt(128, 6, 4);
    expect(picked).toHaveLength(6);
    expect(picked).toEqual(await trainingFilesAt(128, 6, 4));
    expect(picked).not.toEqual(await trainingFilesAt(128, 6, 5));
    for (const f of picked) {
      expect(heldOut.has(f)).toBe(false);
      expect(await largeEnough(join(DEFAULT_DATA_DIR, f), 128)).toBe(true);
    }
    // At 64 px every training photo qualifies, half-size ones included.
    const small = await trainingFilesAt(64, 200, 4);
    expect(small.some((f) => heldOut.has(f))).toBe(false);
    const sizes = await Promise.all(small.map((f) => largeEnough(join(DEFAULT_DATA_DIR, f), 128)));
    expect(sizes.includes(false)).toBe(true);
  });

  it('takes the 128 px reference only from photos large enough, and keeps their 64 and 128 px descriptors apart', async () => {
    const all = heldOutFiles().files;
    const large = (await heldOutFilesAt(128)).files;
    expect(large.length).toBeGreaterThan(100);
    expect(large.length).toBeLessThan(all.length);
    for (const f of pickFiles(large, 5, 1)) expect(await largeEnough(join(DEFAULT_DATA_DIR, f), 128)).toBe(true);
    // A copy in a folder of its own, so no earlier test's in-memory descriptors answer for it.
    const dir = mkdtempSync(join(tmpdir(), 'facegan-cache-'));
    try {
      const photo = large[0];
      copyFileSync(join(DEFAULT_DATA_DIR, photo), join(dir, photo));
      const cacheDir = join(dir, 'cache');
      const d64 = await realDescriptors(dir, [photo], cacheDir, 64);
      const d128 = await realDescriptors(dir, [photo], cacheDir, 128);
      expect(Math.hypot(...d64.map((v, i) => v - d128[i]))).toBeGreaterThan(1e-3);
      // Each size's disk cache holds its own descriptor.
      expect(new DescriptorCache(cacheDir, faceNets().version, 'wasm', 128).get(join(dir, photo))).toEqual(d128);
      expect(new DescriptorCache(cacheDir, faceNets().version, 'wasm').get(join(dir, photo))).toEqual(d64);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects bad input with a clear error', async () => {
    await expect(evaluateGenerator('/nonexistent/generator.json', { samples: 10, seed: 1 })).rejects.toThrow(
      /not found/,
    );
    await expect(evaluateUntrained(modelConfig('dcgan', 8), { samples: 1, seed: 1 })).rejects.toThrow(/samples/);
    await expect(detectFaces(new Float32Array(100))).rejects.toThrow(/64x64x3/);
    await expect(describeFaces(new Float32Array(64 * 64 * 3), 128)).rejects.toThrow(/128x128x3/);
    await expect(
      evaluateImages('x', new Float32Array(64 * 64 * 3 * 2), { samples: 2, seed: 1, size: 96 }),
    ).rejects.toThrow(/size/);
  });
});

describe('npm run eval', () => {
  const run = promisify(execFile);
  const cli = ['tsx', 'training/eval/cli.ts'];

  it('prints one JSON object on stdout', async () => {
    const { stdout } = await run('npx', [
      ...cli,
      '--held-out',
      '--samples',
      '8',
      '--reference',
      '8',
      '--seed',
      '4',
      '--no-cache',
    ]);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]);
    expect(result).toMatchObject({ source: expect.stringContaining('held-out'), samples: 8, seed: 4, backend: 'wasm' });
    expect(result.detection_rate).toBeGreaterThan(0.5);
    expect(result.fid).toBeGreaterThan(0);
  });

  it('fails with a usage message when no source is chosen', async () => {
    await expect(run('npx', [...cli, '--samples', '8'])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining(
        'choose exactly one of --generator, --images, --held-out, --training-photos, --untrained',
      ),
    });
  });
});
