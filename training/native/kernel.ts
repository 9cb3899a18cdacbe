/** A native kernel: returns null for inputs it does not handle, which then run on the cpu kernel. */
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

export interface KernelArgs {
  inputs: Record<string, TensorInfo>;
  backend: MathBackendCPU;
  attrs: NamedAttrMap;
}

export interface NativeKernel {
  kernelName: string;
  run(args: KernelArgs): TensorInfo | null;
}
