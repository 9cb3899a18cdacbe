/**
 * A small CNN that reads CelebA's 40 attributes off a 64x64 face: four
 * strided convs, one logit per attribute, sigmoid cross-entropy. Trained for
 * a few CPU-minutes; it labels generated faces for the direction fits and
 * judges the edits.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { flipHorizontal } from '../../src/lib/images.ts';
import { Rng } from '../../src/lib/latent.ts';
import { IMAGE_SIZE } from '../../src/lib/models.ts';
import type { LabelledSet } from './attributes.ts';

const PIXELS = IMAGE_SIZE * IMAGE_SIZE * 3;

export interface ClassifierOptions {
  width: number;
  steps: number;
  batch: number;
  learningRate: number;
  seed: number;
  onStep?: (step: number, loss: number) => void;
}

export function buildClassifier(attributes: number, width: number, seed: number): tfl.LayersModel {
  const m = tfl.sequential({ name: 'attribute_classifier' });
  let s = seed * 100;
  [width, 2 * width, 4 * width, 4 * width].forEach((filters, i) => {
    m.add(
      tfl.layers.conv2d({
        ...(i === 0 ? { inputShape: [IMAGE_SIZE, IMAGE_SIZE, 3] } : {}),
        filters,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tfl.initializers.heNormal({ seed: s++ }),
        name: `c_conv${i}`,
      }),
    );
  });
  m.add(tfl.layers.flatten({ name: 'c_flatten' }));
  m.add(tfl.layers.dropout({ rate: 0.3, name: 'c_drop' }));
  m.add(
    tfl.layers.dense({
      units: attributes,
      kernelInitializer: tfl.initializers.glorotUniform({ seed: s++ }),
      name: 'c_logits',
    }),
  );
  return m;
}

/** Bytes [n,64,64,3] (rows `idx`) to model input in [-1, 1], optionally flipped at random. */
function batchFrom(set: LabelledSet, idx: readonly number[], rng: Rng | null): Float32Array {
  const out = new Float32Array(idx.length * PIXELS);
  const img = new Float32Array(PIXELS);
  idx.forEach((i, b) => {
    const src = set.pixels.subarray(i * PIXELS, (i + 1) * PIXELS);
    for (let p = 0; p < PIXELS; p++) img[p] = src[p] / 127.5 - 1;
    const dst = out.subarray(b * PIXELS, (b + 1) * PIXELS);
    if (rng && rng.uniform() < 0.5) flipHorizontal(img, dst);
    else dst.set(img);
  });
  return out;
}

export async function trainClassifier(
  set: LabelledSet,
  attributes: number,
  opts: ClassifierOptions,
): Promise<tfl.LayersModel> {
  const model = buildClassifier(attributes, opts.width, opts.seed);
  const optimizer = tf.train.adam(opts.learningRate);
  const rng = new Rng(opts.seed);
  const n = set.files.length;
  let order: number[] = [];
  let pos = 0;
  for (let step = 0; step < opts.steps; step++) {
    const idx: number[] = [];
    for (let b = 0; b < opts.batch; b++) {
      if (pos >= order.length) {
        order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
        pos = 0;
      }
      idx.push(order[pos++]);
    }
    const x = tf.tensor4d(batchFrom(set, idx, rng), [idx.length, IMAGE_SIZE, IMAGE_SIZE, 3]);
    const yData = new Float32Array(idx.length * attributes);
    idx.forEach((i, b) => yData.set(set.labels.subarray(i * attributes, (i + 1) * attributes), b * attributes));
    const y = tf.tensor2d(yData, [idx.length, attributes]);
    const loss = optimizer.minimize(
      () => tf.losses.sigmoidCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor2D) as tf.Scalar,
      true,
    );
    if (opts.onStep && (step % 50 === 0 || step === opts.steps - 1)) opts.onStep(step, (await loss!.data())[0]);
    tf.dispose([x, y, loss!]);
  }
  optimizer.dispose();
  return model;
}

/** Attribute probabilities for images in [-1, 1], row-major [n, attributes]. */
export async function classify(model: tfl.LayersModel, images: Float32Array, batch = 128): Promise<Float32Array> {
  const n = images.length / PIXELS;
  const k = model.outputs[0].shape[1] as number;
  const out = new Float32Array(n * k);
  for (let s = 0; s < n; s += batch) {
    const m = Math.min(batch, n - s);
    const p = tf.tidy(() =>
      tf.sigmoid(
        model.predict(
          tf.tensor4d(images.subarray(s * PIXELS, (s + m) * PIXELS), [m, IMAGE_SIZE, IMAGE_SIZE, 3]),
        ) as tf.Tensor,
      ),
    );
    out.set((await p.data()) as Float32Array, s * k);
    p.dispose();
  }
  return out;
}

/** Per-attribute accuracy on a labelled set, and the majority-class rate there. */
export async function heldOutAccuracy(
  model: tfl.LayersModel,
  set: LabelledSet,
  attributes: number,
): Promise<{ accuracy: number[]; majority: number[] }> {
  const n = set.files.length;
  const probs = await classify(
    model,
    batchFrom(
      set,
      Array.from({ length: n }, (_, i) => i),
      null,
    ),
  );
  const accuracy: number[] = [];
  const majority: number[] = [];
  for (let a = 0; a < attributes; a++) {
    let correct = 0,
      pos = 0;
    for (let i = 0; i < n; i++) {
      const y = set.labels[i * attributes + a];
      pos += y;
      if ((probs[i * attributes + a] > 0.5 ? 1 : 0) === y) correct++;
    }
    accuracy.push(correct / n);
    majority.push(Math.max(pos, n - pos) / n);
  }
  return { accuracy, majority };
}
