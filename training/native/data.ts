/** Zero-copy access to the cpu backend's storage, which the native backend shares. */
import type { TensorInfo, TypedArray } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

export function floats(backend: MathBackendCPU, t: TensorInfo): Float32Array {
  return backend.data.get(t.dataId).values as Float32Array;
}

export function values(backend: MathBackendCPU, t: TensorInfo): TypedArray {
  return backend.data.get(t.dataId).values as TypedArray;
}

/** True when every tensor is float32 with its values in a Float32Array (not complex, not a string). */
export function allFloat32(backend: MathBackendCPU, ...ts: (TensorInfo | null | undefined)[]): boolean {
  return ts.every(
    (t) => t == null || (t.dtype === 'float32' && backend.data.get(t.dataId).values instanceof Float32Array),
  );
}

export const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
