/**
 * Element-wise, comparison, selection, reduction and batch-norm kernels.
 * These dominate a training step once the convolutions are fast: batch
 * norm's moments, its gradient and Adam are all built from them.
 */
import { util, type TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from './addon.ts';
import { broadcastLayout } from './broadcast.ts';
import { outputBuffers } from './buffers.ts';
import { allFloat32, floats, sizeOf, values } from './data.ts';
import type { KernelArgs, NativeKernel } from './kernel.ts';

/** The addon's UnaryOp codes (native/src/kernels.h). */
const UNARY = {
  Relu: 0,
  LeakyRelu: 1,
  Tanh: 2,
  Sigmoid: 3,
  Neg: 4,
  Square: 5,
  Sqrt: 6,
  Rsqrt: 7,
  Abs: 8,
  Exp: 9,
  Log1p: 10,
  Step: 11,
  Log: 12,
  Reciprocal: 13,
  Relu6: 14,
  Elu: 15,
} as const;

/** The addon's BinaryOp codes, by TensorFlow.js kernel name. */
const BINARY = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3, SquaredDifference: 4, Maximum: 5, Minimum: 6 } as const;

const COMPARE = { Greater: 0, GreaterEqual: 1, Less: 2, LessEqual: 3, Equal: 4 } as const;

/** Fused activations of FusedConv2D / _FusedMatMul, in place; false for ones run elsewhere (prelu). */
export function applyActivation(addon: NativeAddon, v: Float32Array, activation: string, leakyAlpha: number): boolean {
  const op = (
    {
      relu: UNARY.Relu,
      relu6: UNARY.Relu6,
      elu: UNARY.Elu,
      sigmoid: UNARY.Sigmoid,
      leakyrelu: UNARY.LeakyRelu,
    } as Record<string, number>
  )[activation];
  if (activation === 'linear') return true;
  if (op === undefined) return false;
  addon.unary(op, v, v, leakyAlpha);
  return true;
}

/** out += bias, broadcast, in place; false when bias would change the output's shape. */
export function addBias(
  addon: NativeAddon,
  out: Float32Array,
  outShape: number[],
  bias: Float32Array,
  biasShape: number[],
): boolean {
  const plan = broadcastLayout(outShape, biasShape);
  if (!plan || !util.arraysEqual(plan.outShape, outShape)) return false;
  addon.binary(BINARY.Add, out, bias, out, plan.layout);
  return true;
}

function unaryKernel(
  kernelName: keyof typeof UNARY,
  addon: NativeAddon,
  alphaOf?: (a: KernelArgs['attrs']) => number,
): NativeKernel {
  return {
    kernelName,
    run: ({ inputs, backend, attrs }) => {
      const { x } = inputs;
      if (!allFloat32(backend, x)) return null;
      const y = outputBuffers.take(sizeOf(x.shape));
      addon.unary(UNARY[kernelName], floats(backend, x), y, alphaOf ? alphaOf(attrs) : 0);
      return backend.makeTensorInfo(x.shape, 'float32', y);
    },
  };
}

function binaryKernel(kernelName: keyof typeof BINARY, addon: NativeAddon): NativeKernel {
  return {
    kernelName,
    run: ({ inputs, backend }) => {
      const { a, b } = inputs;
      if (!allFloat32(backend, a, b)) return null;
      const plan = broadcastLayout(a.shape, b.shape);
      if (!plan) return null;
      const out = outputBuffers.take(sizeOf(plan.outShape));
      if (out.length > 0) addon.binary(BINARY[kernelName], floats(backend, a), floats(backend, b), out, plan.layout);
      return backend.makeTensorInfo(plan.outShape, 'float32', out);
    },
  };
}

function compareKernel(kernelName: keyof typeof COMPARE, addon: NativeAddon): NativeKernel {
  return {
    kernelName,
    run: ({ inputs, backend }) => {
      const { a, b } = inputs;
      if (!allFloat32(backend, a, b)) return null;
      const plan = broadcastLayout(a.shape, b.shape);
      if (!plan) return null;
      const out = new Uint8Array(sizeOf(plan.outShape));
      if (out.length > 0) addon.compare(COMPARE[kernelName], floats(backend, a), floats(backend, b), out, plan.layout);
      return backend.makeTensorInfo(plan.outShape, 'bool', out);
    },
  };
}

/** Sum or mean over a contiguous run of axes, seen as [outer, mid, inner]; other axis sets go to the cpu kernel. */
function reduceKernel(kernelName: 'Sum' | 'Mean', addon: NativeAddon): NativeKernel {
  return {
    kernelName,
    run: ({ inputs, backend, attrs }) => {
      const { x } = inputs;
      if (!allFloat32(backend, x)) return null;
      const { axis, keepDims } = attrs as unknown as { axis: number | number[]; keepDims: boolean };
      const axes = util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
      if (axes.some((ax, i) => i > 0 && ax !== axes[i - 1] + 1)) return null;
      const first = axes[0] ?? 0,
        end = axes.length ? axes[axes.length - 1] + 1 : 0;
      const outer = sizeOf(x.shape.slice(0, first)),
        mid = sizeOf(x.shape.slice(first, end)),
        inner = sizeOf(x.shape.slice(end));
      const outShape = keepDims
        ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
        : x.shape.filter((_, i) => !axes.includes(i));
      const out = new Float32Array(outer * inner);
      if (out.length > 0 && mid > 0)
        addon.reduceSum(floats(backend, x), out, outer, mid, inner, kernelName === 'Mean' ? 1 / mid : 1);
      else if (kernelName === 'Mean') out.fill(NaN);
      return backend.makeTensorInfo(outShape, 'float32', out);
    },
  };
}

function batchNormKernel(addon: NativeAddon): NativeKernel {
  return {
    kernelName: 'FusedBatchNorm',
    run: ({ inputs, backend, attrs }) => {
      const { x, mean, variance, scale, offset } = inputs;
      if (!allFloat32(backend, x, mean, variance, scale, offset) || x.shape.length === 0) return null;
      const channels = x.shape[x.shape.length - 1];
      // The cpu kernel cycles each operand over the flat index; per-channel or scalar operands mean the same thing here.
      const perChannel = (t?: TensorInfo) => !t || [1, channels].includes(sizeOf(t.shape));
      if (channels === 0 || ![mean, variance, scale, offset].every(perChannel)) return null;
      const eps = (attrs as { varianceEpsilon?: number }).varianceEpsilon ?? 0.001;
      const y = outputBuffers.take(sizeOf(x.shape));
      addon.batchNorm(
        floats(backend, x),
        channels,
        floats(backend, mean),
        floats(backend, variance),
        scale ? floats(backend, scale) : null,
        offset ? floats(backend, offset) : null,
        eps,
        y,
      );
      return backend.makeTensorInfo(x.shape, 'float32', y);
    },
  };
}

function selectKernel(addon: NativeAddon): NativeKernel {
  return {
    kernelName: 'Select',
    run: ({ inputs, backend }) => {
      const { condition, t, e } = inputs;
      if (condition.dtype !== 'bool' || !allFloat32(backend, t, e)) return null;
      if (!util.arraysEqual(condition.shape, t.shape) || !util.arraysEqual(t.shape, e.shape)) return null;
      const cond = values(backend, condition);
      if (!(cond instanceof Uint8Array)) return null;
      const out = outputBuffers.take(sizeOf(t.shape));
      addon.select(cond, floats(backend, t), floats(backend, e), out);
      return backend.makeTensorInfo(t.shape, 'float32', out);
    },
  };
}

const alphaAttr = (fallback: number) => (attrs: KernelArgs['attrs']) =>
  Number((attrs as { alpha?: number }).alpha ?? fallback);

export const elementwiseKernels = (addon: NativeAddon): NativeKernel[] => [
  ...(
    [
      'Relu',
      'Tanh',
      'Sigmoid',
      'Neg',
      'Square',
      'Sqrt',
      'Rsqrt',
      'Abs',
      'Exp',
      'Log1p',
      'Log',
      'Reciprocal',
      'Relu6',
      'Elu',
    ] as const
  ).map((name) => unaryKernel(name, addon)),
  unaryKernel('LeakyRelu', addon, alphaAttr(0.2)),
  unaryKernel('Step', addon, alphaAttr(0)),
  ...(Object.keys(BINARY) as (keyof typeof BINARY)[]).map((name) => binaryKernel(name, addon)),
  ...(Object.keys(COMPARE) as (keyof typeof COMPARE)[]).map((name) => compareKernel(name, addon)),
  reduceKernel('Sum', addon),
  reduceKernel('Mean', addon),
  batchNormKernel(addon),
  selectKernel(addon),
  tileKernel,
];

/**
 * Tile as repeated block copies: batch norm's gradient tiles per-channel
 * vectors to full activations, which the cpu kernel does one index at a time.
 */
export function tileFloats(x: Float32Array, shape: readonly number[], reps: readonly number[]): Float32Array {
  if (reps.includes(0) || x.length === 0) return new Float32Array(0);
  let cur = x;
  const curShape = [...shape];
  for (let d = shape.length - 1; d >= 0; d--) {
    if (reps[d] === 1) continue;
    const outer = sizeOf(curShape.slice(0, d)),
      block = sizeOf(curShape.slice(d)),
      span = block * reps[d];
    const next = outputBuffers.take(outer * span); // every element is written below
    for (let o = 0; o < outer; o++) {
      const base = o * span;
      next.set(cur.subarray(o * block, (o + 1) * block), base);
      // Double the filled part until the run is complete: log2(reps) memcpys.
      for (let filled = block; filled < span; filled *= 2)
        next.copyWithin(base + filled, base, base + Math.min(filled, span - filled));
    }
    cur = next;
    curShape[d] *= reps[d];
  }
  return cur === x ? x.slice() : cur;
}

export const tileKernel: NativeKernel = {
  kernelName: 'Tile',
  run: ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    const { reps } = attrs as unknown as { reps: number[] };
    if (!allFloat32(backend, x) || reps.length !== x.shape.length || reps.some((r) => !Number.isInteger(r) || r < 0))
      return null;
    const out = tileFloats(floats(backend, x), x.shape, reps);
    return backend.makeTensorInfo(
      x.shape.map((d, i) => d * reps[i]),
      'float32',
      out,
    );
  },
};

/** Kernels only the native backend has, called from its gradients (gradients.ts). */
export const ACTIVATION_GRAD = 'FaceganActivationGrad';

export const activationGradKernel = (addon: NativeAddon): NativeKernel => ({
  kernelName: ACTIVATION_GRAD,
  run: ({ inputs, backend, attrs }) => {
    const { dy, x } = inputs;
    if (!allFloat32(backend, dy, x) || !util.arraysEqual(dy.shape, x.shape)) {
      throw new Error(`${ACTIVATION_GRAD} needs float32 dy and x of one shape, got ${dy.shape} and ${x.shape}`);
    }
    const { alpha, relu } = attrs as unknown as { alpha: number; relu: boolean };
    const dx = outputBuffers.take(sizeOf(x.shape));
    addon.activationGrad(floats(backend, dy), floats(backend, x), dx, alpha, relu);
    return backend.makeTensorInfo(x.shape, 'float32', dx);
  },
});
