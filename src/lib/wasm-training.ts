/**
 * Gradient kernels that the TensorFlow.js WASM backend (4.22) lacks and that
 * training needs, so the GAN trains and fine-tunes on WASM too (Node, and
 * browsers without WebGL). Of everything a GanTrainer step of each
 * architecture in models.ts runs, only Conv2DBackpropFilter is missing.
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

const TRAINING_KERNELS: { name: string; kernelFunc: tf.KernelFunc }[] = [
  { name: tf.Conv2DBackpropFilter, kernelFunc: conv2DBackpropFilter },
];

const registered = new Set<string>();

/**
 * Register, for backend 'wasm', the training kernels it lacks. Safe to call
 * any number of times and before or after the backend starts; a kernel the
 * backend already has (its own, or one registered here) is left alone.
 * Returns the names of the kernels registered by this module.
 */
export function registerWasmTrainingKernels(): string[] {
  for (const { name, kernelFunc } of TRAINING_KERNELS) {
    if (registered.has(name) || tf.getKernel(name, BACKEND)) continue;
    tf.registerKernel({ kernelName: name, backendName: BACKEND, kernelFunc });
    registered.add(name);
  }
  return [...registered];
}
