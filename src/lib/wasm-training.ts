/**
 * Gradient kernels that the TensorFlow.js WASM backend (4.22) lacks and that
 * training needs, so the GAN trains and fine-tunes on WASM too (Node, and
 * browsers without WebGL). Of everything a GanTrainer step of each
 * architecture in models.ts runs, only Conv2DBackpropFilter is missing;
 * Conv2DBackpropInput exists but is too slow to train with, so it is replaced.
 * It is also G's transposed convolution, so every page that runs on WASM
 * registers these kernels (browser-backends.ts) and draws faces faster too.
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
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
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
      pad: [
        [0, 0],
        [top, Math.max(bottom, 0)],
        [left, Math.max(right, 0)],
        [0, 0],
      ],
      dataFormat: 'NHWC',
      dilations: [sh, sw],
    },
    backend: be,
  });
  be.disposeData(xT.dataId);
  be.disposeData(dyT.dataId);
  const cropped =
    bottom < 0 || right < 0
      ? runWasmKernel(tf.Slice, {
          inputs: { x: corr },
          attrs: { begin: [0, 0, 0, 0], size: [-1, kh, kw, -1] },
          backend: be,
        })
      : corr;
  if (cropped !== corr) be.disposeData(corr.dataId);
  const dW = transpose(cropped, [1, 2, 0, 3], be);
  be.disposeData(cropped.dataId);
  return dW;
};

/**
 * One output phase of a transposed conv along one axis: the output positions
 * i = stride*u + phase (u < size) take filter taps first, first+stride, ...
 * (count of them), and read dy from row u + shift - (count - 1) on.
 */
interface Phase {
  size: number;
  first: number;
  count: number;
  shift: number;
}

function phaseOf(phase: number, stride: number, kernel: number, padBefore: number, inSize: number): Phase {
  const first = (phase + padBefore) % stride;
  return {
    size: Math.ceil((inSize - phase) / stride),
    first,
    count: Math.max(0, Math.ceil((kernel - first) / stride)),
    shift: (phase + padBefore - first) / stride,
  };
}

/**
 * The sub-filter of one phase as a forward-conv filter:
 * W'[t, s, f, c] = W[rows.first + sh*(rows.count-1-t), cols.first + sw*(cols.count-1-s), c, f].
 * One pass over the weights in JS; the backend's Reverse kernel took longer
 * than the convolution itself.
 */
function phaseFilter(
  w: Float32Array,
  shape: number[],
  rows: Phase,
  cols: Phase,
  sh: number,
  sw: number,
  be: tf.KernelBackend,
): tf.TensorInfo {
  const [, kw, c, f] = shape;
  const out = new Float32Array(rows.count * cols.count * f * c);
  for (let t = 0; t < rows.count; t++) {
    for (let u = 0; u < cols.count; u++) {
      const from = ((rows.first + sh * (rows.count - 1 - t)) * kw + cols.first + sw * (cols.count - 1 - u)) * c * f;
      const to = (t * cols.count + u) * f * c;
      for (let ci = 0; ci < c; ci++) {
        for (let fi = 0; fi < f; fi++) out[to + fi * c + ci] = w[from + ci * f + fi];
      }
    }
  }
  const outShape = [rows.count, cols.count, f, c];
  return { dataId: be.write(out, outShape, 'float32'), shape: outShape, dtype: 'float32' };
}

/**
 * Each filter's phase sub-filters, kept while the filter's data lives. A generator's weights stay put between calls
 * (a slider redraws one face per animation frame), so a filter is split, and packed by XNNPACK, which caches its
 * operator by filter, once rather than on every call: for one face that was most of the time. Training replaces
 * weights every step; sub-filters of a filter whose data is gone are freed on the next call (sweepSubFilters).
 */
const subFilters = new Map<object, Map<string, tf.TensorInfo>>();

function subFilter(
  filter: tf.TensorInfo,
  rows: Phase,
  cols: Phase,
  sh: number,
  sw: number,
  be: tf.KernelBackend,
): tf.TensorInfo {
  let byPhase = subFilters.get(filter.dataId);
  if (!byPhase) subFilters.set(filter.dataId, (byPhase = new Map()));
  const key = `${rows.first} ${rows.count} ${cols.first} ${cols.count} ${sh} ${sw}`;
  let sub = byPhase.get(key);
  if (!sub) {
    sub = phaseFilter(be.readSync(filter.dataId) as Float32Array, filter.shape, rows, cols, sh, sw, be);
    byPhase.set(key, sub);
  }
  return sub;
}

/** How many sub-filters are kept now (for tests). */
export function keptSubFilters(): number {
  let n = 0;
  for (const byPhase of subFilters.values()) n += byPhase.size;
  return n;
}

/** Free the sub-filters of filters the backend no longer holds. */
function sweepSubFilters(be: tf.KernelBackend): void {
  const data = (be as unknown as { dataIdMap: { has(id: object): boolean } }).dataIdMap;
  for (const [id, byPhase] of subFilters) {
    if (data.has(id)) continue;
    for (const sub of byPhase.values()) be.disposeData(sub.dataId);
    subFilters.delete(id);
  }
}

/** dx for one (row, column) phase, [N, rows.size, cols.size, C]: a stride-1 conv of dy. */
function phaseConv(
  dy: tf.TensorInfo,
  filterInfo: tf.TensorInfo,
  rows: Phase,
  cols: Phase,
  sh: number,
  sw: number,
  be: tf.KernelBackend,
): tf.TensorInfo {
  const wShape = filterInfo.shape;
  const [n, oh, ow] = dy.shape;
  const c = wShape[2];
  if (rows.count === 0 || cols.count === 0) {
    const shape = [n, rows.size, cols.size, c];
    return {
      dataId: be.write(new Float32Array(n * rows.size * cols.size * c), shape, 'float32'),
      shape,
      dtype: 'float32',
    };
  }
  const temps: tf.TensorInfo[] = [];
  // Padding around dy; a negative one crops instead.
  const pads = [rows.count - 1 - rows.shift, 0, cols.count - 1 - cols.shift, 0];
  pads[1] = rows.size - oh - pads[0] + rows.count - 1;
  pads[3] = cols.size - ow - pads[2] + cols.count - 1;
  let x = dy;
  if (pads.some((p) => p < 0)) {
    const [ct, cb, cl, cr] = pads.map((p) => Math.max(0, -p));
    x = runWasmKernel(tf.Slice, {
      inputs: { x: dy },
      attrs: { begin: [0, ct, cl, 0], size: [-1, oh - ct - cb, ow - cl - cr, -1] },
      backend: be,
    });
    temps.push(x);
  }
  const [pt, pb, pl, pr] = pads.map((p) => Math.max(0, p));
  const filter = subFilter(filterInfo, rows, cols, sh, sw, be);
  const out = runWasmKernel(tf.Conv2D, {
    inputs: { x, filter },
    attrs: {
      strides: [1, 1],
      pad: [
        [0, 0],
        [pt, pb],
        [pl, pr],
        [0, 0],
      ],
      dataFormat: 'NHWC',
      dilations: [1, 1],
    },
    backend: be,
  });
  for (const t of temps) be.disposeData(t.dataId);
  return out;
}

/**
 * Interleave sh x sw phase outputs into dx [N, H, W, C]; phases[r][q] holds
 * rows r, r+sh, ... and columns q, q+sw, .... Copies runs of C channels in
 * JS: the backend's 6-D transpose took longer than the convolutions.
 */
function interleave(
  phases: tf.TensorInfo[][],
  n: number,
  h: number,
  w: number,
  c: number,
  be: tf.KernelBackend,
): tf.TensorInfo {
  const dx = new Float32Array(n * h * w * c);
  phases.forEach((row, r) =>
    row.forEach((phase, q) => {
      const [, rows, cols] = phase.shape;
      const src = be.readSync(phase.dataId) as Float32Array;
      const [sh, sw] = [phases.length, row.length];
      for (let b = 0; b < n; b++) {
        for (let u = 0; u < rows; u++) {
          const to = ((b * h + sh * u + r) * w + q) * c;
          const from = (b * rows + u) * cols * c;
          for (let v = 0; v < cols; v++) dx.set(src.subarray(from + v * c, from + (v + 1) * c), to + sw * v * c);
        }
      }
    }),
  );
  const shape = [n, h, w, c];
  return { dataId: be.write(dx, shape, 'float32'), shape, dtype: 'float32' };
}

/**
 * Conv2DBackpropInput (also the forward pass of a transposed conv) as
 * XNNPACK convolutions. With stride s, output rows r, r+s, r+2s, ... only
 * see the filter taps r', r'+s, ...: so each of the sh*sw output phases is a
 * stride-1 conv of dy with its own sub-filter, and the phases interleave into
 * dx. No multiply-add is spent on the zeros a stride-spread dy would have.
 * The backend's own kernel is a plain loop, about 20x slower than XNNPACK:
 * it was 3/4 of a dcgan training step on WASM.
 */
const conv2DBackpropInput: tf.KernelFunc = ({ inputs, attrs, backend }) => {
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const { inputShape, strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  if (dataFormat === 'NCHW') throw new Error("wasm Conv2DBackpropInput supports dataFormat 'NHWC' only");
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { strideHeight: sh, strideWidth: sw, inHeight: h, inWidth: w, filterHeight: kh, filterWidth: kw } = info;
  const be = backend as tf.KernelBackend;
  sweepSubFilters(be);
  const phases: tf.TensorInfo[][] = [];
  for (let r = 0; r < sh; r++) {
    const rows = phaseOf(r, sh, kh, info.padInfo.top, h);
    phases.push([]);
    for (let q = 0; q < sw; q++) {
      const cols = phaseOf(q, sw, kw, info.padInfo.left, w);
      phases[r].push(phaseConv(dy, filter, rows, cols, sh, sw, be));
    }
  }
  if (sh === 1 && sw === 1) return phases[0][0];
  const dx = interleave(phases, info.batchSize, h, w, info.inChannels, be);
  for (const t of phases.flat()) be.disposeData(t.dataId);
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
 * Conv2DBackpropInput. Call it once the backend is imported, before or after
 * it starts; calling it again does nothing. Other kernels are left alone.
 * Returns the names of the kernels registered by this module.
 */
export function registerWasmTrainingKernels(): string[] {
  // The backend registers its own kernels when imported: had it not been yet, it would later overwrite ours.
  if (!tf.findBackendFactory(BACKEND)) {
    throw new Error("import '@tensorflow/tfjs-backend-wasm' before registering its training kernels");
  }
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
