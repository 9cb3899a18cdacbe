/**
 * Starts TensorFlow.js in the page: picks a backend with src/lib/backends.ts
 * (WebGPU, then WebGL, then WASM, then CPU), honouring `?backend=` and
 * reporting why anything was skipped. Each backend's code is downloaded only
 * when it is tried (src/lib/browser-backends.ts); the WASM backend gets the
 * site's own copy of its binaries.
 */
import * as tf from '@tensorflow/tfjs-core';
import { BROWSER_ORDER, preferBackend, selectBackend, type Fallback } from '../lib/backends.ts';
import { backendLoaders, webglVeto, webgpuLabel, webgpuVeto } from '../lib/browser-backends.ts';

/** Served by the site (astro.config.mjs copies them into the build). */
const WASM_PATH = `${import.meta.env.BASE_URL.replace(/\/$/, '')}/tfjs-wasm/`;

export interface RuntimeInfo {
  /** TensorFlow.js backend name: webgpu, webgl, wasm or cpu. */
  name: string;
  /** What a visitor reads, e.g. "WASM (SIMD, 4 threads)". */
  label: string;
  fallbacks: Fallback[];
  /** Set when `?backend=` named something unknown. */
  note: string | null;
}

/**
 * WebGL that exists only as a software renderer is slower than WASM, so it
 * is skipped unless the visitor asked for it (`?backend=webgl`) or set
 * TensorFlow.js' SOFTWARE_WEBGL_ENABLED flag (`?tfjsflags=SOFTWARE_WEBGL_ENABLED:true`).
 */
function pageWebglVeto(forced: boolean): string | null {
  if (typeof WebGL2RenderingContext === 'undefined' && typeof WebGLRenderingContext === 'undefined') {
    return 'this browser has no WebGL';
  }
  return webglVeto((attributes) => {
    const canvas = document.createElement('canvas');
    return canvas.getContext('webgl2', attributes) ?? canvas.getContext('webgl', attributes);
  }, forced);
}

function wasmVeto(): string | null {
  return typeof WebAssembly === 'object' ? null : 'this browser has no WebAssembly';
}

async function describe(name: string): Promise<string> {
  if (name === 'webgpu') return webgpuLabel();
  if (name === 'webgl') return `WebGL ${tf.env().getNumber('WEBGL_VERSION')}`;
  if (name === 'cpu') return 'CPU (plain JavaScript)';
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  // Already loaded: WASM is the running backend.
  const threads = (await import('@tensorflow/tfjs-backend-wasm')).getThreadsCount();
  const parts = [simd ? 'SIMD' : 'no SIMD', threads > 1 ? `${threads} threads` : '1 thread'];
  return `WASM (${parts.join(', ')})`;
}

/** Pick and start a backend; `forced` is the `?backend=` value, if any. */
export async function startRuntime(forced: string | null): Promise<RuntimeInfo> {
  const { order, note } = preferBackend(BROWSER_ORDER, forced);
  const checks = {
    webgpu: () => webgpuVeto(forced === 'webgpu'),
    webgl: () => pageWebglVeto(forced === 'webgl'),
    wasm: wasmVeto,
  };
  const choice = await selectBackend(order, checks, backendLoaders(WASM_PATH));
  return { name: choice.name, label: await describe(choice.name), fallbacks: choice.fallbacks, note };
}

/** The WebGL canvas TensorFlow.js draws into, to watch for a lost context. */
export function webglCanvas(): HTMLCanvasElement | OffscreenCanvas | null {
  if (tf.getBackend() !== 'webgl') return null;
  const backend = tf.backend() as unknown as { gpgpu?: { gl?: WebGLRenderingContext } };
  return backend.gpgpu?.gl?.canvas ?? null;
}
