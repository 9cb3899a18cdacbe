/**
 * Judging generated faces without Inception weights: the share of faces a
 * face detector finds, and a Fréchet distance between face-recognition
 * descriptors of the faces and of held-out CelebA photos (people training
 * never sees). Lower distance, higher detection rate: more face-like.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { IMAGE_SIZE, IMAGE_SIZES, isImageSize, type ModelConfig } from '../../src/lib/models.ts';
import { HELD_OUT_RULE } from '../split.ts';
import { DescriptorCache, DEFAULT_CACHE_DIR } from './descriptor-cache.ts';
import { DESCRIPTOR_DIM, DETECTOR, describeFaces, detectFaces, faceNets } from './face-nets.ts';
import { frechetDistance, gaussianStats, type GaussianStats } from './frechet.ts';
import {
  boxDownscale,
  DEFAULT_DATA_DIR,
  folderImagesAt,
  generatorImages,
  heldOutFilesAt,
  heldOutHalves,
  loadAligned,
  loadGeneratorFile,
  outputSize,
  pickFiles,
  trainingFilesAt,
  untrainedGenerator,
} from './sources.ts';

export interface EvalOptions {
  /** How many faces to judge (generated, or taken from a folder / each held-out half). */
  samples: number;
  /** Seeds the latents (Rng from src/lib/latent.ts) and any subset choice. */
  seed: number;
  /** How many held-out photos to compare against; all of them by default (1,547 at 64 px, fewer at 128). */
  reference?: number;
  /** The side of the images judged, 64 by default: folder images are resized to it, the held-out floor is taken at it, and `evaluateImages` reads its batch as this size. A generator is judged at its own output size. */
  size?: number;
  /** CelebA image folder; ../shared/celeba/img_align_celeba by default. */
  dataDir?: string;
  /** Where held-out descriptors are kept between runs (node_modules/.cache/facegan-eval by default); null: always recompute. */
  cacheDir?: string | null;
}

/** One size's judgement: what the detector and the Fréchet distance say of faces of that size. */
export interface ScaleResult {
  /** Share of the faces in which the detector finds a face. */
  detection_rate: number;
  /** Squared Fréchet distance between descriptor Gaussians (FID-style; lower is better). */
  fid: number;
  reference: { split: string; images: number };
  detector: string;
  descriptor: string;
}

/**
 * The top-level numbers are at the images' own size (callers such as the
 * model page read `fid` and `detection_rate`). 128 px images also carry both
 * scales: `at64` (shrunk 2x2 and judged exactly as a 64 px generator, so the
 * two compare) and `at128` (the same as the top level).
 */
export interface EvalResult extends ScaleResult {
  source: string;
  samples: number;
  seed: number;
  /** The side of the judged images (the generator's own). */
  size: number;
  at64?: ScaleResult;
  at128?: ScaleResult;
  backend: string;
}

function detectorNote(size: number): string {
  const resized = size < DETECTOR.faceSize ? 'upscaled' : 'downscaled';
  return `${DETECTOR.net}: ${size}px face ${resized} to ${DETECTOR.faceSize}px on a ${DETECTOR.inputSize}px grey canvas, score >= ${DETECTOR.scoreThreshold}`;
}

function descriptorNote(size: number): string {
  return `face-api FaceRecognitionNet ${DESCRIPTOR_DIM}-d (${size}px bilinear to 150px)`;
}

/** Held-out descriptors by backend, size and path, kept for the life of the process: they are the slow, shared half of every eval. */
const inMemory = new Map<string, Float32Array>();

/** Descriptors of held-out photos cropped at `size`: from memory, then the disk cache, computing only what neither has. */
export async function realDescriptors(
  dataDir: string,
  files: readonly string[],
  cacheDir: string | null | undefined,
  size: number = IMAGE_SIZE,
): Promise<Float32Array> {
  const backend = tf.getBackend();
  const memoryKey = (f: string) => `${backend}|${size}|${join(dataDir, f)}`;
  let missing = files.filter((f) => !inMemory.has(memoryKey(f)));
  const disk =
    missing.length > 0 && cacheDir !== null
      ? new DescriptorCache(cacheDir ?? DEFAULT_CACHE_DIR, faceNets().version, backend, size)
      : null;
  if (disk) {
    for (const f of missing) {
      const cached = disk.get(join(dataDir, f));
      if (cached) inMemory.set(memoryKey(f), cached);
    }
    missing = missing.filter((f) => !inMemory.has(memoryKey(f)));
  }
  if (missing.length > 0) {
    const described = await describeFaces(await loadAligned(dataDir, missing, size), size);
    missing.forEach((f, i) => {
      const descriptor = described.slice(i * DESCRIPTOR_DIM, (i + 1) * DESCRIPTOR_DIM);
      inMemory.set(memoryKey(f), descriptor);
      disk?.set(join(dataDir, f), descriptor);
    });
    disk?.save();
  }
  const out = new Float32Array(files.length * DESCRIPTOR_DIM);
  files.forEach((f, i) => out.set(inMemory.get(memoryKey(f))!, i * DESCRIPTOR_DIM));
  return out;
}

function checkOptions({ samples, seed, reference, size }: EvalOptions): void {
  if (!Number.isInteger(samples) || samples < 2)
    throw new Error(`samples must be an integer >= 2 (a covariance needs two), got ${samples}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new Error(`seed must be an integer in [0, 2^32), got ${seed}`);
  if (reference !== undefined && (!Number.isInteger(reference) || reference < 2)) {
    throw new Error(`reference must be an integer >= 2, got ${reference}`);
  }
  if (size !== undefined && !isImageSize(size))
    throw new Error(`size must be one of ${IMAGE_SIZES.join(', ')}, got ${size}`);
}

function referenceSplit(size: number): string {
  return `held-out (${HELD_OUT_RULE})${size > IMAGE_SIZE ? `, face crop >= ${size}px` : ''}`;
}

/** The held-out reference at `size`: `reference` photos drawn by seed (all by default) among those large enough. */
async function referenceStats(opts: EvalOptions, size: number): Promise<GaussianStats> {
  const dataDir = opts.dataDir ?? DEFAULT_DATA_DIR;
  const files = pickFiles((await heldOutFilesAt(size, dataDir)).files, opts.reference, opts.seed);
  return gaussianStats(await realDescriptors(dataDir, files, opts.cacheDir, size), DESCRIPTOR_DIM);
}

function detectionRate(found: boolean[]): number {
  return found.filter(Boolean).length / found.length;
}

function scaleResult(
  size: number,
  detection: number,
  fid: number,
  split: string,
  referenceImages: number,
): ScaleResult {
  return {
    detection_rate: detection,
    fid,
    reference: { split, images: referenceImages },
    detector: detectorNote(size),
    descriptor: descriptorNote(size),
  };
}

/** Judge size x size images in [-1, 1] against held-out photos cropped at the same size. */
async function judgeAt(
  images: Float32Array,
  size: number,
  opts: EvalOptions,
): Promise<{ samples: number; scale: ScaleResult }> {
  const found = await detectFaces(images, size);
  const stats = gaussianStats(await describeFaces(images, size), DESCRIPTOR_DIM);
  const reference = await referenceStats(opts, size);
  return {
    samples: found.length,
    scale: scaleResult(
      size,
      detectionRate(found),
      frechetDistance(stats, reference),
      referenceSplit(size),
      reference.count,
    ),
  };
}

function result(source: string, opts: EvalOptions, samples: number, size: number, own: ScaleResult): EvalResult {
  return { source, samples, seed: opts.seed, size, ...own, backend: tf.getBackend() };
}

/**
 * Judge a batch of images in [-1, 1] (opts.size, 64 by default) against the
 * held-out photos. 128 px images are judged twice: at 128, and shrunk to 64
 * against the 64 px reference (`at64`), the scale 64 px generators report.
 */
export async function evaluateImages(source: string, images: Float32Array, opts: EvalOptions): Promise<EvalResult> {
  checkOptions(opts);
  const size = opts.size ?? IMAGE_SIZE;
  const own = await judgeAt(images, size, opts);
  const out = result(source, opts, own.samples, size, own.scale);
  if (size === IMAGE_SIZE) return out;
  const at64 = await judgeAt(boxDownscale(images, size, size / IMAGE_SIZE), IMAGE_SIZE, opts);
  return { ...out, at64: at64.scale, at128: own.scale };
}

async function evaluateModel(source: string, generator: LayersModel, opts: EvalOptions): Promise<EvalResult> {
  checkOptions(opts);
  try {
    const images = await generatorImages(generator, opts.samples, opts.seed);
    return await evaluateImages(source, images, { ...opts, size: outputSize(generator) });
  } finally {
    generator.dispose();
  }
}

/** Judge a saved generator (model.json plus shards), e.g. public/models/generator.json, at its own size. */
export async function evaluateGenerator(modelJsonPath: string, opts: EvalOptions): Promise<EvalResult> {
  checkOptions(opts);
  return evaluateModel(modelJsonPath, await loadGeneratorFile(modelJsonPath), opts);
}

/** The ceiling: a freshly initialised generator (initial weights from `seed`). */
export async function evaluateUntrained(config: ModelConfig, opts: EvalOptions): Promise<EvalResult> {
  checkOptions(opts);
  const sizeNote = config.size && config.size !== IMAGE_SIZE ? ` at ${config.size}px` : '';
  return evaluateModel(
    `untrained ${config.arch} width ${config.width}${sizeNote}`,
    untrainedGenerator(config, opts.seed),
    opts,
  );
}

/** Judge a folder of image files (`samples` of them, drawn by seed, or all when there are fewer), resized to opts.size. */
export async function evaluateFolder(dir: string, opts: EvalOptions): Promise<EvalResult> {
  checkOptions(opts);
  const { images } = await folderImagesAt(dir, opts.samples, opts.seed, opts.size ?? IMAGE_SIZE);
  return evaluateImages(dir, images, opts);
}

/**
 * Photos the generators were trained on, judged as if a generator had drawn them: what a generator that drew its
 * training data exactly would score, with the same sample count as a generator's evaluation (a Fréchet distance
 * from few samples is biased upwards, so this is the floor to read a generator's number against, notably at 128 px).
 */
export async function evaluateTrainingPhotos(opts: EvalOptions): Promise<EvalResult> {
  checkOptions(opts);
  const dataDir = opts.dataDir ?? DEFAULT_DATA_DIR;
  const size = opts.size ?? IMAGE_SIZE;
  const files = await trainingFilesAt(size, opts.samples, opts.seed, dataDir);
  const images = await loadAligned(dataDir, files, size);
  return evaluateImages(
    `${files.length} training photos${size > IMAGE_SIZE ? `, face crop >= ${size}px` : ''}`,
    images,
    opts,
  );
}

/**
 * The floor at opts.size: one half of the held-out people against the other
 * half (at most `samples` photos from the first, `reference` from the
 * second), among the photos large enough for that size.
 */
export async function evaluateHeldOut(opts: EvalOptions): Promise<EvalResult> {
  checkOptions(opts);
  const dataDir = opts.dataDir ?? DEFAULT_DATA_DIR;
  const size = opts.size ?? IMAGE_SIZE;
  const { files, identities } = await heldOutFilesAt(size, dataDir);
  const [halfA, halfB] = heldOutHalves(files, identities);
  const a = pickFiles(halfA, opts.samples, opts.seed);
  const b = pickFiles(halfB, opts.reference, opts.seed);
  const found = await detectFaces(await loadAligned(dataDir, a, size), size);
  const stats = (names: string[]) =>
    realDescriptors(dataDir, names, opts.cacheDir, size).then((d) => gaussianStats(d, DESCRIPTOR_DIM));
  const fid = frechetDistance(await stats(a), await stats(b));
  const split = `held-out half B (identity / 10 odd; half A even)${size > IMAGE_SIZE ? `, face crop >= ${size}px` : ''}`;
  return result(
    'held-out half A vs half B',
    opts,
    a.length,
    size,
    scaleResult(size, detectionRate(found), fid, split, b.length),
  );
}
