/**
 * Starts TensorFlow.js in the page: registers the three browser backends,
 * points the WASM backend at the site's own copy of its binaries, and picks
 * a backend with src/lib/backends.ts (WebGL, then WASM, then CPU), honouring
 * `?backend=` and reporting why anything was skipped.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { BROWSER_ORDER, preferBackend, selectBackend, type Fallback } from '../lib/backends.ts';

/** Served by the site (astro.config.mjs copies them into the build). */
const WASM_PATH = `${import.meta.env.BASE_URL.replace(/\/$/, '')}/tfjs-wasm/`;

export interface RuntimeInfo {
  /** TensorFlow.js backend name: webgl, wasm or cpu. */
  name: string;
  /** What a visitor reads, e.g. "WASM (SIMD, 4 threads)". */
  label: string;
  fallbacks: Fallback[];
  /** Set when `?backend=` named something unknown. */
  note: string | null;
}

/**
 * WebGL that exists only as a software renderer is slower than WASM, so it
 * is skipped unless TensorFlow.js' SOFTWARE_WEBGL_ENABLED flag is set
 * (e.g. `?tfjsflags=SOFTWARE_WEBGL_ENABLED:true`).
 */
function webglVeto(): string | null {
  if (typeof WebGL2RenderingContext === 'undefined' && typeof WebGLRenderingContext === 'undefined') {
    return 'this browser has no WebGL';
  }
  const canvas = document.createElement('canvas');
  const anyGl = canvas.getContext('webgl2') ?? canvas.getContext('webgl');
  if (!anyGl) return 'WebGL is disabled or unavailable on this device';
  anyGl.getExtension('WEBGL_lose_context')?.loseContext();
  if (tf.env().getBool('SOFTWARE_WEBGL_ENABLED')) return null;
  const strict = document.createElement('canvas');
  const hw = strict.getContext('webgl2', { failIfMajorPerformanceCaveat: true })
    ?? strict.getContext('webgl', { failIfMajorPerformanceCaveat: true });
  if (!hw) return 'WebGL runs in software only here (no GPU acceleration), which is slower than WASM';
  hw.getExtension('WEBGL_lose_context')?.loseContext();
  return null;
}

function wasmVeto(): string | null {
  return typeof WebAssembly === 'object' ? null : 'this browser has no WebAssembly';
}

async function describe(name: string): Promise<string> {
  if (name === 'webgl') return `WebGL ${tf.env().getNumber('WEBGL_VERSION')}`;
  if (name === 'cpu') return 'CPU (plain JavaScript)';
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = getThreadsCount();
  const parts = [simd ? 'SIMD' : 'no SIMD', threads > 1 ? `${threads} threads` : '1 thread'];
  return `WASM (${parts.join(', ')})`;
}

/** Pick and start a backend; `forced` is the `?backend=` value, if any. */
export async function startRuntime(forced: string | null): Promise<RuntimeInfo> {
  setWasmPaths(WASM_PATH);
  const { order, note } = preferBackend(BROWSER_ORDER, forced);
  const choice = await selectBackend(order, { webgl: webglVeto, wasm: wasmVeto });
  return { name: choice.name, label: await describe(choice.name), fallbacks: choice.fallbacks, note };
}

/** The WebGL canvas TensorFlow.js draws into, to watch for a lost context. */
export function webglCanvas(): HTMLCanvasElement | OffscreenCanvas | null {
  if (tf.getBackend() !== 'webgl') return null;
  const backend = tf.backend() as unknown as { gpgpu?: { gl?: WebGLRenderingContext } };
  return backend.gpgpu?.gl?.canvas ?? null;
}
