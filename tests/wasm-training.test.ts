/**
 * The WASM training kernels against the reference cpu backend, and GAN
 * training steps on WASM against the same steps on cpu.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { buildGan, modelConfig, type Arch } from '../src/lib/models.ts';
import { GanTrainer, type StepResult } from '../src/lib/gan.ts';
import { keptSubFilters, registerWasmTrainingKernels } from '../src/lib/wasm-training.ts';

beforeAll(async () => {
  const pkg = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json');
  setWasmPaths(`${path.join(path.dirname(pkg), 'dist')}${path.sep}`);
  registerWasmTrainingKernels();
  expect(await tf.setBackend('wasm')).toBe(true);
});

/** Deterministic values in [-1, 1), so both backends get the same inputs. */
function values(size: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  let s = seed >>> 0;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

async function onBackend<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const previous = tf.getBackend();
  await tf.setBackend(name);
  try {
    return await fn();
  } finally {
    await tf.setBackend(previous);
  }
}

type Pad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
interface FilterCase {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: [number, number];
  pad: Pad;
  rounding?: 'floor' | 'round' | 'ceil';
}

const dWOf = (c: FilterCase, x: tf.Tensor4D, dy: tf.Tensor4D) =>
  tf.engine().runKernel(
    tf.Conv2DBackpropFilter,
    { x, dy },
    {
      strides: c.strides,
      pad: c.pad,
      dataFormat: 'NHWC',
      filterShape: c.filter,
      ...(c.rounding ? { dimRoundingMode: c.rounding } : {}),
    },
  ) as tf.Tensor4D;

/** dW on the current backend for fixed x and dy; returns its values and shape. */
async function filterGradient(c: FilterCase): Promise<{ shape: number[]; data: Float32Array }> {
  const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad, c.rounding);
  const [x, dy] = [
    tf.tensor4d(values(tf.util.sizeFromShape(c.x), 1), c.x),
    tf.tensor4d(values(tf.util.sizeFromShape(info.outShape), 2), info.outShape),
  ];
  const dW = dWOf(c, x, dy);
  const out = { shape: dW.shape, data: (await dW.data()) as Float32Array };
  tf.dispose([x, dy, dW]);
  return out;
}

const dxOf = (c: FilterCase, dy: tf.Tensor4D, filter: tf.Tensor4D) =>
  tf.engine().runKernel(
    tf.Conv2DBackpropInput,
    { dy, filter },
    {
      strides: c.strides,
      pad: c.pad,
      dataFormat: 'NHWC',
      inputShape: c.x,
      ...(c.rounding ? { dimRoundingMode: c.rounding } : {}),
    },
  ) as tf.Tensor4D;

/** dx on the current backend for fixed dy and filter (also a transposed conv's forward pass). */
async function inputGradient(c: FilterCase): Promise<{ shape: number[]; data: Float32Array }> {
  const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad, c.rounding);
  const [dy, filter] = [
    tf.tensor4d(values(tf.util.sizeFromShape(info.outShape), 5), info.outShape),
    tf.tensor4d(values(tf.util.sizeFromShape(c.filter), 6), c.filter),
  ];
  const dx = dxOf(c, dy, filter);
  const out = { shape: dx.shape, data: (await dx.data()) as Float32Array };
  tf.dispose([dy, filter, dx]);
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

const KERNELS = [tf.Conv2DBackpropFilter, tf.Conv2DBackpropInput];

describe('registerWasmTrainingKernels', () => {
  it('adds Conv2DBackpropFilter, replaces Conv2DBackpropInput, and is idempotent', () => {
    expect(registerWasmTrainingKernels()).toEqual(KERNELS);
    const kernels = KERNELS.map((k) => tf.getKernel(k, 'wasm'));
    expect(registerWasmTrainingKernels()).toEqual(KERNELS);
    expect(KERNELS.map((k) => tf.getKernel(k, 'wasm'))).toEqual(kernels);
  });
});

const CASES: [string, FilterCase][] = [
  ['3x3 same stride 1', { x: [2, 9, 7, 3], filter: [3, 3, 3, 4], strides: [1, 1], pad: 'same' }],
  ['3x3 same stride 2, batch 1, odd size', { x: [1, 9, 7, 3], filter: [3, 3, 3, 4], strides: [2, 2], pad: 'same' }],
  [
    '3x3 valid, strides 2x3 that drop trailing pixels',
    { x: [2, 9, 7, 3], filter: [3, 3, 3, 4], strides: [2, 3], pad: 'valid' },
  ],
  ['dcgan 4x4 same stride 2 on RGB', { x: [3, 16, 16, 3], filter: [4, 4, 3, 8], strides: [2, 2], pad: 'same' }],
  ['seed-classic 5x5 same', { x: [2, 12, 12, 4], filter: [5, 5, 4, 3], strides: [1, 1], pad: 'same' }],
  ['seed-classic 5x5 valid', { x: [2, 11, 10, 5], filter: [5, 5, 5, 2], strides: [1, 1], pad: 'valid' }],
  ['non-square 5x4 valid strides 3x2', { x: [2, 11, 10, 5], filter: [5, 4, 5, 2], strides: [3, 2], pad: 'valid' }],
  [
    'numeric pad 1 with floor rounding',
    { x: [2, 8, 9, 3], filter: [3, 3, 3, 2], strides: [2, 2], pad: 1, rounding: 'floor' },
  ],
  [
    'explicit asymmetric pads',
    {
      x: [2, 8, 9, 3],
      filter: [3, 3, 3, 2],
      strides: [2, 2],
      pad: [
        [0, 0],
        [1, 2],
        [0, 1],
        [0, 0],
      ],
    },
  ],
  ['1x1 filter, batch 1', { x: [1, 5, 5, 6], filter: [1, 1, 6, 7], strides: [1, 1], pad: 'valid' }],
  [
    '1x1 filter stride 2: output phases no tap reaches',
    { x: [2, 7, 6, 3], filter: [1, 1, 3, 4], strides: [2, 2], pad: 'valid' },
  ],
  ['2x2 filter stride 3 same, batch 1', { x: [1, 10, 8, 2], filter: [2, 2, 2, 3], strides: [3, 3], pad: 'same' }],
  [
    'explicit pads larger than the filter',
    {
      x: [2, 8, 9, 3],
      filter: [3, 3, 3, 2],
      strides: [2, 2],
      pad: [
        [0, 0],
        [4, 0],
        [0, 5],
        [0, 0],
      ],
    },
  ],
];

describe('Conv2DBackpropFilter on wasm', () => {
  it.each(CASES)('%s matches cpu', async (_name, c) => {
    const wasm = await filterGradient(c);
    const cpu = await onBackend('cpu', () => filterGradient(c));
    expect(wasm.shape).toEqual(c.filter);
    const scale = Math.max(1, ...Array.from(cpu.data, Math.abs));
    expect(maxAbsDiff(wasm.data, cpu.data) / scale).toBeLessThan(1e-5);
  });

  it('frees its intermediate buffers', async () => {
    const c = CASES[1][1];
    await filterGradient(c);
    const backend = tf.backend();
    const [tensors, buffers] = [tf.memory().numTensors, backend.numDataIds()];
    for (let i = 0; i < 3; i++) await filterGradient(c);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(backend.numDataIds()).toBe(buffers);
  });

  it('rejects NCHW with a clear error', () => {
    const x = tf.zeros([1, 3, 8, 8]) as tf.Tensor4D;
    const dy = tf.zeros([1, 2, 8, 8]) as tf.Tensor4D;
    expect(() =>
      tf.engine().runKernel(
        tf.Conv2DBackpropFilter,
        { x, dy },
        {
          strides: 1,
          pad: 'same',
          dataFormat: 'NCHW',
          filterShape: [3, 3, 3, 2],
        },
      ),
    ).toThrow(/NHWC/);
    tf.dispose([x, dy]);
  });
});

describe('Conv2DBackpropInput on wasm', () => {
  it.each(CASES)('%s matches cpu', async (_name, c) => {
    const wasm = await inputGradient(c);
    const cpu = await onBackend('cpu', () => inputGradient(c));
    expect(wasm.shape).toEqual(c.x);
    const scale = Math.max(1, ...Array.from(cpu.data, Math.abs));
    expect(maxAbsDiff(wasm.data, cpu.data) / scale).toBeLessThan(1e-5);
  });

  it('splits a filter once while it lives (same dx), and frees the pieces once it is gone', async () => {
    const c = CASES[1][1];
    const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad, c.rounding);
    const dy = tf.tensor4d(values(tf.util.sizeFromShape(info.outShape), 5), info.outShape);
    const filter = tf.tensor4d(values(tf.util.sizeFromShape(c.filter), 6), c.filter);
    const backend = tf.backend();
    const first = dxOf(c, dy, filter);
    // Stride 2 in both directions: 4 phases, each with its piece of the filter, kept (earlier filters' freed).
    expect(keptSubFilters()).toBe(4);
    const withPieces = backend.numDataIds();
    const again = dxOf(c, dy, filter);
    // Nothing new was written for the filter (only dx), and its pieces give the same dx.
    expect(backend.numDataIds()).toBe(withPieces + 1);
    expect(keptSubFilters()).toBe(4);
    expect(maxAbsDiff(await again.data(), await first.data())).toBe(0);
    tf.dispose([first, again, dy, filter]);
    const kept = backend.numDataIds();
    await inputGradient(c); // another filter: the disposed one's pieces are freed, this one's kept
    expect(backend.numDataIds()).toBe(kept);
    expect(keptSubFilters()).toBe(4);
  });

  it('frees its intermediate buffers', async () => {
    const c = CASES[1][1];
    await inputGradient(c);
    const backend = tf.backend();
    const [tensors, buffers] = [tf.memory().numTensors, backend.numDataIds()];
    for (let i = 0; i < 3; i++) await inputGradient(c);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(backend.numDataIds()).toBe(buffers);
  });
});

/** Fixed initial weights, batch and latents, so both backends train the same GAN. */
interface Setup {
  gWeights: Float32Array[];
  dWeights: Float32Array[];
  real: Float32Array;
  z: Float32Array;
}

const BATCH = 2;
const Z_DIM = 16;

async function makeSetup(arch: Arch, width: number): Promise<Setup> {
  // Seeded: the same starting point every run, so a comparison that fails is reproducible.
  const { generator, discriminator } = buildGan(modelConfig(arch, width, Z_DIM, 11));
  const read = (ws: tf.Tensor[]) => Promise.all(ws.map(async (w) => (await w.data()) as Float32Array));
  const setup = {
    gWeights: await read(generator.getWeights()),
    dWeights: await read(discriminator.getWeights()),
    real: values(BATCH * 64 * 64 * 3, 3),
    z: values(BATCH * Z_DIM, 4),
  };
  generator.dispose();
  discriminator.dispose();
  return setup;
}

/** `steps` training steps on the current backend from `setup`; returns losses and final weights. */
async function train(arch: Arch, width: number, setup: Setup, steps: number) {
  const { generator, discriminator } = buildGan(modelConfig(arch, width, Z_DIM));
  const load = (m: typeof generator, ws: Float32Array[]) =>
    m.setWeights(m.getWeights().map((w, i) => tf.tensor(ws[i], w.shape)));
  load(generator, setup.gWeights);
  load(discriminator, setup.dWeights);
  const trainer = new GanTrainer(generator, discriminator);
  const real = tf.tensor4d(setup.real, [BATCH, 64, 64, 3]);
  const z = tf.tensor2d(setup.z, [BATCH, Z_DIM]);
  const results: StepResult[] = [];
  const tensorCounts: number[] = [];
  for (let i = 0; i < steps; i++) {
    results.push(await trainer.step(real, z));
    tensorCounts.push(tf.memory().numTensors);
  }
  // Every trainable variable of both nets, by name; getWeights() order matches setup's.
  const trainable = new Map<string, { before: Float32Array; after: Float32Array }>();
  for (const [model, before] of [
    [generator, setup.gWeights],
    [discriminator, setup.dWeights],
  ] as const) {
    const names = new Set(model.trainableWeights.map((w) => w.name));
    for (const [i, w] of model.weights.entries()) {
      if (names.has(w.name))
        trainable.set(w.name, { before: before[i], after: (await w.read().data()) as Float32Array });
    }
  }
  tf.dispose([real, z]);
  trainer.dispose();
  generator.dispose();
  discriminator.dispose();
  return { results, tensorCounts, trainable };
}

describe('GanTrainer on wasm', () => {
  it('a small dcgan trains like on cpu: same losses, weights move, no leaked tensors', async () => {
    const setup = await onBackend('cpu', () => makeSetup('dcgan', 8));
    // Two steps on cpu (the slow reference) compare the D and G updates of a step and the next step's use of them.
    const cpu = await onBackend('cpu', () => train('dcgan', 8, setup, 2));
    const wasm = await train('dcgan', 8, setup, 3);
    expect(tf.getBackend()).toBe('wasm');
    // Step 1 starts from identical weights: agreement to 1e-3. Step 2 follows Adam's first update, g / (|g| + eps),
    // which turns rounding-level differences in near-zero gradients into whole learning-rate steps: 1e-2.
    cpu.results.forEach((c, i) => {
      const r = wasm.results[i];
      const digits = i === 0 ? 3 : 2;
      expect(r.dLoss).toBeCloseTo(c.dLoss, digits);
      expect(r.gLoss).toBeCloseTo(c.gLoss, digits);
      expect(r.dReal).toBeCloseTo(c.dReal, digits);
      expect(r.dFake).toBeCloseTo(c.dFake, digits);
    });
    // After the first step (which creates Adam's moments) the count stays flat.
    expect(wasm.tensorCounts[2]).toBe(wasm.tensorCounts[1]);
    const unchanged = [...wasm.trainable].filter(([, w]) => maxAbsDiff(w.after, w.before) < 1e-6).map(([name]) => name);
    expect(wasm.trainable.size).toBeGreaterThan(10);
    expect(unchanged).toEqual([]);
  });

  it('a seed-improved step runs (strided and stride-1 3x3 convs, upsampling, dropout)', async () => {
    const setup = await makeSetup('seed-improved', 8);
    const { results } = await train('seed-improved', 8, setup, 1);
    expect(Number.isFinite(results[0].dLoss) && Number.isFinite(results[0].gLoss)).toBe(true);
  });
});
