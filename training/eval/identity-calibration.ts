/**
 * Calibrates the same-person threshold (and the near-copy pixel distance) on
 * held-out CelebA photos: every same-person pair of held-out people not in
 * identities.json, against as many different-person pairs drawn by a seeded
 * Rng. `npm run eval -- --calibrate` runs it and writes
 * training/eval/identity-calibration.json, which `--identity` reads.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/lib/latent.ts';
import { IMAGE_SIZE } from '../../src/lib/models.ts';
import { flipHorizontal } from '../../src/lib/images.ts';
import { realDescriptors } from './evaluate.ts';
import { bestThreshold, descriptorDistance, median, pixelRms, type Calibration } from './identity.ts';
import { DEFAULT_DATA_DIR, heldOutFiles, loadAligned } from './sources.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const IDENTITIES_FILE = join(here, 'identities.json');
export const CALIBRATION_FILE = join(here, 'identity-calibration.json');
const PIXELS = IMAGE_SIZE * IMAGE_SIZE * 3;

export interface IdentityList {
  identities: Record<string, string[]>;
  benchmark: string[];
}

export function readIdentityList(): IdentityList {
  return JSON.parse(readFileSync(IDENTITIES_FILE, 'utf8')) as IdentityList;
}

export function readCalibration(): Calibration & Record<string, unknown> {
  return JSON.parse(readFileSync(CALIBRATION_FILE, 'utf8')) as Calibration & Record<string, unknown>;
}

const quantile = (xs: readonly number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))];
};

/** A 64x64 image blurred by a 2x2 box (each pixel the mean of itself and its left, upper and upper-left neighbours; edges repeated), then moved one more pixel right and down. */
export function degradedCopy(img: Float32Array, size = IMAGE_SIZE): Float32Array {
  const out = new Float32Array(size * size * 3);
  const at = (y: number, x: number, c: number) => img[(Math.min(size - 1, Math.max(0, y)) * size + Math.min(size - 1, Math.max(0, x))) * 3 + c];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const sy = y - 2, sx = x - 2;
      for (let c = 0; c < 3; c++) out[(y * size + x) * 3 + c] = (at(sy, sx, c) + at(sy + 1, sx, c) + at(sy, sx + 1, c) + at(sy + 1, sx + 1, c)) / 4;
    }
  }
  return out;
}

export async function calibrate(opts: { dataDir?: string; cacheDir?: string | null; seed?: number } = {}) {
  const dataDir = opts.dataDir ?? DEFAULT_DATA_DIR;
  const excluded = new Set(Object.keys(readIdentityList().identities).map(Number));
  const { files: all, identities } = heldOutFiles(dataDir);
  const files = all.filter((f) => !excluded.has(identities.get(f)!));
  const descriptors = await realDescriptors(dataDir, files, opts.cacheDir);
  const byPerson = new Map<number, number[]>();
  files.forEach((f, i) => {
    const id = identities.get(f)!;
    byPerson.set(id, [...(byPerson.get(id) ?? []), i]);
  });
  const samePairs: [number, number][] = [];
  for (const rows of byPerson.values()) for (let a = 0; a < rows.length; a++) for (let b = a + 1; b < rows.length; b++) samePairs.push([rows[a], rows[b]]);
  const rng = new Rng(opts.seed ?? 1);
  const diffPairs: [number, number][] = [];
  while (diffPairs.length < samePairs.length) {
    const a = rng.int(files.length), b = rng.int(files.length);
    if (identities.get(files[a]) !== identities.get(files[b])) diffPairs.push([a, b]);
  }
  const dist = ([a, b]: [number, number]) => descriptorDistance(descriptors, a, descriptors, b);
  const same = samePairs.map(dist), different = diffPairs.map(dist);
  const { threshold, accuracy } = bestThreshold(same, different);

  // Pixel distances of two photos of one person (the nearer of as-is and mirrored), for the near-copy bound.
  const pairRows = samePairs.length > 3000 ? rng.shuffle([...samePairs]).slice(0, 3000) : samePairs;
  const used = [...new Set(pairRows.flat())].sort((a, b) => a - b);
  const pixels = await loadAligned(dataDir, used.map((r) => files[r]));
  const at = new Map(used.map((r, i) => [r, i]));
  const flipped = new Float32Array(PIXELS);
  const pixelDist = pairRows.map(([a, b]) => {
    const ia = at.get(a)!, ib = at.get(b)!;
    flipHorizontal(pixels.subarray(ib * PIXELS, (ib + 1) * PIXELS), flipped);
    return Math.min(pixelRms(pixels, ia, pixels, ib), pixelRms(pixels, ia, flipped, 0));
  });
  // A photo blurred a little and moved by a pixel or two is still a copy of it: how far such copies lie.
  const copyDist = used.map((_, i) => pixelRms(pixels, i, degradedCopy(pixels.subarray(i * PIXELS, (i + 1) * PIXELS)), 0));
  const calibration: Calibration = {
    samePersonThreshold: threshold,
    medianSamePair: median(same),
    medianDifferentPair: median(different),
    // As close as 9 in 10 blurred, shifted copies of a photo are to it.
    nearCopyRms: quantile(copyDist, 0.9),
  };
  return {
    ...calibration,
    about: 'npm run eval -- --calibrate: held-out CelebA people (identity % 10 == 0) minus those in identities.json',
    photos: files.length,
    people: byPerson.size,
    samePairs: same.length,
    differentPairs: different.length,
    accuracy,
    sameQuantiles: [0.1, 0.25, 0.5, 0.75, 0.9].map((q) => quantile(same, q)),
    differentQuantiles: [0.1, 0.25, 0.5, 0.75, 0.9].map((q) => quantile(different, q)),
    samePixelRmsQuantiles: [0.02, 0.05, 0.1, 0.25, 0.5].map((q) => quantile(pixelDist, q)),
    copyPixelRmsQuantiles: [0.1, 0.5, 0.9].map((q) => quantile(copyDist, q)),
  };
}
