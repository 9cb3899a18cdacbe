/**
 * Gradient kernels that the TensorFlow.js WASM backend (4.22) lacks and that
 * training needs, so the GAN trains and fine-tunes on WASM too (Node, and
 * browsers without WebGL). Of everything a GanTrainer step of each
 * architecture in models.ts runs, only Conv2DBackpropFilter is missing;
 * Conv2DBackpropInput exists but is too slow to train with, so it is replaced.
 *
 * Each kernel here is built from the backend's own kernels (XNNPACK
 * convolution, transposes), so the arithmetic runs in WASM SIMD, not in JS.
 * Isomorphic: nothing here touches Node or the DOM.
 */
import * as tf from '@tensorflow/tfjs-core';

const BACKEND = 'wasm';

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** Run one of the wasm backend's own kernels on TensorInfos. */
function runWasmKernel(name: string, args: KernelArgs): tf.TensorInfo {
  const kernel = tf.getKernel(name, BACKEND);
  if (!kernel) throw new Error(`wasm backend has no '${name}' kernel, which Conv2DBackpropFilter is built on`);
  return kernel.kernelFunc(args) as tf.TensorInfo;
}

function transpose(x: tf.TensorInfo, perm: number[], backend: tf.KernelBackend): tf.TensorInfo {
  return runWasmKernel(tf.Transpose, { inputs: { x }, attrs: { perm }, backend });
}

/**
 * Conv2DBackpropFilter as one forward convolution, which XNNPACK runs fast:
 *   dW[i, j, c, f] = sum_{n, p, q} xPadded[n, p*sh + i, q*sw + j, c] * dy[n, p, q, f]
 * is a stride-1 convolution of x seen as [C, H, W, N] (channels as batch,
 * batch as channels) with dy seen as a filter [oh, ow, N, F] dilated by the
 * forward stride; its [C, kh, kw, F] output transposed is dW [kh, kw, C, F].
 */
const conv2DBackpropFilter: tf.KernelFunc = ({ inputs, attrs, backend }) => {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (dataFormat === 'NCHW') throw new Error("wasm Conv2DBackpropFilter supports dataFormat 'NHWC' only");
  const [kh, kw] = filterShape;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode);
  const { strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow, inHeight: h, inWidth: w } = info;
  const { top, left } = info.padInfo;
  // Padding after the image so that exactly kh x kw output positions exist; when the forward
  // conv dropped trailing rows/columns this is negative: pad none and crop the extra output.
  const bottom = kh + (oh - 1) * sh - h - top;
  const right = kw + (ow - 1) * sw - w - left;
  const be = backend as tf.KernelBackend;
  const xT = transpose(x, [3, 1, 2, 0], be);
  const dyT = transpose(dy, [1, 2, 0, 3], be);
  const corr = runWasmKernel(tf.Conv2D, {
    inputs: { x: xT, filter: dyT },
    attrs: {
      strides: [1, 1],
      pad: [[0, 0], [top, Math.max(bottom, 0)], [left, Math.max(right, 0)], [0, 0]],
      dataFormat: 'NHWC',
      dilations: [sh, sw],
    },
    backend: be,
  });
  be.disposeData(xT.dataId);
  be.disposeData(dyT.dataId);
  const cropped = bottom < 0 || right < 0
    ? runWasmKernel(tf.Slice, { inputs: { x: corr }, attrs: { begin: [0, 0, 0, 0], size: [-1, kh, kw, -1] }, backend: be })
    : corr;
  if (cropped !== corr) be.disposeData(corr.dataId);
  const dW = transpose(cropped, [1, 2, 0, 3], be);
  be.disposeData(cropped.dataId);
  return dW;
};

/** The dy of a strided conv spread to input resolution: [N, oh*sh, ow*sw, F], zeros between. */
function spread(dy: tf.TensorInfo, sh: number, sw: number, be: tf.KernelBackend, temps: tf.TensorInfo[]): tf.TensorInfo {
  if (sh === 1 && sw === 1) return dy;
  const [n, oh, ow, f] = dy.shape;
  const grid = runWasmKernel(tf.Reshape, { inputs: { x: dy }, attrs: { shape: [n, oh, 1, ow, 1, f] }, backend: be });
  const padded = runWasmKernel(tf.PadV2, {
    inputs: { x: grid }, attrs: { paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0 }, backend: be,
  });
  const out = runWasmKernel(tf.Reshape, { inputs: { x: padded }, attrs: { shape: [n, oh * sh, ow * sw, f] }, backend: be });
  temps.push(grid, padded, out);
  return out;
}

/**
 * W[kh, kw, C, F] to W'[a, b, f, c] = W[kh-1-a, kw-1-b, c, f]: the filter of
 * the transposed convolution. One pass over the weights in JS; the backend's
 * Reverse kernel took longer than the convolution itself.
 */
function flipAndSwap(filter: tf.TensorInfo, be: tf.KernelBackend): tf.TensorInfo {
  const [kh, kw, c, f] = filter.shape;
  const src = be.readSync(filter.dataId) as Float32Array;
  const dst = new Float32Array(src.length);
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const from = ((kh - 1 - a) * kw + (kw - 1 - b)) * c * f;
      const to = (a * kw + b) * f * c;
      for (let ci = 0; ci < c; ci++) {
        for (let fi = 0; fi < f; fi++) dst[to + fi * c + ci] = src[from + ci * f + fi];
      }
    }
  }
  const shape = [kh, kw, f, c];
  return { dataId: be.write(dst, shape, 'float32'), shape, dtype: 'float32' };
}

/**
 * Conv2DBackpropInput (also the forward pass of a transposed conv) as one
 * XNNPACK convolution: dy spread by the stride, padded so the output is the
 * input's size, convolved with the filter flipped and with in/out swapped.
 * The backend's own kernel is a plain loop, about 20x slower than XNNPACK:
 * it was 3/4 of a dcgan training step on WASM. The zeros cost sh*sw times
 * the multiply-adds, which XNNPACK's speed more than repays.
 */
const conv2DBackpropInput: tf.KernelFunc = ({ inputs, attrs, backend }) => {
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const { inputShape, strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  if (dataFormat === 'NCHW') throw new Error("wasm Conv2DBackpropInput supports dataFormat 'NHWC' only");
  const info = tf.backend_util.computeConv2DInfo(
    inputShape, filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode);
  const { strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow, inHeight: h, inWidth: w, filterHeight: kh, filterWidth: kw } = info;
  const be = backend as tf.KernelBackend;
  const temps: tf.TensorInfo[] = [];
  let spreadDy = spread(dy, sh, sw, be, temps);
  // Padding around the spread dy; a negative one crops instead.
  const top = kh - 1 - info.padInfo.top;
  const left = kw - 1 - info.padInfo.left;
  const pads = [top, h - oh * sh - top + kh - 1, left, w - ow * sw - left + kw - 1];
  if (pads.some((p) => p < 0)) {
    const [ct, cb, cl, cr] = pads.map((p) => Math.max(0, -p));
    spreadDy = runWasmKernel(tf.Slice, {
      inputs: { x: spreadDy }, attrs: { begin: [0, ct, cl, 0], size: [-1, oh * sh - ct - cb, ow * sw - cl - cr, -1] }, backend: be,
    });
    temps.push(spreadDy);
  }
  const [pt, pb, pl, pr] = pads.map((p) => Math.max(0, p));
  const swapped = flipAndSwap(filter, be);
  temps.push(swapped);
  const dx = runWasmKernel(tf.Conv2D, {
    inputs: { x: spreadDy, filter: swapped },
    attrs: { strides: [1, 1], pad: [[0, 0], [pt, pb], [pl, pr], [0, 0]], dataFormat: 'NHWC', dilations: [1, 1] },
    backend: be,
  });
  for (const t of temps) be.disposeData(t.dataId);
  return dx;
};

interface TrainingKernel {
  name: string;
  kernelFunc: tf.KernelFunc;
  /** Takes the place of the backend's own kernel, which works but is too slow to train with. */
  replaces?: boolean;
}

const TRAINING_KERNELS: TrainingKernel[] = [
  { name: tf.Conv2DBackpropFilter, kernelFunc: conv2DBackpropFilter },
  { name: tf.Conv2DBackpropInput, kernelFunc: conv2DBackpropInput, replaces: true },
];

const registered = new Set<string>();

/**
 * Register, for backend 'wasm', the training kernels it lacks and the faster
 * Conv2DBackpropInput. Safe to call any number of times and before or after
 * the backend starts; other kernels the backend has are left alone.
 * Returns the names of the kernels registered by this module.
 */
export function registerWasmTrainingKernels(): string[] {
  for (const { name, kernelFunc, replaces } of TRAINING_KERNELS) {
    if (registered.has(name)) continue;
    if (tf.getKernel(name, BACKEND)) {
      if (!replaces) continue;
      tf.unregisterKernel(name, BACKEND);
    }
    tf.registerKernel({ kernelName: name, backendName: BACKEND, kernelFunc });
    registered.add(name);
  }
  return [...registered];
}
