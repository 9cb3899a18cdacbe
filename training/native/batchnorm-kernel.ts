/**
 * The native backend's kernels for training-mode batch norm (src/lib/batchnorm.ts):
 * the batch's per-channel mean and variance in two reads of x, and the
 * closed-form gradient in two passes (per-channel sums, then dx).
 */
import * as tf from '@tensorflow/tfjs-core';
import { BATCH_NORM_TRAIN_GRAD, CHANNEL_MOMENTS } from '../../src/lib/batchnorm.ts';
import type { NativeAddon } from './addon.ts';
import { NATIVE_BACKEND } from './backend.ts';
import { outputBuffers } from './buffers.ts';
import { allFloat32, floats } from './data.ts';
import type { KernelArgs } from './kernel.ts';

function run(addon: NativeAddon, { inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const { dy, x, mean, variance, gamma } = inputs;
  const channels = x.shape[x.shape.length - 1];
  const perChannel = [mean, variance, gamma].every((t) => t.shape.length === 1 && t.shape[0] === channels);
  if (!allFloat32(backend, dy, x, mean, variance, gamma) || !tf.util.arraysEqual(dy.shape, x.shape) || !perChannel) {
    throw new Error(
      `${BATCH_NORM_TRAIN_GRAD} needs float32 dy and x of one shape and per-channel mean, variance and gamma`,
    );
  }
  const dx = outputBuffers.take(tf.util.sizeFromShape(x.shape));
  const dgamma = new Float32Array(channels),
    dbeta = new Float32Array(channels);
  addon.batchNormTrainGrad(
    floats(backend, x),
    floats(backend, dy),
    channels,
    floats(backend, mean),
    floats(backend, variance),
    floats(backend, gamma),
    Number((attrs as { epsilon: number }).epsilon),
    dx,
    dgamma,
    dbeta,
  );
  return [
    backend.makeTensorInfo(x.shape, 'float32', dx),
    backend.makeTensorInfo([channels], 'float32', dgamma),
    backend.makeTensorInfo([channels], 'float32', dbeta),
  ];
}

function moments(addon: NativeAddon, { inputs, backend }: KernelArgs): tf.TensorInfo[] {
  const { x } = inputs;
  const channels = x.shape[x.shape.length - 1];
  if (!allFloat32(backend, x) || x.shape.length < 2 || tf.util.sizeFromShape(x.shape) === 0) {
    throw new Error(`${CHANNEL_MOMENTS} needs a non-empty float32 x of rank 2 or more`);
  }
  const mean = new Float32Array(channels),
    variance = new Float32Array(channels);
  addon.moments(floats(backend, x), channels, mean, variance);
  return [backend.makeTensorInfo([channels], 'float32', mean), backend.makeTensorInfo([channels], 'float32', variance)];
}

export function registerBatchNormKernels(addon: NativeAddon): void {
  tf.registerKernel({
    kernelName: BATCH_NORM_TRAIN_GRAD,
    backendName: NATIVE_BACKEND,
    kernelFunc: (args) => run(addon, args as unknown as KernelArgs),
  });
  tf.registerKernel({
    kernelName: CHANNEL_MOMENTS,
    backendName: NATIVE_BACKEND,
    kernelFunc: (args) => moments(addon, args as unknown as KernelArgs),
  });
}
