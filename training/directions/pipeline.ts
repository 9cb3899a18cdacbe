/**
 * `npm run directions`: InterFaceGAN on the shipped generator.
 *  1. train a 40-attribute classifier on the training split's 64x64 crops;
 *     score it on the held-out identities against the majority-class rate;
 *  2. label `samples` generated faces with it;
 *  3. fit one logistic-regression normal per attribute in z (held-out
 *     accuracy of that fit = how separable the attribute is in z), then
 *     condition it on sex, on age where entangled and on smile where it is
 *     mostly a smile (conditioning.ts);
 *  4. give each direction the shortest span (each end within the prior's
 *     shell, and maybe reaching further one way than the other) over which the
 *     classifier's decision flips for `rangeFlip` of `evalFaces` random faces;
 *     measure the face detector at both ends, and with face-api's gender, age
 *     and recognition nets (judging.ts) the sex flips against two random
 *     directions moved over the same range and the identity at half range;
 *  5. ship the attributes that pass (ship-rule.ts), tied to the generator's weights hash.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  DIRECTIONS_VERSION,
  attributeKey,
  formatRange,
  shardPaths,
  weightsSha256,
  type AttributeDirection,
  type DirectionsFile,
  type RejectedAttribute,
  type SliderRange,
  type StepMeasure,
} from '../../src/lib/directions.ts';
import { Rng, sampleLatents } from '../../src/lib/latent.ts';
import { IMAGE_SIZE } from '../../src/lib/models.ts';
import { fromArtifacts, toArtifacts } from '../../src/lib/weights.ts';
import { loadModelFile } from '../model-files.ts';
import { loadLabelled, readAttributes, type LabelledSet } from './attributes.ts';
import { classify, heldOutAccuracy, trainClassifier } from './classifier.ts';
import {
  CONDITIONS,
  CONDITION_FROM,
  SEX_SHARES,
  conditionDirection,
  keepSexShare,
  mostlyOf,
  rangeCap,
  rangeGrid,
  rangesBySpan,
  shortestRange,
  type Conditioned,
  type RangeSearch,
} from './conditioning.ts';
import { SAME_PERSON, TRAITS_ABOUT } from './face-traits.ts';
import { RANDOM_DIRECTIONS, judgeSlider, makeJudge, randomDirections, type Judge } from './judging.ts';
import { fitLogistic, type LogisticFit } from './linear.ts';
import { SHIP_RULE, shipVerdict, type Rejection, type ShipRule } from './ship-rule.ts';

const PIXELS = IMAGE_SIZE * IMAGE_SIZE * 3;

export interface DirectionsOptions {
  generatorJson: string;
  dataDir: string;
  cacheDir: string;
  /** Training photos for the classifier (0: all labelled ones). */
  limit: number;
  classifierWidth: number;
  classifierSteps: number;
  batch: number;
  /** Generated faces labelled for the fits. */
  samples: number;
  /** Random faces each direction's flip rate (and the detector) is measured on. */
  evalFaces: number;
  /** Of those, how many face-api's gender net judges at both ends (0: no judge, so nothing ships). */
  judgeFaces: number;
  /** Of those, how many are also judged at half range (identity). */
  identityFaces: number;
  /** Run the face detector at both ends (slow-ish: two detections per face and attribute). */
  detect: boolean;
  /** Step of each end's reach, from `rangeStep` to the cap (conditioning.ts rangeCap). */
  rangeStep: number;
  rule: ShipRule;
  seed: number;
  /** Seed of the measured faces and random directions, when not `seed` (eval:directions on other faces, same classifier). */
  facesSeed?: number;
  log: (line: string) => void;
}

export const DEFAULTS: Omit<DirectionsOptions, 'generatorJson' | 'dataDir' | 'cacheDir' | 'log'> = {
  limit: 0,
  classifierWidth: 24,
  classifierSteps: 1500,
  batch: 64,
  samples: 12000,
  evalFaces: 200,
  judgeFaces: 100,
  identityFaces: 50,
  detect: true,
  rangeStep: 0.5,
  rule: SHIP_RULE,
  seed: 1,
};

/** The slider positions measured: the bottom, half way down, the unedited face, half way up, the top. */
const stepAlphas = (r: SliderRange) => [r.min, r.min / 2, 0, r.max / 2, r.max];

/**
 * 64x64 images for latents [n, zDim], in batches. A 128 px generator's faces are area-downscaled: the classifier and
 * the judges read 64 px faces, and a pyramid G's downscaled face is its 64 px base's exactly.
 */
export async function generate(g: LayersModel, z: Float32Array, zDim: number, batch = 100): Promise<Float32Array> {
  const n = z.length / zDim;
  const out = new Float32Array(n * PIXELS);
  for (let s = 0; s < n; s += batch) {
    const m = Math.min(batch, n - s);
    const img = tf.tidy(() => {
      const drawn = g.predict(tf.tensor2d(z.subarray(s * zDim, (s + m) * zDim), [m, zDim])) as tf.Tensor4D;
      const side = drawn.shape[1];
      return side === IMAGE_SIZE ? drawn : tf.avgPool(drawn, side / IMAGE_SIZE, side / IMAGE_SIZE, 'valid');
    });
    out.set((await img.data()) as Float32Array, s * PIXELS);
    img.dispose();
  }
  return out;
}

export function shifted(z: Float32Array, zDim: number, dir: ArrayLike<number>, alpha: number): Float32Array {
  const out = new Float32Array(z);
  for (let i = 0; i < out.length; i++) out[i] += alpha * dir[i % zDim];
  return out;
}

/** Face detection and descriptors run on WASM (face-api's tested path); our models stay on the main backend. */
export async function onFaceBackend<T>(fn: (nets: typeof import('../eval/face-nets.ts')) => Promise<T>): Promise<T> {
  const main = tf.getBackend();
  await import('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend('wasm');
  try {
    return await fn(await import('../eval/face-nets.ts'));
  } finally {
    await tf.setBackend(main);
  }
}

export async function generatorHash(generatorJson: string): Promise<string> {
  const modelJson = JSON.parse(readFileSync(generatorJson, 'utf8')) as { weightsManifest?: { paths: string[] }[] };
  const shards = shardPaths(modelJson).map((p) => new Uint8Array(readFileSync(join(dirname(generatorJson), p))));
  return weightsSha256(shards);
}

export async function runDirections(opts: DirectionsOptions): Promise<DirectionsFile> {
  const t0 = performance.now();
  const g = await loadModelFile(opts.generatorJson);
  const zDim = g.inputs[0].shape[1] as number;
  const hash = await generatorHash(opts.generatorJson);
  const clf = await attributeClassifier(opts);
  const { z, probs } = await labelGenerated(g, zDim, clf, opts, t0);
  const fits = fitDirections(clf.names, z, probs, zDim, opts.samples);
  const m = await measuring(g, zDim, clf, opts);
  const conditions = new Map(
    CONDITIONS.flatMap((c) => {
      const d = fits.find((f) => f.name === c)?.fit?.direction;
      return d ? [[c, d] as const] : [];
    }),
  );
  const shipped: AttributeDirection[] = [];
  const rejected: RejectedAttribute[] = [];
  for (const f of fits) {
    const outcome = await measureAttribute(f, conditions, m);
    if ('shipped' in outcome) shipped.push(outcome.shipped);
    else rejected.push(outcome.rejected);
  }
  shipped.sort((x, y) => y.flipRate - x.flipRate || x.range.max - x.range.min - (y.range.max - y.range.min));
  return directionsFile(opts, { hash, zDim, clf, shipped, rejected, cap: m.cap, judge: m.judge, t0 });
}

/** The CelebA attribute classifier and what the directions file records about it. */
export interface AttributeClassifier {
  names: string[];
  model: LayersModel;
  /** Per attribute on held-out identities: the classifier's accuracy and the majority-class rate. */
  accuracy: number[];
  majority: number[];
  trainPhotos: number;
  heldOutPhotos: number;
}

/** 1. The classifier on the training split's 64x64 crops, scored on the held-out identities against the majority-class rate. */
export async function attributeClassifier(opts: DirectionsOptions): Promise<AttributeClassifier> {
  const table = readAttributes(opts.dataDir);
  const K = table.names.length;
  const train = await loadLabelled(opts.dataDir, table, 'train', opts.cacheDir, opts.limit || undefined);
  const held = await loadLabelled(
    opts.dataDir,
    table,
    'heldOut',
    opts.cacheDir,
    opts.limit ? Math.ceil(opts.limit / 5) : undefined,
  );
  opts.log(
    `classifier: ${train.files.length} training photos, ${held.files.length} held-out (identity % 10 === 0), ${opts.classifierSteps} steps`,
  );
  const model = await cachedClassifier(train, K, opts);
  const { accuracy, majority } = await heldOutAccuracy(model, held, K);
  return {
    names: table.names,
    model,
    accuracy,
    majority,
    trainPhotos: train.files.length,
    heldOutPhotos: held.files.length,
  };
}

/** The classifier does not depend on the generator: a run for new weights reuses the one trained before. */
async function cachedClassifier(train: LabelledSet, K: number, opts: DirectionsOptions): Promise<LayersModel> {
  const { log } = opts;
  const clfKey = createHash('sha256')
    .update(
      JSON.stringify([
        opts.classifierWidth,
        opts.classifierSteps,
        opts.batch,
        opts.seed,
        train.files.length,
        train.files[0],
        train.files.at(-1),
      ]),
    )
    .digest('hex')
    .slice(0, 16);
  const clfPath = join(opts.cacheDir, `classifier-${clfKey}`);
  if (existsSync(`${clfPath}.json`)) {
    const spec = JSON.parse(readFileSync(`${clfPath}.json`, 'utf8')) as tf.io.ModelArtifacts;
    const bin = readFileSync(`${clfPath}.bin`);
    const clf = await fromArtifacts({
      ...spec,
      weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
    });
    log(`classifier: reusing ${clfPath}.json`);
    return clf;
  }
  const clf = await trainClassifier(train, K, {
    width: opts.classifierWidth,
    steps: opts.classifierSteps,
    batch: opts.batch,
    learningRate: 1e-3,
    seed: opts.seed,
    onStep: (s, l) => {
      if (s % 250 === 0 || s === opts.classifierSteps - 1) log(`  step ${s} loss ${l.toFixed(4)}`);
    },
  });
  const art = await toArtifacts(clf);
  mkdirSync(opts.cacheDir, { recursive: true });
  writeFileSync(`${clfPath}.bin`, new Uint8Array(art.weightData as ArrayBuffer));
  writeFileSync(`${clfPath}.json`, JSON.stringify({ modelTopology: art.modelTopology, weightSpecs: art.weightSpecs }));
  return clf;
}

/** 2. `samples` generated faces, labelled by the classifier: their latents and attribute probabilities ([samples, K]). */
export async function labelGenerated(
  g: LayersModel,
  zDim: number,
  clf: AttributeClassifier,
  opts: DirectionsOptions,
  t0: number,
): Promise<{ z: Float32Array; probs: Float32Array }> {
  const K = clf.names.length;
  const rng = new Rng(opts.seed * 7919 + 13);
  const z = sampleLatents(rng, opts.samples, zDim);
  const probs = new Float32Array(opts.samples * K);
  for (let s = 0; s < opts.samples; s += 500) {
    const m = Math.min(500, opts.samples - s);
    probs.set(await classify(clf.model, await generate(g, z.subarray(s * zDim, (s + m) * zDim), zDim)), s * K);
  }
  opts.log(`labelled ${opts.samples} generated faces (${((performance.now() - t0) / 1000).toFixed(0)} s so far)`);
  return { z, probs };
}

export interface AttributeFit {
  name: string;
  /** The attribute's column. */
  a: number;
  positiveRate: number;
  /** null: too rare or too common among the generated faces to fit. */
  fit: LogisticFit | null;
}

/** 3. One logistic-regression normal per attribute in z (80% fit, 20% held out: how separable the attribute is in z). */
export function fitDirections(
  names: string[],
  z: Float32Array,
  probs: Float32Array,
  zDim: number,
  samples: number,
): AttributeFit[] {
  const K = names.length;
  const trainCount = Math.floor(samples * 0.8);
  return names.map((name, a) => {
    const y = new Uint8Array(samples);
    let pos = 0;
    for (let i = 0; i < samples; i++) {
      y[i] = probs[i * K + a] > 0.5 ? 1 : 0;
      pos += y[i];
    }
    const positiveRate = pos / samples;
    const enough = Math.min(pos, samples - pos) >= Math.max(10, samples * 0.01);
    return { name, a, positiveRate, fit: enough ? fitLogistic(z, y, zDim, trainCount) : null };
  });
}

/** What every direction is measured on: the same random faces, their unshifted probabilities, and the judge. */
export interface Measuring {
  g: LayersModel;
  zDim: number;
  clf: AttributeClassifier;
  opts: DirectionsOptions;
  zEval: Float32Array;
  base: Float32Array;
  /** The furthest reach tried, and the ranges tried, shortest span first. */
  cap: number;
  ranges: SliderRange[];
  /** Null when `judgeFaces` is 0. */
  judge: Judge | null;
}

export async function measuring(
  g: LayersModel,
  zDim: number,
  clf: AttributeClassifier,
  opts: DirectionsOptions,
): Promise<Measuring> {
  const facesSeed = opts.facesSeed ?? opts.seed;
  const zEval = sampleLatents(new Rng(facesSeed * 104729 + 7), opts.evalFaces, zDim);
  const cap = rangeCap(zDim, opts.rangeStep);
  const judgeFaces = Math.min(opts.judgeFaces, opts.evalFaces);
  const judge =
    judgeFaces > 0 ? await makeJudge(g, zDim, zEval.slice(0, judgeFaces * zDim), opts.identityFaces, facesSeed) : null;
  return {
    g,
    zDim,
    clf,
    opts,
    zEval,
    base: await classify(clf.model, await generate(g, zEval, zDim)),
    cap,
    ranges: rangesBySpan(rangeGrid(cap, opts.rangeStep)),
    judge,
  };
}

type Outcome = { shipped: AttributeDirection } | { rejected: RejectedAttribute };

/** One attribute: shipped with its measures, or not, and why. */
async function measureAttribute(
  f: AttributeFit,
  conditions: ReadonlyMap<string, ArrayLike<number>>,
  m: Measuring,
): Promise<Outcome> {
  const { clf, opts } = m;
  const reject = (r: Rejection, more: Partial<RejectedAttribute> = {}): Outcome => {
    opts.log(`  ${f.name}: not shipped: ${r.reason}`);
    const common = { name: f.name, classifierAccuracy: clf.accuracy[f.a], majorityRate: clf.majority[f.a] };
    return { rejected: { ...common, separability: f.fit?.accuracy ?? null, flipRate: null, ...r, ...more } };
  };
  if (clf.accuracy[f.a] - clf.majority[f.a] < 0.01)
    return reject({
      kind: 'judge',
      reason: 'the classifier does not beat the majority class on held-out photos, so it cannot judge this attribute',
    });
  if (!f.fit)
    return reject({
      kind: 'fit',
      reason: `too rare or too common in generated faces (${(f.positiveRate * 100).toFixed(1)}% positive) to fit a direction`,
    });
  const orthogonal = conditionDirection(f.name, f.fit.direction, conditions);
  const { conditioned, search } = await rangeKeepingSex(f, orthogonal, conditions.get('Male'), m);
  const tried = {
    conditionedOn: conditioned.conditionedOn,
    ...(conditioned.sexShare ? { sexShare: conditioned.sexShare } : {}),
    flipRate: search.flipRate,
    range: search.best,
  };
  if (search.range === null) return reject(noRange(conditioned, search.flipRate, m), tried);
  return measureSlider(f, conditioned, { range: search.range, flipRate: search.flipRate }, m, (r, more = {}) =>
    reject(r, { ...tried, ...more }),
  );
}

/**
 * The shortest range of the direction orthogonal to sex; where none flips enough faces, of the same direction with
 * a share of its sex put back (SEX_SHARES), where the classifier sees the sex change over its range for no more faces than along random directions.
 */
async function rangeKeepingSex(
  f: AttributeFit,
  orthogonal: Conditioned,
  male: ArrayLike<number> | undefined,
  m: Measuring,
): Promise<{ conditioned: Conditioned; search: RangeSearch }> {
  const { opts } = m;
  const search = await shortestRange(m.ranges, flipAt(m, orthogonal.vector, f.a), opts.rule.rangeFlip);
  if (search.range !== null || !male || !orthogonal.conditionedOn.includes('Male'))
    return { conditioned: orthogonal, search };
  const maleColumn = m.clf.names.indexOf('Male');
  const random = randomDirections(opts.facesSeed ?? opts.seed, m.zDim);
  for (const share of SEX_SHARES) {
    const c = keepSexShare(orthogonal, f.fit!.direction, male, share);
    const s = await shortestRange(m.ranges, flipAt(m, c.vector, f.a), opts.rule.rangeFlip);
    if (s.range === null) continue;
    const changed = await decisionChanges(m, c.vector, maleColumn, s.range);
    const noise: number[] = [];
    for (const d of random) noise.push(await decisionChanges(m, d, maleColumn, s.range));
    opts.log(
      `  ${f.name}: ${share} of its sex kept: flip ${s.flipRate.toFixed(2)}, the classifier's sex changes for ${changed.toFixed(2)} (random ${noise.map((x) => x.toFixed(2)).join(', ')})`,
    );
    if (changed <= Math.max(...noise)) return { conditioned: c, search: s };
    break; // a larger share changes sex more
  }
  return { conditioned: orthogonal, search };
}

/** Why no range flips enough faces: made orthogonal to what, and what the fitted direction mostly was. */
function noRange(c: Conditioned, best: number, m: Measuring): Rejection {
  const mostly = mostlyOf(c.cosine);
  const orthogonal = c.conditionedOn.length ? `made orthogonal to ${c.conditionedOn.join(', ')}, ` : '';
  return {
    kind: 'flip',
    reason: `${orthogonal}it flips the classifier's decision for at most ${Math.round(best * 100)}% of faces with each end within ±${m.cap} (a range needs ${Math.round(m.opts.rule.rangeFlip * 100)}%)${mostly ? `: ${mostly}` : ''}`,
  };
}

/** A direction with its range: the detector, then the judge, then the rule; shipped or rejected with what was measured. */
async function measureSlider(
  f: AttributeFit,
  c: Conditioned,
  { range, flipRate }: { range: SliderRange; flipRate: number },
  m: Measuring,
  reject: (r: Rejection, more?: Partial<RejectedAttribute>) => Outcome,
): Promise<Outcome> {
  const { opts } = m;
  const { steps, images } = await sliderSteps(c.vector, f.a, range, m);
  const detected = await detectBothEnds(images[0], images[images.length - 1], opts);
  const early = shipVerdict({ name: f.name, range, flipRate, detectedBothEnds: detected }, opts.rule);
  if (early) return reject(early);
  if (!m.judge) return reject({ kind: 'unjudged', reason: 'not judged for sex and identity (--judge-faces 0)' });
  const judged = await judgeSlider(m.judge, c.vector, range, SAME_PERSON);
  opts.log(
    `  ${f.name}: ${formatRange(range)} flip ${flipRate.toFixed(2)}, sex ${judged.sexFlipRate.toFixed(2)} (random ${judged.randomSexFlipRates.map((r) => r.toFixed(2)).join(', ')}), half-range distance ${judged.halfRangeDistance.toFixed(3)}, detected ${detected ?? '-'}${c.conditionedOn.length ? `, ⟂ ${c.conditionedOn.join(', ')}` : ''}`,
  );
  const verdict = shipVerdict({ name: f.name, range, flipRate, detectedBothEnds: detected, ...judged }, opts.rule);
  if (verdict) {
    const { sexFlipRate, randomSexFlipRates, halfRangeDistance } = judged;
    return reject(verdict, { sexFlipRate, randomSexFlipRates, halfRangeDistance });
  }
  steps.forEach((s, i) => {
    s.descriptorDistance = [judged.fullRangeDistance, judged.halfRangeDistance, 0][Math.min(i, 4 - i)];
  });
  const { clf } = m;
  return {
    shipped: {
      name: f.name,
      key: attributeKey(f.name),
      vector: unitRounded(c.vector),
      range,
      classifierAccuracy: clf.accuracy[f.a],
      majorityRate: clf.majority[f.a],
      separability: f.fit!.accuracy,
      positiveRate: f.positiveRate,
      conditionedOn: c.conditionedOn,
      ...(c.sexShare ? { sexShare: c.sexShare } : {}),
      cosine: c.cosine,
      flipRate,
      detectedBothEnds: detected,
      ...judged,
      steps,
    },
  };
}

/** Six decimals for the file, renormalised after rounding. */
function unitRounded(v: ArrayLike<number>): number[] {
  const rounded = Array.from(v, (x) => Math.round(x * 1e6) / 1e6);
  const norm = Math.hypot(...rounded);
  return rounded.map((x) => x / norm);
}

/** The classifier's decision for attribute `a` on the eval faces moved by alpha along `dir`. */
async function decisions(m: Measuring, dir: ArrayLike<number>, a: number, alpha: number): Promise<boolean[]> {
  const { g, zDim, clf, zEval } = m;
  const K = clf.names.length;
  const p = await classify(clf.model, await generate(g, shifted(zEval, zDim, dir, alpha), zDim));
  return Array.from({ length: zEval.length / zDim }, (_, i) => p[i * K + a] > 0.5);
}

/** Share of the eval faces whose decision for `a` differs between range.min and range.max along `dir` (either way). */
async function decisionChanges(m: Measuring, dir: ArrayLike<number>, a: number, r: SliderRange): Promise<number> {
  const lo = await decisions(m, dir, a, r.min);
  const hi = await decisions(m, dir, a, r.max);
  return lo.filter((v, i) => v !== hi[i]).length / lo.length;
}

/** Share of the eval faces whose decision flips from no at range.min to yes at range.max along `dir`. */
export async function flipRate(m: Measuring, dir: ArrayLike<number>, a: number, range: SliderRange): Promise<number> {
  return flipAt(m, dir, a)(range);
}

/** flipRate for one direction, each slider position's decisions worked out once. */
function flipAt(m: Measuring, dir: ArrayLike<number>, a: number): (r: SliderRange) => Promise<number> {
  const known = new Map<number, Promise<boolean[]>>();
  const at = (alpha: number) => {
    if (!known.has(alpha)) known.set(alpha, decisions(m, dir, a, alpha));
    return known.get(alpha)!;
  };
  return async (r) => {
    const lo = await at(r.min);
    const hi = await at(r.max);
    return lo.filter((v, i) => !v && hi[i]).length / lo.length;
  };
}

/** At each slider step (stepAlphas): the eval faces, the attribute's mean probability and how far the others moved. */
export async function sliderSteps(
  dir: ArrayLike<number>,
  a: number,
  range: SliderRange,
  m: Measuring,
): Promise<{ steps: StepMeasure[]; images: Float32Array[] }> {
  const { g, zDim, clf, zEval, base } = m;
  const K = clf.names.length;
  const n = zEval.length / zDim;
  const steps: StepMeasure[] = [];
  const images: Float32Array[] = [];
  for (const alpha of stepAlphas(range)) {
    const im = await generate(g, shifted(zEval, zDim, dir, alpha), zDim);
    const p = alpha === 0 ? base : await classify(clf.model, im);
    let prob = 0,
      moved = 0;
    for (let i = 0; i < n; i++) {
      prob += p[i * K + a];
      for (let b = 0; b < K; b++) if (b !== a) moved += Math.abs(p[i * K + b] - base[i * K + b]);
    }
    steps.push({ alpha, probability: prob / n, othersMoved: moved / (n * (K - 1)), descriptorDistance: null });
    images.push(im);
  }
  return { steps, images };
}

/** Share of faces the detector (face-api TinyFaceDetector, as `npm run eval`) finds at both ends; null without `detect`. */
export async function detectBothEnds(
  lo: Float32Array,
  hi: Float32Array,
  opts: DirectionsOptions,
): Promise<number | null> {
  if (!opts.detect) return null;
  return onFaceBackend(async ({ detectFaces }) => {
    const a = await detectFaces(lo);
    const b = await detectFaces(hi);
    return a.filter((v, i) => v && b[i]).length / a.length;
  });
}

/** 5. The file the site loads: the shipped directions, tied to the generator's weights hash, and how they were found. */
function directionsFile(
  opts: DirectionsOptions,
  r: {
    hash: string;
    zDim: number;
    clf: AttributeClassifier;
    shipped: AttributeDirection[];
    rejected: RejectedAttribute[];
    cap: number;
    judge: Judge | null;
    t0: number;
  },
): DirectionsFile {
  const { clf, judge } = r;
  const rule = opts.rule;
  return {
    version: DIRECTIONS_VERSION,
    generator: { file: opts.generatorJson.split('/').pop()!, weightsSha256: r.hash },
    zDim: r.zDim,
    range: r.cap,
    method: {
      classifier: {
        arch: `4 strided convs (${opts.classifierWidth}-${4 * opts.classifierWidth} filters) + dense 40, sigmoid cross-entropy, Adam 1e-3`,
        steps: opts.classifierSteps,
        batch: opts.batch,
        trainPhotos: clf.trainPhotos,
        heldOutPhotos: clf.heldOutPhotos,
        heldOut: 'CelebA identity id % 10 === 0',
      },
      labelledSamples: opts.samples,
      fit: 'class-balanced L2 logistic regression on z (80% fit, 20% held out for separability)',
      conditioning: `orthogonal to ${CONDITIONS.map((c) => `${c} where |cos| >= ${CONDITION_FROM[c]}`).join(', ')} (InterFaceGAN's conditional manipulation); where that flips too few faces, ${SEX_SHARES.join(' or ')} of the fitted Male component put back if the classifier then sees the sex change for no more faces than along ${RANDOM_DIRECTIONS} random directions`,
      ranges: `the shortest span, each end one of ${opts.rangeStep}, ${2 * opts.rangeStep}, ... ${r.cap} away from the face, that flips >= ${rule.rangeFlip} of the fitting faces (so that other faces still see >= ${rule.minFlip}); ${r.cap}: zDim + reach^2 within the chi-square(zDim) 95th percentile`,
      evalFaces: opts.evalFaces,
      judgeFaces: judge ? judge.z.length / r.zDim : 0,
      identityFaces: judge?.identityFaces ?? 0,
      judge: judge ? TRAITS_ABOUT : null,
      randomDirections: judge ? RANDOM_DIRECTIONS : 0,
      randomSexFlips: judge ? Object.fromEntries(judge.randomFlips) : {},
      detector: opts.detect ? 'face-api TinyFaceDetector (as npm run eval)' : null,
      shipRule: `flip rate >= ${rule.minFlip} over its range, face detected at both ends for >= ${rule.minDetected}, classifier beats the majority rate; except Male: sex flips (gender net) <= the larger random direction's plus two standard errors and <= ${rule.maxSexFlip}; mean descriptor distance at half range < ${rule.maxHalfRangeDistance}`,
      seconds: Math.round((performance.now() - r.t0) / 1000),
      classifierHeldOut: Object.fromEntries(
        clf.names.map((n, a) => [n, { accuracy: clf.accuracy[a], majority: clf.majority[a] }]),
      ),
    },
    attributes: r.shipped,
    notShipped: r.rejected,
    createdAt: new Date().toISOString(),
  };
}
