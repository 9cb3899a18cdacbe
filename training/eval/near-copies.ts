/**
 * Near-copies: how close, pixel for pixel, a generated face is to one of a
 * person's photos (or its mirror image). A fine-tune that reproduces its
 * photos instead of drawing the person anew scores high here, whatever the
 * recognizers say.
 */
import { IMAGE_SIZE } from '../../src/lib/models.ts';
import { flipHorizontal } from '../../src/lib/images.ts';

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
