/**
 * Backend choice, shared by the page and Node. Callers register the backends
 * their runtime can have (by importing them) and pass an order of
 * preference; the first that initialises wins, and every skipped one is
 * reported with the reason, so the UI and the CLI can say why.
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

/** The page's order: GPU first, then WASM (SIMD, threads when isolated), then plain JS. */
export const BROWSER_ORDER = ['webgl', 'wasm', 'cpu'] as const;

/** Try each backend in order; throws only if none works. */
export async function selectBackend(order: readonly string[], checks: Record<string, () => string | null> = {}): Promise<BackendChoice> {
  const fallbacks: Fallback[] = [];
  for (const name of order) {
    const veto = checks[name]?.();
    if (veto) {
      fallbacks.push({ name, reason: veto });
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
  throw new Error(`no TensorFlow.js backend could start: ${fallbacks.map((f) => `${f.name} (${f.reason})`).join('; ')}`);
}

/** Put `forced` first when it is a known name; otherwise keep the order and say why. */
export function preferBackend(order: readonly string[], forced: string | null): { order: string[]; note: string | null } {
  if (!forced) return { order: [...order], note: null };
  if (!order.includes(forced)) {
    return { order: [...order], note: `unknown backend "${forced}": choosing automatically among ${order.join(', ')}` };
  }
  return { order: [forced, ...order.filter((n) => n !== forced)], note: null };
}
