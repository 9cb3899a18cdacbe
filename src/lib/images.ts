/**
 * Image preprocessing shared by the Node trainer and the page: a face-centred
 * square crop, an anti-aliased resize to the model's size, and scaling to [-1, 1]; plus
 * the way back (model output to RGBA bytes) and sample grids.
 * Pure TypeScript on pixel arrays, so both runtimes produce the same numbers.
 */
import { IMAGE_SIZE } from './models.ts';

/** Decoded pixels, row-major, `channels` bytes per pixel (3 = RGB, 4 = RGBA). */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels: number;
}

export interface CropBox {
  left: number;
  top: number;
  size: number;
}

/**
 * The square around the face in a CelebA-aligned image (178x218, or any
 * scale of it): eyes are level at about 0.51 of the height, the mouth at 0.69.
 * A side of 0.8 of the width keeps forehead to chin and a little hair, which
 * is the usual "crop 140, resize to 64" of CelebA GAN work.
 */
export function alignedFaceCrop(width: number, height: number): CropBox {
  const size = Math.max(1, Math.round(Math.min(width, height) * 0.8));
  const cx = width / 2;
  const cy = height * 0.56;
  const left = Math.round(Math.min(Math.max(cx - size / 2, 0), width - size));
  const top = Math.round(Math.min(Math.max(cy - size / 2, 0), height - size));
  return { left, top, size };
}

/** The largest centred square: for photos that are not CelebA-aligned. */
export function centreCrop(width: number, height: number): CropBox {
  const size = Math.min(width, height);
  return { left: Math.floor((width - size) / 2), top: Math.floor((height - size) / 2), size };
}

/**
 * Crop `box` and resize it to out x out by area averaging (each output pixel
 * is the exact mean of the source area it covers): anti-aliased for the
 * large downscales that faces need, and exact for integer factors.
 * Returns RGB floats in [-1, 1], row-major HWC.
 */
export function cropResize(img: RawImage, box: CropBox, out = IMAGE_SIZE): Float32Array {
  const { data, width, channels } = img;
  const result = new Float32Array(out * out * 3);
  const scale = box.size / out;
  for (let oy = 0; oy < out; oy++) {
    const y0 = box.top + oy * scale;
    const y1 = y0 + scale;
    for (let ox = 0; ox < out; ox++) {
      const x0 = box.left + ox * scale;
      const x1 = x0 + scale;
      let r = 0,
        g = 0,
        b = 0,
        area = 0;
      for (let sy = Math.floor(y0); sy < Math.ceil(y1); sy++) {
        const wy = Math.min(y1, sy + 1) - Math.max(y0, sy);
        if (wy <= 0 || sy < 0 || sy >= img.height) continue;
        for (let sx = Math.floor(x0); sx < Math.ceil(x1); sx++) {
          const wx = Math.min(x1, sx + 1) - Math.max(x0, sx);
          if (wx <= 0 || sx < 0 || sx >= width) continue;
          const w = wx * wy;
          const i = (sy * width + sx) * channels;
          r += data[i] * w;
          g += data[i + 1] * w;
          b += data[i + 2] * w;
          area += w;
        }
      }
      const o = (oy * out + ox) * 3;
      const k = area > 0 ? 1 / (127.5 * area) : 0;
      result[o] = r * k - 1;
      result[o + 1] = g * k - 1;
      result[o + 2] = b * k - 1;
    }
  }
  return result;
}

/** CelebA-aligned photo to the model's input: face crop, size x size (64 unless told), [-1, 1]. */
export function preprocessAligned(img: RawImage, size: number = IMAGE_SIZE): Float32Array {
  return cropResize(img, alignedFaceCrop(img.width, img.height), size);
}

/** Mirror an HWC float image left-right into `out` (may not alias `src`). */
export function flipHorizontal(src: Float32Array, out: Float32Array, size = IMAGE_SIZE): Float32Array {
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const s = (y * size + x) * 3;
      const d = (y * size + (size - 1 - x)) * 3;
      out[d] = src[s];
      out[d + 1] = src[s + 1];
      out[d + 2] = src[s + 2];
    }
  }
  return out;
}

/**
 * The side of each of `count` square images held in `length` values of
 * `channels` each: how a page reads a face's size (64 or 128) off pixels alone.
 */
export function squareSide(length: number, count = 1, channels = 3): number {
  const side = Math.round(Math.sqrt(length / (count * channels)));
  if (side < 1 || side * side * channels * count !== length)
    throw new Error(`${length} values are not ${count} square image(s) of ${channels} channels`);
  return side;
}

/** Model output ([-1, 1] floats, HWC, 3 channels) to RGBA bytes for a canvas or PNG. */
export function toRgba(pixels: Float32Array | number[], offset = 0, size = IMAGE_SIZE): Uint8ClampedArray {
  const rgba = new Uint8ClampedArray(size * size * 4);
  for (let p = 0; p < size * size; p++) {
    for (let c = 0; c < 3; c++) rgba[p * 4 + c] = Math.round((pixels[offset + p * 3 + c] + 1) * 127.5);
    rgba[p * 4 + 3] = 255;
  }
  return rgba;
}

/**
 * Tile a batch [N, size, size, 3] of [-1, 1] floats into an RGBA grid with
 * `cols` columns and a `gap`-pixel border.
 */
export function gridRgba(batch: Float32Array, count: number, cols: number, size = IMAGE_SIZE, gap = 2): RawImage {
  const rows = Math.ceil(count / cols);
  const width = cols * size + (cols + 1) * gap;
  const height = rows * size + (rows + 1) * gap;
  const data = new Uint8ClampedArray(width * height * 4).fill(255);
  for (let n = 0; n < count; n++) {
    const tile = toRgba(batch, n * size * size * 3, size);
    const ox = gap + (n % cols) * (size + gap);
    const oy = gap + Math.floor(n / cols) * (size + gap);
    for (let y = 0; y < size; y++)
      data.set(tile.subarray(y * size * 4, (y + 1) * size * 4), ((oy + y) * width + ox) * 4);
  }
  return { data, width, height, channels: 4 };
}
