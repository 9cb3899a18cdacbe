/**
 * Attribute directions in the generator's latent space (InterFaceGAN): one
 * unit vector per CelebA attribute, fitted in Node (training/directions/)
 * and shipped as public/models/directions.json for the generator whose weight
 * bytes it names by hash. Isomorphic and pure: validate the file, apply
 * `z + sum(alpha_i * d_i)`, and read/write slider values in a URL.
 */

export const DIRECTIONS_VERSION = 1;
/** Slider range: alpha in [-SLIDER_RANGE, SLIDER_RANGE] (units of z's standard deviation). */
export const SLIDER_RANGE = 3;

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

export interface AttributeDirection {
  /** CelebA's attribute name, e.g. "Smiling". */
  name: string;
  /** URL and UI key, e.g. "smiling". */
  key: string;
  /** Unit vector, zDim long. */
  vector: number[];
  /** The CelebA classifier's held-out accuracy for this attribute, and the majority-class rate there. */
  classifierAccuracy: number;
  majorityRate: number;
  /** Held-out accuracy of the linear fit in z (how separable the attribute is in z). */
  separability: number;
  /** Share of generated faces the classifier calls positive. */
  positiveRate: number;
  /** Attributes this direction was made orthogonal to. */
  orthogonalTo: string[];
  /** Cosine of the fitted direction with the entangled ones (Male, Young), before any orthogonalisation. */
  cosine?: Record<string, number>;
  /** Flip rate of the orthogonalised direction, when one was tried and not kept. */
  orthogonalFlipRate?: number;
  /** Share of random faces whose decision goes from negative at -range to positive at +range. */
  flipRate: number;
  /** Share of those faces still detected as a face at both ends. */
  detectedBothEnds: number | null;
  steps: StepMeasure[];
}

export interface RejectedAttribute {
  name: string;
  reason: string;
  classifierAccuracy: number;
  majorityRate: number;
  separability: number | null;
  flipRate: number | null;
}

export interface DirectionsFile {
  version: number;
  /** The generator these directions were computed for. */
  generator: { file: string; weightsSha256: string };
  zDim: number;
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
  }
  return { range: SLIDER_RANGE, notShipped: [], method: {}, createdAt: '', ...d } as DirectionsFile;
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

export function clampAlpha(v: number, range = SLIDER_RANGE): number {
  return Math.max(-range, Math.min(range, v));
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

/** Slider values from URL parameters: known keys only, finite numbers, clamped to the range. */
export function readSliderParams(params: URLSearchParams, keys: readonly string[], range = SLIDER_RANGE): SliderValues {
  const values: SliderValues = {};
  for (const key of keys) {
    const raw = params.get(key);
    if (raw === null || raw.trim() === '') continue;
    const v = Number(raw);
    if (!Number.isFinite(v)) continue;
    const c = clampAlpha(v, range);
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
