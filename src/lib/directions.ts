/**
 * Attribute directions in the generator's latent space (InterFaceGAN): one
 * unit vector per CelebA attribute, fitted in Node (training/directions/)
 * and shipped as public/models/directions.json for the generator whose weight
 * bytes it names by hash. Each direction has its own slider range, which
 * may reach further on one side than the other. Isomorphic
 * and pure: validate the file, apply `z + sum(alpha_i * d_i)`, and read/write
 * slider values in a URL.
 */

export const DIRECTIONS_VERSION = 2;
/** Default slider reach, for URL values without a direction's own range: alpha in [-SLIDER_RANGE, SLIDER_RANGE] (units of z's standard deviation). */
export const SLIDER_RANGE = 3;
/** face-api's own "same person" threshold for FaceRecognitionNet descriptors (Euclidean), the scale of the identity measure. */
export const SAME_PERSON = 0.6;
/** No direction may reach further than this (a file asking for more is refused). */
export const MAX_SLIDER_RANGE = 6;

/** How far the face moved at one slider value, averaged over the evaluated faces. */
export interface StepMeasure {
  alpha: number;
  /** Mean classifier probability of the attribute itself. */
  probability: number;
  /** Mean absolute change of every other attribute's probability, from alpha = 0. */
  othersMoved: number;
  /** Mean face-descriptor distance from the alpha = 0 face (identity kept when small). */
  descriptorDistance: number | null;
}

/** How often the outside judge (face-api's gender net) sees the sex change between the two ends of a slider. */
export interface SexMeasure {
  /** Share of the judged faces whose sex differs between the slider's two ends. */
  sexFlipRate: number;
  /** Faces found (with landmarks) at both ends, out of the faces measured. */
  sexJudged: number;
  /** The same share along random directions moved over the same range: the noise of the measure. */
  randomSexFlipRates: number[];
  /** Mean age (face-api's age net, years) at the slider's top minus at its bottom. */
  ageChange: number;
}

/** How much of the person a face keeps at half the slider's range (face-api FaceRecognitionNet, aligned chips). */
export interface IdentityMeasure {
  /** Mean descriptor distance from the unedited face at half of each end (min/2 and max/2). */
  halfRangeDistance: number;
  /** Share of those faces within face-api's "same person" threshold. */
  halfRangeSame: number;
  /** Mean descriptor distance at the ends, for scale. */
  fullRangeDistance: number;
}

export interface AttributeDirection extends SexMeasure, IdentityMeasure {
  /** CelebA's attribute name, e.g. "Smiling". */
  name: string;
  /** URL and UI key, e.g. "smiling". */
  key: string;
  /** Unit vector, zDim long. */
  vector: number[];
  /** The slider runs from range.min to range.max: the shortest span tried that flips the attribute for enough faces. */
  range: SliderRange;
  /** The CelebA classifier's held-out accuracy for this attribute, and the majority-class rate there. */
  classifierAccuracy: number;
  majorityRate: number;
  /** Held-out accuracy of the linear fit in z (how separable the attribute is in z). */
  separability: number;
  /** Share of generated faces the classifier calls positive. */
  positiveRate: number;
  /** Attributes this direction was made orthogonal to (InterFaceGAN's conditional manipulation). */
  conditionedOn: string[];
  /**
   * Share of the fitted direction's Male component put back (absent: none), where the direction orthogonal to
   * Male flipped too few faces and the project's classifier saw the sex change for few faces with this share.
   */
  sexShare?: number;
  /** Cosine of the fitted direction with the attributes it may be conditioned on, before any conditioning. */
  cosine: Record<string, number>;
  /** Share of random faces whose decision goes from negative at range.min to positive at range.max. */
  flipRate: number;
  /** Share of those faces still detected as a face at both ends. */
  detectedBothEnds: number | null;
  steps: StepMeasure[];
}

/** Which check an attribute failed: the classifier cannot judge it, no direction could be fitted, too few faces flip, the face is lost at an end, the sex changes, the person changes, or the judge was off. */
export type RejectionKind = 'judge' | 'fit' | 'flip' | 'detect' | 'sex' | 'identity' | 'unjudged';

export interface RejectedAttribute {
  name: string;
  kind?: RejectionKind;
  reason: string;
  classifierAccuracy: number;
  majorityRate: number;
  separability: number | null;
  flipRate: number | null;
  /** What was measured before the attribute was turned down, where it got that far (`flipRate` is over `range`). */
  range?: SliderRange;
  conditionedOn?: string[];
  sexShare?: number;
  sexFlipRate?: number;
  randomSexFlipRates?: number[];
  halfRangeDistance?: number;
}

export interface DirectionsFile {
  version: number;
  /** The generator these directions were computed for. */
  generator: { file: string; weightsSha256: string };
  zDim: number;
  /** The furthest any slider may reach on either side (the edited latent stays where the prior's latents lie). */
  range: number;
  /** How the directions were made and measured. */
  method: Record<string, unknown>;
  attributes: AttributeDirection[];
  notShipped: RejectedAttribute[];
  /** Latent projection of held-out photos vs the best of random faces (descriptor distance). */
  projection?: Record<string, unknown>;
  createdAt: string;
}

export class DirectionsError extends Error {}

/** Where a slider starts and ends: min < 0 < max (units of z's standard deviation). */
export interface SliderRange {
  min: number;
  max: number;
}

/** Attribute name to its URL key: "Blond_Hair" -> "blond_hair". */
export function attributeKey(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '_');
}

/** Attribute name for people: "Blond_Hair" -> "Blond hair". */
export function attributeLabel(name: string): string {
  const s = name.replace(/_/g, ' ').toLowerCase();
  return s.charAt(0).toUpperCase() + s.slice(1);
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Check a parsed directions.json; throws DirectionsError naming what is wrong. */
export function validateDirections(data: unknown, zDim?: number): DirectionsFile {
  const d = data as Partial<DirectionsFile> | null;
  if (!d || typeof d !== 'object') throw new DirectionsError('directions: not an object');
  if (d.version !== DIRECTIONS_VERSION)
    throw new DirectionsError(`directions: version ${String(d.version)}, expected ${DIRECTIONS_VERSION}`);
  if (
    !d.generator ||
    typeof d.generator.weightsSha256 !== 'string' ||
    !/^[0-9a-f]{64}$/.test(d.generator.weightsSha256)
  ) {
    throw new DirectionsError('directions: no generator weights hash');
  }
  if (!isNum(d.zDim) || (zDim !== undefined && d.zDim !== zDim))
    throw new DirectionsError(`directions: zDim ${String(d.zDim)} does not match the generator's ${zDim}`);
  if (!Array.isArray(d.attributes)) throw new DirectionsError('directions: no attributes');
  const keys = new Set<string>();
  for (const a of d.attributes) {
    if (!a || typeof a.name !== 'string' || typeof a.key !== 'string')
      throw new DirectionsError('directions: attribute without a name');
    if (keys.has(a.key)) throw new DirectionsError(`directions: duplicate attribute ${a.key}`);
    keys.add(a.key);
    if (!Array.isArray(a.vector) || a.vector.length !== d.zDim || !a.vector.every(isNum)) {
      throw new DirectionsError(`directions: ${a.name} vector is not ${d.zDim} finite numbers`);
    }
    const norm = Math.hypot(...a.vector);
    if (Math.abs(norm - 1) > 1e-3)
      throw new DirectionsError(`directions: ${a.name} vector has norm ${norm.toFixed(4)}, not 1`);
    const r = a.range as Partial<SliderRange> | undefined;
    if (
      !r ||
      !isNum(r.min) ||
      !isNum(r.max) ||
      r.min >= 0 ||
      r.max <= 0 ||
      -r.min > MAX_SLIDER_RANGE ||
      r.max > MAX_SLIDER_RANGE
    )
      throw new DirectionsError(`directions: ${a.name} range is not min < 0 < max within ±${MAX_SLIDER_RANGE}`);
  }
  return { range: SLIDER_RANGE, notShipped: [], method: {}, createdAt: '', ...d } as DirectionsFile;
}

/** Attributes people look for, as the home page names them: when one of them does not ship, the page says why in a line. */
const ASKED_FOR: Record<string, string> = {
  Eyeglasses: 'eyeglasses',
  Wearing_Hat: 'hat',
  Bangs: 'bangs',
  No_Beard: 'beard',
  Blond_Hair: 'blond hair',
  Heavy_Makeup: 'makeup',
};

/** Why an attribute is missing, in a few words for the home page. */
const MISSING_BECAUSE: Record<RejectionKind, string> = {
  judge: 'too subtle here for the attribute classifier to judge',
  fit: 'too rare among generated faces to learn',
  flip: 'in this generator they come with a change of sex, and without one too few faces change',
  detect: 'faces break up before they show',
  sex: 'they change the sex too',
  identity: 'the face becomes another person',
  unjudged: 'not measured',
};

/** "Not offered: eyeglasses, hat (faces break up ...); bangs (...)." for the asked-for attributes that do not ship, or ''. */
export function missingNote(notShipped: readonly Pick<RejectedAttribute, 'name' | 'kind'>[]): string {
  const groups = new Map<string, string[]>();
  for (const [name, label] of Object.entries(ASKED_FOR)) {
    const r = notShipped.find((x) => x.name === name);
    if (!r) continue;
    const why = MISSING_BECAUSE[r.kind ?? 'unjudged'];
    groups.set(why, [...(groups.get(why) ?? []), label]);
  }
  if (!groups.size) return '';
  return `Not offered: ${[...groups].map(([why, labels]) => `${labels.join(', ')} (${why})`).join('; ')}.`;
}

/** Slider values by attribute key; absent keys are 0. */
export type SliderValues = Record<string, number>;

/** z + sum(alpha_i * d_i) for the attributes with a value; z itself is untouched. */
export function applyDirections(
  z: Float32Array,
  directions: readonly Pick<AttributeDirection, 'key' | 'vector'>[],
  values: SliderValues,
): Float32Array {
  const out = new Float32Array(z);
  for (const d of directions) {
    const alpha = values[d.key] ?? 0;
    if (!alpha) continue;
    if (d.vector.length !== z.length)
      throw new DirectionsError(`direction ${d.key} has ${d.vector.length} values, z has ${z.length}`);
    for (let i = 0; i < out.length; i++) out[i] += alpha * d.vector[i];
  }
  return out;
}

export function clampAlpha(v: number, range: SliderRange = { min: -SLIDER_RANGE, max: SLIDER_RANGE }): number {
  return Math.max(range.min, Math.min(range.max, v));
}

/** Slider values to URL parameters (two decimals; zeros left out), keeping every other parameter. */
export function writeSliderParams(
  params: URLSearchParams,
  keys: readonly string[],
  values: SliderValues,
): URLSearchParams {
  const out = new URLSearchParams(params);
  for (const key of keys) {
    const v = Math.round((values[key] ?? 0) * 100) / 100;
    if (v === 0) out.delete(key);
    else out.set(key, String(v));
  }
  return out;
}

/** Each direction's slider range by key. */
export function sliderRanges(
  directions: readonly Pick<AttributeDirection, 'key' | 'range'>[],
): Record<string, SliderRange> {
  return Object.fromEntries(directions.map((d) => [d.key, d.range]));
}

/** "−0.5 … +4.5" */
export function formatRange(r: SliderRange): string {
  return `−${-r.min} … +${r.max}`;
}

/**
 * Slider values from URL parameters: known keys only, finite numbers, clamped to each key's range (±SLIDER_RANGE
 * for a key without one).
 */
export function readSliderParams(
  params: URLSearchParams,
  keys: readonly string[],
  ranges: Readonly<Record<string, SliderRange>> = {},
): SliderValues {
  const values: SliderValues = {};
  for (const key of keys) {
    const raw = params.get(key);
    if (raw === null || raw.trim() === '') continue;
    const v = Number(raw);
    if (!Number.isFinite(v)) continue;
    const c = clampAlpha(v, ranges[key]);
    if (c !== 0) values[key] = Math.round(c * 100) / 100;
  }
  return values;
}

/** Hex sha256 of the generator's weight shards, in the order its model.json lists them (Web Crypto: Node and browsers). */
export async function weightsSha256(shards: readonly Uint8Array[]): Promise<string> {
  const total = shards.reduce((n, s) => n + s.length, 0);
  const joined = new Uint8Array(total);
  let off = 0;
  for (const s of shards) {
    joined.set(s, off);
    off += s.length;
  }
  const digest = await globalThis.crypto.subtle.digest('SHA-256', joined);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Shard paths named by a layers model.json. */
export function shardPaths(modelJson: { weightsManifest?: { paths: string[] }[] }): string[] {
  return (modelJson.weightsManifest ?? []).flatMap((g) => g.paths);
}

/** "Male (a quarter kept), Young": what a direction was made orthogonal to, and the share of sex put back. */
export function conditionLabel(a: { conditionedOn?: readonly string[]; sexShare?: number }): string {
  const kept = a.sexShare ? ` (${Math.round(a.sexShare * 100)}% of its lean kept)` : '';
  return (a.conditionedOn ?? []).map((c) => (c === 'Male' ? `Male${kept}` : c)).join(', ');
}
