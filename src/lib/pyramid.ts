/**
 * The 64 px view of a 128 px pyramid pair, for work that only the face's
 * structure needs (fine-tuning on a person's photos): the pyramid generator's
 * base, which draws the 64 px face, and a discriminator that judges a 64 px
 * image exactly as the 128 px one judges it doubled.
 *
 * The base is a view, not a copy: it shares its layers with the pyramid, so
 * what tunes the base tunes the pyramid, and the detail branch stays as it was.
 *
 * The discriminator's first layer (d_in, a 4x4 stride-2 'same' convolution,
 * linear) reads a nearest-neighbour 2x image as a 3x3 stride-1 'same'
 * convolution reads the small one: along one axis, output p reads doubled rows
 * 2p-1 .. 2p+2, that is small rows p-1 (tap 0), p (taps 1 and 2) and p+1
 * (tap 3), with the padding on both sides falling on the small image's padding.
 * So the 64 px view's kernel is [k0, k1 + k2, k3] per axis and the rest of D
 * is unchanged: D at 64 px costs what it does for the 64 px pair.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { CHANNELS } from './models.ts';

/** The last layer of the pyramid's base (the 64 px face) and the branch's first; both are named so by models.ts. */
const BASE_OUTPUT = 'g_tanh';
const BRANCH_LAYER = 'g_detail4';
const D_FIRST = 'd_in';

const hasLayer = (model: tfl.LayersModel, name: string) => model.layers.some((l) => l.name === name);

/** Whether `generator` is a pyramid generator (a 64 px base plus a 128 px detail branch). */
export function isPyramid(generator: tfl.LayersModel): boolean {
  return hasLayer(generator, BASE_OUTPUT) && hasLayer(generator, BRANCH_LAYER);
}

/** The pyramid's base as a model of its own, z -> 64 px face, sharing its weights with `generator`. */
export function pyramidBase(generator: tfl.LayersModel): tfl.LayersModel {
  if (!isPyramid(generator)) throw new Error('not a pyramid generator: it has no 64 px base to tune alone');
  const face = generator.getLayer(BASE_OUTPUT);
  // A freshly built pyramid applied its base's layers once on their own too: its own node is the last one.
  const output = face.getOutputAt(face.inboundNodes.length - 1) as tfl.SymbolicTensor;
  return tfl.model({ inputs: generator.inputs, outputs: output, name: 'generator_base' });
}

/** The 3x3 kernel [3, 3, in, out] that reads a small image as the 4x4 stride-2 kernel reads it doubled. */
export function halvedKernel(kernel: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const [k0, k1, k2, k3] = tf.split(kernel, 4, 0);
    const rows = tf.concat([k0, tf.add(k1, k2), k3], 0);
    const [c0, c1, c2, c3] = tf.split(rows, 4, 1);
    return tf.concat([c0, tf.add(c1, c2), c3], 1) as tf.Tensor4D;
  });
}

interface LayerJson {
  class_name: string;
  config: Record<string, unknown>;
}

/**
 * A copy of a 128 px discriminator (d_in first) that reads 64 px images: D64(x) = D128(x doubled), exactly.
 * Weights are copied, not shared: nothing trains it.
 */
export async function halfSizeDiscriminator(discriminator: tfl.LayersModel): Promise<tfl.LayersModel> {
  const json = discriminator.toJSON(null, false) as unknown as {
    class_name: string;
    config: { name?: string; layers: LayerJson[] };
  };
  const first = json.config.layers[0];
  const c = first?.config;
  const ok =
    json.class_name === 'Sequential' &&
    first.class_name === 'Conv2D' &&
    c.name === D_FIRST &&
    JSON.stringify(c.kernel_size) === '[4,4]' &&
    JSON.stringify(c.strides) === '[2,2]' &&
    c.padding === 'same' &&
    !c.use_bias;
  if (!ok) throw new Error('not a 128 px pyramid discriminator: its first layer is not the linear 4x4 stride-2 d_in');
  first.config = { ...c, kernel_size: [3, 3], strides: [1, 1], batch_input_shape: [null, 64, 64, CHANNELS] };
  const out = await tfl.models.modelFromJSON({ modelTopology: json as unknown as tf.io.ModelJSON['modelTopology'] });
  for (const layer of out.layers) {
    const weights = discriminator.getLayer(layer.name).getWeights();
    if (weights.length === 0) continue;
    if (layer.name !== D_FIRST) {
      layer.setWeights(weights);
      continue;
    }
    const kernel = halvedKernel(weights[0] as tf.Tensor4D);
    layer.setWeights([kernel]);
    kernel.dispose();
  }
  return out;
}
