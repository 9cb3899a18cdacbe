/**
 * Where evaluated faces come from: a saved generator, a freshly initialised
 * one, a folder of image files, or the held-out CelebA photos. Every source
 * yields square images in [-1, 1] (HWC, row-major, concatenated), the same
 * form training feeds the discriminator: 64x64 unless a size is asked for (a
 * generator draws its own size).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import sharp from 'sharp';
import { generate } from '../../src/lib/gan.ts';
import { alignedFaceCrop, centreCrop, cropResize, preprocessAligned, type RawImage } from '../../src/lib/images.ts';
import { Rng, sampleLatents } from '../../src/lib/latent.ts';
import { buildGenerator, IMAGE_SIZE, type ModelConfig } from '../../src/lib/models.ts';
import { loadModelFile } from '../model-files.ts';
import { readIdentities, splitFiles } from '../split.ts';

/** A saved generator: model.json and the shards it names. */
export const loadGeneratorFile = loadModelFile;

/** The shared CelebA images, from the repository root: ../shared/celeba/img_align_celeba. */
export const DEFAULT_DATA_DIR = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../../shared/celeba/img_align_celeba',
);

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp']);

/** The generator's zDim, read from its input layer. */
export function latentSize(generator: LayersModel): number {
  const shape = generator.inputs[0].shape;
  const zDim = shape[shape.length - 1];
  if (typeof zDim !== 'number') throw new Error('generator input has no fixed latent size');
  return zDim;
}

/** The side of the images a generator draws, read from its output layer. */
export function outputSize(generator: LayersModel): number {
  const side = generator.outputs[0].shape[1];
  if (typeof side !== 'number') throw new Error('generator output has no fixed size');
  return side;
}

/** `samples` faces from latents drawn by Rng(seed), in batches to bound memory; size x size x 3 each. */
export async function generatorImages(
  generator: LayersModel,
  samples: number,
  seed: number,
  batch = 50,
): Promise<Float32Array> {
  const zDim = latentSize(generator);
  const latents = sampleLatents(new Rng(seed), samples, zDim);
  const PIXELS = outputSize(generator) ** 2 * 3;
  const out = new Float32Array(samples * PIXELS);
  for (let start = 0; start < samples; start += batch) {
    const n = Math.min(batch, samples - start);
    const z = tf.tensor2d(latents.subarray(start * zDim, (start + n) * zDim), [n, zDim]);
    const images = generate(generator, z);
    out.set((await images.data()) as Float32Array, start * PIXELS);
    tf.dispose([z, images]);
  }
  return out;
}

/**
 * A freshly initialised generator whose initial weights depend only on
 * `seed`. TensorFlow.js' initializers draw their seeds from Math.random when
 * the layers give none (ours don't), so Math.random is pointed at a seeded
 * Rng for the synchronous build and restored at once.
 */
export function untrainedGenerator(config: ModelConfig, seed: number): LayersModel {
  const rng = new Rng(seed);
  const original = Math.random;
  Math.random = () => rng.uniform();
  try {
    return buildGenerator(config);
  } finally {
    Math.random = original;
  }
}

/** Decode any image file to RGB pixels. */
export async function decodeImage(path: string): Promise<RawImage> {
  const { data, info } = await sharp(path)
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Decode and preprocess files into one concatenated batch, a few at a time (sharp decodes on its own threads). */
async function loadImages(
  paths: readonly string[],
  preprocess: (img: RawImage) => Float32Array,
  size = IMAGE_SIZE,
): Promise<Float32Array> {
  const PIXELS = size * size * 3;
  const out = new Float32Array(paths.length * PIXELS);
  const chunk = 16;
  for (let start = 0; start < paths.length; start += chunk) {
    const decoded = await Promise.all(
      paths.slice(start, start + chunk).map(async (p) => {
        try {
          return await decodeImage(p);
        } catch (err) {
          throw new Error(`cannot decode ${p}: ${err instanceof Error ? err.message : err}`);
        }
      }),
    );
    decoded.forEach((img, i) => out.set(preprocess(img), (start + i) * PIXELS));
  }
  return out;
}

/**
 * A folder's own images as 64x64 faces. Square images (e.g. saved samples)
 * are resized whole; others are taken to be CelebA-aligned photos and get
 * training's face crop. With `samples`, a subset drawn by Rng(seed).
 */
export function folderImages(
  dir: string,
  samples: number | undefined,
  seed: number,
): Promise<{ images: Float32Array; files: string[] }> {
  return folderImagesAt(dir, samples, seed, IMAGE_SIZE);
}

/** `folderImages` at `size` x `size` (area resizing: smaller images are scaled up). */
export async function folderImagesAt(
  dir: string,
  samples: number | undefined,
  seed: number,
  size: number,
): Promise<{ images: Float32Array; files: string[] }> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`image folder not found: ${dir}`);
  const all = readdirSync(dir)
    .filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()))
    .sort();
  if (all.length === 0) throw new Error(`no .jpg, .png or .webp images in ${dir}`);
  const files = pickFiles(all, samples, seed);
  const images = await loadImages(
    files.map((f) => join(dir, f)),
    (img) =>
      img.width === img.height
        ? cropResize(img, centreCrop(img.width, img.height), size)
        : preprocessAligned(img, size),
    size,
  );
  return { images, files };
}

/**
 * Shrink a batch of size x size images by an integer `factor`, each output
 * pixel the plain mean of its factor x factor block (2x2 for 128 to 64): the
 * same area averaging training's photo preprocessing does, so a 128 px
 * generator's faces can be judged as 64 px ones.
 */
export function boxDownscale(images: Float32Array, size: number, factor = 2): Float32Array {
  const pixels = size * size * 3;
  if (size % factor !== 0 || images.length % pixels !== 0)
    throw new Error(`cannot shrink ${size}x${size}x3 images (${images.length} values) by ${factor}`);
  const out = size / factor;
  const result = new Float32Array((images.length / pixels) * out * out * 3);
  const area = factor * factor;
  for (let n = 0; n < images.length / pixels; n++) {
    for (let oy = 0; oy < out; oy++) {
      for (let ox = 0; ox < out; ox++) {
        for (let c = 0; c < 3; c++) {
          let sum = 0;
          for (let dy = 0; dy < factor; dy++) {
            for (let dx = 0; dx < factor; dx++)
              sum += images[n * pixels + ((oy * factor + dy) * size + ox * factor + dx) * 3 + c];
          }
          result[((n * out + oy) * out + ox) * 3 + c] = sum / area;
        }
      }
    }
  }
  return result;
}

/** The held-out split's file names and identities (training/split.ts), sorted by name. */
export function heldOutFiles(dataDir = DEFAULT_DATA_DIR): { files: string[]; identities: Map<string, number> } {
  if (!existsSync(dataDir)) throw new Error(`CelebA image folder not found: ${dataDir}`);
  const identities = readIdentities(dataDir);
  if (identities.size === 0) throw new Error(`no identity_CelebA.txt beside ${dataDir}: the held-out split needs it`);
  const all = readdirSync(dataDir).filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()));
  return { files: splitFiles(all, identities).heldOut, identities };
}

/** The training split's file names, sorted by name (what `npm run train` learns from). */
export function trainingFiles(dataDir = DEFAULT_DATA_DIR): string[] {
  if (!existsSync(dataDir)) throw new Error(`CelebA image folder not found: ${dataDir}`);
  const all = readdirSync(dataDir).filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()));
  return splitFiles(all, readIdentities(dataDir)).train;
}

/** `count` training photos drawn by seed among those large enough for `size` (all of them at 64). */
export async function trainingFilesAt(size: number, count: number, seed: number, dataDir = DEFAULT_DATA_DIR) {
  const files = trainingFiles(dataDir);
  if (size <= IMAGE_SIZE) return pickFiles(files, count, seed);
  const picked: string[] = [];
  // Headers are read in shuffled order until enough are large: far fewer reads than all 13,000.
  for (const f of new Rng(seed).shuffle([...files])) {
    if (picked.length >= count) break;
    if (await largeEnough(join(dataDir, f), size)) picked.push(f);
  }
  return picked.sort();
}

const largeEnoughFiles = new Map<string, Promise<string[]>>();

/**
 * The held-out files to judge `size` px faces against: all of them at 64;
 * above that, only photos whose face crop is at least `size` (largeEnough),
 * so the reference is never upsampled. Kept per process (it reads every header).
 */
export async function heldOutFilesAt(
  size: number,
  dataDir = DEFAULT_DATA_DIR,
): Promise<{ files: string[]; identities: Map<string, number> }> {
  const { files, identities } = heldOutFiles(dataDir);
  if (size <= IMAGE_SIZE) return { files, identities };
  const key = `${resolve(dataDir)}|${size}`;
  if (!largeEnoughFiles.has(key)) {
    const pending = Promise.all(files.map((f) => largeEnough(join(dataDir, f), size))).then((ok) =>
      files.filter((_, i) => ok[i]),
    );
    pending.catch(() => largeEnoughFiles.delete(key));
    largeEnoughFiles.set(key, pending);
  }
  return { files: await largeEnoughFiles.get(key)!, identities };
}

/** Held-out photos preprocessed exactly as training does (sharp decode, then preprocessAligned at `size`). */
export function loadAligned(dataDir: string, files: readonly string[], size = IMAGE_SIZE): Promise<Float32Array> {
  return loadImages(
    files.map((f) => join(dataDir, f)),
    (img) => preprocessAligned(img, size),
    size,
  );
}

/** Whether a CelebA-aligned photo of this width and height has a face crop of at least `size` (no upsampling). */
export async function largeEnough(path: string, size: number): Promise<boolean> {
  const { width, height } = await sharp(path).metadata();
  return alignedFaceCrop(width ?? 0, height ?? 0).size >= size;
}

/**
 * Split held-out files into two halves by person (CelebA identity / 10 even
 * or odd), so no one is on both sides: the floor then compares different
 * people, as generated faces vs real ones do.
 */
export function heldOutHalves(files: readonly string[], identities: Map<string, number>): [string[], string[]] {
  const a: string[] = [];
  const b: string[] = [];
  for (const f of files) ((identities.get(f)! / 10) % 2 === 0 ? a : b).push(f);
  return [a, b];
}

/** A subset of `count` files drawn by Rng(seed), kept in name order; all of them when count is absent or larger. */
export function pickFiles(files: readonly string[], count: number | undefined, seed: number): string[] {
  if (count === undefined || count >= files.length) return [...files];
  return new Rng(seed)
    .shuffle([...files])
    .slice(0, count)
    .sort();
}
