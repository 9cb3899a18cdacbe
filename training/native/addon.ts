/**
 * Loading the compiled kernels (native/build/Release/facegan_native.node).
 * Loading never throws: a missing or broken build becomes a reason string
 * that the CLI shows when it falls back to another backend.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One NHWC convolution: [batch, inH, inW, inC, outH, outW, outC, kH, kW, strideH, strideW, dilH, dilW, padTop, padLeft]. */
export type ConvDims = Int32Array;

/** Every function fills its last typed-array argument in place and checks lengths first (RangeError). */
export interface NativeAddon {
  conv2d(x: Float32Array, filter: Float32Array, y: Float32Array, dims: ConvDims): void;
  conv2dBackpropInput(dy: Float32Array, filter: Float32Array, dx: Float32Array, dims: ConvDims): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dfilter: Float32Array, dims: ConvDims): void;
  matMul(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
  ): void;
  unary(op: number, x: Float32Array, y: Float32Array, alpha: number): void;
  /** layout: shape[4], a's strides[4], b's strides[4] (0 repeats). */
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, layout: Int32Array): void;
  compare(op: number, a: Float32Array, b: Float32Array, out: Uint8Array, layout: Int32Array): void;
  /** x as [outer, mid, inner] summed over mid, times scale. */
  reduceSum(x: Float32Array, out: Float32Array, outer: number, mid: number, inner: number, scale: number): void;
  select(cond: Uint8Array, a: Float32Array, b: Float32Array, out: Float32Array): void;
  batchNorm(
    x: Float32Array,
    channels: number,
    mean: Float32Array,
    variance: Float32Array,
    scale: Float32Array | null,
    offset: Float32Array | null,
    eps: number,
    y: Float32Array,
  ): void;
  /** dx = dy where x > 0, else alpha * dy (relu: alpha 0, NaN where x is NaN). */
  activationGrad(dy: Float32Array, x: Float32Array, dx: Float32Array, alpha: number, relu: boolean): void;
  /** Per-channel sum(dy) and sum(dy * (x - mean)) for batch norm's gradient. */
  batchNormGradStats(
    x: Float32Array,
    dy: Float32Array,
    channels: number,
    mean: Float32Array,
    sumDy: Float64Array,
    sumDyXmu: Float64Array,
  ): void;
  /** Per-channel mean and biased variance of x [..., channels] (tf.moments over every axis but the last). */
  moments(x: Float32Array, channels: number, mean: Float32Array, variance: Float32Array): void;
  /** Batch norm's training-mode gradient in closed form: dx, and per channel dgamma and dbeta. */
  batchNormTrainGrad(
    x: Float32Array,
    dy: Float32Array,
    channels: number,
    mean: Float32Array,
    variance: Float32Array,
    gamma: Float32Array,
    eps: number,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
  ): void;
  /**
   * One Adam step over a variable in one pass, in tfjs-core's order of float32 operations. constants:
   * [beta1, beta2, 1 - beta1, 1 - beta2, 1 - beta1^t, 1 - beta2^t, epsilon, -learningRate].
   */
  adamStep(
    value: Float32Array,
    m: Float32Array,
    v: Float32Array,
    grad: Float32Array,
    newValue: Float32Array,
    newM: Float32Array,
    newV: Float32Array,
    constants: Float64Array,
  ): void;
  /** Threads of the addon's pool (OpenBLAS itself stays single-threaded inside it). */
  setThreads(n: number): void;
  /** Convolutions on oneDNN (where it was compiled in) or on OpenBLAS. */
  useOneDnn(on: boolean): void;
  /**
   * oneDNN convolutions on bf16 copies of their inputs, accumulating and writing f32 (no effect on OpenBLAS).
   * Returns the mode now in force.
   */
  useBf16(on: boolean): boolean;
  /**
   * oneDNN: its version where compiled in, else ""; convPath: the library convolutions run on now;
   * bf16: whether they read bf16; bf16Native: whether the CPU has bf16 dot products (AVX512_BF16, AMX).
   */
  info(): { blasConfig: string; threads: number; oneDnn: string; convPath: string; bf16: boolean; bf16Native: boolean };
}

export type AddonLoad = { ok: true; addon: NativeAddon } | { ok: false; reason: string };

const buildDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'build');
export const ADDON_PATH = join(buildDir, 'Release', 'facegan_native.node');

let cached: AddonLoad | null = null;

export function loadAddon(): AddonLoad {
  if (cached) return cached;
  cached = tryLoad();
  return cached;
}

function tryLoad(): AddonLoad {
  const reasonFile = join(buildDir, 'UNAVAILABLE');
  if (existsSync(reasonFile))
    return { ok: false, reason: `native kernels were not built: ${readFileSync(reasonFile, 'utf8').trim()}` };
  if (!existsSync(ADDON_PATH))
    return { ok: false, reason: 'native kernels are not built (run `node native/build.mjs`)' };
  try {
    // oneDNN's OpenMP threads would otherwise spin between convolutions, taking the core that the addon's own
    // pool needs for the element-wise kernels (measured: ~40% more CPU time per step). libgomp reads this when
    // the addon loads it; a value set by the user wins.
    process.env.OMP_WAIT_POLICY ??= 'passive';
    const addon = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
    return { ok: true, addon };
  } catch (err) {
    return { ok: false, reason: `native kernels failed to load: ${err instanceof Error ? err.message : String(err)}` };
  }
}
