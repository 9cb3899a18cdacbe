/**
 * The native CPU training backend for the Node trainer. registerNativeBackend()
 * is idempotent and never throws: where the addon is not built (no compiler
 * or OpenBLAS at install time) it says why, and the trainer uses wasm or cpu.
 * Its detail names the convolution library: oneDNN where it was compiled in
 * (FACEGAN_NO_ONEDNN=1 keeps them on OpenBLAS), OpenBLAS otherwise; and the
 * precision oneDNN's convolutions read (FACEGAN_CONV_PRECISION, see convPrecision).
 */
import '@tensorflow/tfjs-backend-cpu'; // the cpu kernels must be registered before they are copied
import { loadAddon } from './addon.ts';
import { NATIVE_BACKEND, registerBackendKernels } from './backend.ts';
import { registerNativeGradients } from './gradients.ts';
import { installNativeAdam, registerAdamKernel } from './adam.ts';
import { registerBatchNormKernels } from './batchnorm-kernel.ts';
import { convPrecision } from './precision.ts';

export { CONV_PRECISIONS, convPrecision, type ConvPrecision } from './precision.ts';

export type NativeRegistration = { ok: true; name: 'native'; detail: string } | { ok: false; reason: string };

let registration: NativeRegistration | null = null;

/** e.g. "oneDNN 2.6.3 convolutions (bf16 inputs), OpenBLAS 0.3.21, 2 threads" or "OpenBLAS 0.3.21, 2 threads". */
export function describe(blasConfig: string, threads: number, convPath = 'OpenBLAS', bf16 = false): string {
  const version = /OpenBLAS\s+([\d.]+)/.exec(blasConfig)?.[1];
  const conv = convPath.startsWith('oneDNN') ? `${convPath} convolutions${bf16 ? ' (bf16 inputs)' : ''}, ` : '';
  return `${conv}${version ? `OpenBLAS ${version}` : blasConfig.trim()}, ${threads} thread${threads === 1 ? '' : 's'}`;
}

export async function registerNativeBackend(): Promise<NativeRegistration> {
  if (registration) return registration;
  const load = loadAddon();
  if (!load.ok) {
    registration = { ok: false, reason: load.reason };
    return registration;
  }
  try {
    const precision = convPrecision();
    registerBackendKernels(load.addon);
    registerNativeGradients(load.addon);
    registerAdamKernel(load.addon);
    registerBatchNormKernels(load.addon);
    installNativeAdam();
    load.addon.useBf16(precision === 'bf16' || (precision === 'auto' && load.addon.info().bf16Native));
    const { blasConfig, threads, convPath, bf16 } = load.addon.info();
    registration = { ok: true, name: NATIVE_BACKEND, detail: describe(blasConfig, threads, convPath, bf16) };
  } catch (err) {
    registration = {
      ok: false,
      reason: `native backend failed to register: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
  return registration;
}

/**
 * Switches oneDNN's convolutions between bf16 inputs and f32 while running (the bench times both precisions in
 * one run); returns whether they read bf16 now. False where the native backend or oneDNN is missing.
 */
export function useBf16Convolutions(on: boolean): boolean {
  const load = loadAddon();
  return load.ok ? load.addon.useBf16(on) : false;
}

/** Whether the CPU has bf16 dot products (AVX512_BF16 or AMX); elsewhere oneDNN emulates bf16, slower than f32. */
export function cpuHasBf16(): boolean {
  const load = loadAddon();
  return load.ok && load.addon.info().bf16Native;
}
