/**
 * Likeness of generated faces to one person: face-recognition descriptors of
 * the samples against the centre of the person's photos' descriptors, a
 * same-person threshold calibrated on held-out CelebA pairs, the samples'
 * diversity, and how close each sample is, pixel for pixel, to a photo
 * (memorisation). Pure maths on descriptors and pixels here; the CLI and the
 * calibration (identity-calibration.ts) feed it.
 */
import { IMAGE_SIZE } from '../../src/lib/models.ts';
import { flipHorizontal } from '../../src/lib/images.ts';
import { DESCRIPTOR_DIM } from './face-nets.ts';

export function descriptorDistance(a: Float32Array, ai: number, b: Float32Array, bi: number, dim = DESCRIPTOR_DIM): number {
  let s = 0;
  for (let k = 0; k < dim; k++) {
    const d = a[ai * dim + k] - b[bi * dim + k];
    s += d * d;
  }
  return Math.sqrt(s);
}

/** Mean of rows [count, dim] (all rows, or those in `rows`). */
export function centre(descriptors: Float32Array, rows?: readonly number[], dim = DESCRIPTOR_DIM): Float32Array {
  const pick = rows ?? Array.from({ length: descriptors.length / dim }, (_, i) => i);
  if (pick.length === 0) throw new Error('centre of no descriptors');
  const c = new Float32Array(dim);
  for (const r of pick) for (let k = 0; k < dim; k++) c[k] += descriptors[r * dim + k];
  for (let k = 0; k < dim; k++) c[k] /= pick.length;
  return c;
}

/** Each row's distance to one point. */
export function distancesTo(descriptors: Float32Array, point: Float32Array, dim = DESCRIPTOR_DIM): number[] {
  return Array.from({ length: descriptors.length / dim }, (_, i) => descriptorDistance(descriptors, i, point, 0, dim));
}

/** Mean distance over all unordered pairs of rows. */
export function meanPairwise(descriptors: Float32Array, dim = DESCRIPTOR_DIM): number {
  const n = descriptors.length / dim;
  if (n < 2) throw new Error('pairwise distance needs two descriptors');
  let s = 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) s += descriptorDistance(descriptors, i, descriptors, j, dim);
  return s / ((n * (n - 1)) / 2);
}

/** Each photo's distance to the centre of the person's other photos: how far a real photo sits from "the person". */
export function leaveOneOut(descriptors: Float32Array, dim = DESCRIPTOR_DIM): number[] {
  const n = descriptors.length / dim;
  if (n < 2) throw new Error('leave-one-out needs two photos');
  return Array.from({ length: n }, (_, i) => {
    const others = Array.from({ length: n }, (_, j) => j).filter((j) => j !== i);
    return descriptorDistance(descriptors, i, centre(descriptors, others, dim), 0, dim);
  });
}

/** Root-mean-square pixel difference ([-1, 1] range) between image i of a and image j of b (size x size x 3 each). */
export function pixelRms(a: Float32Array, i: number, b: Float32Array, j: number, size = IMAGE_SIZE): number {
  const PIXELS = size * size * 3;
  let s = 0;
  const ao = i * PIXELS, bo = j * PIXELS;
  for (let k = 0; k < PIXELS; k++) {
    const d = a[ao + k] - b[bo + k];
    s += d * d;
  }
  return Math.sqrt(s / PIXELS);
}

/** Each sample's RMS pixel distance to its nearest photo, the photos mirrored too. */
export function nearestPhotoDistances(samples: Float32Array, photos: Float32Array, size = IMAGE_SIZE): number[] {
  const PIXELS = size * size * 3;
  const nPhotos = photos.length / PIXELS;
  const both = new Float32Array(2 * photos.length);
  both.set(photos);
  for (let p = 0; p < nPhotos; p++) {
    flipHorizontal(photos.subarray(p * PIXELS, (p + 1) * PIXELS), both.subarray((nPhotos + p) * PIXELS, (nPhotos + p + 1) * PIXELS), size);
  }
  return Array.from({ length: samples.length / PIXELS }, (_, s) => {
    let best = Infinity;
    for (let p = 0; p < 2 * nPhotos; p++) best = Math.min(best, pixelRms(samples, s, both, p, size));
    return best;
  });
}

export interface Calibration {
  /** Descriptor distance below which two faces count as the same person. */
  samePersonThreshold: number;
  /** Median descriptor distance of two photos of the same person (the diversity yardstick). */
  medianSamePair: number;
  medianDifferentPair: number;
  /** RMS pixel distance below which a sample counts as a near-copy of a photo. */
  nearCopyRms: number;
}

export interface IdentityMeasures {
  samples: number;
  detection_rate: number;
  /** Mean descriptor distance of the samples to the centre of the photos. */
  mean_distance: number;
  /** Share of samples closer to the centre than the same-person threshold. */
  within_threshold: number;
  /** Mean pairwise descriptor distance of the samples. */
  diversity: number;
  /** diversity / the calibration's median same-person pair distance (target >= 0.9). */
  diversity_ratio: number;
  /** Share of samples whose nearest photo (or its mirror) is closer than the near-copy RMS. */
  near_copies: number;
  /** Median RMS pixel distance of a sample to its nearest photo. */
  median_nearest_photo_rms: number;
}

export function identityMeasures(
  sampleDescriptors: Float32Array, found: readonly boolean[], samples: Float32Array, photos: Float32Array, photoCentre: Float32Array, cal: Calibration,
): IdentityMeasures {
  const d = distancesTo(sampleDescriptors, photoCentre);
  const nearest = nearestPhotoDistances(samples, photos);
  const diversity = meanPairwise(sampleDescriptors);
  return {
    samples: d.length,
    detection_rate: found.filter(Boolean).length / found.length,
    mean_distance: mean(d),
    within_threshold: d.filter((x) => x < cal.samePersonThreshold).length / d.length,
    diversity,
    diversity_ratio: diversity / cal.medianSamePair,
    near_copies: nearest.filter((x) => x < cal.nearCopyRms).length / nearest.length,
    median_nearest_photo_rms: median(nearest),
  };
}

export const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * The threshold that best separates same-person from different-person
 * distances (most pairs on the right side, the two kinds weighted equally):
 * the midpoint between neighbouring sorted values.
 */
export function bestThreshold(same: readonly number[], different: readonly number[]): { threshold: number; accuracy: number } {
  const all = [...same.map((d) => ({ d, s: 1 })), ...different.map((d) => ({ d, s: 0 }))].sort((a, b) => a.d - b.d);
  let sameBelow = 0, diffBelow = 0;
  let best = { threshold: all[0].d - 1e-6, accuracy: 0.5 };
  for (let i = 0; i < all.length; i++) {
    if (all[i].s) sameBelow++; else diffBelow++;
    const next = i + 1 < all.length ? all[i + 1].d : all[i].d + 1e-6;
    if (next === all[i].d) continue;
    const acc = (sameBelow / same.length + (different.length - diffBelow) / different.length) / 2;
    if (acc > best.accuracy) best = { threshold: (all[i].d + next) / 2, accuracy: acc };
  }
  return best;
}
