/**
 * The trainer's TensorFlow.js backend in Node. `auto` takes the fastest that
 * works here: TensorFlow's C library when the user installed tfjs-node,
 * a hardware GPU through WebGPU (Dawn), the native OpenBLAS backend, WASM
 * (with the training kernels it lacks), then plain JS; every backend passed
 * over is reported with the reason. A backend named explicitly is the only
 * one tried, and its failure is an error.
 *
 * Once WebGPU is in use, Dawn keeps Node's event loop alive (and releasing it
 * early can crash Dawn): a process that used it should end with process.exit().
 *
 * Quiet: `auto` asks Dawn for an adapter in a child process (training/dawn-probe.mjs)
 * whose stderr is dropped, so Vulkan drivers and layers that complain while
 * probed (Mesa's device-select layer: "error: XDG_RUNTIME_DIR is invalid or
 * not set in the environment.", Dawn refusing lavapipe) print nothing; Dawn
 * loads in this process only for a hardware adapter or `--backend webgpu`.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
// Registers every gradient; the native backend wraps them when it registers.
import '@tensorflow/tfjs-layers';
import { selectBackend, type Fallback } from '../src/lib/backends.ts';
import { registerWasmTrainingKernels } from '../src/lib/wasm-training.ts';

export interface NodeBackend {
  name: string;
  /** What runs the kernels, in words, for logs and manifests. */
  detail: string;
  fallbacks: Fallback[];
}

export const NODE_BACKENDS = ['auto', 'tensorflow', 'webgpu', 'native', 'wasm', 'cpu'] as const;
export type NodeBackendName = (typeof NODE_BACKENDS)[number];
const AUTO_ORDER = NODE_BACKENDS.filter((n) => n !== 'auto');

/** Debian's chromium ships SwiftShader's Vulkan driver; Dawn accepts it (and refuses Mesa's lavapipe). */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** Ready to start (detail says what it runs on), or passed over (reason says why). */
type Prepared = { detail: string } | { reason: string };

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

// Package names held in variables: optional, never dependencies, so neither
// TypeScript nor a bundler may try to resolve them.
const TFJS_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

async function prepareTensorflow(): Promise<Prepared> {
  for (const pkg of TFJS_NODE_PACKAGES) {
    try {
      await import(pkg);
    } catch (err) {
      if (isMissingPackage(err, pkg)) continue;
      return { reason: `${pkg} is installed but failed to load: ${message(err)}` };
    }
    if (tf.findBackendFactory('tensorflow')) return { detail: `TensorFlow C library via ${pkg}` };
    return {
      reason: `${pkg} is installed but registered with another copy of @tensorflow/tfjs-core (this project uses ${tf.version_core})`,
    };
  }
  return { reason: '@tensorflow/tfjs-node is not installed (optional: npm install @tensorflow/tfjs-node)' };
}

function isMissingPackage(err: unknown, pkg: string): boolean {
  const code = (err as { code?: string }).code;
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && message(err).includes(pkg);
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
interface DawnModule {
  create(flags: string[]): Gpu;
  globals: Record<string, unknown>;
}

function describeAdapter({ vendor, architecture, device, description }: AdapterInfo): string {
  const maker = [vendor, architecture].filter(Boolean).join(' ');
  const model = [...new Set([description, device].filter(Boolean))].join(', ');
  return [maker, model].filter(Boolean).join(': ') || 'unnamed adapter';
}

/** SwiftShader, llvmpipe and the like run "GPU" code on the CPU: slower here than the CPU backends. */
function isSoftwareAdapter(adapter: Adapter): boolean {
  const info = adapter.info ?? {};
  if (adapter.isFallbackAdapter || info.isFallbackAdapter) return true;
  return /swiftshader|llvmpipe|lavapipe|software/i.test(
    `${info.vendor} ${info.architecture} ${info.device} ${info.description}`,
  );
}

async function requestAdapter(dawn: DawnModule): Promise<{ gpu: Gpu; adapter: Adapter | null }> {
  const gpu = dawn.create([]);
  return { gpu, adapter: await gpu.requestAdapter({ powerPreference: 'high-performance' }) };
}

/** tfjs-backend-webgpu looks for navigator.gpu when it is imported; Node 20 has no navigator. */
function exposeGpu(dawn: DawnModule, gpu: Gpu): void {
  Object.assign(globalThis, dawn.globals);
  const g = globalThis as { navigator?: object };
  if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
}

/** Where the Vulkan loader looks for drivers on Linux (XDG defaults included). */
function vulkanIcdDirs(): string[] {
  const config = (process.env.XDG_CONFIG_DIRS || '/etc/xdg').split(':');
  const data = (process.env.XDG_DATA_DIRS || '/usr/local/share:/usr/share').split(':');
  const home = [path.join(os.homedir(), '.local/share')];
  return [...config, '/etc', ...data, ...home].map((d) => path.join(d, 'vulkan', 'icd.d'));
}

/**
 * On Linux Dawn reaches a GPU through Vulkan only. Without a driver manifest
 * it cannot find one, and says so on stderr: skip the probe and give the reason.
 */
function missingVulkanDriver(): string | null {
  if (process.platform !== 'linux' || process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES) return null;
  const found = vulkanIcdDirs().some((dir) => {
    try {
      return readdirSync(dir).some((f) => f.endsWith('.json'));
    } catch {
      return false;
    }
  });
  return found
    ? null
    : 'no Vulkan driver installed (no manifest in any vulkan/icd.d folder), so Dawn has no GPU to use';
}

/**
 * Outside a desktop session XDG_RUNTIME_DIR is unset, and libwayland (which
 * Mesa's Vulkan device-select layer calls while Dawn enumerates GPUs) says
 * so on stderr. An empty private folder of our own makes it look, find no
 * Wayland display, and stay quiet; it is removed when the process exits.
 */
function quietWayland(): void {
  if (process.platform !== 'linux' || process.env.XDG_RUNTIME_DIR || process.env.WAYLAND_DISPLAY) return;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'facegan-xdg-'));
  process.env.XDG_RUNTIME_DIR = dir;
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
}

const PROBE = fileURLToPath(new URL('./dawn-probe.mjs', import.meta.url));
const PROBE_TIMEOUT_MS = 60_000;

/** Dawn's adapter, found by training/dawn-probe.mjs in a child process; whatever the probe prints on stderr is dropped. */
function probeAdapter(): Promise<{ adapter: Adapter } | { reason: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PROBE], { timeout: PROBE_TIMEOUT_MS, cwd: path.dirname(PROBE) }, (err, stdout) => {
      const line = stdout.trim().split('\n').at(-1) ?? '';
      let found: { adapter?: AdapterInfo | null; error?: string } | null = null;
      try {
        found = JSON.parse(line);
      } catch {
        found = null;
      }
      if (!found)
        return resolve({
          reason: `probing for a WebGPU adapter failed (${err ? message(err).split('\n')[0] : 'no answer'})`,
        });
      if (found.error) return resolve({ reason: `the webgpu package (Dawn) could not load: ${found.error}` });
      if (!found.adapter) return resolve({ reason: 'no WebGPU adapter (Dawn found no GPU it can use through Vulkan)' });
      resolve({ adapter: { info: found.adapter } });
    });
  });
}

async function prepareWebgpu(forced: boolean): Promise<Prepared> {
  const noDriver = missingVulkanDriver();
  if (noDriver && !forced) return { reason: noDriver };
  quietWayland();
  if (!forced) {
    const probe = await probeAdapter();
    if ('reason' in probe) return probe;
    if (isSoftwareAdapter(probe.adapter)) {
      return {
        reason: `only a software adapter (${describeAdapter(probe.adapter.info ?? {})}), slower than the CPU backends (--backend webgpu forces it)`,
      };
    }
  }
  let dawn: DawnModule;
  try {
    dawn = (await import('webgpu')) as unknown as DawnModule;
  } catch (err) {
    return { reason: `the webgpu package (Dawn) could not load: ${message(err)}` };
  }
  // With no GPU driver, a forced run may still use SwiftShader: slow, but correct.
  const trySwiftShader = () => forced && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD);
  if (noDriver && trySwiftShader()) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  let { gpu, adapter } = await requestAdapter(dawn);
  if (!adapter && trySwiftShader()) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    ({ gpu, adapter } = await requestAdapter(dawn));
  }
  if (!adapter) {
    return {
      reason: `no WebGPU adapter (Dawn needs a Vulkan driver and libvulkan1${forced ? `; SwiftShader's ${SWIFTSHADER_ICD} was not usable either` : ''})`,
    };
  }
  const name = describeAdapter(adapter.info ?? {});
  const software = isSoftwareAdapter(adapter);
  if (software && !forced)
    return { reason: `only a software adapter (${name}), slower than the CPU backends (--backend webgpu forces it)` };
  if (!tf.findBackendFactory('webgpu')) {
    exposeGpu(dawn, gpu);
    await import('@tensorflow/tfjs-backend-webgpu');
  }
  return { detail: `Dawn, ${name}${software ? ' (software)' : ''}` };
}

async function prepareNative(): Promise<Prepared> {
  let native: { registerNativeBackend(): Promise<{ ok: true; detail: string } | { ok: false; reason: string }> };
  try {
    native = await import('./native/index.ts');
  } catch (err) {
    return { reason: `the native backend is not part of this build: ${message(err)}` };
  }
  const registration = await native.registerNativeBackend();
  return registration.ok ? { detail: registration.detail } : { reason: registration.reason };
}

let wasmPathsSet = false;

async function prepareWasm(): Promise<Prepared> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  if (!wasmPathsSet) {
    // In Node the .wasm binaries are read from the package's dist folder, not fetched.
    const pkg = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json');
    wasm.setWasmPaths(`${path.join(path.dirname(pkg), 'dist')}${path.sep}`);
    wasmPathsSet = true;
  }
  const kernels = registerWasmTrainingKernels();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  return { detail: `XNNPACK${simd ? ' SIMD' : ''}; training kernels added: ${kernels.join(', ') || 'none needed'}` };
}

async function prepareCpu(): Promise<Prepared> {
  await import('@tensorflow/tfjs-backend-cpu');
  return { detail: 'plain JavaScript kernels' };
}

function prepare(name: Exclude<NodeBackendName, 'auto'>, forced: boolean): Promise<Prepared> {
  switch (name) {
    case 'tensorflow':
      return prepareTensorflow();
    case 'webgpu':
      return prepareWebgpu(forced);
    case 'native':
      return prepareNative();
    case 'wasm':
      return prepareWasm();
    case 'cpu':
      return prepareCpu();
  }
}

function isNodeBackendName(name: string): name is NodeBackendName {
  return (NODE_BACKENDS as readonly string[]).includes(name);
}

/** One line for the log: the backend, what runs it, and why it was chosen. */
export function backendLine(backend: NodeBackend, requested: string = 'auto'): string {
  const why =
    requested !== 'auto'
      ? `as asked with --backend ${requested}`
      : backend.fallbacks.length === 0
        ? 'the fastest backend, available here'
        : `the fastest available here. Skipped ${backend.fallbacks.map((f) => `${f.name}: ${f.reason}`).join('; ')}`;
  return `backend: ${backend.name} (${backend.detail}), ${why}`;
}

/** Start the requested backend (or the best one, for `auto`) and make it TensorFlow.js' current backend. */
export async function initNodeBackend(requested: string = 'auto'): Promise<NodeBackend> {
  if (!isNodeBackendName(requested)) {
    throw new Error(`unknown backend "${requested}": choose one of ${NODE_BACKENDS.join(', ')}`);
  }
  const forced = requested !== 'auto';
  const order = forced ? [requested] : AUTO_ORDER;
  const fallbacks: Fallback[] = [];
  for (const name of order) {
    let prepared: Prepared;
    try {
      prepared = await prepare(name, forced);
    } catch (err) {
      prepared = { reason: message(err) };
    }
    if ('detail' in prepared) {
      try {
        const choice = await selectBackend([name]);
        return { name: choice.name, detail: prepared.detail, fallbacks };
      } catch (err) {
        prepared = { reason: message(err) };
      }
    }
    fallbacks.push({ name, reason: prepared.reason });
  }
  if (forced) throw new Error(`backend ${requested} is not available: ${fallbacks[0].reason}`);
  throw new Error(`no backend could start: ${fallbacks.map((f) => `${f.name} (${f.reason})`).join('; ')}`);
}
