/**
 * What the page and the fine-tuning worker share about browser backends:
 * each backend's code is a dynamic import, made only when that backend is
 * tried (a visitor on WebGPU never downloads the WebGL or WASM backend);
 * TensorFlow.js flags that belong to a backend not loaded yet wait for it;
 * the WebGPU check, which asks the browser for an adapter first; and the
 * WebGL check, which passes over a software renderer.
 * Runs in a window or a worker.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * WebGPU with only a software adapter (SwiftShader: no GPU acceleration) is
 * skipped unless this flag is set, e.g. `?tfjsflags=SOFTWARE_WEBGPU_ENABLED:true`,
 * as TensorFlow.js' SOFTWARE_WEBGL_ENABLED does for WebGL.
 */
export const SOFTWARE_WEBGPU_ENABLED = 'SOFTWARE_WEBGPU_ENABLED';

/** TensorFlow.js' environment, with the two fields it keeps private: which flags exist, and those from `?tfjsflags=`. */
const env = () => tf.env() as unknown as { flagRegistry: Record<string, unknown>; urlFlags: Record<string, unknown> };

if (!env().flagRegistry[SOFTWARE_WEBGPU_ENABLED]) tf.env().registerFlag(SOFTWARE_WEBGPU_ENABLED, () => false);

/** Flags given before the backend that registers them was loaded (the worker gets the page's `?tfjsflags=`). */
const pending = new Map<string, boolean | number>();

function applyPending(): void {
  for (const [name, value] of pending) {
    if (!env().flagRegistry[name]) continue;
    tf.env().set(name, value);
    pending.delete(name);
  }
}

/** Set TensorFlow.js flags now, or as soon as the backend that defines them is loaded. */
export function setFlags(flags: Record<string, boolean | number>): void {
  for (const [name, value] of Object.entries(flags)) pending.set(name, value);
  applyPending();
}

/** A flag's value, also before its backend is loaded (from setFlags or the page's `?tfjsflags=`). */
export function flagValue(name: string): unknown {
  if (env().flagRegistry[name]) return tf.env().get(name);
  return pending.get(name) ?? env().urlFlags[name];
}

/** The WASM backend with the project's kernels (wasm-training.ts), both fetched at once. */
async function loadWasm(wasmPath: string): Promise<void> {
  const [wasm, kernels] = await Promise.all([import('@tensorflow/tfjs-backend-wasm'), import('./wasm-training.ts')]);
  wasm.setWasmPaths(wasmPath);
  // The backend's own Conv2DBackpropInput, G's transposed convolution, is a plain loop: the project's, on
  // XNNPACK, draws the same faces 3-6x faster, and training needs its Conv2DBackpropFilter.
  kernels.registerWasmTrainingKernels();
}

/**
 * Each backend's code, imported when the backend is first tried. Vite turns
 * each import into its own chunk.
 */
export function backendLoaders(wasmPath: string): Record<string, () => Promise<unknown>> {
  const loaded = (p: Promise<unknown>) => p.then(applyPending);
  return {
    webgpu: () => loaded(import('@tensorflow/tfjs-backend-webgpu')),
    webgl: () => loaded(import('@tensorflow/tfjs-backend-webgl')),
    wasm: () => loaded(loadWasm(wasmPath)),
    cpu: () => loaded(import('@tensorflow/tfjs-backend-cpu')),
  };
}

interface AdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface Adapter {
  info?: AdapterInfo;
  isFallbackAdapter?: boolean;
}
interface Gpu {
  requestAdapter(options?: { powerPreference?: string }): Promise<Adapter | null>;
}

/** The adapter the last WebGPU check found, for the label. */
let adapterInfo: AdapterInfo | null = null;

function adapterName(info: AdapterInfo): string {
  const name = [info.vendor, info.architecture, info.description || info.device].filter(Boolean).join(' ');
  return name || 'unnamed adapter';
}

/** SwiftShader and the like run "GPU" code on the CPU, slower than WASM. */
function isSoftware(adapter: Adapter): boolean {
  const info = adapter.info ?? {};
  if (adapter.isFallbackAdapter || info.isFallbackAdapter) return true;
  return /swiftshader|llvmpipe|lavapipe|software/i.test(adapterName(info));
}

const ADAPTER_TIMEOUT_MS = 10_000;

/**
 * Why WebGPU cannot run here, or null. Asks for the adapter TensorFlow.js
 * will ask for (high-performance) before its code is downloaded. `forced`
 * (`?backend=webgpu`) accepts a software adapter.
 */
export async function webgpuVeto(forced: boolean): Promise<string | null> {
  const gpu = (globalThis.navigator as { gpu?: Gpu } | undefined)?.gpu;
  if (!gpu) return 'this browser has no WebGPU';
  let adapter: Adapter | null;
  try {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, fail) => {
      timer = setTimeout(() => fail(new Error(`no answer in ${ADAPTER_TIMEOUT_MS / 1000} s`)), ADAPTER_TIMEOUT_MS);
    });
    adapter = await Promise.race([gpu.requestAdapter({ powerPreference: 'high-performance' }), timeout]).finally(() =>
      clearTimeout(timer),
    );
  } catch (err) {
    return `asking for a WebGPU adapter failed (${err instanceof Error ? err.message : String(err)})`;
  }
  if (!adapter) return 'WebGPU found no GPU adapter here (no supported GPU, or WebGPU is turned off for it)';
  adapterInfo = adapter.info ?? {};
  if (isSoftware(adapter) && !forced && flagValue(SOFTWARE_WEBGPU_ENABLED) !== true) {
    return `WebGPU has only a software adapter here (${adapterName(adapterInfo)}, no GPU acceleration), which is slower than WASM`;
  }
  return null;
}

type GlContext = WebGLRenderingContext | WebGL2RenderingContext;

/** A WebGL context on a fresh canvas of the runtime (a page's <canvas>, a worker's OffscreenCanvas), or null. */
export type GlProbe = (attributes: WebGLContextAttributes) => GlContext | null;

/** Renderers that draw on the CPU: on them TensorFlow.js' WebGL is several times slower than WASM. */
const SOFTWARE_RENDERERS = [
  'SwiftShader',
  'llvmpipe',
  'lavapipe',
  'softpipe',
  'Microsoft Basic Render Driver',
  'Apple Software Renderer',
];

/**
 * The renderer's own name. Chromium and Safari answer RENDERER with
 * "WebKit WebGL" and name the real one only through WEBGL_debug_renderer_info;
 * Firefox answers RENDERER itself (and warns when the extension is asked for).
 */
function rendererOf(gl: GlContext): string {
  const plain = String(gl.getParameter(gl.RENDERER));
  if (plain !== 'WebKit WebGL') return plain;
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  return info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : plain;
}

/** The software renderer behind `gl` ("SwiftShader"), or null for a GPU (or one that does not say). */
function softwareRenderer(gl: GlContext): string | null {
  const renderer = rendererOf(gl).toLowerCase();
  return SOFTWARE_RENDERERS.find((name) => renderer.includes(name.toLowerCase())) ?? null;
}

const release = (gl: GlContext) => gl.getExtension('WEBGL_lose_context')?.loseContext();

/**
 * Why WebGL should be passed over here: none at all, or only a software
 * renderer (slower than WASM). The renderer's name catches SwiftShader even
 * where the browser was told to treat it as a GPU (`--ignore-gpu-blocklist`);
 * `failIfMajorPerformanceCaveat` catches software it does not name. `forced`
 * (the visitor chose WebGL) or TensorFlow.js' SOFTWARE_WEBGL_ENABLED flag
 * accepts a software renderer.
 */
export function webglVeto(
  probe: GlProbe,
  forced: boolean,
  unavailable = 'WebGL is disabled or unavailable on this device',
): string | null {
  const gl = probe({});
  if (!gl) return unavailable;
  const software = softwareRenderer(gl);
  release(gl);
  // Read before the WebGL backend (which defines the flag) is downloaded.
  if (forced || flagValue('SOFTWARE_WEBGL_ENABLED') === true) return null;
  if (software) return `WebGL here is a software renderer (${software}), slower than WASM`;
  const strict = probe({ failIfMajorPerformanceCaveat: true });
  if (!strict) return 'WebGL runs in software only here (no GPU acceleration), slower than WASM';
  release(strict);
  return null;
}

/** "WebGPU (nvidia ampere)", after webgpuVeto found the adapter. */
export function webgpuLabel(): string {
  if (!adapterInfo) return 'WebGPU';
  const software = isSoftware({ info: adapterInfo }) ? ', software' : '';
  return `WebGPU (${adapterName(adapterInfo)}${software})`;
}
