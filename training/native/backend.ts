/**
 * The `native` TensorFlow.js backend: the cpu backend's storage and every
 * cpu kernel, with the hot training kernels replaced by the addon's. A
 * replaced kernel that declines an input (dtype, layout, broadcast it does
 * not cover) hands it to the cpu kernel, so every op still works.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { NativeAddon } from './addon.ts';
import { outputBuffers } from './buffers.ts';
import { convKernels } from './conv-kernels.ts';
import { activationGradKernel, elementwiseKernels } from './elementwise-kernels.ts';
import {
  avgPoolBlocksGradKernel,
  avgPoolBlocksKernel,
  resizeNearestGradKernel,
  resizeNearestKernel,
} from './resize-kernels.ts';
import type { KernelArgs, NativeKernel } from './kernel.ts';
import { transposeKernel } from './transpose-kernel.ts';
import { matMulKernels } from './matmul-kernels.ts';

export const NATIVE_BACKEND = 'native';
/** Below cpu (1), so that importing this never changes anyone's default backend. */
const PRIORITY = 0;

/**
 * The cpu backend, plus buffer reuse: arrays of disposed tensors go back to
 * the pool, and arrays that are read out leave it for good.
 */
class NativeBackend extends MathBackendCPU {
  override readSync(dataId: tf.DataId): tf.BackendValues {
    outputBuffers.escape(this.data.get(dataId)?.values);
    return super.readSync(dataId);
  }

  override disposeData(dataId: tf.DataId, force?: boolean): boolean {
    const values = this.data.get(dataId)?.values;
    const deleted = super.disposeData(dataId, force);
    if (deleted) outputBuffers.recycle(values);
    return deleted;
  }

  override dispose(): void {
    outputBuffers.clear();
    super.dispose();
  }
}

/** cpu kernels that pass tensors on by reference count (same dataId), never by sharing arrays. */
const NO_ALIASING = new Set(['Reshape', 'Identity']);

/**
 * Cast to a type without loss (float32 to float32, as tfjs-layers does on every
 * weight and activation) is a reference-counted identity and others copy; only
 * complex64 keeps its inputs' arrays. Letting every Cast input escape threw about
 * 150 MB of arrays a width-64 step out of the pool, to be page-faulted in again.
 */
function aliasesInputs(kernelName: string, args: Parameters<tf.KernelFunc>[0]): boolean {
  if (NO_ALIASING.has(kernelName)) return false;
  if (kernelName === 'Cast') {
    const x = (args.inputs as { x?: tf.TensorInfo }).x;
    return x?.dtype === 'complex64' || (args.attrs as { dtype?: string }).dtype === 'complex64';
  }
  return true;
}

/** A cpu kernel may keep or view its inputs' arrays (slice returns subarrays): they leave the pool. */
function escapingInputs(kernelName: string, cpu: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    if (aliasesInputs(kernelName, args)) {
      const backend = args.backend as MathBackendCPU;
      for (const t of Object.values(args.inputs)) if (t) outputBuffers.escape(backend.data.get(t.dataId)?.values);
    }
    return cpu(args);
  };
}

/** How often each replaced kernel declined its input and ran on the cpu kernel: where speed is lost. */
export const cpuFallbacks = new Map<string, number>();

function declined(kernelName: string): void {
  cpuFallbacks.set(kernelName, (cpuFallbacks.get(kernelName) ?? 0) + 1);
}

export function nativeKernels(addon: NativeAddon): NativeKernel[] {
  return [
    ...convKernels(addon),
    ...matMulKernels(addon),
    ...elementwiseKernels(addon),
    resizeNearestKernel,
    resizeNearestGradKernel,
    avgPoolBlocksKernel,
    avgPoolBlocksGradKernel,
    transposeKernel,
  ];
}

/** Registers the backend and its kernels; call once per process. */
export function registerBackendKernels(addon: NativeAddon): void {
  tf.registerBackend(NATIVE_BACKEND, () => new NativeBackend(), PRIORITY);
  const cpuKernels = new Map(tf.getKernelsForBackend('cpu').map((k) => [k.kernelName, k]));
  for (const k of cpuKernels.values()) {
    const kernelFunc = NO_ALIASING.has(k.kernelName) ? k.kernelFunc : escapingInputs(k.kernelName, k.kernelFunc);
    tf.registerKernel({ ...k, backendName: NATIVE_BACKEND, kernelFunc });
  }
  // Native-only kernels, with no cpu counterpart: they never decline their input.
  for (const nk of [activationGradKernel(addon)]) {
    tf.registerKernel({
      kernelName: nk.kernelName,
      backendName: NATIVE_BACKEND,
      kernelFunc: (args) => nk.run(args as unknown as KernelArgs)!,
    });
  }
  for (const nk of nativeKernels(addon)) {
    const cpu = cpuKernels.get(nk.kernelName);
    if (!cpu) throw new Error(`the cpu backend has no ${nk.kernelName} kernel to fall back on`);
    tf.unregisterKernel(nk.kernelName, NATIVE_BACKEND);
    const fallback = escapingInputs(nk.kernelName, cpu.kernelFunc);
    tf.registerKernel({
      ...cpu,
      backendName: NATIVE_BACKEND,
      kernelFunc: (args) => {
        const out = nk.run(args as unknown as KernelArgs);
        if (out) return out;
        declined(nk.kernelName);
        return fallback(args) as tf.TensorInfo;
      },
    });
  }
}
