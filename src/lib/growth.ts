/**
 * Growing a trained 64 px DCGAN pair into a 128 px one (as progressive GANs
 * grow, Karras et al. 2018), so the 128 px run starts from faces instead of
 * noise. Every layer the two sizes share by name and shape is copied; the new
 * layers start as close to "the 64 px model, drawn or judged at 2x" as the
 * architecture allows:
 *
 * - G: the new 64 px stage (g_deconv4) starts as a nearest-neighbour 2x
 *   upsampling of the 32 px features, its batch norm as the identity on them
 *   (scale and shift set from those features' statistics on `zSample`), so
 *   the 64 px model's RGB layer, moved to the end, renders them at 128 px.
 *   With a resize-convolution last stage (lastUpsample 'nearest') there is
 *   no such layer to move: its 3x3 RGB convolution is fitted (Adam on the
 *   squared error, a few seconds) to draw the 64 px model's images, doubled.
 *   The pyramid generator (lastUpsample 'pyramid') holds the 64 px G whole,
 *   by its own layer names: it is copied, and the detail branch, whose RGB
 *   layer starts at zero, adds nothing at first.
 * - D: the new linear layer (d_in) starts as a 2x2 average of RGB into its
 *   first three channels, and d_conv0 reads those with the 64 px model's
 *   weights, so D128(x) = D64(x downscaled) at first; d_in's other channels
 *   start random (d_conv0 reads them with zero weights), for the detail D64
 *   never saw.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { CHANNELS, buildGan, imageSize, type GanModels, type LastUpsample, type ModelConfig } from './models.ts';

const BN_EPSILON = 1e-5;

export interface GrowOptions {
  seed?: number;
  lastUpsample?: LastUpsample;
  /** 'pyramid': the detail branch's channels (absent: the pair's width). */
  detailWidth?: number;
  /** The resize-convolution's RGB fit: how many of zSample's latents, how many Adam steps. */
  fitLatents?: number;
  fitSteps?: number;
}

/** A 128 px pair of `small`'s arch and width, seeded from it; `small` is left as it is. */
export function growGan(small: GanModels, zSample: tf.Tensor2D, opts: GrowOptions = {}): GanModels {
  const { seed, lastUpsample = 'transposed', detailWidth } = opts;
  const cfg = small.config;
  if (cfg.arch !== 'dcgan' || imageSize(cfg) !== 64 || cfg.lastUpsample === 'nearest') {
    throw new Error(`only a 64 px dcgan pair can grow to 128 px, got ${cfg.arch} at ${imageSize(cfg)} px`);
  }
  const bigCfg: ModelConfig = {
    ...cfg,
    size: 128,
    ...(seed === undefined ? {} : { seed }),
    ...(lastUpsample === 'transposed' ? {} : { lastUpsample }),
    ...(lastUpsample === 'pyramid' && detailWidth !== undefined ? { detailWidth } : {}),
  };
  const big = buildGan(bigCfg);
  copyShared(small.generator, big.generator);
  copyShared(small.discriminator, big.discriminator);
  // The pyramid's base is the 64 px G itself, copied whole; its detail branch starts at zero.
  if (lastUpsample !== 'pyramid') growGenerator(small.generator, big.generator, zSample, opts);
  growDiscriminator(small.discriminator, big.discriminator);
  return big;
}

/** Copy the weights of every layer present in both models with the same name and weight shapes. */
function copyShared(from: tfl.LayersModel, to: tfl.LayersModel): void {
  for (const layer of to.layers) {
    const source = from.layers.find((l) => l.name === layer.name);
    if (!source) continue;
    const src = source.getWeights();
    const dst = layer.getWeights();
    if (src.length === 0 || src.length !== dst.length) continue;
    if (src.every((w, i) => w.shape.join() === dst[i].shape.join())) layer.setWeights(src);
  }
}

function growGenerator(small: tfl.LayersModel, big: tfl.LayersModel, z: tf.Tensor2D, opts: GrowOptions): void {
  const w = big.getLayer('g_deconv4').getWeights()[0].shape[2] as number;
  const resize = big.layers.some((l) => l.name === 'g_conv5');
  // The 64 px model's RGB layer moves to the end: same kernel shape [4, 4, 3, w].
  if (!resize) big.getLayer('g_deconv5').setWeights(small.getLayer('g_deconv4').getWeights());
  setOwned(big.getLayer('g_deconv4'), [nearestUpsampleKernel(w)]);
  const { mean, variance } = tf.tidy(() => {
    const features = tfl.model({
      inputs: small.inputs,
      outputs: small.getLayer('g_relu3').output as tfl.SymbolicTensor,
    });
    const out = features.predict(z) as tf.Tensor4D;
    return tf.moments(out, [0, 1, 2]);
  });
  // Batch norm as the identity on these features: (x - mean) / sqrt(var + eps) * gamma + beta = x.
  const gamma = tf.tidy(() => tf.sqrt(tf.add(variance, BN_EPSILON)));
  big.getLayer('g_bn4').setWeights([gamma, mean, mean, variance]);
  tf.dispose([mean, variance, gamma]);
  if (resize) fitRgbConv(small, big, z, opts.fitLatents ?? 32, opts.fitSteps ?? 300);
}

/**
 * The resize-convolution's RGB layer (g_conv5, 3x3 on the 128 px features) fitted to draw what the 64 px model
 * draws, doubled: a least-squares fit by Adam on the first `latents` latents, the layers before it as grown.
 */
function fitRgbConv(
  small: tfl.LayersModel,
  big: tfl.LayersModel,
  zAll: tf.Tensor2D,
  latents: number,
  steps: number,
): void {
  const layer = big.getLayer('g_conv5');
  const [initial] = layer.getWeights();
  const kernel = tf.tidy(() => tf.variable(tf.zerosLike(initial)));
  const optimizer = tf.train.adam(0.02);
  const z = tf.slice(zAll, [0, 0], [Math.min(latents, zAll.shape[0]), -1]);
  const [features, target] = tf.tidy(() => {
    const toFeatures = tfl.model({ inputs: big.inputs, outputs: big.getLayer('g_up5').output as tfl.SymbolicTensor });
    const small64 = small.predict(z) as tf.Tensor4D;
    return [toFeatures.predict(z) as tf.Tensor4D, tf.image.resizeNearestNeighbor(small64, [128, 128])];
  });
  for (let s = 0; s < steps; s++) {
    const loss = optimizer.minimize(
      () =>
        tf.losses.meanSquaredError(target, tf.tanh(tf.conv2d(features, kernel as tf.Variable<tf.Rank.R4>, 1, 'same'))),
      false,
      [kernel],
    );
    loss?.dispose();
  }
  layer.setWeights([kernel]);
  tf.dispose([kernel, features, target, z]);
  optimizer.dispose();
}

/** setWeights, then dispose the tensors it copied from. */
function setOwned(layer: ReturnType<tfl.LayersModel['getLayer']>, weights: tf.Tensor[]): void {
  layer.setWeights(weights);
  tf.dispose(weights);
}

/**
 * The kernel of a 4x4 stride-2 'same' transposed convolution that copies each input pixel to the
 * 2x2 block it becomes ([kh, kw, out, in], as tfjs-layers stores it): taps 1 and 2 on each axis.
 */
export function nearestUpsampleKernel(channels: number): tf.Tensor4D {
  const k = new Float32Array(16 * channels * channels);
  for (const ky of [1, 2])
    for (const kx of [1, 2])
      for (let c = 0; c < channels; c++) {
        k[((ky * 4 + kx) * channels + c) * channels + c] = 1;
      }
  return tf.tensor4d(k, [4, 4, channels, channels]);
}

function growDiscriminator(small: tfl.LayersModel, big: tfl.LayersModel): void {
  const dIn = big.getLayer('d_in');
  const [randomIn] = dIn.getWeights();
  const inK = randomIn.arraySync() as number[][][][];
  // A 4x4 stride-2 'same' convolution reads input rows 2i-1 .. 2i+2: taps 1 and 2 are its own 2x2 block.
  for (let ky = 0; ky < 4; ky++)
    for (let kx = 0; kx < 4; kx++)
      for (let ci = 0; ci < CHANNELS; ci++) {
        for (let co = 0; co < CHANNELS; co++)
          inK[ky][kx][ci][co] = co === ci && ky >= 1 && ky <= 2 && kx >= 1 && kx <= 2 ? 0.25 : 0;
      }
  setOwned(dIn, [tf.tensor4d(inK)]);
  // d_conv0 reads D_IN_CHANNELS: its first three are the 64 px model's RGB weights; the rest start at zero, so
  // D128 is exactly D64 on the 2x2-averaged image at first, and they grow from their gradients.
  const conv0 = big.getLayer('d_conv0');
  const k = conv0.getWeights()[0].arraySync() as number[][][][];
  const small0 = small.getLayer('d_conv0').getWeights()[0].arraySync() as number[][][][];
  for (let ky = 0; ky < 4; ky++)
    for (let kx = 0; kx < 4; kx++)
      for (let ci = 0; ci < CHANNELS; ci++) {
        k[ky][kx][ci] = small0[ky][kx][ci];
      }
  for (let ky = 0; ky < 4; ky++)
    for (let kx = 0; kx < 4; kx++)
      for (let ci = CHANNELS; ci < k[ky][kx].length; ci++) {
        k[ky][kx][ci] = k[ky][kx][ci].map(() => 0);
      }
  setOwned(conv0, [tf.tensor4d(k)]);
}
