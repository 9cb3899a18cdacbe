/**
 * The `native` TensorFlow.js backend: the cpu backend's storage and every
 * cpu kernel, with the hot training kernels replaced by the addon's. A
 * replaced kernel that declines an input (dtype, layout, broadcast it does
 * not cover) hands it to the cpu kernel, so every op still works.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { NativeAddon } from './addon.ts';
import { convKernels } from './conv-kernels.ts';
import { activationGradKernel, elementwiseKernels } from './elementwise-kernels.ts';
import type { KernelArgs, NativeKernel } from './kernel.ts';
import { matMulKernels } from './matmul-kernels.ts';

export const NATIVE_BACKEND = 'native';
/** Below cpu (1), so that importing this never changes anyone's default backend. */
const PRIORITY = 0;

export function nativeKernels(addon: NativeAddon): NativeKernel[] {
  return [...convKernels(addon), ...matMulKernels(addon), ...elementwiseKernels(addon)];
}

/** Registers the backend and its kernels; call once per process. */
export function registerBackendKernels(addon: NativeAddon): void {
  tf.registerBackend(NATIVE_BACKEND, () => new MathBackendCPU(), PRIORITY);
  const cpuKernels = new Map(tf.getKernelsForBackend('cpu').map((k) => [k.kernelName, k]));
  for (const k of cpuKernels.values()) {
    tf.registerKernel({ ...k, backendName: NATIVE_BACKEND });
  }
  // Native-only kernels, with no cpu counterpart: they never decline their input.
  for (const nk of [activationGradKernel(addon)]) {
    tf.registerKernel({ kernelName: nk.kernelName, backendName: NATIVE_BACKEND, kernelFunc: (args) => nk.run(args as unknown as KernelArgs)! });
  }
  for (const nk of nativeKernels(addon)) {
    const cpu = cpuKernels.get(nk.kernelName);
    if (!cpu) throw new Error(`the cpu backend has no ${nk.kernelName} kernel to fall back on`);
    tf.unregisterKernel(nk.kernelName, NATIVE_BACKEND);
    tf.registerKernel({
      ...cpu,
      backendName: NATIVE_BACKEND,
      kernelFunc: (args) => nk.run(args as unknown as KernelArgs) ?? (cpu.kernelFunc(args) as tf.TensorInfo),
    });
  }
}
