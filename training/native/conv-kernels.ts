/**
 * Conv2D (plain and fused), Conv2DBackpropInput (also the forward pass of
 * conv2dTranspose) and Conv2DBackpropFilter on the native im2col + sgemm
 * kernels. NHWC only; any other layout returns null and runs on the cpu kernel.
 */
import { backend_util, type TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { NativeAddon } from './addon.ts';
import { outputBuffers } from './buffers.ts';
import { allFloat32, floats, sizeOf } from './data.ts';
import { applyActivation, addBias } from './elementwise-kernels.ts';
import type { NativeKernel } from './kernel.ts';

type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | number | backend_util.ExplicitPadding;

interface ConvAttrs {
  strides: number | [number, number];
  pad: Pad;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function convInfo(xShape: number[], filterShape: number[], attrs: ConvAttrs): backend_util.Conv2DInfo | null {
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC' || xShape.length !== 4 || filterShape.length !== 4) return null;
  return backend_util.computeConv2DInfo(
    xShape as Shape4,
    filterShape as Shape4,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/** Channels and spatial sizes must agree; tf's ops check this, direct runKernel calls may not (then the cpu kernel decides). */
function consistent(c: backend_util.Conv2DInfo, x: number[], filter: number[], y: number[]): boolean {
  return x[3] === filter[2] && y[3] === filter[3] && y[0] === x[0] && y[1] === c.outHeight && y[2] === c.outWidth;
}

function dims(c: backend_util.Conv2DInfo): Int32Array {
  return Int32Array.from([
    c.batchSize,
    c.inHeight,
    c.inWidth,
    c.inChannels,
    c.outHeight,
    c.outWidth,
    c.outChannels,
    c.filterHeight,
    c.filterWidth,
    c.strideHeight,
    c.strideWidth,
    c.dilationHeight,
    c.dilationWidth,
    c.padInfo.top,
    c.padInfo.left,
  ]);
}

function conv2dForward(
  addon: NativeAddon,
  backend: MathBackendCPU,
  x: TensorInfo,
  filter: TensorInfo,
  attrs: ConvAttrs,
) {
  if (!allFloat32(backend, x, filter)) return null;
  const info = convInfo(x.shape, filter.shape, attrs);
  if (!info || x.shape[3] !== filter.shape[2]) return null;
  const y = outputBuffers.take(sizeOf(info.outShape));
  addon.conv2d(floats(backend, x), floats(backend, filter), y, dims(info));
  return { shape: info.outShape, values: y };
}

export const convKernels = (addon: NativeAddon): NativeKernel[] => [
  {
    kernelName: 'Conv2D',
    run: ({ inputs, backend, attrs }) => {
      const out = conv2dForward(addon, backend, inputs.x, inputs.filter, attrs as unknown as ConvAttrs);
      return out && backend.makeTensorInfo(out.shape, 'float32', out.values);
    },
  },
  {
    kernelName: 'FusedConv2D',
    run: ({ inputs, backend, attrs }) => {
      const { activation, leakyreluAlpha } = attrs as unknown as { activation: string; leakyreluAlpha?: number };
      if (inputs.preluActivationWeights || !allFloat32(backend, inputs.bias)) return null;
      const out = conv2dForward(addon, backend, inputs.x, inputs.filter, attrs as unknown as ConvAttrs);
      if (!out) return null;
      if (inputs.bias && !addBias(addon, out.values, out.shape, floats(backend, inputs.bias), inputs.bias.shape))
        return null;
      if (!applyActivation(addon, out.values, activation, leakyreluAlpha ?? 0.2)) return null;
      return backend.makeTensorInfo(out.shape, 'float32', out.values);
    },
  },
  {
    kernelName: 'Conv2DBackpropInput',
    run: ({ inputs, backend, attrs }) => {
      const { dy, filter } = inputs;
      const a = attrs as unknown as ConvAttrs & { inputShape: number[] };
      if (!allFloat32(backend, dy, filter)) return null;
      const info = convInfo(a.inputShape, filter.shape, { ...a, dilations: 1 });
      if (!info || !consistent(info, a.inputShape, filter.shape, dy.shape)) return null;
      const dx = outputBuffers.take(sizeOf(info.inShape));
      addon.conv2dBackpropInput(floats(backend, dy), floats(backend, filter), dx, dims(info));
      return backend.makeTensorInfo(info.inShape, 'float32', dx);
    },
  },
  {
    kernelName: 'Conv2DBackpropFilter',
    run: ({ inputs, backend, attrs }) => {
      const { x, dy } = inputs;
      const a = attrs as unknown as ConvAttrs & { filterShape: number[] };
      if (!allFloat32(backend, x, dy)) return null;
      const info = convInfo(x.shape, a.filterShape, { ...a, dilations: 1 });
      if (!info || !consistent(info, x.shape, a.filterShape, dy.shape)) return null;
      const dw = outputBuffers.take(sizeOf(a.filterShape));
      addon.conv2dBackpropFilter(floats(backend, x), floats(backend, dy), dw, dims(info));
      return backend.makeTensorInfo(a.filterShape, 'float32', dw);
    },
  },
];
