/**
 * Near-copies: how close, pixel for pixel, a generated face is to one of a
 * person's photos (or its mirror image). A fine-tune that reproduces its
 * photos instead of drawing the person anew scores high here, whatever the
 * recognizers say.
 */
import { IMAGE_SIZE } from './models.ts';
import { flipHorizontal } from './images.ts';

/**
 * RMS pixel distance under which a sample is a near-copy of a photo, per image size: 9 in 10 copies of a held-out
 * photo blurred a little and moved by a pixel or two lie within it (`npm run eval -- --calibrate` measures it into
 * training/eval/likeness-calibration-SIZE.json; a test keeps these in step with those files).
 */
export const NEAR_COPY_RMS: Readonly<Record<number, number>> = { 64: 0.2761, 128: 0.2074 };

/** Root-mean-square pixel difference ([-1, 1] range) between image i of a and image j of b (size x size x 3 each). */
export function pixelRms(a: Float32Array, i: number, b: Float32Array, j: number, size = IMAGE_SIZE): number {
  const PIXELS = size * size * 3;
  let s = 0;
  const ao = i * PIXELS,
    bo = j * PIXELS;
  for (let k = 0; k < PIXELS; k++) {
    const d = a[ao + k] - b[bo + k];
    s += d * d;
  }
  return Math.sqrt(s / PIXELS);
}

/** Each sample's RMS pixel distance to its nearest photo, the photos mirrored too. */
export function nearestPhotoDistances(samples: Float32Array, photos: Float32Array, size = IMAGE_SIZE): number[] {
  const PIXELS = size * size * 3;
  const nPhotos = photos.length / PIXELS;
  const both = new Float32Array(2 * photos.length);
  both.set(photos);
  for (let p = 0; p < nPhotos; p++) {
    flipHorizontal(
      photos.subarray(p * PIXELS, (p + 1) * PIXELS),
      both.subarray((nPhotos + p) * PIXELS, (nPhotos + p + 1) * PIXELS),
      size,
    );
  }
  return Array.from({ length: samples.length / PIXELS }, (_, s) => {
    let best = Infinity;
    for (let p = 0; p < 2 * nPhotos; p++) best = Math.min(best, pixelRms(samples, s, both, p, size));
    return best;
  });
}

/** Share of the samples that lie within `bound` (RMS, [-1, 1] pixels) of a photo or its mirror image. */
export function nearCopyShare(samples: Float32Array, photos: Float32Array, size: number, bound: number): number {
  const near = nearestPhotoDistances(samples, photos, size);
  return near.length ? near.filter((d) => d < bound).length / near.length : 0;
}
