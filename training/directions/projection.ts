/**
 * "Start from your photo", measured for `npm run directions`: held-out photos
 * projected into z with the page's projection (src/lib/projection.ts),
 * against the best of many random faces by face descriptor and by pixels.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { PHOTO_PROJECTION, projectPhotos, type ProjectionConfig } from '../../src/lib/projection.ts';
import { Rng, sampleLatents } from '../../src/lib/latent.ts';
import { gridRgba } from '../../src/lib/images.ts';
import { IMAGE_SIZE } from '../../src/lib/models.ts';
import { loadModelFile } from '../model-files.ts';
import { loadLabelled, readAttributes } from './attributes.ts';
import { generate, onFaceBackend } from './pipeline.ts';

const PIXELS = IMAGE_SIZE * IMAGE_SIZE * 3;

export interface ProjectionOptions {
  photos: number;
  randomSamples: number;
  steps: number;
  seed: number;
  candidates: number;
  featureWeight: number;
  /** Weight of the face-descriptor term in the projection loss (0: pixels and features only). */
  identityWeight: number;
  /** Where to write a PNG: photos, projections and the nearest random faces by descriptor, a column per photo. */
  picture?: string;
}

/** The page's "start from your photo" settings (PHOTO_PROJECTION), on 20 held-out photos against 100 random faces each. */
export const PROJECTION_DEFAULTS: ProjectionOptions = {
  photos: 20,
  randomSamples: 100,
  seed: 1,
  ...(PHOTO_PROJECTION as Pick<ProjectionConfig, 'steps' | 'candidates' | 'featureWeight' | 'identityWeight'>),
};

export interface ProjectionMeasure extends Omit<ProjectionOptions, 'seed' | 'picture'> {
  /** Mean face-descriptor distance, photo to its projection. */
  projected: number;
  /** Mean over photos of the smallest distance to any of `randomSamples` random faces. */
  bestRandom: number;
  /** Share of photos whose projection is closer than their best random face. */
  closerShare: number;
  /** Mean squared pixel error (images in [-1, 1]), photo to projection, and photo to its nearest random face in pixels. */
  pixelError: number;
  bestRandomPixelError: number;
  seconds: number;
}

/**
 * "Start from your photo", measured: project held-out photos into z with the
 * page's projection (src/lib/projection.ts) and compare face-descriptor
 * distances with the best of `randomSamples` random faces per photo.
 */
export async function measureProjection(
  generatorJson: string,
  dataDir: string,
  cacheDir: string,
  options: Partial<ProjectionOptions> = {},
): Promise<ProjectionMeasure> {
  const { photos, randomSamples, steps, seed, candidates, featureWeight, identityWeight, picture } = {
    ...PROJECTION_DEFAULTS,
    ...options,
  };
  const g = await loadModelFile(generatorJson);
  const dPath = join(dirname(generatorJson), 'discriminator.json');
  const d = existsSync(dPath) ? await loadModelFile(dPath) : null;
  const zDim = g.inputs[0].shape[1] as number;
  const table = readAttributes(dataDir);
  const held = await loadLabelled(dataDir, table, 'heldOut', cacheDir);
  // Every 37th held-out photo: different people, spread over the set.
  const picks = Array.from({ length: Math.min(photos, held.files.length) }, (_, i) => (i * 37) % held.files.length);
  const targets = picks.map((i) =>
    Float32Array.from(held.pixels.subarray(i * PIXELS, (i + 1) * PIXELS), (v) => v / 127.5 - 1),
  );
  const t0 = performance.now();
  const embedder = identityWeight > 0 ? (await import('../eval/face-nets.ts')).faceNets().embedder : undefined;
  const { reconstructions } = await projectPhotos(
    g,
    featureWeight > 0 ? d : null,
    targets,
    { steps, seed, candidates, featureWeight, identityWeight },
    embedder,
  );
  const seconds = (performance.now() - t0) / 1000;
  const random = await generate(g, sampleLatents(new Rng(seed * 31 + 5), randomSamples, zDim), zDim);
  const flat = new Float32Array(targets.length * PIXELS);
  targets.forEach((t, i) => flat.set(t, i * PIXELS));
  const [dt, dp, dr] = await onFaceBackend(async ({ describeFaces }) => [
    await describeFaces(flat),
    await describeFaces(reconstructions),
    await describeFaces(random),
  ]);
  const dist = (a: Float32Array, i: number, b: Float32Array, j: number) => {
    let s = 0;
    for (let k = 0; k < 128; k++) s += (a[i * 128 + k] - b[j * 128 + k]) ** 2;
    return Math.sqrt(s);
  };
  const pixelError = (a: Float32Array, i: number, b: Float32Array, j: number) => {
    let s = 0;
    for (let k = 0; k < PIXELS; k++) s += (a[i * PIXELS + k] - b[j * PIXELS + k]) ** 2;
    return s / PIXELS;
  };
  let projected = 0,
    bestRandom = 0,
    closer = 0,
    pixels = 0,
    bestPixels = 0;
  const nearest = new Float32Array(flat.length);
  for (let i = 0; i < targets.length; i++) {
    const p = dist(dt, i, dp, i);
    let best = Infinity,
      bestPx = Infinity;
    for (let j = 0; j < randomSamples; j++) {
      const dj = dist(dt, i, dr, j);
      if (dj < best) nearest.set(random.subarray(j * PIXELS, (j + 1) * PIXELS), i * PIXELS);
      best = Math.min(best, dj);
      bestPx = Math.min(bestPx, pixelError(flat, i, random, j));
    }
    projected += p;
    bestRandom += best;
    pixels += pixelError(flat, i, reconstructions, i);
    bestPixels += bestPx;
    if (p < best) closer++;
  }
  const n = targets.length;
  if (picture) await writeProjectionPicture(picture, flat, reconstructions, nearest, n);
  return {
    photos: n,
    steps,
    candidates,
    featureWeight,
    identityWeight,
    randomSamples,
    projected: projected / n,
    bestRandom: bestRandom / n,
    closerShare: closer / n,
    pixelError: pixels / n,
    bestRandomPixelError: bestPixels / n,
    seconds: Math.round(seconds),
  };
}

/** Three rows (photos, projections, nearest random faces), one column per photo. */
async function writeProjectionPicture(
  file: string,
  photos: Float32Array,
  projections: Float32Array,
  nearest: Float32Array,
  count: number,
): Promise<void> {
  const batch = new Float32Array(3 * count * PIXELS);
  [photos, projections, nearest].forEach((rows, r) => batch.set(rows.subarray(0, count * PIXELS), r * count * PIXELS));
  const grid = gridRgba(batch, 3 * count, count);
  await sharp(Buffer.from(grid.data.buffer), { raw: { width: grid.width, height: grid.height, channels: 4 } })
    .png({ compressionLevel: 9 })
    .toFile(file);
}
