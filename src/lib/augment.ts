/**
 * Data augmentation for fine-tuning on a handful of photos: with eight
 * images the discriminator memorises them within a few dozen steps, so each
 * batch shows them mirrored, shifted a few pixels and with mild colour
 * changes. All of these keep a face a plausible CelebA-style crop.
 * Works on HWC float images in [-1, 1] (the model's input) in any runtime;
 * a seeded Rng makes batches reproducible.
 */
import { flipHorizontal } from './images.ts';
import { IMAGE_SIZE } from './models.ts';
import type { Rng } from './latent.ts';

export interface AugmentOptions {
  /** Mirror half of the images left-right. */
  flip: boolean;
  /** Largest shift in pixels, each axis; edges are extended. */
  maxShift: number;
  /** Largest brightness change, as a fraction of the full range. */
  brightness: number;
  /** Largest relative contrast change (0.1 = 0.9x to 1.1x). */
  contrast: number;
  /** Largest relative saturation change. */
  saturation: number;
}

export const DEFAULT_AUGMENT: AugmentOptions = { flip: true, maxShift: 3, brightness: 0.08, contrast: 0.1, saturation: 0.1 };
export const NO_AUGMENT: AugmentOptions = { flip: false, maxShift: 0, brightness: 0, contrast: 0, saturation: 0 };

/** The random choices for one image, drawn up front so they can be checked and replayed. */
export interface AugmentDraw {
  flip: boolean;
  dx: number;
  dy: number;
  brightness: number;
  contrast: number;
  saturation: number;
}

export function validateAugment(o: AugmentOptions): void {
  const fields: [keyof AugmentOptions, number][] = [['maxShift', 16], ['brightness', 1], ['contrast', 1], ['saturation', 1]];
  for (const [key, max] of fields) {
    const v = o[key] as number;
    if (!Number.isFinite(v) || v < 0 || v > max) throw new Error(`augment: ${key} must be between 0 and ${max}, got ${v}`);
  }
  if (!Number.isInteger(o.maxShift)) throw new Error(`augment: maxShift must be a whole number of pixels, got ${o.maxShift}`);
}

const symmetric = (rng: Rng, r: number) => (r > 0 ? (rng.uniform() * 2 - 1) * r : 0);

export function drawAugment(rng: Rng, o: AugmentOptions): AugmentDraw {
  const shift = () => (o.maxShift > 0 ? rng.int(2 * o.maxShift + 1) - o.maxShift : 0);
  return {
    flip: o.flip && rng.uniform() < 0.5,
    dx: shift(),
    dy: shift(),
    // Brightness is a fraction of the range [-1, 1], which is 2 wide.
    brightness: symmetric(rng, o.brightness) * 2,
    contrast: 1 + symmetric(rng, o.contrast),
    saturation: 1 + symmetric(rng, o.saturation),
  };
}

/** Shift content by (dx, dy) pixels, repeating the edge into the uncovered border. */
function shift(src: Float32Array, out: Float32Array, dx: number, dy: number, size: number): void {
  for (let y = 0; y < size; y++) {
    const sy = Math.min(size - 1, Math.max(0, y - dy));
    for (let x = 0; x < size; x++) {
      const sx = Math.min(size - 1, Math.max(0, x - dx));
      const s = (sy * size + sx) * 3, d = (y * size + x) * 3;
      out[d] = src[s];
      out[d + 1] = src[s + 1];
      out[d + 2] = src[s + 2];
    }
  }
}

/** Contrast about the image mean, saturation about each pixel's luma, then brightness; clamped to [-1, 1]. */
function jitterColour(img: Float32Array, d: AugmentDraw): void {
  if (d.brightness === 0 && d.contrast === 1 && d.saturation === 1) return;
  let mean = 0;
  for (let i = 0; i < img.length; i++) mean += img[i];
  mean /= img.length;
  for (let p = 0; p < img.length; p += 3) {
    const luma = 0.299 * img[p] + 0.587 * img[p + 1] + 0.114 * img[p + 2];
    for (let c = 0; c < 3; c++) {
      const v = luma + (img[p + c] - luma) * d.saturation;
      img[p + c] = Math.min(1, Math.max(-1, (v - mean) * d.contrast + mean + d.brightness));
    }
  }
}

/** Apply one draw to one image; `out` must not alias `src`. */
export function applyAugment(src: Float32Array, out: Float32Array, d: AugmentDraw, size = IMAGE_SIZE): Float32Array {
  const n = size * size * 3;
  if (src.length !== n || out.length !== n) throw new Error(`augment: expected ${size}x${size}x3 images (${n} values), got ${src.length} and ${out.length}`);
  if (src === out) throw new Error('augment: output must be a different array from the input');
  shift(src, out, d.dx, d.dy, size);
  if (d.flip) {
    const copy = out.slice();
    flipHorizontal(copy, out, size);
  }
  jitterColour(out, d);
  return out;
}

/**
 * A training batch [picks.length, size, size, 3] (flat): image picks[i] of
 * `images`, each with its own random augmentation.
 */
export function augmentBatch(images: readonly Float32Array[], picks: readonly number[], rng: Rng, o: AugmentOptions = DEFAULT_AUGMENT, size = IMAGE_SIZE): Float32Array {
  validateAugment(o);
  const n = size * size * 3;
  const batch = new Float32Array(picks.length * n);
  picks.forEach((pick, i) => {
    const src = images[pick];
    if (!src) throw new Error(`augment: no image at index ${pick} (have ${images.length})`);
    applyAugment(src, batch.subarray(i * n, (i + 1) * n), drawAugment(rng, o), size);
  });
  return batch;
}
