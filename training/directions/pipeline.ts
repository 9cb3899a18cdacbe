/**
 * `npm run directions`: InterFaceGAN on the shipped generator.
 *  1. train a 40-attribute classifier on the training split's 64x64 crops;
 *     score it on the held-out identities against the majority-class rate;
 *  2. label `samples` generated faces with it;
 *  3. fit one logistic-regression normal per attribute in z (held-out
 *     accuracy of that fit = how separable the attribute is in z), made
 *     orthogonal to Male / Young where they are entangled and the edit
 *     still works;
 *  4. measure each direction on `evalFaces` random faces: the classifier's
 *     decision at -range vs +range (flip rate), faces still detected at both
 *     ends, and per slider step the attribute's probability, the other
 *     attributes' movement and the face-descriptor distance;
 *  5. ship the attributes that pass, tied to the generator's weights hash.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  DIRECTIONS_VERSION,
  attributeKey,
  shardPaths,
  weightsSha256,
  type AttributeDirection,
  type DirectionsFile,
  type RejectedAttribute,
  type StepMeasure,
} from '../../src/lib/directions.ts';
import { PHOTO_PROJECTION, projectPhotos, type ProjectionConfig } from '../../src/lib/projection.ts';
import { Rng, sampleLatents } from '../../src/lib/latent.ts';
import { gridRgba } from '../../src/lib/images.ts';
import { IMAGE_SIZE } from '../../src/lib/models.ts';
import { fromArtifacts, toArtifacts } from '../../src/lib/weights.ts';
import { loadModelFile } from '../model-files.ts';
import { loadLabelled, readAttributes, type LabelledSet } from './attributes.ts';
import { classify, heldOutAccuracy, trainClassifier } from './classifier.ts';
import { dot, fitLogistic, orthogonalise, type LogisticFit } from './linear.ts';

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
  /** Random faces each direction is measured on. */
  evalFaces: number;
  /** Of those, how many get face descriptors at every slider step (0: none). */
  descriptorFaces: number;
  /** Run the face detector at both ends (slow-ish: two detections per face and attribute). */
  detect: boolean;
  range: number;
  minFlip: number;
  minDetected: number;
  seed: number;
  log: (line: string) => void;
}

export const DEFAULTS: Omit<DirectionsOptions, 'generatorJson' | 'dataDir' | 'cacheDir' | 'log'> = {
  limit: 0,
  classifierWidth: 24,
  classifierSteps: 1500,
  batch: 64,
  samples: 12000,
  evalFaces: 200,
  descriptorFaces: 40,
  detect: true,
  range: 3,
  minFlip: 0.8,
  minDetected: 0.8,
  seed: 1,
};

/** Entangled attributes everything else is made orthogonal to (when that keeps the edit working). */
const ENTANGLED = ['Male', 'Young'];
const COS_ENTANGLED = 0.2;
const ALPHAS = [-3, -2, -1, 0, 1, 2, 3];

/** Images for latents [n, zDim], in batches. */
async function generate(g: LayersModel, z: Float32Array, zDim: number, batch = 100): Promise<Float32Array> {
  const n = z.length / zDim;
  const out = new Float32Array(n * PIXELS);
  for (let s = 0; s < n; s += batch) {
    const m = Math.min(batch, n - s);
    const img = tf.tidy(() => g.predict(tf.tensor2d(z.subarray(s * zDim, (s + m) * zDim), [m, zDim])) as tf.Tensor);
    out.set((await img.data()) as Float32Array, s * PIXELS);
    img.dispose();
  }
  return out;
}

function shifted(z: Float32Array, zDim: number, dir: ArrayLike<number>, alpha: number): Float32Array {
  const out = new Float32Array(z);
  for (let i = 0; i < out.length; i++) out[i] += alpha * dir[i % zDim];
  return out;
}

/** Face detection and descriptors run on WASM (face-api's tested path); our models stay on the main backend. */
async function onFaceBackend<T>(fn: (nets: typeof import('../eval/face-nets.ts')) => Promise<T>): Promise<T> {
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
  const { shipped, rejected } = await measureDirections(g, zDim, clf, fits, opts);
  return directionsFile(opts, { hash, zDim, clf, shipped, rejected, t0 });
}

/** The CelebA attribute classifier and what the directions file records about it. */
interface AttributeClassifier {
  names: string[];
  model: LayersModel;
  /** Per attribute on held-out identities: the classifier's accuracy and the majority-class rate. */
  accuracy: number[];
  majority: number[];
  trainPhotos: number;
  heldOutPhotos: number;
}

/** 1. The classifier on the training split's 64x64 crops, scored on the held-out identities against the majority-class rate. */
async function attributeClassifier(opts: DirectionsOptions): Promise<AttributeClassifier> {
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
async function labelGenerated(
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

interface AttributeFit {
  name: string;
  /** The attribute's column. */
  a: number;
  positiveRate: number;
  /** null: too rare or too common among the generated faces to fit. */
  fit: LogisticFit | null;
}

/** 3. One logistic-regression normal per attribute in z (80% fit, 20% held out: how separable the attribute is in z). */
function fitDirections(
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

/** What every direction is measured on: the same random faces, and the classifier's probabilities for them unshifted. */
interface Measuring {
  g: LayersModel;
  zDim: number;
  clf: AttributeClassifier;
  opts: DirectionsOptions;
  zEval: Float32Array;
  base: Float32Array;
}

/** 4. Each fitted direction measured on `evalFaces` random faces; those that pass are shipped, highest flip rate first. */
async function measureDirections(
  g: LayersModel,
  zDim: number,
  clf: AttributeClassifier,
  fits: AttributeFit[],
  opts: DirectionsOptions,
) {
  const evalRng = new Rng(opts.seed * 104729 + 7);
  const zEval = sampleLatents(evalRng, opts.evalFaces, zDim);
  const m: Measuring = { g, zDim, clf, opts, zEval, base: await classify(clf.model, await generate(g, zEval, zDim)) };
  const byName = new Map(fits.map((f) => [f.name, f]));
  const shipped: AttributeDirection[] = [];
  const rejected: RejectedAttribute[] = [];
  for (const f of fits) {
    const outcome = await measureAttribute(f, byName, m);
    if ('shipped' in outcome) shipped.push(outcome.shipped);
    else rejected.push(outcome.rejected);
  }
  shipped.sort((x, y) => y.flipRate - x.flipRate);
  return { shipped, rejected };
}

/** One attribute: shipped with its measures, or not, and why. */
async function measureAttribute(
  f: AttributeFit,
  byName: Map<string, AttributeFit>,
  m: Measuring,
): Promise<{ shipped: AttributeDirection } | { rejected: RejectedAttribute }> {
  const { clf, opts } = m;
  const { log } = opts;
  const common = { name: f.name, classifierAccuracy: clf.accuracy[f.a], majorityRate: clf.majority[f.a] };
  if (clf.accuracy[f.a] - clf.majority[f.a] < 0.01) {
    return {
      rejected: {
        ...common,
        separability: f.fit?.accuracy ?? null,
        flipRate: null,
        reason: 'the classifier does not beat the majority class on held-out photos, so it cannot judge this attribute',
      },
    };
  }
  if (!f.fit) {
    return {
      rejected: {
        ...common,
        separability: null,
        flipRate: null,
        reason: `too rare or too common in generated faces (${(f.positiveRate * 100).toFixed(1)}% positive) to fit a direction`,
      },
    };
  }
  const fit = f.fit;
  const { dir, orthogonalTo, cosine, flip, orthogonalFlipRate } = await chooseDirection(
    f.name,
    f.a,
    fit.direction,
    byName,
    m,
  );
  if (flip < opts.minFlip) {
    log(`  ${f.name}: not shipped, flip ${flip.toFixed(2)}`);
    return {
      rejected: {
        ...common,
        separability: fit.accuracy,
        flipRate: flip,
        reason: `the slider flips the classifier's decision for only ${(flip * 100).toFixed(0)}% of faces (needs ${opts.minFlip * 100}%)`,
      },
    };
  }
  const { steps, images } = await sliderSteps(dir, f.a, m);
  const detected = await faceMeasures(images, steps, opts);
  if (detected !== null && detected < opts.minDetected) {
    log(`  ${f.name}: not shipped, detected ${detected}`);
    return {
      rejected: {
        ...common,
        separability: fit.accuracy,
        flipRate: flip,
        reason: `a face is still detected at both ends for only ${(detected * 100).toFixed(0)}% of faces`,
      },
    };
  }
  const entry: AttributeDirection = {
    name: f.name,
    key: attributeKey(f.name),
    vector: Array.from(dir, (v) => Math.round(v * 1e6) / 1e6),
    classifierAccuracy: clf.accuracy[f.a],
    majorityRate: clf.majority[f.a],
    separability: fit.accuracy,
    positiveRate: f.positiveRate,
    orthogonalTo,
    cosine,
    ...(orthogonalFlipRate === undefined ? {} : { orthogonalFlipRate }),
    flipRate: flip,
    detectedBothEnds: detected,
    steps,
  };
  // renormalise after rounding
  const norm = Math.hypot(...entry.vector);
  entry.vector = entry.vector.map((v) => v / norm);
  log(
    `  ${f.name}: flip ${flip.toFixed(2)}, detected ${detected ?? '-'}, sep ${fit.accuracy.toFixed(3)}, clf ${clf.accuracy[f.a].toFixed(3)} vs ${clf.majority[f.a].toFixed(3)}${orthogonalTo.length ? `, orthogonal to ${orthogonalTo.join('+')}` : ''}`,
  );
  return { shipped: entry };
}

/** Share of the eval faces whose classifier decision for attribute `a` flips from no at -range to yes at +range along `dir`. */
async function flipRate(m: Measuring, dir: ArrayLike<number>, a: number): Promise<number> {
  const { g, zDim, clf, opts, zEval } = m;
  const K = clf.names.length;
  const decide = async (zz: Float32Array) => {
    const p = await classify(clf.model, await generate(g, zz, zDim));
    return Array.from({ length: zz.length / zDim }, (_, i) => p[i * K + a] > 0.5);
  };
  const lo = await decide(shifted(zEval, zDim, dir, -opts.range));
  const hi = await decide(shifted(zEval, zDim, dir, opts.range));
  return lo.filter((v, i) => !v && hi[i]).length / opts.evalFaces;
}

/**
 * The direction as fitted, or made orthogonal to the entangled attributes (Male stays as fitted, Young is made
 * orthogonal to Male, the rest to both) where |cos| > COS_ENTANGLED and the orthogonal edit still flips enough faces.
 */
async function chooseDirection(
  name: string,
  a: number,
  fitted: Float64Array,
  byName: Map<string, AttributeFit>,
  m: Measuring,
) {
  const own = ENTANGLED.indexOf(name);
  const others = own === -1 ? ENTANGLED : ENTANGLED.slice(0, own);
  const basis = others.map((n) => byName.get(n)?.fit?.direction).filter((d): d is Float64Array => !!d);
  const entangledWith = others.filter((n, i) => basis[i] && Math.abs(dot(fitted, basis[i])) > COS_ENTANGLED);
  const cosine = Object.fromEntries(
    others.map((n, i) => [n, basis[i] ? Math.round(dot(fitted, basis[i]) * 1000) / 1000 : NaN]),
  );
  const asFitted = async (orthogonalFlipRate?: number) => ({
    dir: fitted as ArrayLike<number>,
    orthogonalTo: [] as string[],
    cosine,
    flip: await flipRate(m, fitted, a),
    orthogonalFlipRate,
  });
  if (!entangledWith.length) return asFitted();
  const ortho = orthogonalise(
    fitted,
    entangledWith.map((n) => byName.get(n)!.fit!.direction),
  );
  const fo = await flipRate(m, ortho, a);
  if (fo >= m.opts.minFlip)
    return {
      dir: ortho as ArrayLike<number>,
      orthogonalTo: entangledWith,
      cosine,
      flip: fo,
      orthogonalFlipRate: undefined,
    };
  return asFitted(fo);
}

/** At each slider step (ALPHAS) along `dir`: the eval faces, the attribute's mean probability and how far the others moved. */
async function sliderSteps(
  dir: ArrayLike<number>,
  a: number,
  m: Measuring,
): Promise<{ steps: StepMeasure[]; images: Float32Array[] }> {
  const { g, zDim, clf, opts, zEval, base } = m;
  const K = clf.names.length;
  const steps: StepMeasure[] = [];
  const images: Float32Array[] = [];
  for (const alpha of ALPHAS) {
    const im = await generate(g, shifted(zEval, zDim, dir, alpha), zDim);
    const p = alpha === 0 ? base : await classify(clf.model, im);
    let prob = 0,
      moved = 0;
    for (let i = 0; i < opts.evalFaces; i++) {
      prob += p[i * K + a];
      for (let b = 0; b < K; b++) if (b !== a) moved += Math.abs(p[i * K + b] - base[i * K + b]);
    }
    steps.push({
      alpha,
      probability: prob / opts.evalFaces,
      othersMoved: moved / (opts.evalFaces * (K - 1)),
      descriptorDistance: null,
    });
    images.push(im);
  }
  return { steps, images };
}

/**
 * With the face nets: each step's mean descriptor distance from the alpha = 0 face over the first
 * `descriptorFaces` faces (written into `steps`), and the share of faces detected at both ends (null without `detect`).
 */
async function faceMeasures(
  images: Float32Array[],
  steps: StepMeasure[],
  opts: DirectionsOptions,
): Promise<number | null> {
  const nd = Math.min(opts.descriptorFaces, opts.evalFaces);
  return onFaceBackend(async ({ describeFaces, detectFaces }) => {
    if (nd > 0) {
      const desc = await Promise.all(images.map((im) => describeFaces(im.subarray(0, nd * PIXELS))));
      const d0 = desc[ALPHAS.indexOf(0)];
      desc.forEach((d, s) => {
        let sum = 0;
        for (let i = 0; i < nd; i++) {
          let q = 0;
          for (let j = 0; j < 128; j++) q += (d[i * 128 + j] - d0[i * 128 + j]) ** 2;
          sum += Math.sqrt(q);
        }
        steps[s].descriptorDistance = sum / nd;
      });
    }
    if (!opts.detect) return null;
    const lo = await detectFaces(images[0]);
    const hi = await detectFaces(images[images.length - 1]);
    return lo.filter((v, i) => v && hi[i]).length / opts.evalFaces;
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
    t0: number;
  },
): DirectionsFile {
  const { clf } = r;
  return {
    version: DIRECTIONS_VERSION,
    generator: { file: opts.generatorJson.split('/').pop()!, weightsSha256: r.hash },
    zDim: r.zDim,
    range: opts.range,
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
      orthogonalisation: `against ${ENTANGLED.join(', ')} where |cos| > ${COS_ENTANGLED} and the edit still flips >= ${opts.minFlip * 100}%`,
      evalFaces: opts.evalFaces,
      descriptorFaces: Math.min(opts.descriptorFaces, opts.evalFaces),
      detector: opts.detect ? 'face-api TinyFaceDetector (as npm run eval)' : null,
      shipRule: `flip rate >= ${opts.minFlip} over -${opts.range}..+${opts.range}, face detected at both ends for >= ${opts.minDetected}, classifier beats the majority rate`,
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
