/**
 * Sliders that change one thing: InterFaceGAN's conditional manipulation.
 * Every fitted direction is made orthogonal to the sex direction (Male), to
 * the age direction (Young) where it leans on it, and to the smile direction
 * (Smiling) where it is mostly a smile, so moving along it keeps the
 * classifier's sex, age and smile scores where they were (the boundaries are
 * linear in z). The slider's range is then the shortest one that still flips
 * its own attribute for enough faces, within what keeps the edited latent
 * where the prior's latents lie.
 */
import type { SliderRange } from '../../src/lib/directions.ts';
import { dot, orthogonalise } from './linear.ts';

/**
 * What the others are conditioned on, in order, and from which |cos| with it: sex always; age where entangled;
 * smile only where the direction is mostly a smile (High cheekbones, Mouth slightly open), so that it cannot ship
 * as a second smile while hair and eyeglasses keep their small share of it.
 */
export const CONDITIONS = ['Male', 'Young', 'Smiling'] as const;
export const CONDITION_FROM: Record<(typeof CONDITIONS)[number], number> = { Male: 0, Young: 0.2, Smiling: 0.7 };
/** |cos| above which a fitted direction is called mostly another's (the reason a conditioned one fails). */
export const COS_MOSTLY = 0.7;

export interface Conditioned {
  /** Unit vector orthogonal to the directions named in `conditionedOn` (but for `sexShare` of Male's). */
  vector: Float64Array;
  conditionedOn: string[];
  /** Share of the fitted direction's Male component put back (keepSexShare); absent: none. */
  sexShare?: number;
  /** Cosine of the fitted direction with each condition, before conditioning (3 decimals). */
  cosine: Record<string, number>;
}

/** The fitted direction of `name`, conditioned on each of CONDITIONS (but itself) from its CONDITION_FROM |cos| on. */
export function conditionDirection(
  name: string,
  fitted: ArrayLike<number>,
  conditions: ReadonlyMap<string, ArrayLike<number>>,
): Conditioned {
  const cosine: Record<string, number> = {};
  const conditionedOn: string[] = [];
  for (const c of CONDITIONS) {
    const d = conditions.get(c);
    if (c === name || !d) continue;
    const cos = dot(fitted, d);
    cosine[c] = Math.round(cos * 1000) / 1000;
    if (Math.abs(cos) >= CONDITION_FROM[c]) conditionedOn.push(c);
  }
  const basis = conditionedOn.map((c) => conditions.get(c)!);
  return { vector: basis.length ? orthogonalise(fitted, basis) : Float64Array.from(fitted), conditionedOn, cosine };
}

/**
 * Shares of the fitted direction's Male component tried, smallest first, where the direction orthogonal to Male
 * flips too few faces: CelebA's labels tie blond hair, make-up or earrings to women, so the classifier calls them
 * for few men, and a slider that keeps the sex exactly can only flip the faces of one sex. A share is taken only if
 * the project's classifier (not the judge) sees the sex change over the slider's range for no more faces than
 * along random directions moved as far; face-api's gender net then judges it as every slider.
 */
export const SEX_SHARES = [0.25, 0.5] as const;

/** `c` with `share` of the fitted direction's component along `male` put back, as a unit vector. */
export function keepSexShare(
  c: Conditioned,
  fitted: ArrayLike<number>,
  male: ArrayLike<number>,
  share: number,
): Conditioned {
  const k = share * dot(fitted, male);
  const v = Float64Array.from(c.vector, (x, i) => x + k * male[i]);
  const n = Math.hypot(...v);
  return { ...c, vector: v.map((x) => x / n), sexShare: share };
}

/** "mostly Male's direction (cos -0.93)" when the fitted direction leans that far on a condition, else ''. */
export function mostlyOf(cosine: Readonly<Record<string, number>>): string {
  const [c, v] = Object.entries(cosine).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))[0] ?? [];
  return c !== undefined && Math.abs(v) > COS_MOSTLY
    ? `as fitted it is mostly ${c}'s direction (cos ${v.toFixed(2)})`
    : '';
}

/**
 * The largest range whose edited latents stay, on average, inside the shell holding 95% of the prior's latents:
 * E|z + t d|^2 = zDim + t^2 <= the chi-square(zDim) 95th percentile (Wilson-Hilferty), rounded down to `step`.
 */
export function rangeCap(zDim: number, step = 0.5): number {
  const q95 = zDim * (1 - 2 / (9 * zDim) + 1.6449 * Math.sqrt(2 / (9 * zDim))) ** 3;
  return Math.floor(Math.sqrt(q95 - zDim) / step) * step;
}

/** The reaches tried on each side of a slider: step, 2 step, ... cap. */
export function rangeGrid(cap: number, step = 0.5): number[] {
  const out: number[] = [];
  for (let t = step; t <= cap + 1e-9; t += step) out.push(Math.round(t * 100) / 100);
  return out;
}

const span = (r: SliderRange) => r.max - r.min;
const reach = (r: SliderRange) => Math.max(-r.min, r.max);

/**
 * Every slider range the grid allows, shortest span first; among equal spans the more even one, then the one
 * reaching less far below zero. A rare attribute (eyeglasses, a hat) needs a long way up but hardly any down.
 */
export function rangesBySpan(grid: readonly number[]): SliderRange[] {
  return grid
    .flatMap((lo) => grid.map((hi) => ({ min: -lo, max: hi })))
    .sort((a, b) => span(a) - span(b) || reach(a) - reach(b) || b.min - a.min);
}

export interface RangeSearch {
  /** The first range, in rangesBySpan order, that flips `minFlip` of faces; null when none does. */
  range: SliderRange | null;
  /** Its flip rate, or the best flip rate seen and where. */
  flipRate: number;
  best: SliderRange;
}

/** Try the ranges shortest first until one flips enough faces (flipAt measures one range). */
export async function shortestRange(
  ranges: readonly SliderRange[],
  flipAt: (r: SliderRange) => Promise<number>,
  minFlip: number,
): Promise<RangeSearch> {
  let best = { range: ranges[0], flipRate: -1 };
  for (const r of ranges) {
    const flipRate = await flipAt(r);
    if (flipRate >= minFlip) return { range: r, flipRate, best: r };
    if (flipRate > best.flipRate) best = { range: r, flipRate };
  }
  return { range: null, flipRate: best.flipRate, best: best.range };
}
