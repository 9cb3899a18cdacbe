/**
 * The outside judge's measures of a slider (face-traits.ts): on the same
 * random faces, how many change sex between the two ends (and against that,
 * the same share along two random directions moved as far: the noise of the
 * measure), how the age moves, and how far the face's descriptor moves at
 * half the range and at the ends.
 */
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { formatRange, type IdentityMeasure, type SexMeasure, type SliderRange } from '../../src/lib/directions.ts';
import { Rng, sampleLatents } from '../../src/lib/latent.ts';
import { descriptorDistance, faceTraits, type FaceTraits } from './face-traits.ts';
import { generate, onFaceBackend, shifted } from './pipeline.ts';

export const RANDOM_DIRECTIONS = 2;

export interface Judge {
  g: LayersModel;
  zDim: number;
  /** The judged faces' latents (the first `judgeFaces` measured faces). */
  z: Float32Array;
  /** How many of them are also judged at half range. */
  identityFaces: number;
  base: FaceTraits;
  randomDirections: Float64Array[];
  /** Sex-flip shares along the random directions, by range ("−1 … +3"). */
  randomFlips: Map<string, number[]>;
}

/** Unit vectors drawn from the prior, normalised: directions with no attribute in them. */
export function randomDirections(seed: number, zDim: number, count = RANDOM_DIRECTIONS): Float64Array[] {
  const rng = new Rng(seed * 7 + 3);
  return Array.from({ length: count }, () => {
    const v = Float64Array.from(sampleLatents(rng, 1, zDim));
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  });
}

/** Sex, age and descriptor of each face at `alpha` along `dir` (generated on the main backend, judged on WASM). */
async function traitsAt(j: Judge, dir: ArrayLike<number>, alpha: number, count: number): Promise<FaceTraits> {
  const images = await generate(j.g, shifted(j.z.subarray(0, count * j.zDim), j.zDim, dir, alpha), j.zDim);
  return onFaceBackend(() => faceTraits(images));
}

export async function makeJudge(
  g: LayersModel,
  zDim: number,
  z: Float32Array,
  identityFaces: number,
  seed: number,
): Promise<Judge> {
  const images = await generate(g, z, zDim);
  return {
    g,
    zDim,
    z,
    identityFaces: Math.min(identityFaces, z.length / zDim),
    base: await onFaceBackend(() => faceTraits(images)),
    randomDirections: randomDirections(seed, zDim),
    randomFlips: new Map(),
  };
}

/** Share of the faces found at both ends whose sex (P(male) > 0.5) differs between them, and how many were found. */
export function sexFlips(lo: FaceTraits, hi: FaceTraits): { rate: number; judged: number } {
  let judged = 0,
    flips = 0;
  lo.found.forEach((found, i) => {
    if (!found || !hi.found[i]) return;
    judged++;
    if (lo.male[i] > 0.5 !== hi.male[i] > 0.5) flips++;
  });
  return { rate: judged ? flips / judged : NaN, judged };
}

/** Mean descriptor distance of each edited face from its unedited one, over faces found in both; and the share within `threshold`. */
export function identityDistance(
  base: FaceTraits,
  edited: readonly FaceTraits[],
  threshold: number,
): { mean: number; same: number } {
  let sum = 0,
    n = 0,
    same = 0;
  for (const e of edited)
    e.found.forEach((found, i) => {
      if (!found || !base.found[i]) return;
      const d = descriptorDistance(base.descriptors, i, e.descriptors, i);
      sum += d;
      n++;
      if (d < threshold) same++;
    });
  return { mean: n ? sum / n : NaN, same: n ? same / n : NaN };
}

/** The sex-flip shares of the random directions moved over `range` (measured once per range). */
export async function randomSexFlips(j: Judge, range: SliderRange): Promise<number[]> {
  const key = formatRange(range);
  const known = j.randomFlips.get(key);
  if (known) return known;
  const count = j.z.length / j.zDim;
  const rates: number[] = [];
  for (const d of j.randomDirections)
    rates.push(sexFlips(await traitsAt(j, d, range.min, count), await traitsAt(j, d, range.max, count)).rate);
  j.randomFlips.set(key, rates);
  return rates;
}

/** The judge's measures of one slider over `range`, with the descriptor distances half way to each end and at the ends. */
export async function judgeSlider(
  j: Judge,
  dir: ArrayLike<number>,
  range: SliderRange,
  threshold: number,
): Promise<SexMeasure & IdentityMeasure> {
  const count = j.z.length / j.zDim;
  const lo = await traitsAt(j, dir, range.min, count);
  const hi = await traitsAt(j, dir, range.max, count);
  const halves = [
    await traitsAt(j, dir, range.min / 2, j.identityFaces),
    await traitsAt(j, dir, range.max / 2, j.identityFaces),
  ];
  const { rate, judged } = sexFlips(lo, hi);
  let age = 0;
  lo.found.forEach((found, i) => {
    if (found && hi.found[i]) age += hi.age[i] - lo.age[i];
  });
  const half = identityDistance(j.base, halves, threshold);
  return {
    sexFlipRate: rate,
    sexJudged: judged,
    randomSexFlipRates: await randomSexFlips(j, range),
    ageChange: judged ? age / judged : NaN,
    halfRangeDistance: half.mean,
    halfRangeSame: half.same,
    fullRangeDistance: identityDistance(j.base, [lo, hi], threshold).mean,
  };
}
