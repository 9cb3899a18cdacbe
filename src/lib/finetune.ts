/**
 * Fine-tuning the pretrained generator on a few face crops of one person, so
 * that it draws that person: the settings and their checks, the session
 * (projection, pivotal tuning, an optional likeness fit of the sampling
 * centre), and an ETA. The discriminator is used only as a feature
 * extractor for the reconstruction loss; it is not trained.
 * Isomorphic: the page's worker drives it, and Node can too.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { flipHorizontal } from './images.ts';
import { bceWithLogits, generate, NonFiniteLossError } from './gan.ts';
import { diffAugment, FULL_POLICY } from './diffaugment.ts';
import { Rng, sampleLatents } from './latent.ts';
import { bakeLatentShift, shiftLatents, type LatentShift } from './latent-shift.ts';
import { CHANNELS, IMAGE_SIZE } from './models.ts';
import { cloneModel, WeightAverage } from './ema.ts';
import { squaredDistances, type FaceEmbedder } from './identity.ts';
import { featureExtractor, meanLatent, pairImageSize, Projector, reconstructionLoss } from './projection.ts';
import { LikenessFit } from './likeness.ts';
import { NEAR_COPY_RMS, nearCopyShare } from './near-copies.ts';
import { halfSizeDiscriminator, isPyramid, pyramidBase } from './pyramid.ts';
import { installLayerGradients } from './layer-gradients.ts';

export interface FinetuneConfig {
  /** Fine-tuning steps after the projection. */
  steps: number;
  /** Pivots (photos) per step. */
  batch: number;
  learningRate: number;
  beta1: number;
  /** Use every photo mirrored too (projected and tuned as a photo of its own). */
  augment: boolean;
  /** Redraw the live sample grid every this many steps. */
  sampleEvery: number;
  seed: number;
  /** Steps of latent projection (per photo z) before fine-tuning; counted in the progress. */
  projectionSteps: number;
  /** Noise added to the pivots while tuning: G learns the person in a neighbourhood of each pivot, not at a point. */
  pivotNoise: number;
  /** Weight of the discriminator-feature term in the reconstruction loss (pixels weigh 1). */
  featureWeight: number;
  /** Weight of the face-identity term in the projection, when the session has an identity embedder. */
  identityWeight: number;
  /** Weight of keeping G(z) for random z as the pretrained G drew it (locality). */
  localityWeight: number;
  /** Random latents per step for the locality term. */
  localityBatch: number;
  /** L2-SP: weight of the squared distance of G's weights to the starting ones (summed over all weights). */
  l2spWeight: number;
  /**
   * How many of G's weighted layers, counted from z, are tuned (0: all): the later layers, which draw
   * texture at the largest sizes (32 px and up), can stay as pretrained.
   */
  tunedLayers: number;
  /**
   * A pyramid generator (128 px: a 64 px base plus a detail branch): tune only its base, at 64 px, against the
   * photos area-downscaled, judged by the 128 px D's exact 64 px view (pyramid.ts), and keep the branch as
   * pretrained. The base draws the face and the branch its detail, so the person is learnt where the face is
   * drawn, at the 64 px pair's cost. false: all of G at 128 px. No effect on other generators.
   */
  baseOnly: boolean;
  /** Exponential moving average of G's weights while tuning (0: off); the average is what is baked and exported. */
  emaDecay: number;
  /**
   * Sampling: z' = likenessScale * z + c, baked into the exported generator; c is
   * likenessPull * mean(pivots), the likeness fit's start (and result without an embedder).
   */
  likenessScale: number;
  likenessPull: number;
  /**
   * Steps fitting the shift's centre through the face recogniser after tuning (likeness.ts), when the
   * session has an identity embedder (0, the default: the mean pivot as it is; the fit optimises
   * face-api's recogniser, so the likeness measure's face-api judge would no longer be independent).
   */
  likenessSteps: number;
  /** Random latents per likeness step. */
  likenessBatch: number;
  likenessRate: number;
  /** Face-descriptor distance under which the fit pulls a sample no closer (keeps variety). */
  likenessMargin: number;
  /**
   * Copy guard, after tuning: the share of `copyCheckSamples` faces that are near-copies of a photo, pixel for
   * pixel (near-copies.ts; no recogniser involved), is measured at the pull, which is lowered in steps of 0.1
   * until at most this share are (1: measured and reported, never lowered).
   */
  maxCopyShare: number;
  copyCheckSamples: number;
  /**
   * Weight of an adversarial term on faces drawn as the export will draw them (a*z + m*mean(pivots)): a copy of D,
   * trained alongside on the photos against those faces with DiffAugment, tells G where they do not look like
   * the photos (0: off, no D is trained).
   */
  adversarialWeight: number;
  /**
   * Weight of a face-identity term on faces drawn as the export will draw them: the recogniser's squared
   * distance from each face to the photos' mean descriptor, beyond `likenessMargin` (0: off; needs the
   * session's embedder). Teaches G the person where the export samples, not only at the pivots.
   */
  identityTuneWeight: number;
  /** Faces per step for that term. */
  identityTuneBatch: number;
  /** The term runs every this many tuning steps. */
  identityTuneEvery: number;
  /** Faces per step for the adversarial term (and real photos for its D). */
  adversarialBatch: number;
  /** Learning rate of that D. */
  criticLearningRate: number;
  /**
   * That D sees images averaged over blocks of this many pixels (and enlarged back): 2 keeps its gradients off
   * the finest detail, where a D of a handful of photos draws hatching into G's faces. 1: full detail.
   */
  criticBlock: number;
}

/**
 * Chosen by `npm run bench:identity` on held-out people, judged by two recognisers on aligned faces,
 * one of which nothing here optimises (README, "Fine-tuning: likeness"): pivotal tuning of all of G
 * (Roich et al. 2021) on noisy pivots, kept near the pretrained G by a locality term and L2-SP, then
 * sampling around the mean pivot. The likeness fit through face-api's recogniser is off: it only
 * reached sex, skin and hair, not the person.
 */
export const DEFAULT_FINETUNE: FinetuneConfig = {
  steps: 400,
  batch: 8,
  learningRate: 2e-4,
  beta1: 0.9,
  // Mirrored copies change nothing measurable and double the projection's work.
  augment: false,
  sampleEvery: 20,
  seed: 1,
  projectionSteps: 200,
  pivotNoise: 0.5,
  featureWeight: 1,
  // Pixel pivots do as well as pivots pulled through the recogniser, at half the time.
  identityWeight: 0,
  localityWeight: 0.3,
  localityBatch: 8,
  l2spWeight: 1e-4,
  tunedLayers: 0,
  baseOnly: true,
  emaDecay: 0,
  likenessScale: 0.8,
  likenessPull: 0.7,
  likenessSteps: 0,
  likenessBatch: 8,
  likenessRate: 0.05,
  likenessMargin: 0.4,
  // Measured on five held-out people: a tuned G copies its photos from much of the latent space, so lowering the
  // pull cut likeness far more than copies (docs/likeness.md). Report only.
  maxCopyShare: 1,
  copyCheckSamples: 64,
  adversarialWeight: 0,
  identityTuneWeight: 0,
  identityTuneBatch: 4,
  identityTuneEvery: 1,
  adversarialBatch: 8,
  criticLearningRate: 2e-4,
  criticBlock: 1,
};

/**
 * "Stronger likeness": the identity term on the faces the download will draw, with smaller balls around the pivots
 * (fewer near-copies; the term supplies the likeness they lose). On five held-out people it reached FaceRes's bars
 * for all of them; in the page on WASM it takes 200 s instead of 158 s for 10 photos (docs/likeness.md).
 */
export const IDENTITY_TERM: Readonly<Partial<FinetuneConfig>> = { identityTuneWeight: 0.5, pivotNoise: 0.3 };

export const LIMITS = {
  steps: [0, 100_000],
  batch: [1, 128],
  learningRate: [1e-7, 1e-2],
  beta1: [0, 0.999],
  sampleEvery: [1, 10_000],
  projectionSteps: [0, 10_000],
  pivotNoise: [0, 2],
  featureWeight: [0, 1000],
  identityWeight: [0, 1000],
  localityWeight: [0, 1000],
  localityBatch: [0, 128],
  l2spWeight: [0, 1000],
  tunedLayers: [0, 1000],
  emaDecay: [0, 0.9999],
  likenessScale: [0, 2],
  likenessPull: [0, 2],
  likenessSteps: [0, 10_000],
  likenessBatch: [1, 128],
  likenessRate: [1e-5, 1],
  likenessMargin: [0, 2],
  maxCopyShare: [0, 1],
  copyCheckSamples: [1, 1024],
  adversarialWeight: [0, 1000],
  identityTuneWeight: [0, 1000],
  identityTuneBatch: [1, 128],
  identityTuneEvery: [1, 10_000],
  adversarialBatch: [1, 128],
  criticLearningRate: [1e-7, 1e-2],
  criticBlock: [1, 8],
} as const;

/** Fill in defaults and reject values that cannot train, with the field's name in the message. */
export function finetuneConfig(partial: Partial<FinetuneConfig> = {}): FinetuneConfig {
  const cfg = { ...DEFAULT_FINETUNE, ...partial };
  for (const [key, [lo, hi]] of Object.entries(LIMITS) as [keyof typeof LIMITS, readonly [number, number]][]) {
    const v = cfg[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) {
      throw new Error(`${key} must be a number from ${lo} to ${hi}, got ${String(v)}`);
    }
  }
  for (const key of [
    'steps',
    'batch',
    'sampleEvery',
    'seed',
    'projectionSteps',
    'localityBatch',
    'tunedLayers',
    'likenessSteps',
    'likenessBatch',
    'copyCheckSamples',
    'adversarialBatch',
    'identityTuneBatch',
    'identityTuneEvery',
    'criticBlock',
  ] as const) {
    if (!Number.isInteger(cfg[key])) throw new Error(`${key} must be a whole number, got ${cfg[key]}`);
  }
  if (cfg.steps + cfg.projectionSteps < 1) throw new Error('steps and projectionSteps cannot both be 0');
  // Its blocks tile the 64 and 128 px images exactly.
  if (![1, 2, 4, 8].includes(cfg.criticBlock))
    throw new Error(`criticBlock must be 1, 2, 4 or 8, got ${cfg.criticBlock}`);
  return cfg;
}

/** Crops for a generator of side `size`: each size x size x 3, cut at that size from the photo. */
export function validateCrops(crops: readonly Float32Array[], size: number = IMAGE_SIZE): void {
  if (crops.length === 0) throw new Error('no face crops to fine-tune on: add at least one photo');
  crops.forEach((c, i) => {
    if (!(c instanceof Float32Array) || c.length !== size * size * CHANNELS)
      throw new Error(`crop ${i} is not a ${size}x${size}x3 image, the generator's size`);
  });
}

export type FinetunePhase = 'project' | 'tune' | 'likeness';

/** One step's phase and the loss that phase minimises (projection: pixels + D features; tuning: that plus locality and L2-SP; likeness: descriptor distance). */
export interface FinetuneStepResult {
  phase: FinetunePhase;
  loss: number;
}

/** The trainable weights of G's first `count` layers that have any (all of them for 0). */
function tunedWeights(generator: LayersModel, count: number) {
  const layers = generator.layers.filter((l) => l.trainableWeights.length > 0);
  return (count > 0 ? layers.slice(0, count) : layers).flatMap((l) => l.trainableWeights);
}

/** Random latents whose pretrained faces the locality term keeps. */
const LOCALITY_POOL = 128;

/**
 * One fine-tuning run on a few face crops of one person, stepped by the
 * caller (pause, stop, progress):
 *
 * 1. projection (`projectionSteps`): each photo's pivot latent, by
 *    `Projector` (pixels + D features);
 * 2. pivotal tuning (`steps`): G learns to draw photo i from its pivot plus
 *    noise (pixels + D features), while a locality term keeps G's faces for
 *    random latents as they were and L2-SP keeps the weights near the
 *    pretrained ones;
 * 3. likeness fit (`likenessSteps`, off by default, with an embedder): the
 *    sampling centre c fitted through the face recogniser (likeness.ts).
 *
 * Sampling "faces like theirs" is z' = a*z + c (`shift()`; c = m*mean(pivots)
 * without the fit), which `bake()` folds into a copy of G for export. G runs in inference mode
 * throughout (BatchNorm keeps its pretrained statistics).
 */
export class FinetuneSession {
  readonly config: FinetuneConfig;
  private readonly rng: Rng;
  private readonly zDim: number;
  /** The photos (and mirrored copies) at the generator's size: what the copy guard and the likeness fit compare with. */
  private readonly photos: tf.Tensor4D;
  private readonly count: number;
  /**
   * What tuning and projection (of `tunedG`) judge with: D, its features and the photos at G's size, or, for a
   * pyramid tuned at its base (`baseOnly`), the half-size D, its features and the photos area-downscaled to 64 px.
   * Set by prepare() before the first step.
   */
  private tuned: {
    discriminator: LayersModel;
    features: LayersModel | null;
    photos: tf.Tensor4D;
    crops: readonly Float32Array[];
  } | null = null;
  private projector: Projector | null = null;
  private pivots: Float32Array | null = null;
  private pool: { z: tf.Tensor2D; faces: tf.Tensor4D } | null = null;
  private ema: WeightAverage | null = null;
  /** The adversarial term's D (a copy of the pretrained one, trained here) and its optimiser. */
  private critic: { model: LayersModel; opt: tf.AdamOptimizer; vars: tf.Variable[] } | null = null;
  private likeness: LikenessFit | null = null;
  /** The photos' mean descriptor, for the identity term while tuning (null when off). */
  private identityTarget: tf.Tensor2D | null = null;
  /** The centre fitted by the likeness steps, once they are done. */
  private fitted: LatentShift | null = null;
  /** The pull the copy guard settled on, once tuning is over (null before). */
  private guardedPull: number | null = null;
  /** What the copy guard measured: each pull it tried and the share of near-copies there. */
  readonly copyChecks: { pull: number; share: number }[] = [];
  private readonly initial: tf.Tensor[];
  /** The model whose weights tuning moves: G, or a pyramid's base (which shares its layers with G). */
  private readonly tunedG: LayersModel;
  private readonly gVars: tf.Variable[];
  private readonly optG: tf.AdamOptimizer;
  private readonly crops: readonly Float32Array[];
  /** Photos given (the mirrored copies come after them). */
  readonly originals: number;
  private order: number[] = [];
  stepsDone = 0;

  /**
   * `identity` (a face-recognition embedder) is what the likeness steps fit
   * through; it also adds a face-identity term to the projection when
   * `identityWeight` > 0 (measured: no better, twice the time, so off by default).
   * Without it the likeness steps are skipped and the shift is the mean pivot's.
   */
  constructor(
    readonly generator: LayersModel,
    readonly discriminator: LayersModel,
    crops: readonly Float32Array[],
    config: Partial<FinetuneConfig> = {},
    private readonly identity?: FaceEmbedder,
  ) {
    this.config = finetuneConfig(config);
    installLayerGradients();
    const size = pairImageSize(generator, discriminator);
    validateCrops(crops, size);
    this.originals = crops.length;
    this.crops = this.config.augment
      ? [...crops, ...crops.map((c) => flipHorizontal(c, new Float32Array(c.length), size))]
      : crops;
    this.count = this.crops.length;
    this.rng = new Rng(this.config.seed);
    this.zDim = generator.inputs[0].shape[1] as number;
    const pixels = size * size * CHANNELS;
    const flat = new Float32Array(this.count * pixels);
    this.crops.forEach((c, i) => flat.set(c, i * pixels));
    this.photos = tf.tensor4d(flat, [this.count, size, size, CHANNELS]);
    this.tunedG = this.config.baseOnly && isPyramid(generator) ? pyramidBase(generator) : generator;
    this.gVars = tunedWeights(this.tunedG, this.config.tunedLayers).map((w) => w.read() as tf.Variable);
    this.initial = this.gVars.map((v) => tf.clone(v));
    this.optG = tf.train.adam(this.config.learningRate, this.config.beta1, 0.999, 1e-8);
  }

  /** Likeness steps this session runs: only with an embedder to fit through. */
  get likenessSteps(): number {
    return this.identity ? this.config.likenessSteps : 0;
  }

  get totalSteps(): number {
    return this.config.projectionSteps + this.config.steps + this.likenessSteps;
  }

  get finished(): boolean {
    return this.stepsDone >= this.totalSteps;
  }

  get phase(): FinetunePhase {
    if (this.stepsDone < this.config.projectionSteps) return 'project';
    return this.stepsDone < this.config.projectionSteps + this.config.steps ? 'tune' : 'likeness';
  }

  /** What one step of `phase` costs here (stepWork, with mirrored copies counted as photos). */
  stepWork(phase: FinetunePhase): number {
    return stepWork(this.config, this.count, phase);
  }

  /** The steps still to run, phase by phase, with what one step of each costs (stepWork). */
  get remaining(): PhasePlan[] {
    const { projectionSteps, steps } = this.config;
    const ends: [FinetunePhase, number][] = [
      ['project', projectionSteps],
      ['tune', projectionSteps + steps],
      ['likeness', this.totalSteps],
    ];
    let start = 0;
    const plan: PhasePlan[] = [];
    for (const [phase, end] of ends) {
      const left = end - Math.max(start, this.stepsDone);
      if (left > 0) plan.push({ phase, steps: left, work: this.stepWork(phase) });
      start = end;
    }
    return plan;
  }

  /** Whether tuning works on a pyramid's 64 px base rather than on all of G. */
  get tunesBase(): boolean {
    return this.tunedG !== this.generator;
  }

  /** The tuned model's D, features and photos, once (the half-size D is built asynchronously). */
  private async prepare(): Promise<NonNullable<FinetuneSession['tuned']>> {
    if (this.tuned) return this.tuned;
    if (!this.tunesBase) {
      const features = featureExtractor(this.discriminator);
      this.tuned = { discriminator: this.discriminator, features, photos: this.photos, crops: this.crops };
      return this.tuned;
    }
    const discriminator = await halfSizeDiscriminator(this.discriminator);
    const photos = tf.tidy(() => tf.avgPool(this.photos, 2, 2, 'valid') as tf.Tensor4D);
    const flat = (await photos.data()) as Float32Array;
    const pixels = flat.length / this.count;
    const crops = Array.from({ length: this.count }, (_, i) => flat.slice(i * pixels, (i + 1) * pixels));
    this.tuned = { discriminator, features: featureExtractor(discriminator), photos, crops };
    return this.tuned;
  }

  private ensureProjector(): Projector {
    const t = this.tuned!;
    this.projector ??= new Projector(
      this.tunedG,
      t.discriminator,
      t.crops,
      {
        steps: this.config.projectionSteps,
        seed: this.config.seed,
        featureWeight: this.config.featureWeight,
        identityWeight: this.config.identityWeight,
      },
      this.identity,
    );
    return this.projector;
  }

  /** Finish any projection left (e.g. after a resume past it), then fix the pivots and the locality pool. */
  private async startTuning(): Promise<void> {
    const p = this.ensureProjector();
    await p.init();
    while (!p.finished) await p.step();
    this.pivots = p.latents();
    const z = tf.tensor2d(sampleLatents(this.rng, LOCALITY_POOL, this.zDim), [LOCALITY_POOL, this.zDim]);
    this.pool = { z, faces: generate(this.tunedG, z) };
    if (this.config.adversarialWeight > 0) {
      const model = await cloneModel(this.tuned!.discriminator);
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      this.critic = { model, vars, opt: tf.train.adam(this.config.criticLearningRate, 0.5, 0.999, 1e-8) };
    }
    if (this.config.identityTuneWeight > 0) {
      if (!this.identity) throw new Error('identityTuneWeight needs a face embedder');
      const embed = this.identity;
      // The photos at the size the tuned model draws (a pyramid's base: 64 px), as the faces it is compared with.
      const photos = this.tuned!.photos;
      this.identityTarget = tf.tidy(() => tf.mean(embed(tf.slice(photos, 0, this.originals)), 0, true) as tf.Tensor2D);
    }
    if (this.config.emaDecay > 0)
      this.ema = new WeightAverage(this.generator, await cloneModel(this.generator), {
        decay: this.config.emaDecay,
        warmup: true,
      });
  }

  /** The generator to sample, bake and export: the weight average when there is one. */
  get sampler(): LayersModel {
    return this.ema?.target ?? this.generator;
  }

  async step(): Promise<FinetuneStepResult> {
    await this.prepare();
    if (this.phase === 'project') {
      const loss = await this.ensureProjector().step();
      this.stepsDone++;
      return { phase: 'project', loss };
    }
    if (!this.pivots) await this.startTuning();
    if (this.phase === 'likeness') return this.likenessStep();
    const result = await this.tuneStep();
    this.ema?.update();
    this.stepsDone++;
    if (this.stepsDone === this.config.projectionSteps + this.config.steps) await this.guardCopies();
    return result;
  }

  /**
   * The copy guard: tuning teaches G each photo near its pivot, so sampling pulled hard towards the pivots can
   * hand back the photos themselves (measured: 6280's photos share pose and light, and a quarter of her samples
   * were copies). From `likenessPull` down in steps of 0.1, the first pull at which at most `maxCopyShare` of a
   * fixed set of faces lie within the near-copy bound of a photo or its mirror image. Once, after tuning.
   */
  private async guardCopies(): Promise<void> {
    const pivots = this.latents();
    if (this.guardedPull !== null || !pivots) return;
    const c = this.config;
    const size = this.photos.shape[1];
    const bound = NEAR_COPY_RMS[size];
    if (bound === undefined) throw new Error(`no near-copy bound for ${size} px faces`);
    const photosT = tf.slice(this.photos, 0, this.originals);
    const photos = (await photosT.data()) as Float32Array;
    photosT.dispose();
    // A stream of its own, so that no evaluation seed draws the latents the guard looked at.
    const z = sampleLatents(new Rng(c.seed + 0x5eed), c.copyCheckSamples, this.zDim);
    for (let pull = c.likenessPull; ; pull = Math.max(0, Math.round(pull * 10 - 1) / 10)) {
      const zt = tf.tensor2d(shiftLatents(z, this.meanShift(pull)), [c.copyCheckSamples, this.zDim]);
      const out = generate(this.sampler, zt);
      const faces = (await out.data()) as Float32Array;
      tf.dispose([zt, out]);
      const share = nearCopyShare(faces, photos, size, bound);
      this.copyChecks.push({ pull, share });
      if (share <= c.maxCopyShare || c.maxCopyShare >= 1 || pull === 0) {
        this.guardedPull = pull;
        return;
      }
    }
  }

  /** One step fitting the sampling centre to the person through the recogniser, on the tuned G. */
  private async likenessStep(): Promise<FinetuneStepResult> {
    const c = this.config;
    if (!this.likeness) {
      const photos = tf.slice(this.photos, 0, this.originals);
      const start = this.meanShift().centre.map((v) => v * c.likenessPull);
      this.likeness = new LikenessFit(this.sampler, this.identity!, photos, start, {
        steps: c.likenessSteps,
        batch: c.likenessBatch,
        learningRate: c.likenessRate,
        scale: c.likenessScale,
        margin: c.likenessMargin,
        seed: c.seed,
      });
      photos.dispose();
    }
    const loss = await this.likeness.step();
    this.stepsDone++;
    if (this.likeness.finished) {
      this.fitted = this.likeness.shift();
      this.likeness.dispose();
      this.likeness = null;
    }
    return { phase: 'likeness', loss };
  }

  private nextIndex(): number {
    if (this.order.length === 0) this.order = this.rng.shuffle(Array.from({ length: this.count }, (_, i) => i));
    return this.order.pop()!;
  }

  private async tuneStep(): Promise<FinetuneStepResult> {
    const c = this.config;
    const picks = Array.from({ length: c.batch }, () => this.nextIndex());
    const zPiv = new Float32Array(c.batch * this.zDim);
    picks.forEach((p, i) => {
      for (let k = 0; k < this.zDim; k++)
        zPiv[i * this.zDim + k] = this.pivots![p * this.zDim + k] + c.pivotNoise * this.rng.normal();
    });
    const locPicks = Array.from({ length: c.localityBatch }, () => this.rng.int(LOCALITY_POOL));
    const drawn = this.critic ? this.criticStep() : null;
    const tuned = this.stepsDone - c.projectionSteps;
    const idZ =
      this.identityTarget && tuned % c.identityTuneEvery === 0 ? this.sampledLatents(c.identityTuneBatch) : null;
    const { photos, features } = this.tuned!;
    const lossT = tf.tidy(() => {
      const target = tf.gather(photos, picks);
      const z = tf.tensor2d(zPiv, [c.batch, this.zDim]);
      return this.optG.minimize(
        () => {
          const out = this.tunedG.apply(z, { training: false }) as tf.Tensor4D;
          let loss = reconstructionLoss(out, target, features, c.featureWeight);
          if (c.localityWeight > 0 && c.localityBatch > 0) {
            const lz = tf.gather(this.pool!.z, locPicks);
            const lf = tf.gather(this.pool!.faces, locPicks);
            const lo = this.tunedG.apply(lz, { training: false }) as tf.Tensor4D;
            loss = tf.add(loss, tf.mul(tf.mean(tf.squaredDifference(lo, lf)), c.localityWeight));
          }
          if (idZ) {
            const faces = this.tunedG.apply(idZ, { training: false }) as tf.Tensor4D;
            const d2 = squaredDistances(this.identity!(faces), this.identityTarget!);
            const beyond = tf.mean(tf.relu(tf.sub(d2, c.likenessMargin * c.likenessMargin)));
            loss = tf.add(loss, tf.mul(beyond, c.identityTuneWeight));
          }
          if (drawn) {
            const fake = this.criticView(this.tunedG.apply(drawn, { training: false }) as tf.Tensor4D);
            const logits = this.critic!.model.apply(fake, { training: true }) as tf.Tensor;
            loss = tf.add(loss, tf.mul(bceWithLogits(logits, 1), c.adversarialWeight));
          }
          if (c.l2spWeight > 0) {
            // Summed pairwise: WebGPU's AddN cannot build a pipeline for as many inputs as G has weights.
            const sq = this.gVars
              .map((v, i) => tf.sum(tf.squaredDifference(v, this.initial[i])) as tf.Scalar)
              .reduce((x, y) => tf.add(x, y));
            loss = tf.add(loss, tf.mul(sq, c.l2spWeight));
          }
          return loss as tf.Scalar;
        },
        true,
        this.gVars,
      )!;
    });
    tf.dispose([drawn, idZ].filter((t) => t !== null));
    const loss = (await lossT.data())[0];
    lossT.dispose();
    const result = { phase: 'tune' as const, loss };
    if (!Number.isFinite(loss)) throw new NonFiniteLossError({ dLoss: 0, gLoss: loss, dReal: 0, dFake: 0 });
    return result;
  }

  /**
   * One step of the adversarial term's D: the photos (DiffAugmented) against faces G draws where the export
   * samples; returns those latents for G's step.
   */
  private criticStep(): tf.Tensor2D {
    const c = this.config;
    const n = c.adversarialBatch;
    const z = this.sampledLatents(n);
    const picks = Array.from({ length: n }, () => this.rng.int(this.count));
    tf.tidy(() => {
      // Drawn outside the closure: a constant for D's gradients.
      const fake = this.tunedG.apply(z, { training: false }) as tf.Tensor4D;
      const real = tf.gather(this.tuned!.photos, picks);
      const { model, opt, vars } = this.critic!;
      opt.minimize(
        () => {
          const both = this.criticView(tf.concat([real, fake]) as tf.Tensor4D);
          const logits = model.apply(both, { training: true }) as tf.Tensor;
          const [lr, lf] = tf.split(logits, 2);
          return tf.add(bceWithLogits(lr, 1), bceWithLogits(lf, 0)) as tf.Scalar;
        },
        false,
        vars,
      );
    });
    return z;
  }

  /** n latents where the export will sample (the shift applied to fresh N(0, 1) latents). */
  private sampledLatents(n: number): tf.Tensor2D {
    return tf.tensor2d(shiftLatents(sampleLatents(this.rng, n, this.zDim), this.meanShift()), [n, this.zDim]);
  }

  /** What the adversarial term's D sees of images: DiffAugmented, and averaged over criticBlock-pixel blocks. */
  private criticView(x: tf.Tensor4D): tf.Tensor4D {
    const b = this.config.criticBlock;
    const aug = diffAugment(x, this.rng, FULL_POLICY);
    if (b === 1) return aug;
    const [n, h, w, c] = aug.shape;
    const small = tf.avgPool(aug, b, b, 'valid');
    // Enlarged by rank-4 tiles: every backend has their gradient (not so for nearest-neighbour resizing).
    const cols = tf.reshape(tf.tile(tf.reshape(small, [(n * h) / b, w / b, 1, c]), [1, 1, b, 1]), [n, h / b, w, c]);
    return tf.reshape(tf.tile(tf.reshape(cols, [(n * h) / b, 1, w, c]), [1, b, 1, 1]), [n, h, w, c]);
  }

  /** Per-photo pivots [count, zDim], once projected (null before). */
  latents(): Float32Array | null {
    return this.pivots ?? (this.projector?.started ? this.projector.latents() : null);
  }

  /**
   * The sampling shift towards this person: a*z + c with c fitted through the
   * recogniser once the likeness steps are done, a*z + m*mean(pivots) before
   * (and without an embedder); no shift before projection.
   */
  shift(): LatentShift {
    return this.fitted ?? this.likeness?.shift() ?? this.meanShift();
  }

  private meanShift(pull = this.guardedPull ?? this.config.likenessPull): LatentShift {
    const pivots = this.latents();
    if (!pivots) return { scale: 1, pull: 0, centre: new Float32Array(this.zDim) };
    return { scale: this.config.likenessScale, pull, centre: meanLatent(pivots, this.zDim) };
  }

  /** Each given photo as G draws it from its pivot now ([originals * size*size*3] in [-1, 1]); null before projection. */
  async reconstructions(): Promise<Float32Array | null> {
    const pivots = this.latents();
    if (!pivots) return null;
    const z = tf.tensor2d(pivots.subarray(0, this.originals * this.zDim), [this.originals, this.zDim]);
    const out = generate(this.sampler, z);
    const data = (await out.data()) as Float32Array;
    tf.dispose([z, out]);
    return data;
  }

  /** A copy of G that draws z' = shift(z) from plain z: the model to export (after the copy guard, if tuning ran). */
  async bake(): Promise<LayersModel> {
    if (this.phase !== 'project') await this.guardCopies();
    return bakeLatentShift(this.sampler, this.shift());
  }

  dispose(): void {
    this.projector?.dispose();
    this.projector = null;
    this.likeness?.dispose();
    this.likeness = null;
    tf.dispose([this.photos, ...this.initial]);
    this.identityTarget?.dispose();
    this.identityTarget = null;
    if (this.tuned && this.tunesBase) {
      this.tuned.photos.dispose();
      this.tuned.discriminator.dispose();
    }
    this.tuned = null;
    if (this.pool) tf.dispose([this.pool.z, this.pool.faces]);
    this.ema?.target.dispose();
    this.ema = null;
    if (this.critic) {
      this.critic.model.dispose();
      this.critic.opt.dispose();
      this.critic = null;
    }
    this.optG.dispose();
  }
}

/** A sentence for the end of the run: the share of near-copies, and how far the copy guard lowered the pull if it did ('' before tuning). */
export function copyGuardNote(checks: readonly { pull: number; share: number }[]): string {
  if (checks.length === 0) return '';
  if (checks.length === 1)
    return ` ${Math.round(100 * checks[0].share)}% of faces the model draws are near-copies of one of your photos.`;
  const first = checks[0],
    last = checks[checks.length - 1];
  return (
    ` Drawn near your photos, ${Math.round(100 * first.share)}% of faces came out as copies of one of them,` +
    ` so the model samples further from them (pull ${last.pull} instead of ${first.pull}; ${Math.round(100 * last.share)}% copies).`
  );
}

/**
 * A tuning image's cost in projected images, measured on WASM in the page, 10 photos: 20 ms a projected image
 * (200 ms a projection step) against 28 ms a tuned one (450 ms a tuning step of 16). They cost the same until the
 * projection stopped computing D's filter gradients, which it never needed.
 */
const TUNE_IMAGE_WORK = 1.4;

/**
 * A face through the recogniser and back, for the identity term, in projected images: measured on WASM in the page,
 * 10 photos, an idle machine: 1,600 such faces (4 a step) took a 128 s tuning to 165 s, about 23 ms a face against
 * 15-17 ms a projected image. (In Node the recogniser's layers mostly miss the native backend's fast kernels and
 * cost about 0.13 CPU-seconds a face.)
 */
const IDENTITY_FACE_WORK = 1.5;

/**
 * What one step of a phase costs, in projected images: projection moves every photo's latent at once, tuning runs a
 * batch of pivots plus the locality batch, each image costing TUNE_IMAGE_WORK projected ones (its gradient reaches
 * G's weights too), plus the identity term's faces through the recogniser (IDENTITY_FACE_WORK each, on the steps it
 * runs), so that the units carry from one phase to the next.
 */
export function stepWork(config: FinetuneConfig, photos: number, phase: FinetunePhase): number {
  if (phase === 'project') return photos;
  if (phase === 'tune')
    return (
      TUNE_IMAGE_WORK *
        (config.batch +
          (config.localityWeight > 0 ? config.localityBatch : 0) +
          // The adversarial term: G's faces through D, and D's own step on them and as many photos.
          (config.adversarialWeight > 0 ? 3 * config.adversarialBatch : 0)) +
      (config.identityTuneWeight > 0 ? (IDENTITY_FACE_WORK * config.identityTuneBatch) / config.identityTuneEvery : 0)
    );
  return config.likenessBatch;
}

/** A stretch of steps still to run: the phase, how many, and stepWork for one. */
export interface PhasePlan {
  phase: FinetunePhase;
  steps: number;
  work: number;
}

/**
 * Time left, phase by phase: each phase's pace is an exponential average of its step times (its first step is
 * replaced by the second: shader compilation makes it many times slower); a phase not yet run is priced from the
 * latest phase's time per unit of stepWork, so the estimate made during projection already counts tuning's
 * heavier steps.
 */
export class EtaEstimator {
  private readonly avgMs = new Map<FinetunePhase, number>();
  private readonly samples = new Map<FinetunePhase, number>();
  private last: { phase: FinetunePhase; work: number } | null = null;
  /** The latest phase past its first step, whose pace per image drawn prices the phases not yet settled. */
  private settled: { phase: FinetunePhase; work: number } | null = null;

  constructor(private readonly smoothing = 0.15) {}

  record(phase: FinetunePhase, stepMs: number, work: number): void {
    const n = (this.samples.get(phase) ?? 0) + 1;
    this.samples.set(phase, n);
    const avg = this.avgMs.get(phase);
    // A phase's first step builds its kernels and buffers (seconds on WebGL or WASM): the second one replaces it.
    this.avgMs.set(phase, n <= 2 || avg === undefined ? stepMs : avg + this.smoothing * (stepMs - avg));
    this.last = { phase, work: Math.max(work, 1) };
    if (n >= 2) this.settled = this.last;
  }

  /** The pace of the phase running now. */
  stepsPerSecond(): number | null {
    const ms = this.last && this.avgMs.get(this.last.phase);
    return ms && ms > 0 ? 1000 / ms : null;
  }

  /**
   * Seconds for the steps in `plan`: a phase past its first step at its own pace; one not yet run, or only
   * once (its first step is mostly warm-up), at the settled phase's pace per image drawn.
   */
  secondsLeft(plan: readonly PhasePlan[]): number | null {
    const base = this.settled ?? this.last;
    if (!base) return null;
    const perWork = this.avgMs.get(base.phase)! / base.work;
    const ms = plan.reduce((sum, p) => {
      const own = (this.samples.get(p.phase) ?? 0) >= 2 ? this.avgMs.get(p.phase) : undefined;
      return sum + p.steps * (own ?? perWork * p.work);
    }, 0);
    return ms / 1000;
  }
}

/**
 * Mean absolute difference between two models' weights of the same layout
 * (how far fine-tuning moved G), matched by name; a weight only one of them
 * has (a baked shift's bias) is left out.
 */
export async function meanWeightChange(a: LayersModel, b: LayersModel): Promise<number> {
  const byName = new Map(b.weights.map((w) => [w.originalName, w]));
  let sum = 0,
    count = 0;
  for (const w of a.weights) {
    const other = byName.get(w.originalName);
    if (!other) continue;
    if (other.shape.join() !== w.shape.join()) throw new Error('models have different weight layouts');
    const d = tf.tidy(() => tf.sum(tf.abs(tf.sub(w.read(), other.read()))));
    sum += (await d.data())[0];
    d.dispose();
    count += w.read().size;
  }
  if (count === 0) throw new Error('models have different weight layouts');
  return sum / count;
}
