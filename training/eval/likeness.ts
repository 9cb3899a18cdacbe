/**
 * Likeness to a person, judged by two recognizers on aligned faces
 * (judges.ts), with numbers that first show the judges can tell people apart:
 *
 * - calibration on held-out CelebA people (identity % 10 == 0, minus the
 *   benchmark people): the pair AUC (same-person pairs closer than
 *   different-person pairs); the threshold on the distance to a person's
 *   centre (mean descriptor of their photos) that 1% of other people's photos
 *   pass, as samples are judged against the person's centre; and rank-1
 *   identification of each photo among the centres of all held-out people
 *   (its own person's centre from their other photos);
 * - per generator: the share of samples within that threshold of the
 *   person's centre, the share identified as the person (nearest centre among
 *   the held-out people plus the person), mean distance, diversity (mean
 *   pairwise distance over the median same-person pair) and near-copies.
 *
 * Images are judged at the generator's size: photos take the training crop at
 * that size, so photos and samples reach the recognizers by the same path.
 * Pure maths here; the held-out descriptors come from likeness-data.ts.
 */
import { Rng } from '../../src/lib/latent.ts';
import { JUDGE_DIMS, JUDGE_NAMES, type JudgeName, type JudgedFaces } from './judges.ts';
import { nearCopyShare } from '../../src/lib/near-copies.ts';

export interface Person {
  id: string;
  rows: number[];
}

/** The held-out people's judged photos: descriptors row by row, and who each row is. */
export interface Gallery {
  faces: JudgedFaces;
  /** Identity of each row. */
  identities: string[];
}

export interface JudgeCalibration {
  about: string;
  /** P(a same-person pair is closer than a different-person pair). */
  pairAuc: number;
  /** Distance from a face to a person's centre that 1% of other people's photos fall below: "that person" below it. */
  threshold: number;
  /** Share of photos within the threshold of their own person's centre (from their other photos): true accepts at 1% false. */
  trueAcceptAt1pct: number;
  /** The same for photo pairs: the distance 1% of different-person pairs fall below, and the share of same-person pairs below it. */
  pairThreshold: number;
  pairTrueAcceptAt1pct: number;
  medianSamePair: number;
  medianDifferentPair: number;
  /** Share of held-out photos whose nearest person centre (own centre from their other photos) is their own. */
  rank1: number;
  /** How many people compete in rank-1 (each with at least two photos with a face). */
  rank1People: number;
}

export interface LikenessCalibration {
  size: number;
  photos: number;
  facesFound: number;
  people: number;
  samePairs: number;
  differentPairs: number;
  judges: Record<JudgeName, JudgeCalibration>;
  /** RMS pixel distance below which a sample is a near-copy of a photo (as 9 in 10 slightly blurred, shifted copies are). */
  nearCopyRms?: number;
}

export function distance(a: Float32Array, ai: number, b: Float32Array, bi: number, dim: number): number {
  let s = 0;
  for (let k = 0; k < dim; k++) {
    const d = a[ai * dim + k] - b[bi * dim + k];
    s += d * d;
  }
  return Math.sqrt(s);
}

/** Mean of the rows, renormalised for unit-vector judges. */
export function centreOf(x: Float32Array, rows: readonly number[], dim: number, unit: boolean): Float32Array {
  const c = new Float32Array(dim);
  for (const r of rows) for (let k = 0; k < dim; k++) c[k] += x[r * dim + k];
  for (let k = 0; k < dim; k++) c[k] /= rows.length;
  if (unit) {
    const n = Math.hypot(...c) || 1;
    for (let k = 0; k < dim; k++) c[k] /= n;
  }
  return c;
}

const UNIT: Record<JudgeName, boolean> = { faceapi: false, faceres: true };

/** Mann-Whitney AUC: the probability that a random same-person distance is below a random different-person one. */
export function pairAuc(same: readonly number[], different: readonly number[]): number {
  const all = [...same.map((d) => ({ d, s: true })), ...different.map((d) => ({ d, s: false }))].sort(
    (a, b) => a.d - b.d,
  );
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j].d === all[i].d) j++;
    const rank = (i + j + 1) / 2; // mean of ranks i+1 .. j (ties share it)
    for (let k = i; k < j; k++) if (all[k].s) rankSum += rank;
    i = j;
  }
  const u = rankSum - (same.length * (same.length + 1)) / 2;
  return 1 - u / (same.length * different.length);
}

export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos),
    hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export const median = (xs: readonly number[]) => quantile(xs, 0.5);
export const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** People of the gallery with at least `min` photos in which a face was found. */
export function peopleOf(g: Gallery, min = 1): Person[] {
  const by = new Map<string, number[]>();
  g.identities.forEach((id, r) => {
    if (g.faces.found[r]) by.set(id, [...(by.get(id) ?? []), r]);
  });
  return [...by.entries()].filter(([, rows]) => rows.length >= min).map(([id, rows]) => ({ id, rows }));
}

/** Same-person pairs (all) and as many different-person pairs (seeded draw) among found faces. */
export function pairs(g: Gallery, seed = 1): { same: [number, number][]; different: [number, number][] } {
  const people = peopleOf(g, 1);
  // Different-person pairs are drawn until there are enough: with fewer than two people there are none to draw.
  if (people.length < 2) throw new Error(`calibration needs faces of at least two people, found ${people.length}`);
  const same: [number, number][] = [];
  for (const p of people)
    for (let a = 0; a < p.rows.length; a++)
      for (let b = a + 1; b < p.rows.length; b++) same.push([p.rows[a], p.rows[b]]);
  const rows = people.flatMap((p) => p.rows);
  const rng = new Rng(seed);
  const different: [number, number][] = [];
  while (different.length < Math.max(same.length, 2000)) {
    const a = rows[rng.int(rows.length)],
      b = rows[rng.int(rows.length)];
    if (g.identities[a] !== g.identities[b]) different.push([a, b]);
  }
  return { same, different };
}

/** Rank-1 identification of every photo of people with two or more photos, against all people's centres. */
export function rank1(g: Gallery, judge: JudgeName): { rate: number; people: number } {
  const dim = JUDGE_DIMS[judge],
    x = g.faces.descriptors[judge];
  const people = peopleOf(g, 1);
  const centres = people.map((p) => centreOf(x, p.rows, dim, UNIT[judge]));
  let hits = 0,
    probes = 0;
  people.forEach((p, pi) => {
    if (p.rows.length < 2) return;
    for (const r of p.rows) {
      const own = centreOf(
        x,
        p.rows.filter((o) => o !== r),
        dim,
        UNIT[judge],
      );
      const dOwn = distance(x, r, own, 0, dim);
      const beaten = centres.some((c, ci) => ci !== pi && distance(x, r, c, 0, dim) < dOwn);
      if (!beaten) hits++;
      probes++;
    }
  });
  return { rate: hits / probes, people: people.filter((p) => p.rows.length >= 2).length };
}

/**
 * Distances from each photo to people's centres: to every other person's centre (different), and to
 * its own person's centre from their other photos (same; people with two or more photos).
 */
export function centreDistances(g: Gallery, judge: JudgeName): { same: number[]; different: number[] } {
  const dim = JUDGE_DIMS[judge],
    x = g.faces.descriptors[judge];
  const people = peopleOf(g, 1);
  const centres = people.map((p) => centreOf(x, p.rows, dim, UNIT[judge]));
  const same: number[] = [],
    different: number[] = [];
  people.forEach((p, pi) => {
    for (const r of p.rows) {
      centres.forEach((c, ci) => {
        if (ci !== pi) different.push(distance(x, r, c, 0, dim));
      });
      if (p.rows.length >= 2)
        same.push(
          distance(
            x,
            r,
            centreOf(
              x,
              p.rows.filter((o) => o !== r),
              dim,
              UNIT[judge],
            ),
            0,
            dim,
          ),
        );
    }
  });
  return { same, different };
}

export function calibrateJudges(g: Gallery, size: number, about: Record<JudgeName, string>): LikenessCalibration {
  const { same, different } = pairs(g);
  const judges = {} as Record<JudgeName, JudgeCalibration>;
  for (const j of JUDGE_NAMES) {
    const dim = JUDGE_DIMS[j],
      x = g.faces.descriptors[j];
    const ds = same.map(([a, b]) => distance(x, a, x, b, dim));
    const dd = different.map(([a, b]) => distance(x, a, x, b, dim));
    const pairThreshold = quantile(dd, 0.01);
    const toCentre = centreDistances(g, j);
    const threshold = quantile(toCentre.different, 0.01);
    const r1 = rank1(g, j);
    judges[j] = {
      about: about[j],
      pairAuc: pairAuc(ds, dd),
      threshold,
      trueAcceptAt1pct: toCentre.same.filter((d) => d < threshold).length / toCentre.same.length,
      pairThreshold,
      pairTrueAcceptAt1pct: ds.filter((d) => d < pairThreshold).length / ds.length,
      medianSamePair: median(ds),
      medianDifferentPair: median(dd),
      rank1: r1.rate,
      rank1People: r1.people,
    };
  }
  return {
    size,
    photos: g.identities.length,
    facesFound: g.faces.found.filter(Boolean).length,
    people: peopleOf(g).length,
    samePairs: same.length,
    differentPairs: different.length,
    judges,
  };
}

export interface JudgeMeasures {
  /** Share of all samples within the judge's threshold of the person's centre (no face: not within). */
  within: number;
  /** Share of all samples whose nearest centre, among the held-out people and the person, is the person (NaN: no gallery given). */
  identified: number;
  /** Mean distance of samples with a face to the person's centre. */
  meanDistance: number;
  /** Mean pairwise distance of samples with a face, over the median same-person pair (a real person's spread is 1). */
  diversityRatio: number;
}

export interface LikenessMeasures {
  samples: number;
  detected: number;
  /** Share of samples that are near-copies of one of the person's photos (or its mirror), pixel for pixel. */
  nearCopies: number;
  judges: Record<JudgeName, JudgeMeasures>;
}

/** The person's centre per judge, from the photos in which a face was found. */
export function personCentres(photos: JudgedFaces): Record<JudgeName, Float32Array> {
  const rows = photos.found.flatMap((f, i) => (f ? [i] : []));
  if (rows.length === 0) throw new Error("no face found in any of the person's photos");
  return Object.fromEntries(
    JUDGE_NAMES.map((j) => [j, centreOf(photos.descriptors[j], rows, JUDGE_DIMS[j], UNIT[j])]),
  ) as Record<JudgeName, Float32Array>;
}

/** Centres of the gallery's people (other people for identification), per judge. */
export function galleryCentres(g: Gallery, exclude?: string): Record<JudgeName, Float32Array[]> {
  const people = peopleOf(g).filter((p) => p.id !== exclude);
  return Object.fromEntries(
    JUDGE_NAMES.map((j) => [j, people.map((p) => centreOf(g.faces.descriptors[j], p.rows, JUDGE_DIMS[j], UNIT[j]))]),
  ) as Record<JudgeName, Float32Array[]>;
}

function meanPairwise(x: Float32Array, rows: readonly number[], dim: number): number {
  let s = 0,
    n = 0;
  for (let a = 0; a < rows.length; a++)
    for (let b = a + 1; b < rows.length; b++) {
      s += distance(x, rows[a], x, rows[b], dim);
      n++;
    }
  return n ? s / n : NaN;
}

export function likenessMeasures(
  samples: JudgedFaces,
  centre: Record<JudgeName, Float32Array>,
  others: Record<JudgeName, Float32Array[]> | null,
  cal: LikenessCalibration,
  pixels?: { samples: Float32Array; photos: Float32Array; size: number },
): LikenessMeasures {
  const n = samples.found.length;
  const rows = samples.found.flatMap((f, i) => (f ? [i] : []));
  const judges = {} as Record<JudgeName, JudgeMeasures>;
  for (const j of JUDGE_NAMES) {
    const dim = JUDGE_DIMS[j],
      x = samples.descriptors[j],
      c = cal.judges[j];
    const d = rows.map((r) => distance(x, r, centre[j], 0, dim));
    const identified = others
      ? rows.filter((r, k) => others[j].every((o) => distance(x, r, o, 0, dim) > d[k])).length / n
      : NaN;
    judges[j] = {
      within: d.filter((v) => v < c.threshold).length / n,
      identified,
      meanDistance: d.length ? mean(d) : NaN,
      diversityRatio: meanPairwise(x, rows, dim) / c.medianSamePair,
    };
  }
  let nearCopies = NaN;
  if (pixels && cal.nearCopyRms !== undefined) {
    nearCopies = nearCopyShare(pixels.samples, pixels.photos, pixels.size, cal.nearCopyRms);
  }
  return { samples: n, detected: rows.length / n, nearCopies, judges };
}
