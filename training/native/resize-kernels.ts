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

interface PoolAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number;
}

/** The side s of a pool that averages disjoint s x s blocks tiling the image exactly, else null. */
function blockSide({ filterSize, strides, pad }: PoolAttrs, h: number, w: number): number | null {
  const [fh, fw] = typeof filterSize === 'number' ? [filterSize, filterSize] : filterSize;
  const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
  const tiles = fh === fw && sh === fh && sw === fh && h % fh === 0 && w % fh === 0;
  return tiles && (pad === 'valid' || pad === 0) ? fh : null;
}

const scaled = (a: Float32Array, k: number) => {
  for (let i = 0; i < a.length; i++) a[i] *= k;
  return a;
};

/**
 * An s x s average pool with stride s (a 128 px image seen at 64 px, as training's half-size D sees it) is a
 * block sum over s², its gradient the nearest upsampling over s². The cpu kernels took 0.4 s a step at 128 px.
 */
export const avgPoolBlocksKernel: NativeKernel = {
  kernelName: 'AvgPool',
  run: ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    if (x.shape.length !== 4 || !allFloat32(backend, x)) return null;
    const [n, h, w, c] = x.shape;
    const s = blockSide(attrs as unknown as PoolAttrs, h, w);
    if (s === null) return null;
    const out = [n, h / s, w / s, c];
    return backend.makeTensorInfo(out, 'float32', scaled(upsampleNearestGrad(floats(backend, x), out, s), 1 / (s * s)));
  },
};

export const avgPoolBlocksGradKernel: NativeKernel = {
  kernelName: 'AvgPoolGrad',
  run: ({ inputs, backend, attrs }) => {
    const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
    if (input.shape.length !== 4 || !allFloat32(backend, dy)) return null;
    const [, h, w] = input.shape;
    const s = blockSide(attrs as unknown as PoolAttrs, h, w);
    if (s === null) return null;
    return backend.makeTensorInfo(
      input.shape,
      'float32',
      scaled(upsampleNearest(floats(backend, dy), dy.shape, s), 1 / (s * s)),
    );
  },
};
