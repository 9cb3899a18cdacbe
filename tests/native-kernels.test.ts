/**
 * The native backend against the reference cpu backend: every replaced
 * kernel's forward result and gradients on odd shapes, and whole GAN
 * training steps. Skipped, with the reason in the suite's name, where the
 * addon is not built.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { convPrecision, registerNativeBackend } from '../training/native/index.ts';
import { loadAddon } from '../training/native/addon.ts';
import { cpuFallbacks } from '../training/native/backend.ts';
import { poolMegabytes } from '../training/native/buffers.ts';
import { buildGan, modelConfig } from '../src/lib/models.ts';
import { GanTrainer, type TrainConfig } from '../src/lib/gan.ts';
import { FULL_POLICY } from '../src/lib/diffaugment.ts';
import { Rng } from '../src/lib/latent.ts';
import { batchNormTraining } from '../src/lib/batchnorm.ts';

const registration = await registerNativeBackend();
const suiteName = registration.ok
  ? 'native backend kernels'
  : `native backend kernels (skipped: ${registration.reason})`;
if (!registration.ok) console.warn(`native backend kernel tests skipped: ${registration.reason}`);

type Build = (inputs: tf.Tensor[]) => tf.Tensor[];

function randomData(shape: number[], seed: number): Float32Array {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** Runs `build` on both backends with the same inputs; returns the outputs' values per backend. */
async function onBoth(shapes: number[][], build: Build, transform: (v: Float32Array) => Float32Array = (v) => v) {
  const data = shapes.map((s, i) => transform(randomData(s, 1000 + i)));
  const results: Record<string, Float32Array[]> = {};
  for (const backend of ['cpu', 'native']) {
    await tf.setBackend(backend);
    const inputs = data.map((d, i) => tf.tensor(d, shapes[i]));
    const outputs = build(inputs);
    results[backend] = await Promise.all(outputs.map(async (o) => Float32Array.from(await o.data())));
    tf.dispose([...inputs, ...outputs]);
  }
  return results;
}

function expectClose(actual: Float32Array, expected: Float32Array, label: string, rtol = 1e-4) {
  expect(actual.length, label).toBe(expected.length);
  let scale = 0,
    worst = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]));
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
    if (Number.isNaN(expected[i]) !== Number.isNaN(actual[i])) throw new Error(`${label}: NaN mismatch at ${i}`);
  }
  expect(worst, `${label}: max |native - cpu| vs max |cpu| ${scale}`).toBeLessThanOrEqual(rtol * (1 + scale));
}

/** Forward outputs and the gradients of sum(output * dy) with respect to every input, on both backends. */
async function expectSameWithGrads(
  shapes: number[][],
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  label: string,
  transform?: (v: Float32Array) => Float32Array,
  rtol?: number,
) {
  const build: Build = (inputs) => {
    const y = f(...inputs);
    const dy = tf.tensor(randomData(y.shape, 77), y.shape);
    const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), dy)))(inputs);
    dy.dispose();
    return [y, ...grads];
  };
  const r = await onBoth(shapes, build, transform);
  r.cpu.forEach((expected, i) =>
    expectClose(r.native[i], expected, `${label} ${i === 0 ? 'forward' : `grad ${i - 1}`}`, rtol),
  );
}

const addonInfo = loadAddon();
const info = addonInfo.ok ? addonInfo.addon.info() : null;
const startedOnOneDnn = !!info?.convPath.startsWith('oneDNN');

describe.skipIf(!registration.ok)(suiteName, () => {
  it('registers once and describes its BLAS', async () => {
    const again = await registerNativeBackend();
    expect(again).toBe(registration);
    if (!registration.ok || !info) return;
    expect(registration.detail).toMatch(
      /^(oneDNN [\d.]+ convolutions( \(bf16 inputs\))?, )?OpenBLAS [\d.]+, \d+ threads?$/,
    );
    if (startedOnOneDnn) expect(registration.detail).toContain(`${info.oneDnn} convolutions`);
    // auto (the default) reads bf16 exactly where the CPU has bf16 dot products.
    const precision = convPrecision();
    const bf16 = startedOnOneDnn && (precision === 'bf16' || (precision === 'auto' && info.bf16Native));
    expect(registration.detail.includes('(bf16 inputs)')).toBe(bf16);
  });

  // Convolutions run on oneDNN where it was compiled in, in f32 and (where the CPU has bf16 dot products) in
  // bf16, and on OpenBLAS (its fallback) always: every path is checked. bf16 rounds each input to an 8-bit
  // mantissa (relative error 2^-9) and accumulates in f32: 1e-2 of the output's scale (filter gradients stay
  // f32 on that path). The suite runs in f32.
  type ConvPath = { name: string; oneDnn: boolean; bf16: boolean; rtol: number };
  const convPaths: ConvPath[] = [
    ...(info?.oneDnn ? [{ name: 'oneDNN f32', oneDnn: true, bf16: false, rtol: 1e-4 }] : []),
    ...(info?.oneDnn && info.bf16Native ? [{ name: 'oneDNN bf16', oneDnn: true, bf16: true, rtol: 1e-2 }] : []),
    { name: 'OpenBLAS', oneDnn: false, bf16: false, rtol: 1e-4 },
  ];
  const setPath = (oneDnn: boolean, bf16: boolean) => {
    if (!addonInfo.ok) return;
    addonInfo.addon.useOneDnn(oneDnn);
    addonInfo.addon.useBf16(bf16);
  };
  setPath(startedOnOneDnn, false);
  const onPath = async (path: ConvPath, body: () => Promise<void>) => {
    setPath(path.oneDnn, path.bf16);
    try {
      await body();
    } finally {
      setPath(startedOnOneDnn, false);
    }
  };

  const convCases: [string, number[], number[], number | [number, number], 'same' | 'valid' | number][] = [
    ['3x3 stride 1 same, odd sizes, batch 1', [1, 7, 9, 3], [3, 3, 3, 5], 1, 'same'],
    ['4x4 stride 2 same (DCGAN)', [2, 8, 8, 4], [4, 4, 4, 6], 2, 'same'],
    ['3x3 stride 2 valid, odd sizes', [3, 9, 7, 2], [3, 3, 2, 3], 2, 'valid'],
    ['1x1 valid', [1, 5, 5, 1], [1, 1, 1, 2], 1, 'valid'],
    ['5x3 strides [2, 1] explicit pad 1', [2, 6, 5, 3], [5, 3, 3, 4], [2, 1], 1],
    [
      '4x4 stride 2 valid, even size (last row unread), 12 -> 20 channels, batch 3',
      [3, 10, 9, 12],
      [4, 4, 12, 20],
      2,
      'valid',
    ],
    ['4x4 stride 2 same, 36 -> 17 channels, batch 1', [1, 6, 6, 36], [4, 4, 36, 17], 2, 'same'],
    ['4x4 stride 2 same, 64 -> 24 channels, batch 2', [2, 6, 7, 64], [4, 4, 64, 24], 2, 'same'],
  ];
  for (const path of convPaths) {
    for (const [label, xShape, wShape, strides, pad] of convCases) {
      it(`conv2d ${label} on ${path.name}: forward and gradients`, async () => {
        cpuFallbacks.clear();
        await onPath(path, () =>
          expectSameWithGrads(
            [xShape, wShape],
            (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, strides, pad),
            label,
            undefined,
            path.rtol,
          ),
        );
        expect(Object.fromEntries(cpuFallbacks), 'kernels that fell back to cpu').toEqual({});
      });
    }
  }
  it('dilated conv2d (forward: tfjs-core has no gradient for dilation > 1)', async () => {
    cpuFallbacks.clear();
    for (const pad of ['same', 'valid'] as const) {
      const r = await onBoth(
        [
          [2, 9, 8, 3],
          [3, 3, 3, 4],
        ],
        ([x, w]) => [tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, pad, 'NHWC', [2, 3])],
      );
      expectClose(r.native[0], r.cpu[0], `dilated ${pad}`);
    }
    expect(Object.fromEntries(cpuFallbacks), 'kernels that fell back to cpu').toEqual({});
  });

  it('fused conv2d with bias and activations', async () => {
    for (const activation of ['linear', 'relu', 'leakyrelu', 'elu', 'relu6', 'sigmoid'] as const) {
      await expectSameWithGrads(
        [[2, 7, 6, 3], [3, 3, 3, 4], [4]],
        (x, w, b) =>
          tf.fused.conv2d({
            x: x as tf.Tensor4D,
            filter: w as tf.Tensor4D,
            bias: b,
            strides: 2,
            pad: 'same',
            activation,
            leakyreluAlpha: 0.3,
          }),
        `fused ${activation}`,
      );
    }
  });

  const deconvCases: [string, number[], number[], number, 'same' | 'valid'][] = [
    ['4x4 stride 2 same (DCGAN)', [2, 4, 4, 6], [4, 4, 3, 6], 2, 'same'],
    ['3x3 stride 2 valid, odd sizes, batch 1', [1, 3, 5, 2], [3, 3, 4, 2], 2, 'valid'],
    ['3x3 stride 1 same', [1, 5, 5, 3], [3, 3, 2, 3], 1, 'same'],
    ['4x4 stride 2 same, 20 -> 9 channels, batch 3', [3, 4, 5, 20], [4, 4, 9, 20], 2, 'same'],
  ];
  for (const path of convPaths)
    for (const [label, xShape, wShape, stride, pad] of deconvCases) {
      it(`conv2dTranspose ${label} on ${path.name}: forward and gradients`, async () => {
        const [, h, w] = xShape;
        const [kh, kw, outC] = wShape;
        const size = (n: number, k: number) => (pad === 'same' ? n * stride : (n - 1) * stride + k);
        const outShape: [number, number, number, number] = [xShape[0], size(h, kh), size(w, kw), outC];
        cpuFallbacks.clear();
        await onPath(path, () =>
          expectSameWithGrads(
            [xShape, wShape],
            (x, f) => tf.conv2dTranspose(x as tf.Tensor4D, f as tf.Tensor4D, outShape, stride, pad),
            label,
            undefined,
            path.rtol,
          ),
        );
        expect(Object.fromEntries(cpuFallbacks), 'kernels that fell back to cpu').toEqual({});
      });
    }

  it('matMul: plain, transposed, batched and broadcast, with gradients', async () => {
    cpuFallbacks.clear();
    await expectSameWithGrads(
      [
        [5, 7],
        [7, 3],
      ],
      (a, b) => tf.matMul(a, b),
      'matMul',
    );
    await expectSameWithGrads(
      [
        [7, 5],
        [3, 7],
      ],
      (a, b) => tf.matMul(a, b, true, true),
      'matMul tt',
    );
    await expectSameWithGrads(
      [
        [4, 2, 6],
        [4, 6, 3],
      ],
      (a, b) => tf.matMul(a, b),
      'batched',
    );
    // tfjs-core's BatchMatMul gradient does not reduce broadcast batches (on any backend): forward only.
    const r = await onBoth(
      [
        [4, 2, 6],
        [1, 3, 6],
      ],
      ([a, b]) => [tf.matMul(a, b, false, true), tf.matMul(b, a, false, true)],
    );
    r.cpu.forEach((expected, i) => expectClose(r.native[i], expected, `broadcast batch ${i}`));
    await expectSameWithGrads(
      [
        [1, 9],
        [9, 1],
      ],
      (a, b) => tf.matMul(a, b),
      'batch 1, vector',
    );
    expect(Object.fromEntries(cpuFallbacks), 'kernels that fell back to cpu').toEqual({});
  });

  it('fused matMul with bias and activation (dense layers)', async () => {
    for (const activation of ['linear', 'relu', 'leakyrelu'] as const) {
      await expectSameWithGrads(
        [[6, 10], [10, 4], [4]],
        (a, b, bias) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, activation }),
        `fused matMul ${activation}`,
      );
    }
  });

  it('unary ops and their gradients', async () => {
    const ops: [string, (x: tf.Tensor) => tf.Tensor][] = [
      ['relu', tf.relu],
      ['leakyRelu', (x) => tf.leakyRelu(x, 0.2)],
      ['tanh', tf.tanh],
      ['sigmoid', tf.sigmoid],
      ['neg', tf.neg],
      ['square', tf.square],
      ['abs', tf.abs],
      ['exp', tf.exp],
      ['elu', tf.elu],
      ['relu6', tf.relu6],
    ];
    for (const [name, op] of ops) await expectSameWithGrads([[3, 5, 7]], op, name);
    // Ops defined for positive inputs only.
    const positive = (v: Float32Array) => v.map((x) => Math.abs(x) + 0.1);
    const posOps: [string, (x: tf.Tensor) => tf.Tensor][] = [
      ['sqrt', tf.sqrt],
      ['rsqrt', tf.rsqrt],
      ['log', tf.log],
      ['log1p', tf.log1p],
      ['reciprocal', tf.reciprocal],
    ];
    for (const [name, op] of posOps) await expectSameWithGrads([[4, 9]], op, name, positive);
  });

  it('vectorised element-wise loops: long odd lengths split over threads, with NaN, infinities and signed zeros', async () => {
    // Long enough for every thread and for vector loops with a scalar tail; specials land in both.
    const n = 3 * 65_537;
    const specials = [NaN, Infinity, -Infinity, 0, -0, 1e30, -1e30];
    const withSpecials = (v: Float32Array) => {
      const out = Float32Array.from(v);
      for (let i = 0; i < n; i += 997) out[i] = specials[(i / 997) % specials.length];
      out[n - 1] = NaN;
      out[n - 2] = -0;
      return out;
    };
    const same = (actual: Float32Array, expected: Float32Array, label: string) => {
      for (let i = 0; i < expected.length; i++) {
        const e = expected[i],
          a = actual[i];
        const ok = Number.isFinite(e)
          ? Math.abs(a - e) <= 1e-5 * (1 + Math.abs(e))
          : Object.is(a, e) || (Number.isNaN(e) && Number.isNaN(a));
        if (!ok)
          throw new Error(`${label}: at ${i} (x = ${i % 997 === 0 ? 'special' : 'random'}) native ${a}, cpu ${e}`);
      }
    };
    const ops: [string, (x: tf.Tensor, y: tf.Tensor) => tf.Tensor][] = [
      ['relu', (x) => tf.relu(x)],
      ['leakyRelu', (x) => tf.leakyRelu(x, 0.2)],
      ['relu6', (x) => tf.relu6(x)],
      ['elu', (x) => tf.elu(x)],
      ['neg', (x) => tf.neg(x)],
      ['abs', (x) => tf.abs(x)],
      ['tanh', (x) => tf.tanh(x)],
      ['maximum', tf.maximum],
      ['minimum', tf.minimum],
      ['add', tf.add],
      ['mul', tf.mul],
      // dy without specials, so that the gradient's own NaN handling shows.
      ['relu grad', (x) => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu(v), tf.linspace(0.5, 1.5, n))))(x)],
      [
        'leakyRelu grad',
        (x) => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.leakyRelu(v, 0.2), tf.linspace(0.5, 1.5, n))))(x),
      ],
    ];
    for (const [name, op] of ops) {
      const r = await onBoth([[n], [n]], ([x, y]) => [op(x, y)], withSpecials);
      same(r.native[0], r.cpu[0], name);
    }
  });

  it('binary ops with broadcasting, and their gradients', async () => {
    const shapes: [number[], number[]][] = [
      [
        [2, 3, 4, 5],
        [2, 3, 4, 5],
      ],
      [[2, 3, 4, 5], [5]],
      [[5], [2, 3, 4, 5]],
      [
        [2, 1, 4, 1],
        [3, 1, 5],
      ],
      [[3, 4], []],
      [[], [3, 4]],
      [
        [1, 1, 1, 6],
        [2, 3, 3, 6],
      ],
      [
        [2, 3, 1, 5, 1, 2],
        [3, 4, 1, 1, 2],
      ],
    ];
    const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
      ['add', tf.add],
      ['sub', tf.sub],
      ['mul', tf.mul],
      ['div', tf.div],
    ];
    for (const [a, b] of shapes) {
      for (const [name, op] of ops) await expectSameWithGrads([a, b], op, `${name} ${a} ${b}`);
    }
    // tfjs-core's gradients of these do not reduce broadcast dims (on any backend): gradients on equal shapes only.
    const unreduced: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
      ['squaredDifference', tf.squaredDifference],
      ['maximum', tf.maximum],
      ['minimum', tf.minimum],
    ];
    for (const [name, op] of unreduced) {
      await expectSameWithGrads(
        [
          [2, 3, 4, 5],
          [2, 3, 4, 5],
        ],
        op,
        name,
      );
      for (const [a, b] of shapes) {
        const r = await onBoth([a, b], ([x, y]) => [op(x, y)]);
        expectClose(r.native[0], r.cpu[0], `${name} ${a} ${b}`);
      }
    }
  });

  it('comparisons and select', async () => {
    const r = await onBoth([[3, 4, 5], [5], [3, 4, 5]], ([a, b, c]) => [
      tf.cast(tf.greater(a, b), 'float32'),
      tf.cast(tf.greaterEqual(a, b), 'float32'),
      tf.cast(tf.less(a, b), 'float32'),
      tf.cast(tf.lessEqual(a, b), 'float32'),
      tf.cast(tf.equal(a, tf.round(a)), 'float32'),
      tf.where(tf.greater(a, c), a, c),
    ]);
    r.cpu.forEach((expected, i) => expect(Array.from(r.native[i]), `output ${i}`).toEqual(Array.from(expected)));
  });

  it('sum and mean over any axes, keepDims or not', async () => {
    const axesCases: (number | number[] | undefined)[] = [
      undefined,
      0,
      3,
      -1,
      [0, 1, 2],
      [1, 2],
      [0, 2],
      [1, 3],
      [3, 1],
    ];
    for (const axis of axesCases) {
      for (const keepDims of [false, true]) {
        await expectSameWithGrads([[3, 4, 5, 6]], (x) => tf.sum(x, axis, keepDims), `sum ${axis} ${keepDims}`);
        await expectSameWithGrads([[3, 4, 5, 6]], (x) => tf.mean(x, axis, keepDims), `mean ${axis} ${keepDims}`);
      }
    }
  });

  it('batch norm with per-channel statistics, and its gradients', async () => {
    const positive = (v: Float32Array) => v.map((x) => Math.abs(x) + 0.5);
    await expectSameWithGrads(
      [[2, 5, 3, 4], [4], [4], [4], [4]],
      (x, mean, variance, offset, scale) => tf.batchNorm(x, mean, tf.abs(variance), offset, scale, 1e-5),
      'batchNorm',
    );
    // Without scale, tfjs-core's batch-norm gradient fails on every backend: forward only.
    const r = await onBoth(
      [[3, 2, 2, 6], [6], [6], [1]],
      ([x, mean, variance, offset]) => [tf.batchNorm(x, mean, variance), tf.batchNorm(x, mean, variance, offset)],
      positive,
    );
    r.cpu.forEach((expected, i) => expectClose(r.native[i], expected, `batchNorm no scale ${i}`));
  });

  it('training-mode batch norm: native moments and fused closed-form gradient against cpu', async () => {
    cpuFallbacks.clear();
    for (const [shape, label] of [
      [[16, 9, 7, 24], 'rows split over threads'],
      [[5, 3], 'rank 2'],
      [[3, 2, 2, 1], 'one channel'],
    ] as const) {
      const c = shape[shape.length - 1];
      await expectSameWithGrads(
        [[...shape], [c], [c]],
        (x, g, b) => batchNormTraining(x, tf.add(g, 1), b, 1e-5).y,
        `batchNormTraining ${label}`,
      );
    }
    expect(Object.fromEntries(cpuFallbacks), 'kernels that fell back to cpu').toEqual({});
  });

  it('nearest-neighbour upsampling by whole factors, and its gradient; other resizes left to cpu', async () => {
    for (const [shape, s] of [
      [[2, 3, 5, 7], 2],
      [[1, 4, 2, 3], 3],
      [[3, 1, 1, 1], 2],
    ] as [number[], number][]) {
      const [n, h, w, c] = shape;
      const size: [number, number] = [h * s, w * s];
      for (const halfPixel of [false, true]) {
        const r = await onBoth([shape], ([x]) => [
          tf.image.resizeNearestNeighbor(x as tf.Tensor4D, size, false, halfPixel),
        ]);
        expectClose(r.native[0], r.cpu[0], `x${s} ${shape} forward`);
      }
      // The gradient against its definition, each input's sum over the s x s block it was copied to: tfjs-backend-cpu's
      // own ResizeNearestNeighborGrad is wrong for batches of more than one image.
      await tf.setBackend('native');
      const x = tf.tensor4d(randomData(shape, 5), shape as [number, number, number, number]);
      const dy = randomData([n, h * s, w * s, c], 6);
      const dyT = tf.tensor4d(dy, [n, h * s, w * s, c]);
      const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.image.resizeNearestNeighbor(t as tf.Tensor4D, size), dyT)))(
        x,
      );
      const expected = new Float32Array(x.size);
      for (let i = 0; i < n; i++)
        for (let oy = 0; oy < h * s; oy++)
          for (let ox = 0; ox < w * s; ox++)
            for (let ch = 0; ch < c; ch++)
              expected[((i * h + Math.floor(oy / s)) * w + Math.floor(ox / s)) * c + ch] +=
                dy[((i * h * s + oy) * w * s + ox) * c + ch];
      expectClose(Float32Array.from(await dx.data()), expected, `x${s} ${shape} gradient`);
      tf.dispose([x, dyT, dx]);
    }
    // Corner-aligned and fractional resizes are not copies: the cpu kernels run them, with the same results.
    await expectSameWithGrads(
      [[1, 3, 3, 2]],
      (x) => tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [6, 6], true),
      'aligned corners',
    );
    await expectSameWithGrads([[1, 4, 4, 2]], (x) => tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [6, 10]), 'x1.5');
  });

  it('average pools over disjoint blocks (a 128 px image seen at 64 px), and their gradient; other pools left to cpu', async () => {
    cpuFallbacks.clear();
    await expectSameWithGrads([[2, 4, 6, 3]], (x) => tf.avgPool(x as tf.Tensor4D, 2, 2, 'valid'), '2x2 blocks');
    await expectSameWithGrads([[3, 6, 3, 2]], (x) => tf.avgPool(x as tf.Tensor4D, 3, 3, 'valid'), '3x3 blocks');
    expect(Object.fromEntries(cpuFallbacks), 'kernels that fell back to cpu').toEqual({});
    // Overlapping windows and padding are not block sums: the cpu kernels run them, with the same results.
    await expectSameWithGrads([[1, 5, 5, 2]], (x) => tf.avgPool(x as tf.Tensor4D, 3, 1, 'same'), 'overlapping');
    await expectSameWithGrads([[1, 5, 5, 2]], (x) => tf.avgPool(x as tf.Tensor4D, 2, 2, 'valid'), 'not tiling');
    expect(cpuFallbacks.get('AvgPool')).toBeGreaterThan(0);
  });

  it('transposes that keep the last axis last copy its runs; others are left to cpu', async () => {
    cpuFallbacks.clear();
    await expectSameWithGrads([[2, 3, 4, 5]], (x) => tf.transpose(x, [0, 2, 1, 3]), 'swap rows and columns');
    await expectSameWithGrads([[2, 3, 4, 3]], (x) => tf.transpose(x, [2, 0, 1, 3]), 'rank 4, rotated');
    await expectSameWithGrads([[3, 4, 6]], (x) => tf.transpose(x, [1, 0, 2]), 'rank 3');
    expect(Object.fromEntries(cpuFallbacks), 'kernels that fell back to cpu').toEqual({});
    await expectSameWithGrads([[2, 3, 4, 5]], (x) => tf.transpose(x, [0, 1, 3, 2]), 'last axis moved');
    expect(cpuFallbacks.get('Transpose')).toBeGreaterThan(0);
  });

  it('tile', async () => {
    const cases: [number[], number[]][] = [
      [
        [1, 1, 1, 4],
        [2, 3, 5, 1],
      ],
      [
        [2, 3],
        [3, 2],
      ],
      [[3], [7]],
      [
        [2, 1, 3],
        [1, 1, 1],
      ],
      [
        [2, 2],
        [0, 2],
      ],
    ];
    for (const [shape, reps] of cases) {
      await expectSameWithGrads([shape], (x) => tf.tile(x, reps), `tile ${shape} x ${reps}`);
    }
  });

  const recipes: [string, Partial<TrainConfig>, boolean][] = [
    ['bce', {}, false],
    // R1 differentiates D's input gradient: the native fast gradients must step aside for it.
    ['hinge + DiffAugment + R1', { loss: 'hinge', diffAugment: FULL_POLICY, r1Gamma: 1, r1Every: 2 }, false],
    // What training runs on where the CPU has bf16 dot products.
    ...(startedOnOneDnn && info?.bf16Native
      ? [['bce, bf16 convolutions', {}, true] as [string, Partial<TrainConfig>, boolean]]
      : []),
  ];
  it.each(recipes)('GanTrainer steps on native match cpu: losses and weights (%s)', async (_name, recipe, bf16) => {
    // Seeded: the same starting weights every run, so a mismatch is reproducible rather than a rare flake.
    const cfg = modelConfig('dcgan', 4, 100, 21);
    const steps = 3,
      batch = 3;
    const real = randomData([batch, 64, 64, 3], 5).map((v) => Math.tanh(v));
    const z = randomData([batch, cfg.zDim], 6);
    let initial: Float32Array[] | null = null;
    const runs: Record<string, { losses: number[]; weights: Float32Array[] }> = {};
    for (const backend of ['cpu', 'native']) {
      await tf.setBackend(backend);
      const gan = buildGan(cfg);
      const models = [gan.generator, gan.discriminator];
      if (!initial)
        initial = await Promise.all(
          models.flatMap((m) => m.getWeights()).map(async (w) => Float32Array.from(await w.data())),
        );
      let i = 0;
      for (const m of models) m.setWeights(m.getWeights().map((w) => tf.tensor(initial![i++], w.shape)));
      const trainer = new GanTrainer(gan.generator, gan.discriminator, recipe, new Rng(7));
      const realT = tf.tensor4d(real, [batch, 64, 64, 3]),
        zT = tf.tensor2d(z, [batch, cfg.zDim]);
      const before = tf.memory().numTensors;
      cpuFallbacks.clear();
      const losses: number[] = [];
      let afterTwo = 0;
      if (bf16 && backend === 'native') setPath(true, true);
      try {
        for (let s = 0; s < steps; s++) {
          const r = await trainer.step(realT, zT);
          losses.push(r.dLoss, r.gLoss, r.dReal, r.dFake);
          // Adam's slots appear on the first step; after it the count must stay flat.
          if (s === 0) expect(tf.memory().numTensors).toBeGreaterThan(before);
        }
        afterTwo = tf.memory().numTensors;
        await trainer.step(realT, zT);
      } finally {
        setPath(startedOnOneDnn, false);
      }
      expect(tf.memory().numTensors, `${backend} leaks tensors`).toBe(afterTwo);
      // Every kernel of the steps ran natively: none declined its input and fell back to the cpu kernel.
      // (DiffAugment's per-image and per-pixel broadcast multiplies are the one exception: cheap, and left to cpu.)
      if (backend === 'native')
        expect(Object.keys(Object.fromEntries(cpuFallbacks))).toEqual(recipe.diffAugment ? ['Multiply'] : []);
      runs[backend] = {
        losses,
        weights: await Promise.all(
          models.flatMap((m) => m.getWeights()).map(async (w) => Float32Array.from(await w.data())),
        ),
      };
      tf.dispose([realT, zT]);
      trainer.dispose();
      models.forEach((m) => m.dispose());
    }
    // Step 1 starts from identical weights: 5e-5. Later steps follow Adam updates, which turn rounding-level
    // gradient differences near zero into whole learning-rate steps (see below): 5e-4. bf16 rounds every
    // convolution's inputs (2^-9 relative): 5e-3 on step 1, 2e-2 after Adam has acted on that.
    runs.cpu.losses.forEach((l, i) => {
      const label = `loss ${i % 4} of step ${Math.floor(i / 4) + 1}`;
      if (!bf16) expect(runs.native.losses[i], label).toBeCloseTo(l, i < 4 ? 4 : 3);
      else expect(Math.abs(runs.native.losses[i] - l), label).toBeLessThanOrEqual(i < 4 ? 5e-3 : 2e-2);
    });
    // Adam's step is about lr * sign(gradient) where gradients are tiny, so some weights may differ by up to
    // 2 * lr per step; most must agree far more closely, and all must have moved off their start.
    const lr = 2e-4;
    let total = 0,
      loose = 0,
      sumDiff = 0,
      sumMove = 0;
    runs.cpu.weights.forEach((w, i) => {
      const n = runs.native.weights[i];
      for (let j = 0; j < w.length; j++) {
        const d = Math.abs(w[j] - n[j]);
        if (!bf16) expect(d).toBeLessThanOrEqual(2 * lr * (steps + 1) + 1e-6);
        total++;
        sumDiff += d;
        sumMove += Math.abs(w[j] - initial![i][j]);
        if (d > 1e-5) loose++;
      }
    });
    // bf16: the updates take the same direction as on cpu; how far they differ is a small part of how far they moved.
    if (bf16) expect(sumDiff / sumMove, 'mean |native - cpu| / mean |cpu update|').toBeLessThan(0.25);
    // In a width-4 G most gradients are nearly zero, and Adam's normalised step (m / (sqrt(v) + eps)) turns
    // rounding-level differences there (another summation order in oneDNN) into differences of up to lr:
    // about a tenth of the weights for some starts, while the losses above agree to 1e-6.
    // bf16 moves every gradient by rounding, so there most weights differ by more than 1e-5.
    if (!bf16) expect(loose / total).toBeLessThan(0.25);
    const moved = runs.native.weights.some((w, i) => w.some((v, j) => Math.abs(v - initial![i][j]) > 1e-6));
    expect(moved).toBe(true);
  });

  it('Adam in one native pass per variable: the same weights and moments as tfjs-core on cpu, to the bit', async () => {
    const shapes = [[3, 5, 7], [33_001], [4]];
    const results: Record<string, Float32Array[]> = {};
    for (const backend of ['cpu', 'native']) {
      await tf.setBackend(backend);
      const vars = shapes.map((s, i) =>
        tf.variable(tf.tensor(randomData(s, 40 + i), s), true, `adam_test_${backend}_${i}`),
      );
      const opt = tf.train.adam(2e-4, 0.5, 0.999, 1e-8);
      const before = tf.memory().numTensors;
      for (let step = 0; step < 4; step++) {
        const grads = shapes.map((s, i) => tf.tensor(randomData(s, 100 * step + i), s));
        // Both calling forms; on step 2 one variable gets no gradient (it must keep its value and moments).
        if (step % 2 === 0)
          opt.applyGradients(
            Object.fromEntries(vars.map((v, i) => [v.name, grads[i]])) as unknown as Record<string, tf.Variable>,
          );
        else
          opt.applyGradients(
            vars
              .map((v, i) => ({ name: v.name, tensor: step === 1 && i === 2 ? null! : grads[i] }))
              .filter((g) => g.tensor),
          );
        tf.dispose(grads);
        if (step === 0) expect(tf.memory().numTensors).toBeGreaterThan(before); // the moments, once
      }
      const moments = (await opt.getWeights()).slice(1).map((w) => w.tensor);
      results[backend] = await Promise.all([...vars, ...moments].map(async (t) => Float32Array.from(await t.data())));
      opt.dispose();
      tf.dispose(vars);
    }
    results.cpu.forEach((expected, i) =>
      expect(Array.from(results.native[i]), `tensor ${i}`).toEqual(Array.from(expected)),
    );
  });

  it('reuses output buffers only when nothing outside can still see them', async () => {
    await tf.setBackend('native');
    const n = 1 << 16;
    const x = tf.tensor1d(randomData([n], 9));
    const expected = Float32Array.from(x.dataSync(), (v) => Math.max(v, 0));
    const next = () => tf.neg(x); // same length: would take a recycled buffer

    // Read out, then disposed: the array the caller holds must not be overwritten.
    const read = tf.relu(x);
    const values = read.dataSync();
    read.dispose();
    const a = next();
    expect(Array.from(values)).toEqual(Array.from(expected));

    // A cpu kernel's view into a disposed tensor's array (slice) must stay valid.
    const base = tf.relu(x);
    const view = tf.slice(base, [0], [n - 1]);
    base.dispose();
    const b = next();
    expect(Array.from(view.dataSync())).toEqual(Array.from(expected.subarray(0, n - 1)));

    // An array nobody saw is reused, and the result is still right.
    const unseen = tf.relu(x);
    unseen.dispose();
    const c = tf.abs(x);
    expect(Array.from(c.dataSync())).toEqual(Array.from(x.dataSync(), Math.abs));
    tf.dispose([x, a, b, view, c]);
  });

  it('keeps an array in reuse through a lossless Cast (tfjs-layers casts every activation), not through a lossy one', async () => {
    await tf.setBackend('native');
    const backend = tf.backend() as unknown as { data: { get(id: object): { values: unknown } } };
    const arrayOf = (t: tf.Tensor) => backend.data.get(t.dataId).values;
    const n = 1 << 16;
    const x = tf.tensor1d(randomData([n], 10));

    const viaCast = tf.relu(x);
    const array = arrayOf(viaCast);
    const same = tf.cast(viaCast, 'float32');
    tf.dispose([viaCast, same]);
    // The pool hands out the array recycled last: the next output of that length gets it back.
    const next = tf.neg(x);
    expect(arrayOf(next)).toBe(array);

    // A cast to int32 copies: the array can be reused and the copy stays right.
    const relu = Array.from(x.dataSync(), (v) => Math.trunc(Math.max(v, 0)));
    const viaInt = tf.relu(x);
    const ints = tf.cast(viaInt, 'int32');
    viaInt.dispose();
    const next2 = tf.neg(x);
    expect(Array.from(ints.dataSync())).toEqual(relu);

    // complex64 keeps its input's array as its real part: that array must leave the pool.
    const viaComplex = tf.relu(x);
    const array3 = arrayOf(viaComplex);
    const complex = tf.cast(viaComplex, 'complex64');
    viaComplex.dispose();
    const next3 = tf.neg(x);
    expect(arrayOf(next3)).not.toBe(array3);
    const real = tf.real(complex);
    expect(Array.from(real.dataSync().subarray(0, 5))).toEqual(
      Array.from(x.dataSync().subarray(0, 5), (v) => Math.max(v, 0)),
    );
    tf.dispose([x, next, ints, next2, complex, next3, real]);
  });

  it('sizes the buffer pool from FACEGAN_BUFFER_POOL_MB, and refuses nonsense', () => {
    expect(poolMegabytes(undefined)).toBe(1024);
    expect(poolMegabytes('256')).toBe(256);
    expect(() => poolMegabytes('lots')).toThrow(/FACEGAN_BUFFER_POOL_MB/);
    expect(() => poolMegabytes('-1')).toThrow(/FACEGAN_BUFFER_POOL_MB/);
  });

  it('rejects typed arrays that are too short or of the wrong type', () => {
    const load = loadAddon();
    if (!load.ok) throw new Error(load.reason);
    const dims = Int32Array.from([1, 4, 4, 1, 2, 2, 1, 2, 2, 2, 2, 1, 1, 0, 0]);
    expect(() => load.addon.conv2d(new Float32Array(15), new Float32Array(4), new Float32Array(4), dims)).toThrow(
      /x holds 15 values, needs 16/,
    );
    expect(() =>
      load.addon.conv2d(new Float32Array(16), new Float32Array(4), new Float32Array(4), new Int32Array(3)),
    ).toThrow(/conv shape/);
    expect(() =>
      load.addon.matMul(
        new Float64Array(4) as unknown as Float32Array,
        new Float32Array(4),
        new Float32Array(4),
        false,
        false,
        2,
        2,
        2,
      ),
    ).toThrow(/wrong element type/);
  });
});
