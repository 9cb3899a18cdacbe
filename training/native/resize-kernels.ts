/**
 * Nearest-neighbour upsampling by a whole factor (UpSampling2D, a resize-
 * convolution generator's last stage) and its gradient, as row copies and
 * block sums. The cpu kernels compute each element's source index in floating
 * point: at 128 px they took seconds per training step. Other resizes (corner-
 * aligned, fractional factors) go to the cpu kernels.
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { outputBuffers } from './buffers.ts';
import { allFloat32, floats } from './data.ts';
import type { NativeKernel } from './kernel.ts';

/** The whole factor from [h, w] to [outH, outW], or null when there is none (or corners are aligned). */
function wholeFactor(inH: number, inW: number, outH: number, outW: number, alignCorners: boolean): number | null {
  const s = outH / inH;
  // Without corner alignment (with or without half-pixel centres) source row y / s, rounded down, for a whole s.
  return !alignCorners && Number.isInteger(s) && s >= 1 && outW === inW * s ? s : null;
}

/** [n, h, w, c] to [n, h s, w s, c]: each pixel repeated s times along a row, each row s times. */
export function upsampleNearest(x: Float32Array, [n, h, w, c]: readonly number[], s: number): Float32Array {
  const outRow = w * s * c;
  const out = outputBuffers.take(n * h * s * outRow);
  for (let img = 0; img < n; img++)
    for (let y = 0; y < h; y++) {
      const src = (img * h + y) * w * c;
      const dst = (img * h + y) * s * outRow;
      for (let ix = 0; ix < w; ix++) {
        const p = src + ix * c;
        for (let r = 0; r < s; r++) {
          const q = dst + (ix * s + r) * c;
          for (let ch = 0; ch < c; ch++) out[q + ch] = x[p + ch];
        }
      }
      for (let r = 1; r < s; r++) out.copyWithin(dst + r * outRow, dst, dst + outRow);
    }
  return out;
}

/** The gradient: each input pixel gets the sum of the s x s block it was copied to. */
export function upsampleNearestGrad(dy: Float32Array, [n, h, w, c]: readonly number[], s: number): Float32Array {
  const dx = outputBuffers.take(n * h * w * c);
  dx.fill(0);
  const outRow = w * s * c;
  for (let img = 0; img < n; img++)
    for (let y = 0; y < h; y++) {
      const base = (img * h + y) * w * c;
      for (let r = 0; r < s; r++) {
        let p = ((img * h + y) * s + r) * outRow;
        for (let ix = 0; ix < w; ix++) {
          const q = base + ix * c;
          for (let rx = 0; rx < s; rx++, p += c) for (let ch = 0; ch < c; ch++) dx[q + ch] += dy[p + ch];
        }
      }
    }
  return dx;
}

interface ResizeAttrs {
  alignCorners: boolean;
  size: [number, number];
}

export const resizeNearestKernel: NativeKernel = {
  kernelName: 'ResizeNearestNeighbor',
  run: ({ inputs, backend, attrs }) => {
    const { images } = inputs;
    const { alignCorners, size } = attrs as unknown as ResizeAttrs;
    if (images.shape.length !== 4 || !allFloat32(backend, images)) return null;
    const [n, h, w, c] = images.shape;
    const s = wholeFactor(h, w, size[0], size[1], alignCorners);
    if (s === null) return null;
    return backend.makeTensorInfo(
      [n, h * s, w * s, c],
      'float32',
      upsampleNearest(floats(backend, images), images.shape, s),
    );
  },
};

export const resizeNearestGradKernel: NativeKernel = {
  kernelName: 'ResizeNearestNeighborGrad',
  run: ({ inputs, backend, attrs }) => {
    const { images, dy } = inputs as { images: TensorInfo; dy: TensorInfo };
    const { alignCorners } = attrs as unknown as ResizeAttrs;
    if (images.shape.length !== 4 || !allFloat32(backend, dy)) return null;
    const [, h, w] = images.shape;
    const s = wholeFactor(h, w, dy.shape[1], dy.shape[2], alignCorners);
    if (s === null) return null;
    return backend.makeTensorInfo(images.shape, 'float32', upsampleNearestGrad(floats(backend, dy), images.shape, s));
  },
};
