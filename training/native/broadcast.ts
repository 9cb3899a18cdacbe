/**
 * Broadcast layouts for the native binary kernels: both operands' shapes are
 * aligned to the output's, size-1 dims get stride 0, and neighbouring dims
 * that stay contiguous for both operands are merged. Most training shapes
 * collapse to one or two dims; anything needing more than four is left to
 * the cpu kernels.
 */
import { backend_util } from '@tensorflow/tfjs-core';

const MAX_DIMS = 4;

function stridesFor(shape: readonly number[], outShape: readonly number[]): number[] {
  const padded = [...Array(outShape.length - shape.length).fill(1), ...shape];
  const strides = new Array<number>(outShape.length);
  let step = 1;
  for (let d = outShape.length - 1; d >= 0; d--) {
    strides[d] = padded[d] === 1 ? 0 : step;
    step *= padded[d];
  }
  return strides;
}

/** The output shape and the 12-int layout [shape(4), aStrides(4), bStrides(4)], or null when it needs over four dims. */
export function broadcastLayout(
  aShape: readonly number[],
  bShape: readonly number[],
): { outShape: number[]; layout: Int32Array } | null {
  const outShape = backend_util.assertAndGetBroadcastShape([...aShape], [...bShape]);
  const as = stridesFor(aShape, outShape);
  const bs = stridesFor(bShape, outShape);
  const dims: { n: number; a: number; b: number }[] = [];
  outShape.forEach((n, d) => {
    if (n === 1) return;
    const last = dims[dims.length - 1];
    // Merge d into the previous dim when both operands step over it contiguously.
    if (last && last.a === as[d] * n && last.b === bs[d] * n) {
      last.n *= n;
      last.a = as[d];
      last.b = bs[d];
    } else {
      dims.push({ n, a: as[d], b: bs[d] });
    }
  });
  if (dims.length > MAX_DIMS) return null;
  while (dims.length < MAX_DIMS) dims.unshift({ n: 1, a: 0, b: 0 });
  const layout = new Int32Array(3 * MAX_DIMS);
  dims.forEach((dim, i) => {
    layout[i] = dim.n;
    layout[MAX_DIMS + i] = dim.a;
    layout[2 * MAX_DIMS + i] = dim.b;
  });
  return { outShape, layout };
}
