// The Node trainer on real CelebA images: it learns, resumes exactly, skips bad files, never leaks.
import { describe, expect, it, beforeAll } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { buildGan, modelConfig } from '../src/lib/models.ts';
import { GanTrainer, NonFiniteLossError, bceWithLogits } from '../src/lib/gan.ts';
import { fromArtifacts, fromFiles } from '../src/lib/weights.ts';
import { UsageError, parseTrainArgs, type TrainOptions } from '../training/config.ts';
import { recipe, train, type Backend } from '../training/train.ts';
import { loadDataset } from '../training/data.ts';
import { loadCheckpoint } from '../training/checkpoint.ts';
import { initNodeBackend } from '../training/node-backends.ts';

const CELEBA = join(__dirname, '..', '..', 'shared', 'celeba', 'img_align_celeba');
let backend: Backend;

beforeAll(async () => {
  backend = await initNodeBackend('auto');
});

const tmp = (name: string) => mkdtempSync(join(tmpdir(), `facegan-${name}-`));

function options(out: string, extra: string[]): TrainOptions {
  const o = parseTrainArgs([
    '--data',
    CELEBA,
    '--limit',
    '64',
    '--arch',
    'dcgan',
    '--width',
    '8',
    '--batch',
    '16',
    '--seed',
    '3',
    '--out',
    out,
    '--quiet',
    '--export-dtype',
    'float32',
    ...extra,
  ]);
  if (o === 'help') throw new Error('unexpected help');
  return o;
}

async function loadExported(dir: string, name: string): Promise<LayersModel> {
  const json = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8'));
  const shards = (json.weightsManifest[0].paths as string[]).map((p) => new Uint8Array(readFileSync(join(dir, p))));
  return fromArtifacts(fromFiles(json, shards));
}

/** D's loss when asked to tell real faces (1) from uniform noise (0), in inference mode. */
function realVsNoiseLoss(d: LayersModel, real: tf.Tensor4D): number {
  return tf.tidy(() => {
    const noise = tf.randomUniform(real.shape, -1, 1, 'float32', 11);
    const lr = d.apply(real, { training: false }) as tf.Tensor;
    const ln = d.apply(noise, { training: false }) as tf.Tensor;
    return tf.add(bceWithLogits(lr, 1), bceWithLogits(ln, 0)).dataSync()[0];
  });
}

describe('training on CelebA', () => {
  it("a short run changes G, lowers D's loss on real vs noise, and leaves a log, grid, checkpoint and export", async () => {
    const out = tmp('run');
    const exp = join(out, 'export');
    const outcome = await train(
      options(out, ['--steps', '24', '--export', exp, '--sample-every', '12', '--log-every', '4']),
      backend,
    );
    expect(outcome.status).toBe('finished');
    expect(outcome.step).toBe(24);

    const fresh = buildGan(modelConfig('dcgan', 8, 100, 3));
    const trainedG = await loadExported(exp, 'generator');
    const trainedD = await loadExported(exp, 'discriminator');
    const g0 = fresh.generator.getWeights().map((w) => w.dataSync());
    const g1 = trainedG.getWeights().map((w) => w.dataSync());
    const changed = g0.filter((w, i) => w.some((v, j) => Math.abs(v - g1[i][j]) > 1e-6)).length;
    expect(changed).toBeGreaterThan(g0.length / 2);

    const data = await loadDataset(CELEBA, { cacheDir: join(out, '..', '.cache'), limit: 64 });
    const real = tf.tensor4d(
      Float32Array.from(data.pixels.subarray(0, 32 * 64 * 64 * 3), (v) => v / 127.5 - 1),
      [32, 64, 64, 3],
    );
    expect(realVsNoiseLoss(trainedD, real)).toBeLessThan(realVsNoiseLoss(fresh.discriminator, real));
    real.dispose();

    const log = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log.map((l) => l.step)).toEqual([4, 8, 12, 16, 20, 24]);
    for (const l of log)
      expect(Object.keys(l)).toEqual(expect.arrayContaining(['d_loss', 'g_loss', 'd_real', 'd_fake', 'images_per_s']));
    expect(readdirSync(join(out, 'samples')).sort()).toEqual(['latest.png', 'step-0000012.png', 'step-0000024.png']);
    expect(existsSync(join(out, 'checkpoint.bin'))).toBe(true);
    const manifest = JSON.parse(readFileSync(join(exp, 'manifest.json'), 'utf8'));
    expect(manifest.training.steps).toBe(24);
    expect(manifest.training.imagesSeen).toBe(24 * 16);
    expect(manifest.generator.params).toBe(fresh.generator.countParams());
    expect(manifest.sampleGrid).toBe('samples.png');
    expect(manifest.training.cpuSeconds).toBeGreaterThan(0);
    expect(manifest.training.cpuSeconds).toBeCloseTo(log.at(-1).cpu_s, 0);
  });

  it('--max-cpu-minutes stops a run once its CPU time is spent, and the count carries over a resume', async () => {
    const out = tmp('cpu');
    const exp = join(out, 'export');
    const budget = ['--steps', '100000', '--export', exp, '--log-every', '1', '--max-cpu-minutes', '0.03'];
    const first = await train(options(out, budget), backend);
    expect(first.status).toBe('budget');
    expect(first.exportDir).toBe(exp); // a budget is a planned end: the run is exported
    expect(JSON.parse(readFileSync(join(exp, 'manifest.json'), 'utf8')).training.steps).toBe(first.step);
    expect(first.step).toBeGreaterThan(0);
    expect(first.step).toBeLessThan(100000);
    const a = await loadCheckpoint(join(out, 'checkpoint.bin'));
    expect(a.state.cpuSeconds).toBeGreaterThanOrEqual(0.03 * 60);
    const log = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).cpu_s as number);
    expect(log).toHaveLength(first.step);
    log.slice(1).forEach((c, i) => expect(c).toBeGreaterThan(log[i]));

    // A resumed run counts from the saved total: one more step, and it is over budget again.
    const second = await train(options(out, [...budget, '--resume']), backend);
    expect(second.status).toBe('budget');
    expect(second.step).toBe(first.step + 1);
    const b = await loadCheckpoint(join(out, 'checkpoint.bin'));
    expect(b.state.cpuSeconds!).toBeGreaterThan(a.state.cpuSeconds!);
  });

  it("a run stopped at step 5 and resumed to 10 ends with the same weights (G, D and G's average) as one run of 10", async () => {
    // The full recipe: DiffAugment's draws, lazy R1's schedule and the average's warm-up must all resume exactly.
    const recipe = ['--ema', '0.9', '--diffaugment', 'color,translation,cutout', '--r1', '1', '--r1-every', '3'];
    const straight = tmp('straight');
    await train(options(straight, ['--steps', '10', '--no-export', ...recipe]), backend);
    const split = tmp('split');
    let steps = 0;
    const first = await train(
      options(split, ['--steps', '10', '--no-export', '--log-every', '1', ...recipe]),
      backend,
      { onStep: () => steps++, shouldStop: () => steps >= 5 },
    );
    expect(first.status).toBe('stopped');
    expect(first.step).toBe(5);
    // No length on the command line: the run keeps its own (10 steps), as a plain --resume should.
    const second = await train(options(split, ['--no-export', '--resume']), backend);
    expect(second.status).toBe('finished');
    expect(second.step).toBe(10);

    const a = await loadCheckpoint(join(straight, 'checkpoint.bin'));
    const b = await loadCheckpoint(join(split, 'checkpoint.bin'));
    expect(b.state.emaUpdates).toBe(10);
    for (const key of ['generator', 'discriminator', 'ema'] as const) {
      const wa = a[key]!.getWeights(),
        wb = b[key]!.getWeights();
      wa.forEach((w, i) => expect(Array.from(wb[i].dataSync())).toEqual(Array.from(w.dataSync())));
    }
    expect(b.state.imagesSeen).toBe(a.state.imagesSeen);
    const logged = readFileSync(join(split, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).step);
    expect(logged).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(b.state.rng).toEqual(a.state.rng);
  });
});

describe('bad input', () => {
  it('skips and counts unreadable files instead of crashing', async () => {
    const dir = tmp('data');
    const good = readdirSync(CELEBA).sort().slice(0, 6);
    for (const f of good) copyFileSync(join(CELEBA, f), join(dir, f));
    writeFileSync(join(dir, 'corrupt.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5]));
    writeFileSync(join(dir, 'empty.png'), Buffer.alloc(0));
    writeFileSync(join(dir, 'notes.txt'), 'not an image');
    const cache = tmp('cache');
    const data = await loadDataset(dir, { cacheDir: cache });
    expect(data.files).toEqual(good);
    expect(data.skipped.map((s) => s.file)).toEqual(['corrupt.jpg', 'empty.png']);
    expect(data.pixels.length).toBe(6 * 64 * 64 * 3);
    const again = await loadDataset(dir, { cacheDir: cache });
    expect(again.fromCache).toBe(true);
    expect(again.skipped).toHaveLength(2);
  });

  it('skips and counts a photo cut short, as an interrupted copy leaves it', async () => {
    const dir = tmp('cut');
    const good = readdirSync(CELEBA).sort().slice(0, 3);
    for (const f of good) copyFileSync(join(CELEBA, f), join(dir, f));
    const whole = readFileSync(join(CELEBA, good[0]));
    writeFileSync(join(dir, 'cut.jpg'), whole.subarray(0, Math.floor(whole.length / 2)));
    const data = await loadDataset(dir, { cacheDir: tmp('cut-cache') });
    expect(data.files).toEqual(good);
    expect(data.skipped.map((s) => s.file)).toEqual(['cut.jpg']);
    expect(data.skipped[0].reason).toMatch(/^damaged or cut short \(.+\)$/);
  });

  it('stops on a NaN loss with a clear error', async () => {
    const gan = buildGan(modelConfig('dcgan', 4, 100, 1));
    const trainer = new GanTrainer(gan.generator, gan.discriminator);
    const real = tf.fill([2, 64, 64, 3], NaN) as tf.Tensor4D;
    const z = tf.randomNormal([2, 100]) as tf.Tensor2D;
    await expect(trainer.step(real, z)).rejects.toBeInstanceOf(NonFiniteLossError);
    tf.dispose([real, z]);
  });
});

describe('recipe and warm start', () => {
  it('exports the moving average of G, records the recipe, and --init-from starts from an export', async () => {
    const out = tmp('ema');
    const exp = join(out, 'export');
    await train(
      options(out, [
        '--steps',
        '6',
        '--export',
        exp,
        '--ema',
        '0.5',
        '--diffaugment',
        'translation',
        '--loss',
        'hinge',
      ]),
      backend,
    );
    const ck = await loadCheckpoint(join(out, 'checkpoint.bin'));
    const exported = await loadExported(exp, 'generator');
    // The export is the average, not the raw G it follows.
    const same = (a: LayersModel, b: LayersModel) =>
      a.getWeights().every((w, i) => {
        const x = w.dataSync(),
          y = b.getWeights()[i].dataSync();
        return x.every((v, j) => v === y[j]);
      });
    expect(same(exported, ck.ema!)).toBe(true);
    expect(same(exported, ck.generator)).toBe(false);
    const manifest = JSON.parse(readFileSync(join(exp, 'manifest.json'), 'utf8'));
    expect(manifest.training.recipe).toEqual({
      loss: 'hinge',
      diffAugment: ['translation'],
      r1: null,
      ema: { decay: 0.5, warmup: true },
    });

    // A new run from that export starts from its weights, with the export's architecture.
    const child = tmp('child');
    await train(options(child, ['--steps', '1', '--no-export', '--width', '64', '--init-from', exp]), backend);
    const childCk = await loadCheckpoint<TrainOptions>(join(child, 'checkpoint.bin'));
    expect(childCk.config.width).toBe(8);
    expect(childCk.config.parent?.name).toBe(manifest.name);
    // One Adam step (lr 2e-4) from the exported G moves its trainable weights by about the learning rate.
    const drift = childCk.generator.trainableWeights.map((w, i) =>
      tf.tidy(() => tf.max(tf.abs(tf.sub(w.read(), exported.trainableWeights[i].read()))).dataSync()[0]),
    );
    expect(Math.max(...drift)).toBeLessThan(1e-3);
  });
});

describe('memory', () => {
  it('training steps leave the tensor count flat', async () => {
    const gan = buildGan(modelConfig('dcgan', 4, 100, 1));
    const trainer = new GanTrainer(gan.generator, gan.discriminator);
    const real = tf.randomUniform([4, 64, 64, 3], -1, 1) as tf.Tensor4D;
    const z = tf.randomNormal([4, 100]) as tf.Tensor2D;
    await trainer.step(real, z); // the first step creates Adam's moments
    const before = tf.memory().numTensors;
    for (let i = 0; i < 4; i++) await trainer.step(real, z);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([real, z]);
    trainer.dispose();
  });
});

describe('--conv-precision', () => {
  const parse = (extra: string[]) => parseTrainArgs(['--data', CELEBA, ...extra]) as TrainOptions;
  it('takes the flag, else FACEGAN_CONV_PRECISION, else auto; refuses anything else', () => {
    const saved = process.env.FACEGAN_CONV_PRECISION;
    try {
      delete process.env.FACEGAN_CONV_PRECISION;
      expect(parse([]).convPrecision).toBe('auto');
      expect(parse(['--conv-precision', 'f32']).convPrecision).toBe('f32');
      process.env.FACEGAN_CONV_PRECISION = 'bf16';
      expect(parse([]).convPrecision).toBe('bf16');
      expect(parse(['--conv-precision', 'f32']).convPrecision).toBe('f32');
      expect(() => parse(['--conv-precision', 'fp16'])).toThrow(/--conv-precision must be one of auto, bf16, f32/);
      process.env.FACEGAN_CONV_PRECISION = 'half';
      expect(() => parse([])).toThrow(UsageError);
      expect(() => parse([])).toThrow(/FACEGAN_CONV_PRECISION must be one of/);
    } finally {
      if (saved === undefined) delete process.env.FACEGAN_CONV_PRECISION;
      else process.env.FACEGAN_CONV_PRECISION = saved;
    }
  });
});

describe('--g-upsample', () => {
  const parse = (extra: string[]) => parseTrainArgs(['--data', CELEBA, ...extra]) as TrainOptions;
  it("builds G's last stage as asked (dcgan only) and records a resize-convolution in the recipe", () => {
    expect(parse([]).gUpsample).toBe('transposed');
    const o = parse(['--g-upsample', 'nearest', '--width', '4']);
    expect(o.gUpsample).toBe('nearest');
    expect(recipe(o).gUpsample).toBe('nearest');
    expect(recipe(parse([])).gUpsample).toBeUndefined();
    expect(() => parse(['--g-upsample', 'bilinear'])).toThrow(/--g-upsample must be one of transposed, nearest/);
    expect(() => parse(['--g-upsample', 'nearest', '--arch', 'seed-classic'])).toThrow(/needs --arch dcgan/);
    expect(parse(['--size', '128', '--g-upsample', 'pyramid', '--g-detail-width', '16']).gDetailWidth).toBe(16);
    expect(parse([]).gDetailWidth).toBeNull();
    expect(() => parse(['--g-detail-width', '16'])).toThrow(/--g-detail-width needs --g-upsample pyramid/);
    const g = buildGan({ ...modelConfig('dcgan', 4, 100, 1), lastUpsample: 'nearest' }).generator;
    expect(g.layers.map((l) => l.getClassName()).slice(-3)).toEqual(['UpSampling2D', 'Conv2D', 'Activation']);
    expect(g.outputs[0].shape).toEqual([null, 64, 64, 3]);
  });
});

describe('--half-size-d', () => {
  const parse = (extra: string[]) => parseTrainArgs(['--data', CELEBA, ...extra]) as TrainOptions;
  it('is a 128 px option, recorded in the recipe', () => {
    expect(parse(['--size', '128']).halfSizeD).toBe(0);
    expect(recipe(parse(['--size', '128'])).halfSizeD).toBeUndefined();
    expect(recipe(parse(['--size', '128', '--half-size-d', '0.5'])).halfSizeD).toBe(0.5);
    expect(() => parse(['--half-size-d', '1'])).toThrow(/--half-size-d needs --size 128/);
    expect(() => parse(['--size', '128', '--half-size-d', '-1'])).toThrow(UsageError);
  });

  it("adds a 64 px D that learns, changes G's update but not D's, and leaks nothing", async () => {
    const make = () => buildGan(modelConfig('dcgan', 4, 100, 5, 128));
    const plainGan = make();
    const halfGan = make();
    const d64 = buildGan(modelConfig('dcgan', 4, 100, 6, 64)).discriminator;
    const plain = new GanTrainer(plainGan.generator, plainGan.discriminator);
    const half = new GanTrainer(halfGan.generator, halfGan.discriminator, { halfSizeWeight: 1 }, null, d64);
    const real = tf.randomUniform([4, 128, 128, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
    const real64 = tf.randomUniform([4, 64, 64, 3], -1, 1, 'float32', 2) as tf.Tensor4D;
    const z = tf.randomNormal([4, 100], 0, 1, 'float32', 3) as tf.Tensor2D;
    const d64Before = d64.getWeights().map((w) => w.dataSync().slice());

    await plain.step(real, z);
    const r = await half.step(real, z, real64);
    expect(r.dReal64).toBeGreaterThan(0);
    expect(r.dFake64).toBeLessThan(1);
    const maxDiff = (a: LayersModel, b: LayersModel) =>
      Math.max(
        ...a.getWeights().map((w, i) => tf.tidy(() => tf.max(tf.abs(tf.sub(w, b.getWeights()[i]))).dataSync()[0])),
      );
    // D's step sees the same images either way; G's loss gains the half-size term.
    expect(maxDiff(plainGan.discriminator, halfGan.discriminator)).toBe(0);
    expect(maxDiff(plainGan.generator, halfGan.generator)).toBeGreaterThan(0);
    expect(d64.getWeights().some((w, i) => w.dataSync().some((v, j) => v !== d64Before[i][j]))).toBe(true);

    await expect(half.step(real, z)).rejects.toThrow(/64 px real images/);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await half.step(real, z, real64);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([real, real64, z]);
    plain.dispose();
    half.dispose();
  });

  it('a 128 px run with a half-size D trains on the 64 px photos and resumes exactly', async () => {
    const run = [
      '--size',
      '128',
      '--width',
      '4',
      '--limit',
      '400',
      '--batch',
      '4',
      '--half-size-d',
      '1',
      '--no-export',
    ];
    const straight = tmp('half-straight');
    await train(options(straight, [...run, '--steps', '4']), backend);
    const split = tmp('half-split');
    let steps = 0;
    await train(options(split, [...run, '--steps', '4']), backend, {
      onStep: () => steps++,
      shouldStop: () => steps >= 2,
    });
    const resumed = await train(options(split, ['--no-export', '--resume']), backend);
    expect(resumed.step).toBe(4);
    const a = await loadCheckpoint<TrainOptions>(join(straight, 'checkpoint.bin'));
    const b = await loadCheckpoint<TrainOptions>(join(split, 'checkpoint.bin'));
    expect(b.config.halfSizeD).toBe(1);
    // Its sampler walks the 64 px set: every 64 px photo of the first 400 files, not just the full-size ones.
    expect(b.state.sampler64).toBeDefined();
    expect(b.state.sampler.order.length).toBeLessThan(b.state.sampler64!.order.length);
    for (const key of ['generator', 'discriminator', 'discriminator64'] as const) {
      const wa = a[key]!.getWeights(),
        wb = b[key]!.getWeights();
      wa.forEach((w, i) => expect(Array.from(wb[i].dataSync())).toEqual(Array.from(w.dataSync())));
    }
    const log = readFileSync(join(split, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log.at(-1)).toHaveProperty('d_fake64');
  });
});

describe('--init-from a 128 px pair', () => {
  it("takes the pair's size unless --size asks for another", () => {
    const dir = tmp('parent128');
    writeFileSync(
      join(dir, 'manifest.json'),
      JSON.stringify({ model: { arch: 'dcgan', width: 8, zDim: 100, size: 128 } }),
    );
    const parse = (extra: string[]) => parseTrainArgs(['--data', CELEBA, '--init-from', dir, ...extra]) as TrainOptions;
    expect(parse([]).size).toBe(128);
    expect(parse(['--size', '64']).size).toBe(64);
    expect((parseTrainArgs(['--data', CELEBA]) as TrainOptions).size).toBe(64);
  });
});
