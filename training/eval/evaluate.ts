/**
 * Judging generated faces without Inception weights: the share of faces a
 * face detector finds, and a Fréchet distance between face-recognition
 * descriptors of the faces and of held-out CelebA photos (people training
 * never sees). Lower distance, higher detection rate: more face-like.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { ModelConfig } from '../../src/lib/models.ts';
import { HELD_OUT_RULE } from '../split.ts';
import { DescriptorCache, DEFAULT_CACHE_DIR } from './descriptor-cache.ts';
import { DESCRIPTOR_DIM, DETECTOR, describeFaces, detectFaces, faceNets } from './face-nets.ts';
import { frechetDistance, gaussianStats, type GaussianStats } from './frechet.ts';
import {
  DEFAULT_DATA_DIR, folderImages, generatorImages, heldOutFiles, heldOutHalves, loadAligned, loadGeneratorFile,
  pickFiles, untrainedGenerator,
} from './sources.ts';

export interface EvalOptions {
  /** How many faces to judge (generated, or taken from a folder / each held-out half). */
  samples: number;
  /** Seeds the latents (Rng from src/lib/latent.ts) and any subset choice. */
  seed: number;
  /** How many held-out photos to compare against; all 1,547 by default. */
  reference?: number;
  /** CelebA image folder; ../shared/celeba/img_align_celeba by default. */
  dataDir?: string;
  /** Where held-out descriptors are kept between runs (node_modules/.cache/facegan-eval by default); null: always recompute. */
  cacheDir?: string | null;
}

export interface EvalResult {
  source: string;
  samples: number;
  seed: number;
  /** Share of the faces in which the detector finds a face. */
  detection_rate: number;
  /** Squared Fréchet distance between descriptor Gaussians (FID-style; lower is better). */
  fid: number;
  reference: { split: string; images: number };
  detector: string;
  descriptor: string;
  backend: string;
}

const DETECTOR_NOTE = `${DETECTOR.net}: 64px face upscaled to ${DETECTOR.faceSize}px on a ${DETECTOR.inputSize}px grey canvas, score >= ${DETECTOR.scoreThreshold}`;
const DESCRIPTOR_NOTE = `face-api FaceRecognitionNet ${DESCRIPTOR_DIM}-d (64px bilinear to 150px)`;

/** Held-out descriptors by backend and path, kept for the life of the process: they are the slow, shared half of every eval. */
const inMemory = new Map<string, Float32Array>();

/** Descriptors of held-out photos: from memory, then the disk cache, computing only what neither has. */
export async function realDescriptors(dataDir: string, files: readonly string[], cacheDir: string | null | undefined): Promise<Float32Array> {
  const backend = tf.getBackend();
  const memoryKey = (f: string) => `${backend}|${join(dataDir, f)}`;
  let missing = files.filter((f) => !inMemory.has(memoryKey(f)));
  const disk = missing.length > 0 && cacheDir !== null ? new DescriptorCache(cacheDir ?? DEFAULT_CACHE_DIR, faceNets().version, backend) : null;
  if (disk) {
    for (const f of missing) {
      const cached = disk.get(join(dataDir, f));
      if (cached) inMemory.set(memoryKey(f), cached);
    }
    missing = missing.filter((f) => !inMemory.has(memoryKey(f)));
  }
  if (missing.length > 0) {
    const described = await describeFaces(await loadAligned(dataDir, missing));
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

function checkOptions({ samples, seed, reference }: EvalOptions): void {
  if (!Number.isInteger(samples) || samples < 2) throw new Error(`samples must be an integer >= 2 (a covariance needs two), got ${samples}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`seed must be an integer in [0, 2^32), got ${seed}`);
  if (reference !== undefined && (!Number.isInteger(reference) || reference < 2)) {
    throw new Error(`reference must be an integer >= 2, got ${reference}`);
  }
}

async function referenceStats(opts: EvalOptions): Promise<GaussianStats> {
  const dataDir = opts.dataDir ?? DEFAULT_DATA_DIR;
  const files = pickFiles(heldOutFiles(dataDir).files, opts.reference, opts.seed);
  return gaussianStats(await realDescriptors(dataDir, files, opts.cacheDir), DESCRIPTOR_DIM);
}

function detectionRate(found: boolean[]): number {
  return found.filter(Boolean).length / found.length;
}

function result(source: string, opts: EvalOptions, samples: number, detection: number, fid: number, referenceImages: number): EvalResult {
  return {
    source,
    samples,
    seed: opts.seed,
    detection_rate: detection,
    fid,
    reference: { split: `held-out (${HELD_OUT_RULE})`, images: referenceImages },
    detector: DETECTOR_NOTE,
    descriptor: DESCRIPTOR_NOTE,
    backend: tf.getBackend(),
  };
}

/** Judge a batch of 64x64 images in [-1, 1] against the held-out photos. */
export async function evaluateImages(source: string, images: Float32Array, opts: EvalOptions): Promise<EvalResult> {
  checkOptions(opts);
  const found = await detectFaces(images);
  const stats = gaussianStats(await describeFaces(images), DESCRIPTOR_DIM);
  const reference = await referenceStats(opts);
  return result(source, opts, found.length, detectionRate(found), frechetDistance(stats, reference), reference.count);
}

async function evaluateModel(source: string, generator: LayersModel, opts: EvalOptions): Promise<EvalResult> {
  checkOptions(opts);
  try {
    return await evaluateImages(source, await generatorImages(generator, opts.samples, opts.seed), opts);
  } finally {
    generator.dispose();
  }
}

/** Judge a saved generator (model.json plus shards), e.g. public/models/generator.json. */
export async function evaluateGenerator(modelJsonPath: string, opts: EvalOptions): Promise<EvalResult> {
  checkOptions(opts);
  return evaluateModel(modelJsonPath, await loadGeneratorFile(modelJsonPath), opts);
}

/** The ceiling: a freshly initialised generator (initial weights from `seed`). */
export async function evaluateUntrained(config: ModelConfig, opts: EvalOptions): Promise<EvalResult> {
  checkOptions(opts);
  return evaluateModel(`untrained ${config.arch} width ${config.width}`, untrainedGenerator(config, opts.seed), opts);
}

/** Judge a folder of image files (`samples` of them, drawn by seed, or all when there are fewer). */
export async function evaluateFolder(dir: string, opts: EvalOptions): Promise<EvalResult> {
  checkOptions(opts);
  const { images } = await folderImages(dir, opts.samples, opts.seed);
  return evaluateImages(dir, images, opts);
}

/**
 * The floor: one half of the held-out people against the other half (at
 * most `samples` photos from the first, `reference` from the second).
 */
export async function evaluateHeldOut(opts: EvalOptions): Promise<EvalResult> {
  checkOptions(opts);
  const dataDir = opts.dataDir ?? DEFAULT_DATA_DIR;
  const { files, identities } = heldOutFiles(dataDir);
  const [halfA, halfB] = heldOutHalves(files, identities);
  const a = pickFiles(halfA, opts.samples, opts.seed);
  const b = pickFiles(halfB, opts.reference, opts.seed);
  const found = await detectFaces(await loadAligned(dataDir, a));
  const stats = (names: string[]) => realDescriptors(dataDir, names, opts.cacheDir).then((d) => gaussianStats(d, DESCRIPTOR_DIM));
  const fid = frechetDistance(await stats(a), await stats(b));
  const out = result('held-out half A vs half B', opts, a.length, detectionRate(found), fid, b.length);
  out.reference.split = `held-out half B (identity / 10 odd; half A even)`;
  return out;
}
