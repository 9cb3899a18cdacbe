/**
 * The trainer's backend choice in Node: names, forced backends, the automatic
 * order with its reasons, and WebGPU through Dawn (SwiftShader where there is
 * no GPU: needs libvulkan1 and Debian's chromium).
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { buildGan, modelConfig } from '../src/lib/models.ts';
import { GanTrainer } from '../src/lib/gan.ts';
import { FinetuneSession } from '../src/lib/finetune.ts';
import { initNodeBackend, NODE_BACKENDS } from '../training/node-backends.ts';

/** One training step of a tiny dcgan on the current backend. */
async function tinyStep() {
  const { generator, discriminator } = buildGan(modelConfig('dcgan', 4, 8));
  const trainer = new GanTrainer(generator, discriminator);
  const real = tf.randomUniform([2, 64, 64, 3], -1, 1) as tf.Tensor4D;
  const z = tf.randomNormal([2, 8]) as tf.Tensor2D;
  try {
    return await trainer.step(real, z);
  } finally {
    tf.dispose([real, z]);
    trainer.dispose();
    generator.dispose();
    discriminator.dispose();
  }
}

/** A matMul and a strided conv with their input gradient, as plain arrays. */
async function referenceOps(): Promise<number[][]> {
  const a = tf.tensor2d(
    Array.from({ length: 35 }, (_, i) => Math.sin(i)),
    [5, 7],
  );
  const b = tf.tensor2d(
    Array.from({ length: 21 }, (_, i) => Math.cos(i)),
    [7, 3],
  );
  const x = tf.tensor4d(
    Array.from({ length: 2 * 9 * 9 * 3 }, (_, i) => Math.sin(i * 0.37)),
    [2, 9, 9, 3],
  );
  const w = tf.tensor4d(
    Array.from({ length: 4 * 4 * 3 * 5 }, (_, i) => Math.cos(i * 0.11)),
    [4, 4, 3, 5],
  );
  const outs = [
    tf.matMul(a, b),
    tf.conv2d(x, w, 2, 'same'),
    tf.grad((v: tf.Tensor) => tf.sum(tf.square(tf.conv2d(v as tf.Tensor4D, w, 2, 'same'))))(x),
  ];
  const data = await Promise.all(outs.map(async (t) => Array.from(await t.data())));
  tf.dispose([a, b, x, w, ...outs]);
  return data;
}

describe('initNodeBackend', () => {
  it('rejects an unknown name with the list of valid ones', async () => {
    await expect(initNodeBackend('tpu')).rejects.toThrow(
      `unknown backend "tpu": choose one of ${NODE_BACKENDS.join(', ')}`,
    );
  });

  it('forced cpu starts cpu', async () => {
    const backend = await initNodeBackend('cpu');
    expect(backend).toMatchObject({ name: 'cpu', fallbacks: [] });
    expect(tf.getBackend()).toBe('cpu');
  });

  it('forced wasm starts wasm with the training kernels, and trains', async () => {
    const backend = await initNodeBackend('wasm');
    expect(backend.name).toBe('wasm');
    expect(backend.detail).toContain('Conv2DBackpropFilter');
    expect(tf.getBackend()).toBe('wasm');
    const before = tf.memory().numTensors;
    const result = await tinyStep();
    expect(Number.isFinite(result.dLoss) && Number.isFinite(result.gLoss)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('forced tensorflow without tfjs-node says how to get it', async (ctx) => {
    const installed = await import('@tensorflow/tfjs-node' as string).then(
      () => true,
      () => false,
    );
    if (installed) ctx.skip('@tensorflow/tfjs-node is installed here');
    await expect(initNodeBackend('tensorflow')).rejects.toThrow(
      /tensorflow is not available: @tensorflow\/tfjs-node is not installed/,
    );
  });

  it('auto picks a backend that trains, and says why it passed over the ones before it', async () => {
    const backend = await initNodeBackend();
    expect(tf.getBackend()).toBe(backend.name);
    const order = NODE_BACKENDS.filter((n) => n !== 'auto') as string[];
    expect(backend.fallbacks.map((f) => f.name)).toEqual(order.slice(0, order.indexOf(backend.name)));
    for (const f of backend.fallbacks) expect(f.reason.length).toBeGreaterThan(10);
    const result = await tinyStep();
    expect(Number.isFinite(result.dLoss) && Number.isFinite(result.gLoss)).toBe(true);
  });
});

describe('WebGPU through Dawn', () => {
  // Forcing webgpu turns to SwiftShader when no GPU driver answers; without
  // libvulkan1 or chromium's SwiftShader there is no adapter at all.
  let startError: string | null = null;

  it('forced webgpu computes matMul and conv like cpu', async (ctx) => {
    await initNodeBackend('cpu');
    const expected = await referenceOps();
    try {
      const backend = await initNodeBackend('webgpu');
      expect(backend.detail).toMatch(/^Dawn, /);
    } catch (err) {
      startError = (err as Error).message;
      expect(startError).toMatch(/no WebGPU adapter|could not load/);
      ctx.skip(`no WebGPU adapter here, even through SwiftShader (install libvulkan1 and chromium): ${startError}`);
    }
    expect(tf.getBackend()).toBe('webgpu');
    const actual = await referenceOps();
    actual.forEach((values, i) => {
      expect(values.length).toBe(expected[i].length);
      values.forEach((v, j) => expect(v).toBeCloseTo(expected[i][j], 3));
    });
  });

  it('a GanTrainer step runs on webgpu', async (ctx) => {
    if (startError) ctx.skip(`webgpu did not start: ${startError}`);
    expect(tf.getBackend()).toBe('webgpu');
    const before = tf.memory().numTensors;
    const result = await tinyStep();
    expect(Number.isFinite(result.dLoss) && Number.isFinite(result.gLoss)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });

  // The page's fine-tuning worker runs this on WebGPU: every kernel it needs must exist there
  // (Conv2DBackpropFilter and Conv2DBackpropInput included), with WASM's arithmetic.
  it('fine-tuning steps on webgpu give the losses wasm gives', async (ctx) => {
    if (startError) ctx.skip(`webgpu did not start: ${startError}`);
    const crops = Array.from({ length: 3 }, (_, i) =>
      Float32Array.from({ length: 64 * 64 * 3 }, (_, j) => Math.sin(i * 7 + j * 0.013)),
    );
    async function losses(backend: 'webgpu' | 'wasm') {
      await initNodeBackend(backend);
      const { generator, discriminator } = buildGan({ ...modelConfig('dcgan', 4, 8), seed: 5 });
      // A freshly initialised width-4 G draws nearly the same (almost blank) face for every z, so the projection's
      // choice of starting latent would be a coin toss between near-ties; larger weights give faces that differ.
      const spread = generator.getWeights().map((w) => tf.tidy(() => (w.rank > 1 ? tf.mul(w, 6) : tf.clone(w))));
      generator.setWeights(spread);
      tf.dispose(spread);
      const before = tf.memory().numTensors;
      // Two projection steps, then two tuning steps: both losses compared across backends.
      const session = new FinetuneSession(generator, discriminator, crops, {
        projectionSteps: 2,
        steps: 2,
        batch: 4,
        localityBatch: 2,
        seed: 2,
      });
      try {
        const out = [];
        while (!session.finished) out.push(await session.step());
        return out;
      } finally {
        session.dispose();
        expect(tf.memory().numTensors).toBe(before);
        generator.dispose();
        discriminator.dispose();
      }
    }
    const gpu = await losses('webgpu');
    const wasm = await losses('wasm');
    expect(gpu.map((s) => s.phase)).toEqual(['project', 'project', 'tune', 'tune']);
    gpu.forEach((step, i) => {
      expect(step.loss).toBeGreaterThan(0);
      expect(step.loss).toBeCloseTo(wasm[i].loss, 3);
    });
  });
});
