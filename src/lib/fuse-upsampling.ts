/**
 * A faster graph for drawing, with the same faces: a nearest-neighbour 2x
 * upsampling followed by a 3x3 'same' convolution (the pyramid generator's
 * detail branch) is one 4x4 stride-2 transposed convolution. Each output
 * pixel of the pair reads a 2x2 block of the small input, so the big,
 * upsampled tensor (16 channels at 128 px) never has to exist, and the
 * transposed convolution runs on the WASM backend's phase kernel
 * (wasm-training.ts) as four small convolutions at 64 px.
 *
 * Along one axis, output 2i + a of the pair sums the 3 taps w[-1], w[0],
 * w[+1] over the doubled input; with 'same' padding, tap k of a 4x4 stride-2
 * transposed convolution joins output o to input (o + 1 - k) / 2. Matching
 * the two gives the 4 transposed taps as sums of the 3: k0 = w[+1],
 * k1 = w[0] + w[+1], k2 = w[-1] + w[0], k3 = w[-1].
 *
 * The result is an ordinary layers model, made when a page loads a
 * generator to draw with; the files and what training saves stay as they are.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

interface LayerJson {
  class_name: string;
  name?: string;
  config: Record<string, unknown>;
  inbound_nodes?: unknown[][][];
}

/** For transposed tap k (0..3), the 3x3 taps (0: w[-1], 1: w[0], 2: w[+1]) that sum into it. */
const TAPS: readonly (readonly number[])[] = [[2], [1, 2], [0, 1], [0]];

/** The 4x4 transposed kernel [4, 4, out, in] equal to nearest 2x then the 3x3 kernel [3, 3, in, out]. */
export function fusedKernel(kernel: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const rows = TAPS.map((ys) =>
      TAPS.map((xs) => ys.flatMap((y) => xs.map((x) => tf.slice(kernel, [y, x, 0, 0], [1, 1, -1, -1]))).reduce(tf.add)),
    );
    const k = tf.concat(
      rows.map((r) => tf.concat(r, 1)),
      0,
    ) as tf.Tensor4D;
    return tf.transpose(k, [0, 1, 3, 2]);
  });
}

const inboundName = (l: LayerJson): string | null => {
  const nodes = l.inbound_nodes;
  if (!nodes || nodes.length !== 1 || nodes[0].length !== 1) return null;
  return nodes[0][0][0] as string;
};

const isPair = (up: LayerJson, conv: LayerJson): boolean => {
  const u = up.config,
    c = conv.config;
  const same = (a: unknown, b: unknown[]) => JSON.stringify(a) === JSON.stringify(b);
  return (
    up.class_name === 'UpSampling2D' &&
    same(u.size, [2, 2]) &&
    (u.interpolation ?? 'nearest') === 'nearest' &&
    (u.data_format ?? 'channels_last') === 'channels_last' &&
    conv.class_name === 'Conv2D' &&
    same(c.kernel_size, [3, 3]) &&
    same(c.strides, [1, 1]) &&
    c.padding === 'same' &&
    (c.dilation_rate === undefined || same(c.dilation_rate, [1, 1])) &&
    (c.data_format ?? 'channels_last') === 'channels_last'
  );
};

/**
 * A copy of `model` with every nearest 2x + 3x3 'same' convolution pair of a
 * functional model (whose upsampling feeds only that convolution) replaced by
 * one Conv2DTranspose of the convolution's name, drawing the same images;
 * `model` itself when there is none. Tensor ops only: no reads from the
 * backend, so it runs on WebGPU too.
 */
export async function fuseUpsampledConvs(model: tfl.LayersModel): Promise<tfl.LayersModel> {
  const json = model.toJSON(null, false) as unknown as { class_name: string; config: { layers: LayerJson[] } };
  if (json.class_name !== 'Model') return model;
  const layers = json.config.layers;
  const byName = new Map(layers.map((l) => [l.name ?? (l.config.name as string), l]));
  const consumers = new Map<string, number>();
  for (const l of layers)
    for (const node of l.inbound_nodes ?? [])
      for (const t of node) consumers.set(t[0] as string, (consumers.get(t[0] as string) ?? 0) + 1);
  const fused = new Set<string>();
  const dropped = new Set<LayerJson>();
  for (const conv of layers) {
    const upName = inboundName(conv);
    const up = upName ? byName.get(upName) : undefined;
    if (!up || consumers.get(upName!) !== 1 || !isPair(up, conv)) continue;
    conv.class_name = 'Conv2DTranspose';
    conv.config = { ...conv.config, kernel_size: [4, 4], strides: [2, 2] };
    delete conv.config.dilation_rate;
    conv.inbound_nodes = up.inbound_nodes;
    dropped.add(up);
    fused.add((conv.name ?? conv.config.name) as string);
  }
  if (fused.size === 0) return model;
  json.config.layers = layers.filter((l) => !dropped.has(l));
  const out = await tfl.models.modelFromJSON({ modelTopology: json as unknown as tf.io.ModelJSON['modelTopology'] });
  for (const layer of out.layers) {
    const weights = model.getLayer(layer.name).getWeights();
    if (weights.length === 0) continue;
    if (!fused.has(layer.name)) {
      layer.setWeights(weights);
      continue;
    }
    const kernel = fusedKernel(weights[0] as tf.Tensor4D);
    layer.setWeights([kernel, ...weights.slice(1)]);
    kernel.dispose();
  }
  return out;
}
