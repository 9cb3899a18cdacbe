/**
 * A latent shift baked into a generator's weights. Sampling z' = a*z + m*c
 * (a: spread, m: pull towards the latent c, e.g. the mean of a person's
 * pivots) from ordinary z ~ N(0, 1) is, for a first Dense layer, exactly
 * W z' + b = (a W) z + (m W c + b): a scaled kernel plus a bias. The shipped
 * dcgan generator's `g_project` has no bias, so the baked copy gets one
 * (same layer name, use_bias true); any TensorFlow.js user then samples the
 * person with plain N(0, 1) noise.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';

export interface LatentShift {
  /** a: how much of the random latent is kept (1: as drawn). */
  scale: number;
  /** m: how far towards `centre` (0: not at all). */
  pull: number;
  /** c: the latent pulled towards, zDim values. */
  centre: Float32Array;
}

/** z' = a*z + m*c for rows of z [N, zDim]. */
export function shiftLatents(z: Float32Array, shift: LatentShift): Float32Array {
  const d = shift.centre.length;
  if (z.length % d !== 0) throw new Error(`latents of ${z.length} values are not rows of ${d}`);
  const out = new Float32Array(z.length);
  for (let i = 0; i < z.length; i++) out[i] = shift.scale * z[i] + shift.pull * shift.centre[i % d];
  return out;
}

/** The shift `value` of the way from plain sampling (scale 1, pull 0) to `shift` (1: shift itself); more than 1 goes further. */
export function likenessAt(shift: LatentShift, value: number): LatentShift {
  return { centre: shift.centre, scale: 1 + value * (shift.scale - 1), pull: value * shift.pull };
}

interface LayerJson {
  class_name: string;
  config: Record<string, unknown>;
}

/** The first layer after the input, which must be a Dense. */
function firstDense(model: LayersModel): tfl.layers.Layer {
  const layer = model.layers.find((l) => l.getClassName() !== 'InputLayer');
  if (!layer || layer.getClassName() !== 'Dense')
    throw new Error('the generator does not start with a Dense layer: a latent shift cannot be baked into it');
  return layer;
}

/**
 * A new generator whose output for z equals `generator`'s output for
 * a*z + m*c. The input model is left as it is.
 */
export async function bakeLatentShift(generator: LayersModel, shift: LatentShift): Promise<LayersModel> {
  const dense = firstDense(generator);
  const [kernel, oldBias] = dense.getWeights() as [tf.Tensor2D, tf.Tensor1D | undefined];
  const zDim = kernel.shape[0];
  if (shift.centre.length !== zDim)
    throw new Error(`shift centre has ${shift.centre.length} values, the generator takes ${zDim}`);
  if (!Number.isFinite(shift.scale) || !Number.isFinite(shift.pull))
    throw new Error('latent shift scale and pull must be finite numbers');
  // Same topology, with the first Dense layer given a bias.
  const topology = JSON.parse(JSON.stringify(generator.toJSON(null, false))) as { config: { layers: LayerJson[] } };
  const layerJson = topology.config.layers.find((l) => l.config.name === dense.name);
  if (!layerJson) throw new Error(`layer ${dense.name} not in the generator's topology`);
  layerJson.config.use_bias = true;
  const baked = await tfl.models.modelFromJSON({ modelTopology: topology } as unknown as tf.io.ModelJSON);
  const values = new Map<string, tf.Tensor>();
  for (const layer of generator.layers) {
    const names = layer.weights.map((w) => w.originalName);
    layer.getWeights().forEach((t, i) => values.set(names[i], t));
  }
  const newKernel = tf.tidy(() => tf.mul(kernel, shift.scale));
  const biasValues = tf.tidy(() => {
    const b = tf.mul(tf.matMul(tf.tensor2d(shift.centre, [1, zDim]), kernel), shift.pull);
    return oldBias ? tf.add(tf.reshape(b, [-1]), oldBias) : b;
  });
  // Fresh rank-1 data: WASM's fused MatMul checks the rank its bias buffer was written with, not the tensor's.
  const newBias = tf.tensor1d((await biasValues.data()) as Float32Array);
  biasValues.dispose();
  try {
    for (const layer of baked.layers) {
      if (layer.weights.length === 0) continue;
      if (layer.name === dense.name) {
        layer.setWeights([newKernel, newBias]);
        continue;
      }
      layer.setWeights(
        layer.weights.map((w) => {
          const v = values.get(w.originalName);
          if (!v) throw new Error(`weight ${w.originalName} missing from the generator`);
          return v;
        }),
      );
    }
  } finally {
    tf.dispose([newKernel, newBias]);
  }
  return baked;
}
