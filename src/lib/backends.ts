/**
 * Backend choice, shared by the page and Node. Callers register the backends
 * their runtime can have (by importing them, or by passing loaders that
 * import each one when it is tried) and pass an order of preference; the
 * first that initialises wins, and every skipped one is reported with the
 * reason, so the UI and the CLI can say why.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface Fallback {
  name: string;
  reason: string;
}

export interface BackendChoice {
  name: string;
  fallbacks: Fallback[];
}

/** The page's order: GPU first (WebGPU, then WebGL), then WASM (SIMD, threads when isolated), then plain JS. */
export const BROWSER_ORDER = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;

/** A reason to pass a backend over, or null to try it; may wait (e.g. for a GPU adapter). */
export type BackendCheck = () => string | null | Promise<string | null>;

/**
 * Try each backend in order; throws only if none works. `checks` run first
 * and may veto a backend; `load` then brings in its code (a dynamic import),
 * so a backend that is vetoed, or never reached, is never downloaded.
 */
export async function selectBackend(
  order: readonly string[],
  checks: Record<string, BackendCheck> = {},
  load: Record<string, () => Promise<unknown>> = {},
): Promise<BackendChoice> {
  const fallbacks: Fallback[] = [];
  for (const name of order) {
    let veto: string | null;
    try {
      veto = (await checks[name]?.()) ?? null;
    } catch (err) {
      veto = err instanceof Error ? err.message : String(err);
    }
    if (veto) {
      fallbacks.push({ name, reason: veto });
      continue;
    }
    try {
      await load[name]?.();
    } catch (err) {
      fallbacks.push({
        name,
        reason: `its code could not be loaded: ${err instanceof Error ? err.message : String(err)}`,
      });
      continue;
    }
    if (tf.findBackendFactory(name) == null) {
      fallbacks.push({ name, reason: 'not available in this build' });
      continue;
    }
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return { name, fallbacks };
      }
      fallbacks.push({ name, reason: 'failed to initialise' });
    } catch (err) {
      fallbacks.push({ name, reason: err instanceof Error ? err.message : String(err) });
    }
  }
  throw new Error(
    `no TensorFlow.js backend could start: ${fallbacks.map((f) => `${f.name} (${f.reason})`).join('; ')}`,
  );
}

/** Put `forced` first when it is a known name; otherwise keep the order and say why. */
export function preferBackend(
  order: readonly string[],
  forced: string | null,
): { order: string[]; note: string | null } {
  if (!forced) return { order: [...order], note: null };
  if (!order.includes(forced)) {
    return { order: [...order], note: `unknown backend "${forced}": choosing automatically among ${order.join(', ')}` };
  }
  return { order: [forced, ...order.filter((n) => n !== forced)], note: null };
}
