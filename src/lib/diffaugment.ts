/**
 * Differentiable augmentation (DiffAugment, Zhao et al. 2020): the same random
 * colour, translation and cutout transforms applied to real and generated
 * images before D sees them, in D's step and in G's. D can then no longer
 * memorise the training photos pixel for pixel, and because every transform
 * is made of differentiable tensor ops, G's gradient passes through it and G
 * is never pushed to draw augmented-looking faces.
 *
 * The random parameters are drawn in JavaScript from the project's seeded Rng
 * (not from tf.random*), so a run and its resume draw the same augmentations
 * on every backend. Images are NHWC in [-1, 1], the model's range.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from './latent.ts';

export const DIFFAUGMENT_OPS = ['color', 'translation', 'cutout'] as const;
export type DiffAugmentOp = (typeof DIFFAUGMENT_OPS)[number];
export type DiffAugmentPolicy = readonly DiffAugmentOp[];

/** The paper's policy for small data sets. */
export const FULL_POLICY: DiffAugmentPolicy = DIFFAUGMENT_OPS;

/** The paper's strengths: shifts up to 1/8 of the side, a cutout box half the side. */
const TRANSLATION_RATIO = 0.125;
const CUTOUT_RATIO = 0.5;

/** "color,translation,cutout" -> policy; "" or "none" -> empty. Throws on unknown names. */
export function parsePolicy(text: string): DiffAugmentPolicy {
  if (text.trim() === '' || text.trim() === 'none') return [];
  const ops = text.split(',').map((s) => s.trim());
  for (const op of ops) {
    if (!(DIFFAUGMENT_OPS as readonly string[]).includes(op)) {
      throw new Error(`unknown DiffAugment op "${op}" (use ${DIFFAUGMENT_OPS.join(', ')})`);
    }
  }
  return [...new Set(ops)] as DiffAugmentOp[];
}

/** Per-image random numbers in a [n, 1, 1, 1] tensor. */
const perImage = (values: number[]) => tf.tensor4d(values, [values.length, 1, 1, 1]);

/**
 * Brightness +-0.5, then saturation x[0, 2] about each pixel's channel mean,
 * then contrast x[0.5, 1.5] about the image mean, per image (the paper's
 * ranges and order). The three compose to one affine map, computed directly:
 *   y = k s x + k (1 - s) mean_c(x) + (1 - k) mean(x) + b
 * (saturation leaves the image mean unchanged). The first two terms mix each
 * pixel's channels by one 3x3 matrix per image, k s I + k (1 - s) / c, a batched
 * product whose gradient is another; the channel mean broadcast back over the
 * channels (and its gradient) took most of the colour op's time.
 */
function color(x: tf.Tensor4D, rng: Rng): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const draw = (f: (u: number) => number) => Array.from({ length: n }, () => f(rng.uniform()));
  const b = draw((u) => u - 0.5);
  const s = draw((u) => u * 2);
  const k = draw((u) => u + 0.5);
  const mixing = new Float32Array(n * c * c);
  for (let i = 0; i < n; i++)
    for (let r = 0; r < c; r++)
      for (let col = 0; col < c; col++)
        mixing[(i * c + r) * c + col] = (k[i] * (1 - s[i])) / c + (r === col ? k[i] * s[i] : 0);
  const mixed = tf.matMul(tf.reshape(x, [n, h * w, c]), tf.tensor3d(mixing, [n, c, c]));
  const imageMean = tf.mean(x, [1, 2, 3], true);
  const offset = tf.add(tf.mul(imageMean, perImage(k.map((ki) => 1 - ki))), perImage(b));
  return tf.add(tf.reshape(mixed, [n, h, w, c]), offset);
}

/**
 * One-hot shift matrices [n, size, size]: row i picks source index i + shift,
 * or nothing (zero padding) when that falls outside the image.
 */
export function shiftMatrices(shifts: readonly number[], size: number): Float32Array {
  const m = new Float32Array(shifts.length * size * size);
  shifts.forEach((s, b) => {
    for (let i = 0; i < size; i++) {
      const j = i + s;
      if (j >= 0 && j < size) m[b * size * size + i * size + j] = 1;
    }
  });
  return m;
}

/**
 * Shift each image by its own whole number of pixels, zero-filled: rows by a
 * batched product with one-hot [h, h] matrices, then columns the same way on
 * the images transposed. Every backend runs these fast and differentiates
 * them; a gather would need a scatter for its gradient, which the CPU and WebGL
 * backends do slowly. (Columns as right-multipliers of [h, w c] rows needed
 * [w c, w c] matrices: at 128 px, 38 MB a batch and 3x the arithmetic.)
 */
function translation(x: tf.Tensor4D, rng: Rng): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const maxShift = Math.round(h * TRANSLATION_RATIO);
  const draw = () => Array.from({ length: n }, () => rng.int(2 * maxShift + 1) - maxShift);
  const rows = tf.tensor3d(shiftMatrices(draw(), h), [n, h, h]);
  const cols = tf.tensor3d(shiftMatrices(draw(), w), [n, w, w]);
  const rowsShifted = tf.reshape(tf.matMul(rows, tf.reshape(x, [n, h, w * c])), [n, h, w, c]);
  const transposed = tf.reshape(tf.transpose(rowsShifted, [0, 2, 1, 3]), [n, w, h * c]);
  const shifted = tf.reshape(tf.matMul(cols, transposed), [n, w, h, c]);
  return tf.transpose(shifted, [0, 2, 1, 3]) as tf.Tensor4D;
}

/** Masks [n, h, w, 1] that zero one square of half the side per image, its centre anywhere in the image. */
export function cutoutMasks(centres: readonly [number, number][], h: number, w: number): Float32Array {
  const size = Math.round(h * CUTOUT_RATIO);
  const m = new Float32Array(centres.length * h * w).fill(1);
  centres.forEach(([cy, cx], b) => {
    for (let y = Math.max(0, cy - size / 2); y < Math.min(h, cy + size / 2); y++) {
      for (let x = Math.max(0, cx - size / 2); x < Math.min(w, cx + size / 2); x++) m[(b * h + y) * w + x] = 0;
    }
  });
  return m;
}

function cutout(x: tf.Tensor4D, rng: Rng): tf.Tensor4D {
  const [n, h, w] = x.shape;
  const centres = Array.from({ length: n }, () => [rng.int(h + 1), rng.int(w + 1)] as [number, number]);
  return tf.mul(x, tf.tensor4d(cutoutMasks(centres, h, w), [n, h, w, 1]));
}

const OPS: Record<DiffAugmentOp, (x: tf.Tensor4D, rng: Rng) => tf.Tensor4D> = { color, translation, cutout };

/** Apply the policy's transforms in order (each image its own draw); the empty policy returns x itself. */
export function diffAugment(x: tf.Tensor4D, rng: Rng, policy: DiffAugmentPolicy): tf.Tensor4D {
  if (policy.length === 0) return x;
  return tf.tidy(() => policy.reduce((y, op) => OPS[op](y, rng), x));
}
