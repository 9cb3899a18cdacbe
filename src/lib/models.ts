/**
 * Generator and discriminator architectures, by name, as tf.LayersModel
 * builders. Every generator maps z (zDim) to a size x size x 3 image in
 * [-1, 1] (64, or 128 for dcgan); every discriminator maps such an image to
 * one logit (the sigmoid is folded into the loss, which is the numerically
 * stable way to train it).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/** The image side of every architecture at its default size, and of models whose config names no size. */
export const IMAGE_SIZE = 64;
export const CHANNELS = 3;
/** Image sides the dcgan builders can make; the seed's Keras models are 64 only. */
export const IMAGE_SIZES = [64, 128] as const;
export type ImageSize = (typeof IMAGE_SIZES)[number];

export const ARCHS = ['dcgan', 'seed-classic', 'seed-improved'] as const;
export type Arch = (typeof ARCHS)[number];

export interface ModelConfig {
  arch: Arch;
  /** Channel width: ngf/ndf for dcgan, the base width for seed-improved; ignored by seed-classic. */
  width: number;
  zDim: number;
  /** Seed for weight initialisation; the same seed builds the same weights. Unseeded when absent. */
  seed?: number;
  /** Image side in pixels; absent means 64 (every model exported before 128 px existed). */
  size?: ImageSize;
  /**
   * How dcgan's G doubles the image in its last (RGB) stage: a 4x4 stride-2 transposed convolution (absent:
   * DCGAN's own), or 'nearest': nearest-neighbour upsampling then a 3x3 convolution, the resize-convolution
   * that cannot draw the transposed convolution's checkerboard (Odena et al. 2016). 'pyramid' (128 px): the
   * 64 px generator whole, its image doubled, plus a detail image whose 2x2 block means are zero, drawn by a
   * branch from its 32 px features (a Laplacian pyramid's level, Denton et al. 2015): the 128 px face,
   * area-downscaled, is the 64 px face exactly.
   */
  lastUpsample?: LastUpsample;
  /**
   * 'pyramid' only: the detail branch's channels (absent: width). Half the width draws 16 faces at 128 px on WASM
   * in under 2x the 64 px G's time; the full width takes 2.6x.
   */
  detailWidth?: number;
}

export const LAST_UPSAMPLES = ['transposed', 'nearest', 'pyramid'] as const;
export type LastUpsample = (typeof LAST_UPSAMPLES)[number];

/** The side of the images a config's generator draws and its discriminator reads. */
export function imageSize(cfg: Pick<ModelConfig, 'size'>): ImageSize {
  return cfg.size ?? IMAGE_SIZE;
}

export function isImageSize(n: number): n is ImageSize {
  return (IMAGE_SIZES as readonly number[]).includes(n);
}

/** The side of an image batch shape [n, size, size, 3] when it is one of IMAGE_SIZES, else null. */
export function imageSideOf(shape: readonly (number | null)[] | undefined): ImageSize | null {
  if (!shape || shape.length !== 4) return null;
  const [, h, w, c] = shape;
  return typeof h === 'number' && h === w && c === CHANNELS && isImageSize(h) ? h : null;
}

/**
 * The side of the faces a loaded generator draws, from its output shape: the
 * one thing the page, the fine-tuner and projection need to know about its size.
 */
export function generatorImageSize(generator: tfl.LayersModel): ImageSize {
  const shape = generator.outputs[0]?.shape;
  const side = imageSideOf(shape);
  if (side === null || generator.inputs[0]?.shape.length !== 2)
    throw new Error(
      `not a face generator: expected z -> size x size x ${CHANNELS} (size ${IMAGE_SIZES.join(' or ')}), got [${shape}]`,
    );
  return side;
}

/** The side of the images a loaded discriminator reads (its input shape), or null when it reads none of IMAGE_SIZES. */
export function discriminatorImageSize(discriminator: tfl.LayersModel): ImageSize | null {
  return discriminator.outputs[0]?.shape.length === 2 ? imageSideOf(discriminator.inputs[0]?.shape) : null;
}

export const DEFAULT_WIDTH: Record<Arch, number> = { dcgan: 64, 'seed-classic': 64, 'seed-improved': 64 };

export function isArch(name: string): name is Arch {
  return (ARCHS as readonly string[]).includes(name);
}

export function modelConfig(
  arch: Arch,
  width?: number,
  zDim = 100,
  seed?: number,
  size: ImageSize = IMAGE_SIZE,
): ModelConfig {
  if (size !== IMAGE_SIZE && arch !== 'dcgan')
    throw new Error(`${arch} draws 64x64 images only; --size ${size} needs --arch dcgan`);
  return {
    arch,
    width: width ?? DEFAULT_WIDTH[arch],
    zDim,
    ...(seed === undefined ? {} : { seed }),
    ...(size === IMAGE_SIZE ? {} : { size }),
  };
}

/**
 * Initialisers draw from a per-model counter of seeds, so a run's --seed
 * fixes every initial weight (layers are built in a fixed order).
 */
let nextSeed: number | undefined;
const seed = () => (nextSeed === undefined ? undefined : nextSeed++);
function withSeed<T>(cfg: ModelConfig, offset: number, build: () => T): T {
  nextSeed = cfg.seed === undefined ? undefined : cfg.seed * 1000 + offset;
  try {
    return build();
  } finally {
    nextSeed = undefined;
  }
}

/** DCGAN's N(0, 0.02) weight init and N(1, 0.02) BatchNorm scale init. */
const convInit = () => tfl.initializers.randomNormal({ mean: 0, stddev: 0.02, seed: seed() });
const gammaInit = () => tfl.initializers.randomNormal({ mean: 1, stddev: 0.02, seed: seed() });
/** Keras' default, seeded. */
const glorot = () => tfl.initializers.glorotUniform({ seed: seed() });

/** PyTorch's BatchNorm defaults (momentum 0.1 there is 0.9 here), which DCGAN was tuned with. */
const dcganBN = (name: string) =>
  tfl.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5, gammaInitializer: gammaInit(), name });

/**
 * DCGAN's generator. At 64 px: 4x4x8w, then 4w, 2w, w channels at 8, 16, 32 px and RGB at 64.
 * At 128 px one more stage of w channels at 64 px comes before RGB: the layers up to 32 px keep
 * the 64 px model's names and shapes, so a trained 64 px pair can seed a 128 px one (growth.ts).
 */
function dcganGenerator(cfg: ModelConfig): tfl.LayersModel {
  if (imageSize(cfg) === 128 && cfg.lastUpsample === 'pyramid') return pyramidGenerator(cfg);
  const { width: w, zDim } = cfg;
  const g = tfl.sequential({ name: 'generator' });
  // Dense to 4x4x8w is the 1x1 -> 4x4 transposed conv of the paper, same parameters and FLOPs.
  g.add(
    tfl.layers.dense({
      inputShape: [zDim],
      units: 4 * 4 * 8 * w,
      useBias: false,
      kernelInitializer: convInit(),
      name: 'g_project',
    }),
  );
  g.add(tfl.layers.reshape({ targetShape: [4, 4, 8 * w], name: 'g_reshape' }));
  g.add(dcganBN('g_bn0'));
  g.add(tfl.layers.reLU({ name: 'g_relu0' }));
  const stages = imageSize(cfg) === 128 ? [4 * w, 2 * w, w, w] : [4 * w, 2 * w, w];
  stages.forEach((filters, i) => {
    g.add(
      tfl.layers.conv2dTranspose({
        filters,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        useBias: false,
        kernelInitializer: convInit(),
        name: `g_deconv${i + 1}`,
      }),
    );
    g.add(dcganBN(`g_bn${i + 1}`));
    g.add(tfl.layers.reLU({ name: `g_relu${i + 1}` }));
  });
  const last = stages.length + 1;
  if (cfg.lastUpsample === 'nearest') {
    g.add(tfl.layers.upSampling2d({ size: [2, 2], name: `g_up${last}` }));
    g.add(
      tfl.layers.conv2d({
        filters: CHANNELS,
        kernelSize: 3,
        padding: 'same',
        useBias: false,
        kernelInitializer: convInit(),
        name: `g_conv${last}`,
      }),
    );
  } else {
    g.add(
      tfl.layers.conv2dTranspose({
        filters: CHANNELS,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        useBias: false,
        kernelInitializer: convInit(),
        name: `g_deconv${last}`,
      }),
    );
  }
  g.add(tfl.layers.activation({ activation: 'tanh', name: 'g_tanh' }));
  return g;
}

/**
 * DCGAN's 64 px generator with a 128 px detail branch (lastUpsample 'pyramid'). The base keeps the 64 px model's
 * layers and names (g_project ... g_deconv4, g_tanh), so its weights load as they are. The branch (g_detail*)
 * reads the base's 32 px features: a stride-2 transposed convolution to detailWidth channels at 64 px, nearest 2x and a 3x3
 * convolution to RGB (zero at first), minus its own 2x2 block means (average pool, nearest 2x and a fixed -1).
 * Output: the base's image doubled plus that detail, so the area-downscaled output is the base's image.
 */
function pyramidGenerator(cfg: ModelConfig): tfl.LayersModel {
  const { zDim } = cfg;
  const branch = cfg.detailWidth ?? cfg.width;
  const base = dcganGenerator({ ...cfg, size: 64, lastUpsample: undefined }) as tfl.Sequential;
  const z = tfl.input({ shape: [zDim], name: 'z' });
  let x: tfl.SymbolicTensor = z;
  let features32: tfl.SymbolicTensor | null = null;
  for (const layer of base.layers) {
    x = layer.apply(x) as tfl.SymbolicTensor;
    if (layer.name === 'g_relu3') features32 = x;
  }
  const image64 = x;
  let d = tfl.layers
    .conv2dTranspose({
      filters: branch,
      kernelSize: 4,
      strides: 2,
      padding: 'same',
      useBias: false,
      kernelInitializer: convInit(),
      name: 'g_detail4',
    })
    .apply(features32!) as tfl.SymbolicTensor;
  d = dcganBN('g_detail_bn4').apply(d) as tfl.SymbolicTensor;
  d = tfl.layers.reLU({ name: 'g_detail_relu4' }).apply(d) as tfl.SymbolicTensor;
  d = tfl.layers.upSampling2d({ size: [2, 2], name: 'g_detail_up5' }).apply(d) as tfl.SymbolicTensor;
  const detail = tfl.layers
    .conv2d({
      filters: CHANNELS,
      kernelSize: 3,
      padding: 'same',
      useBias: false,
      kernelInitializer: 'zeros',
      name: 'g_detail_rgb5',
    })
    .apply(d) as tfl.SymbolicTensor;
  const blockMean = tfl.layers
    .upSampling2d({ size: [2, 2], name: 'g_detail_unpool' })
    .apply(tfl.layers.averagePooling2d({ poolSize: 2, strides: 2, name: 'g_detail_pool' }).apply(detail));
  const negated = tfl.layers
    .conv2d({
      filters: CHANNELS,
      kernelSize: 1,
      useBias: false,
      trainable: false,
      kernelInitializer: tfl.initializers.constant({ value: 0 }),
      name: 'g_detail_negate',
    })
    .apply(blockMean) as tfl.SymbolicTensor;
  const doubled = tfl.layers.upSampling2d({ size: [2, 2], name: 'g_base_up' }).apply(image64);
  const out = tfl.layers.add({ name: 'g_out' }).apply([doubled, detail, negated] as tfl.SymbolicTensor[]);
  const g = tfl.model({ inputs: z, outputs: out as tfl.SymbolicTensor, name: 'generator' });
  const negate = g.getLayer('g_detail_negate');
  const minusOne = tf.tidy(() => tf.reshape(tf.mul(tf.eye(CHANNELS), -1), [1, 1, CHANNELS, CHANNELS]));
  negate.setWeights([minusOne]);
  minusOne.dispose();
  return g;
}

/**
 * DCGAN's discriminator: w, 2w, 4w, 8w channels at 32, 16, 8, 4 px. At 128 px a linear stride-2
 * convolution to 16 channels at 64 px comes first (d_in): linear, so that growth.ts can start it as
 * a 2x2 average feeding the 64 px model's first layer, which then judges what it was trained on.
 */
function dcganDiscriminator(cfg: ModelConfig): tfl.Sequential {
  const { width: w } = cfg;
  const size = imageSize(cfg);
  const d = tfl.sequential({ name: 'discriminator' });
  if (size === 128) {
    d.add(
      tfl.layers.conv2d({
        inputShape: [size, size, CHANNELS],
        filters: D_IN_CHANNELS,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        useBias: false,
        kernelInitializer: convInit(),
        name: 'd_in',
      }),
    );
  }
  d.add(
    tfl.layers.conv2d({
      ...(size === 128 ? {} : { inputShape: [size, size, CHANNELS] }),
      filters: w,
      kernelSize: 4,
      strides: 2,
      padding: 'same',
      useBias: false,
      kernelInitializer: convInit(),
      name: 'd_conv0',
    }),
  );
  d.add(tfl.layers.leakyReLU({ alpha: 0.2, name: 'd_lrelu0' }));
  [2 * w, 4 * w, 8 * w].forEach((filters, i) => {
    d.add(
      tfl.layers.conv2d({
        filters,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        useBias: false,
        kernelInitializer: convInit(),
        name: `d_conv${i + 1}`,
      }),
    );
    d.add(dcganBN(`d_bn${i + 1}`));
    d.add(tfl.layers.leakyReLU({ alpha: 0.2, name: `d_lrelu${i + 1}` }));
  });
  // 4x4x8w -> logit: the paper's final 4x4 valid conv, written as flatten + dense.
  d.add(tfl.layers.flatten({ name: 'd_flatten' }));
  d.add(tfl.layers.dense({ units: 1, kernelInitializer: convInit(), name: 'd_logit' }));
  return d;
}

/** Channels of the 128 px discriminator's first (linear) layer. */
export const D_IN_CHANNELS = 16;

/** The original write-up's generator, exactly: 34,031,363 parameters. */
function classicGenerator({ zDim }: ModelConfig): tfl.Sequential {
  const g = tfl.sequential({ name: 'generator' });
  g.add(
    tfl.layers.dense({
      kernelInitializer: glorot(),
      inputShape: [zDim],
      units: 1024,
      activation: 'tanh',
      name: 'g_dense0',
    }),
  );
  g.add(tfl.layers.dense({ kernelInitializer: glorot(), units: 128 * 16 * 16, name: 'g_dense1' }));
  g.add(tfl.layers.batchNormalization({ name: 'g_bn1' }));
  g.add(tfl.layers.activation({ activation: 'tanh', name: 'g_tanh1' }));
  g.add(tfl.layers.reshape({ targetShape: [16, 16, 128], name: 'g_reshape' }));
  g.add(tfl.layers.upSampling2d({ size: [2, 2], name: 'g_up1' }));
  g.add(
    tfl.layers.conv2d({
      kernelInitializer: glorot(),
      filters: 64,
      kernelSize: 5,
      padding: 'same',
      activation: 'tanh',
      name: 'g_conv1',
    }),
  );
  g.add(tfl.layers.upSampling2d({ size: [2, 2], name: 'g_up2' }));
  g.add(
    tfl.layers.conv2d({
      kernelInitializer: glorot(),
      filters: CHANNELS,
      kernelSize: 5,
      padding: 'same',
      activation: 'tanh',
      name: 'g_conv2',
    }),
  );
  return g;
}

/** The original write-up's discriminator, exactly: 25,901,953 parameters (sigmoid moved into the loss). */
function classicDiscriminator(): tfl.Sequential {
  const d = tfl.sequential({ name: 'discriminator' });
  d.add(
    tfl.layers.conv2d({
      kernelInitializer: glorot(),
      inputShape: [IMAGE_SIZE, IMAGE_SIZE, CHANNELS],
      filters: 64,
      kernelSize: 5,
      padding: 'same',
      activation: 'tanh',
      name: 'd_conv1',
    }),
  );
  d.add(tfl.layers.maxPooling2d({ poolSize: 2, name: 'd_pool1' }));
  d.add(
    tfl.layers.conv2d({
      kernelInitializer: glorot(),
      filters: 128,
      kernelSize: 5,
      padding: 'valid',
      activation: 'tanh',
      name: 'd_conv2',
    }),
  );
  d.add(tfl.layers.maxPooling2d({ poolSize: 2, name: 'd_pool2' }));
  d.add(tfl.layers.flatten({ name: 'd_flatten' }));
  d.add(tfl.layers.dense({ kernelInitializer: glorot(), units: 1024, activation: 'tanh', name: 'd_dense1' }));
  d.add(tfl.layers.dense({ kernelInitializer: glorot(), units: 1, name: 'd_logit' }));
  return d;
}

/** The write-up's improved generator (UpSampling + Conv + BN(0.8) + ReLU), from 16x16 to 64x64. */
function improvedGenerator({ width: w, zDim }: ModelConfig): tfl.Sequential {
  const g = tfl.sequential({ name: 'generator' });
  g.add(
    tfl.layers.dense({
      kernelInitializer: glorot(),
      inputShape: [zDim],
      units: 2 * w * 16 * 16,
      activation: 'relu',
      name: 'g_dense0',
    }),
  );
  g.add(tfl.layers.reshape({ targetShape: [16, 16, 2 * w], name: 'g_reshape' }));
  [2 * w, w].forEach((filters, i) => {
    g.add(tfl.layers.upSampling2d({ size: [2, 2], name: `g_up${i + 1}` }));
    g.add(
      tfl.layers.conv2d({
        kernelInitializer: glorot(),
        filters,
        kernelSize: 3,
        padding: 'same',
        name: `g_conv${i + 1}`,
      }),
    );
    g.add(tfl.layers.batchNormalization({ momentum: 0.8, name: `g_bn${i + 1}` }));
    g.add(tfl.layers.reLU({ name: `g_relu${i + 1}` }));
  });
  g.add(
    tfl.layers.conv2d({
      kernelInitializer: glorot(),
      filters: CHANNELS,
      kernelSize: 3,
      padding: 'same',
      activation: 'tanh',
      name: 'g_out',
    }),
  );
  return g;
}

/** The write-up's improved discriminator: strided convs, BN(0.8), LeakyReLU(0.2), Dropout(0.25). */
function improvedDiscriminator({ width: w }: ModelConfig): tfl.Sequential {
  const d = tfl.sequential({ name: 'discriminator' });
  const widths = [w / 2, w, 2 * w, 4 * w].map((c) => Math.max(1, Math.round(c)));
  widths.forEach((filters, i) => {
    d.add(
      tfl.layers.conv2d({
        kernelInitializer: glorot(),
        ...(i === 0 ? { inputShape: [IMAGE_SIZE, IMAGE_SIZE, CHANNELS] } : {}),
        filters,
        kernelSize: 3,
        strides: i < 3 ? 2 : 1,
        padding: 'same',
        name: `d_conv${i}`,
      }),
    );
    if (i > 0) d.add(tfl.layers.batchNormalization({ momentum: 0.8, name: `d_bn${i}` }));
    d.add(tfl.layers.leakyReLU({ alpha: 0.2, name: `d_lrelu${i}` }));
    d.add(tfl.layers.dropout({ rate: 0.25, name: `d_drop${i}` }));
  });
  d.add(tfl.layers.flatten({ name: 'd_flatten' }));
  d.add(tfl.layers.dense({ kernelInitializer: glorot(), units: 1, name: 'd_logit' }));
  return d;
}

export function buildGenerator(cfg: ModelConfig): tfl.LayersModel {
  switch (cfg.arch) {
    case 'dcgan':
      return withSeed(cfg, 0, () => dcganGenerator(cfg));
    case 'seed-classic':
      return withSeed(cfg, 0, () => classicGenerator(cfg));
    case 'seed-improved':
      return withSeed(cfg, 0, () => improvedGenerator(cfg));
  }
}

export function buildDiscriminator(cfg: ModelConfig): tfl.LayersModel {
  switch (cfg.arch) {
    case 'dcgan':
      return withSeed(cfg, 500, () => dcganDiscriminator(cfg));
    case 'seed-classic':
      return withSeed(cfg, 500, () => classicDiscriminator());
    case 'seed-improved':
      return withSeed(cfg, 500, () => improvedDiscriminator(cfg));
  }
}

export interface GanModels {
  config: ModelConfig;
  generator: tfl.LayersModel;
  discriminator: tfl.LayersModel;
}

export function buildGan(cfg: ModelConfig): GanModels {
  return { config: cfg, generator: buildGenerator(cfg), discriminator: buildDiscriminator(cfg) };
}

/** One line per layer plus totals, like Keras' model.summary(). */
export function summarize(model: tfl.LayersModel): { lines: string[]; params: number } {
  const lines: string[] = [];
  model.summary(100, undefined, (line?: string) => lines.push(line ?? ''));
  return { lines, params: model.countParams() };
}
