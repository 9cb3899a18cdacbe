/**
 * TensorFlow.js backends inside the fine-tuning worker: WebGPU where the
 * browser has a GPU adapter (WebGPU works in workers), else WebGL through an
 * OffscreenCanvas where the browser allows it and can render float32
 * (training needs it), else WASM with the project's training kernels
 * (browser-backends.ts loads them with it), else plain JS. Each backend's
 * code is downloaded only when it is tried. Also watches the WebGL context,
 * which the browser may take away at any time (GPU reset, too many
 * contexts, driver update).
 */
import * as tf from '@tensorflow/tfjs-core';
import { BROWSER_ORDER, preferBackend, selectBackend, type BackendCheck, type BackendChoice } from '../lib/backends.ts';
import { backendLoaders, setFlags, webglVeto, webgpuLabel, webgpuVeto } from '../lib/browser-backends.ts';
import type { BackendPreference } from './finetune-protocol.ts';

/** WebGL 2 through an OffscreenCanvas; a software renderer (slower than WASM) only when the visitor chose WebGL. */
function workerWebglVeto(forced: boolean): () => string | null {
  return () => {
    if (typeof OffscreenCanvas === 'undefined') return 'this browser cannot use WebGL in a worker (no OffscreenCanvas)';
    return webglVeto(
      (attributes) => new OffscreenCanvas(1, 1).getContext('webgl2', attributes),
      forced,
      'WebGL 2 is unavailable in workers here',
    );
  };
}

export interface WorkerBackend extends BackendChoice {
  /** What the page shows, e.g. "WebGPU (nvidia ampere)"; the upper-case name for the others. */
  label: string;
}

let loaders: Record<string, () => Promise<unknown>> = {};

async function afterSelect(
  choice: BackendChoice,
  order: string[],
  checks: Record<string, BackendCheck>,
): Promise<WorkerBackend> {
  if (choice.name === 'webgl' && !tf.env().getBool('WEBGL_RENDER_FLOAT32_CAPABLE')) {
    const rest = order.filter((n) => n !== 'webgl');
    const next = await selectBackend(rest, checks, loaders);
    return afterSelect(
      {
        name: next.name,
        fallbacks: [
          ...choice.fallbacks,
          { name: 'webgl', reason: 'this GPU cannot render float32 textures, which training needs' },
          ...next.fallbacks,
        ],
      },
      rest,
      checks,
    );
  }
  return { ...choice, label: choice.name === 'webgpu' ? webgpuLabel() : choice.name.toUpperCase() };
}

/**
 * Start the backend the visitor asked for, or the first that works.
 * `flags` (the page's `?tfjsflags=`) are set as soon as the backend that
 * defines them is loaded.
 */
export async function startBackend(
  pref: BackendPreference,
  wasmPath: string,
  flags: Record<string, boolean | number> = {},
): Promise<WorkerBackend> {
  loaders = backendLoaders(wasmPath);
  setFlags(flags);
  const { order } = preferBackend(BROWSER_ORDER, pref === 'auto' ? null : pref);
  const checks: Record<string, BackendCheck> = {
    webgpu: () => webgpuVeto(pref === 'webgpu'),
    webgl: workerWebglVeto(pref === 'webgl'),
  };
  return afterSelect(await selectBackend(order, checks, loaders), order, checks);
}

/** Move to WASM (or CPU) after the GPU (WebGL or WebGPU) failed mid-session. */
export async function leaveGpu(): Promise<WorkerBackend> {
  const choice = await selectBackend(['wasm', 'cpu'], {}, loaders);
  return { ...choice, label: choice.name.toUpperCase() };
}

function webglContext(): WebGL2RenderingContext | null {
  if (tf.getBackend() !== 'webgl') return null;
  const backend = tf.backend() as unknown as { gpgpu?: { gl?: WebGL2RenderingContext } };
  return backend.gpgpu?.gl ?? null;
}

interface Device {
  lost: Promise<unknown>;
  destroy(): void;
}

/** WebGPU devices whose `lost` promise has settled (the browser or a test took them). */
const lostDevices = new WeakSet<Device>();

function webgpuDevice(): Device | null {
  if (tf.getBackend() !== 'webgpu') return null;
  const device = (tf.backend() as unknown as { device?: Device }).device ?? null;
  if (device) void device.lost.then(() => lostDevices.add(device));
  return device;
}

/** The WebGL context or the WebGPU device is gone: GPU work can no longer finish. */
export function contextLost(): boolean {
  const device = webgpuDevice();
  if (device) return lostDevices.has(device);
  return webglContext()?.isContextLost() ?? false;
}

/**
 * Whether a failure came from losing the GPU. A WebGPU read can fail
 * ("Buffer was unmapped before mapping was resolved") a moment before the
 * device's `lost` promise settles: wait for it that long.
 */
export async function gpuWasLost(waitMs = 1000): Promise<boolean> {
  if (contextLost()) return true;
  const device = webgpuDevice();
  if (!device) return false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), waitMs);
  });
  const lost = await Promise.race([device.lost.then(() => true), late]);
  clearTimeout(timer);
  return lost;
}

/**
 * Resolves when the WebGL context or the WebGPU device is lost (never on
 * other backends); call `cancel` when done waiting. For WebGL, listens for
 * the event and also polls, since a lost context can leave GPU reads waiting forever.
 */
export function whenContextLost(pollMs = 250): { lost: Promise<void>; cancel: () => void } {
  const device = webgpuDevice();
  if (device)
    return {
      lost: device.lost.then(() => {
        lostDevices.add(device);
      }),
      cancel: () => {},
    };
  const canvas = webglContext()?.canvas as OffscreenCanvas | undefined;
  if (!canvas) return { lost: new Promise(() => {}), cancel: () => {} };
  let onLost = () => {};
  const lost = new Promise<void>((resolve) => {
    onLost = resolve;
  });
  canvas.addEventListener('webglcontextlost', onLost);
  const timer = setInterval(() => {
    if (contextLost()) onLost();
  }, pollMs);
  return {
    lost,
    cancel: () => {
      clearInterval(timer);
      canvas.removeEventListener('webglcontextlost', onLost);
    },
  };
}

/** Test hook: make the browser drop the WebGL context or the WebGPU device, as a GPU reset would. */
export function loseContextForTest(): boolean {
  const device = webgpuDevice();
  if (device) {
    device.destroy();
    return true;
  }
  const ext = webglContext()?.getExtension('WEBGL_lose_context');
  ext?.loseContext();
  return Boolean(ext);
}
