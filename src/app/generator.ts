/**
 * The generator in the page (the shipped one, or a fine-tuned one from this
 * browser): loading it (with download progress and readable errors) and
 * turning seeds or latents into RGBA faces.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { fuseUpsampledConvs } from '../lib/fuse-upsampling.ts';
import { generate } from '../lib/gan.ts';
import { toRgba } from '../lib/images.ts';
import { latentBatch } from '../lib/latent.ts';
import { CHANNELS, imageSideOf, IMAGE_SIZES, type ImageSize } from '../lib/models.ts';

export const MODEL_URL = `${import.meta.env.BASE_URL.replace(/\/$/, '')}/models/generator.json`;

export interface FaceModel {
  model: tfl.LayersModel;
  zDim: number;
  /** The side of its faces, from its output shape: everything the page draws follows it. */
  size: ImageSize;
}

/** One face: the seed it came from (if any) and its RGBA pixels, at the generator's size. */
export interface Face {
  seed: number | null;
  rgba: Uint8ClampedArray;
}

export class ModelLoadError extends Error {
  constructor(
    message: string,
    readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'ModelLoadError';
  }
}

function explainLoadFailure(url: string, err: unknown): ModelLoadError {
  const text = err instanceof Error ? err.message : String(err);
  if (/\b404\b/.test(text)) {
    return new ModelLoadError(
      `The generator's weights are missing: ${url} (or one of its weight files) was not found on this site.`,
      err,
    );
  }
  if (/fetch|network/i.test(text)) {
    return new ModelLoadError(`The generator's weights could not be downloaded from ${url}: ${text}`, err);
  }
  return new ModelLoadError(`The generator (${url}) could not be loaded: ${text}`, err);
}

/** The generator's latent size and image side; a readable error for a model that is not a face generator. */
function checkShape(model: tfl.LayersModel, url: string): { zDim: number; size: ImageSize } {
  const input = model.inputs[0]?.shape;
  const size = input?.length === 2 ? imageSideOf(model.outputs[0]?.shape) : null;
  if (size === null || typeof input[1] !== 'number') {
    const sides = IMAGE_SIZES.map((s) => `${s}x${s}x${CHANNELS}`).join(' or ');
    throw new ModelLoadError(
      `${url} is not a face generator: expected z -> ${sides}, got [${input}] -> [${model.outputs[0]?.shape}]`,
    );
  }
  return { zDim: input[1], size };
}

/**
 * Fetch the generator's files; `onProgress` gets the downloaded fraction,
 * 0 to 1. Needs no backend, so the download can overlap backend start-up.
 */
export function downloadFaceModel(
  url = MODEL_URL,
  onProgress?: (fraction: number) => void,
): Promise<tf.io.ModelArtifacts> {
  const handler = tf.io.http(url, { onProgress });
  const download = handler.load!().catch((err: unknown) => {
    throw explainLoadFailure(url, err);
  });
  // Handled where it is awaited; this keeps the browser from reporting it as unhandled in between.
  download.catch(() => undefined);
  return download;
}

/** Build the generator from its files, on the current backend; `url` names where they came from in errors. */
export async function buildFaceModel(artifacts: tf.io.ModelArtifacts, url = MODEL_URL): Promise<FaceModel> {
  let model: tfl.LayersModel;
  try {
    model = await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (err) {
    throw explainLoadFailure(url, err);
  }
  // The same faces from a smaller graph (a pyramid generator's detail branch); this model is only drawn with.
  const fused = await fuseUpsampledConvs(model);
  if (fused !== model) model.dispose();
  return { model: fused, ...checkShape(fused, url) };
}

/** Download and build the generator in one go (the backend must already be chosen). */
export async function loadFaceModel(url = MODEL_URL, onProgress?: (fraction: number) => void): Promise<FaceModel> {
  return buildFaceModel(await downloadFaceModel(url, onProgress), url);
}

/** Run the generator on `count` latents stored row-major in `latents`. */
export async function renderLatents(fm: FaceModel, latents: Float32Array, count: number): Promise<Uint8ClampedArray[]> {
  const images = tf.tidy(() => generate(fm.model, tf.tensor2d(latents, [count, fm.zDim])));
  try {
    const data = (await images.data()) as Float32Array;
    const stride = fm.size * fm.size * CHANNELS;
    return Array.from({ length: count }, (_, i) => toRgba(data, i * stride, fm.size));
  } finally {
    images.dispose();
  }
}

/** The faces for a list of seeds, in order. */
export async function renderSeeds(fm: FaceModel, seeds: readonly number[]): Promise<Face[]> {
  const rgba = await renderLatents(fm, latentBatch(seeds, fm.zDim), seeds.length);
  return rgba.map((pixels, i) => ({ seed: seeds[i], rgba: pixels }));
}
