/** BatchMatMul and _FusedMatMul (dense layers) on sgemm, with batch broadcasting where one side has batch 1. */
import { backend_util, type TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { NativeAddon } from './addon.ts';
import { outputBuffers } from './buffers.ts';
import { allFloat32, floats, sizeOf } from './data.ts';
import { addBias, applyActivation } from './elementwise-kernels.ts';
import type { NativeKernel } from './kernel.ts';

function batchMatMul(
  addon: NativeAddon,
  backend: MathBackendCPU,
  a: TensorInfo,
  b: TensorInfo,
  transA: boolean,
  transB: boolean,
) {
  if (!allFloat32(backend, a, b) || a.shape.length < 2 || b.shape.length < 2) return null;
  const [ra, ca] = a.shape.slice(-2);
  const [rb, cb] = b.shape.slice(-2);
  const m = transA ? ca : ra,
    k = transA ? ra : ca;
  const n = transB ? rb : cb,
    kb = transB ? cb : rb;
  if (k !== kb) return null; // the cpu kernel reports the shape mismatch
  const aBatch = sizeOf(a.shape.slice(0, -2)),
    bBatch = sizeOf(b.shape.slice(0, -2));
  if (aBatch !== bBatch && aBatch !== 1 && bBatch !== 1) return null;
  const batchShape = backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batch = Math.max(aBatch, bBatch);
  if (sizeOf(batchShape) !== batch) return null;
  const av = floats(backend, a),
    bv = floats(backend, b);
  if (m * n * k === 0) return { shape: [...batchShape, m, n], values: new Float32Array(batch * m * n) };
  const out = outputBuffers.take(batch * m * n);
  for (let i = 0; i < batch; i++) {
    const aOff = (aBatch === 1 ? 0 : i) * m * k,
      bOff = (bBatch === 1 ? 0 : i) * k * n;
    addon.matMul(
      av.subarray(aOff, aOff + m * k),
      bv.subarray(bOff, bOff + k * n),
      out.subarray(i * m * n, (i + 1) * m * n),
      transA,
      transB,
      m,
      n,
      k,
    );
  }
  return { shape: [...batchShape, m, n], values: out };
}

interface MatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
  activation?: string;
  leakyreluAlpha?: number;
}

export const matMulKernels = (addon: NativeAddon): NativeKernel[] => [
  {
    kernelName: 'BatchMatMul',
    run: ({ inputs, backend, attrs }) => {
      const { transposeA, transposeB } = attrs as unknown as MatMulAttrs;
      const out = batchMatMul(addon, backend, inputs.a, inputs.b, transposeA, transposeB);
      return out && backend.makeTensorInfo(out.shape, 'float32', out.values);
    },
  },
  {
    kernelName: '_FusedMatMul',
    run: ({ inputs, backend, attrs }) => {
      const { transposeA, transposeB, activation, leakyreluAlpha } = attrs as unknown as MatMulAttrs;
      if (inputs.preluActivationWeights || !allFloat32(backend, inputs.bias)) return null;
      const out = batchMatMul(addon, backend, inputs.a, inputs.b, transposeA, transposeB);
      if (!out) return null;
      if (inputs.bias && !addBias(addon, out.values, out.shape, floats(backend, inputs.bias), inputs.bias.shape))
        return null;
      if (!applyActivation(addon, out.values, activation ?? 'linear', leakyreluAlpha ?? 0.2)) return null;
      return backend.makeTensorInfo(out.shape, 'float32', out.values);
    },
  },
];
