/**
 * Training throughput of the Node trainer against PyTorch, measured in one
 * run: `npm run bench [-- --width 32 --size 64 --batch 64 --steps 3 --precision f32,bf16]`.
 * For each configuration (size, width, precision) it warms both up, then times
 * one GanTrainer.step and one PyTorch step alternately, `steps` times each, so
 * that both see the same machine load. One JSON line per configuration on stdout.
 *
 * Like is compared with like: at f32 our f32 convolutions against PyTorch in
 * float32; at bf16 our bf16-input convolutions against PyTorch's own mixed
 * precision (bf16 autocast, channels_last). By default bf16 is measured only
 * where the CPU has bf16 dot products; elsewhere both sides would emulate it.
 * `--backend webgpu` (Dawn) or any other trainer backend is started as
 * `npm run train -- --backend` starts it (f32 only); `--no-torch` leaves PyTorch
 * out; `--no-onednn` keeps the native convolutions on OpenBLAS (f32). With
 * PyTorch it also measures the sgemm peak (torch.matmul 2048^3, 2 threads), and
 * the bf16 one where bf16 is measured, in the same run, and reports the step's
 * GFLOP/s against the peak of its precision.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { buildGan, modelConfig } from '../src/lib/models.ts';
import { GanTrainer } from '../src/lib/gan.ts';
import { cpuHasBf16, registerNativeBackend, useBf16Convolutions } from '../training/native/index.ts';
import { backendLine, initNodeBackend } from '../training/node-backends.ts';
import { stepFlopsPerImage } from './flops.ts';
import { TorchRunner } from './torch-runner.ts';

const { values: opts } = parseArgs({
  options: {
    width: { type: 'string' },
    size: { type: 'string' },
    /** f32, bf16 or both (comma-separated); default f32, plus bf16 where the CPU has bf16 dot products. */
    precision: { type: 'string' },
    batch: { type: 'string', default: '64' },
    steps: { type: 'string', default: '3' },
    backend: { type: 'string', default: 'native' },
    'no-torch': { type: 'boolean', default: false },
    /** Convolutions on OpenBLAS even where oneDNN is built in (native backend). */
    'no-onednn': { type: 'boolean', default: false },
  },
});

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${value}"`);
  return n;
}

type Precision = 'f32' | 'bf16';
interface Config {
  size: 64 | 128;
  width: number;
  precision: Precision;
}

/** Widths 32 and 64 at 64 px and the shipped width 32 at 128 px, each at every precision asked for. */
function configs(precisions: Precision[]): Config[] {
  const size = opts.size ? positiveInt('size', opts.size) : null;
  if (size !== null && size !== 64 && size !== 128) throw new Error(`--size must be 64 or 128, got "${opts.size}"`);
  const width = opts.width ? positiveInt('width', opts.width) : null;
  const shapes: [64 | 128, number][] = [
    [64, 32],
    [64, 64],
    [128, 32],
  ];
  const chosen = shapes
    .map(([s, w]) => [s, width ?? w] as [64 | 128, number])
    .filter(
      ([s], i, all) => (size === null || s === size) && all.findIndex(([t, v]) => t === s && v === all[i][1]) === i,
    );
  return chosen.flatMap(([s, w]) => precisions.map((precision) => ({ size: s, width: w, precision })));
}

function precisionsWanted(backend: string): Precision[] {
  if (opts.precision) {
    const list = opts.precision.split(',').map((p) => p.trim());
    for (const p of list) if (p !== 'f32' && p !== 'bf16') throw new Error(`--precision: f32 or bf16, got "${p}"`);
    if (list.includes('bf16') && (backend !== 'native' || opts['no-onednn']))
      throw new Error('--precision bf16 needs the native backend with oneDNN');
    return list as Precision[];
  }
  if (backend === 'native' && !opts['no-onednn'] && cpuHasBf16()) return ['f32', 'bf16'];
  console.error(
    backend === 'native' && !opts['no-onednn']
      ? 'bf16 not measured: this CPU has no bf16 dot products (AVX512_BF16 or AMX), so oneDNN and PyTorch would both emulate it, slower than f32 (--precision bf16 measures it anyway)'
      : `bf16 not measured: only the native backend's oneDNN convolutions read bf16`,
  );
  return ['f32'];
}

const batch = positiveInt('batch', opts.batch!);
const steps = positiveInt('steps', opts.steps!);

async function chooseBackend(wanted: string): Promise<string> {
  if (wanted === 'native') {
    if (opts['no-onednn']) process.env.FACEGAN_NO_ONEDNN = '1';
    const reg = await registerNativeBackend();
    if (!reg.ok) {
      console.error(`native backend unavailable (${reg.reason}); measuring cpu instead`);
      wanted = 'cpu';
    } else {
      console.error(`native backend: ${reg.detail}`);
    }
  }
  if (wanted === 'native' || wanted === 'cpu') {
    if (!(await tf.setBackend(wanted))) throw new Error(`backend "${wanted}" failed to start`);
    return wanted;
  }
  const started = await initNodeBackend(wanted);
  console.error(backendLine(started, wanted));
  return started.name;
}

async function timeStep(trainer: GanTrainer, real: tf.Tensor4D, z: tf.Tensor2D): Promise<number> {
  const t0 = performance.now();
  await trainer.step(real, z);
  return (performance.now() - t0) / 1000;
}

async function benchConfig(backend: string, config: Config, torch: TorchRunner | null, peak: number | null) {
  const { size, width, precision } = config;
  if (backend === 'native') useBf16Convolutions(precision === 'bf16');
  const gan = buildGan(modelConfig('dcgan', width, 100, undefined, size));
  const trainer = new GanTrainer(gan.generator, gan.discriminator);
  const real = tf.randomUniform([batch, size, size, 3], -1, 1) as tf.Tensor4D;
  const z = tf.randomNormal([batch, 100]) as tf.Tensor2D;
  let torchNote: string | null = null;
  const run = async (f: () => Promise<number>) => {
    try {
      return await f();
    } catch (err) {
      torchNote = err instanceof Error ? err.message : String(err);
      torch = null;
      return 0;
    }
  };
  const torchStep = () => torch!.run({ width, batch, size, precision, steps: 1 });
  await timeStep(trainer, real, z);
  if (torch) await run(torchStep);
  let ours = 0,
    theirs = 0;
  for (let i = 0; i < steps; i++) {
    ours += await timeStep(trainer, real, z);
    if (torch) theirs += await run(torchStep);
  }
  const images = batch * steps;
  const flops = stepFlopsPerImage(gan.generator, gan.discriminator);
  const imagesPerS = images / ours;
  const torchImagesPerS = torch && theirs > 0 ? images / theirs : null;
  tf.dispose([real, z]);
  trainer.dispose();
  gan.generator.dispose();
  gan.discriminator.dispose();
  const gflops = (imagesPerS * flops) / 1e9;
  return {
    size,
    width,
    batch,
    precision,
    backend,
    images_per_s: round(imagesPerS),
    gflops: round(gflops),
    ...(peak ? { peak_gflops: round(peak), of_peak: round(gflops / peak) } : {}),
    torch_images_per_s: torchImagesPerS && round(torchImagesPerS),
    ratio: torchImagesPerS && round(imagesPerS / torchImagesPerS),
    steps,
    ...(torchNote || !torch
      ? { torch: `unavailable: ${torchNote ?? 'disabled with --no-torch'}` }
      : { torch: torch.version, torch_path: torch.path }),
  };
}

const round = (x: number) => Math.round(x * 100) / 100;

// PROD silences TensorFlow.js' banners ("install tfjs-node"), which would mix into the JSON lines.
tf.env().set('PROD', true);
const backend = await chooseBackend(opts.backend!);
const precisions = precisionsWanted(backend);
let torch: TorchRunner | null = opts['no-torch'] ? null : new TorchRunner();
// The machine's matmul peak at each precision (torch.matmul 2048^3, 2 threads), measured once in this run:
// a step's GFLOP/s is read against the peak of its own precision.
const peaks = new Map<Precision, number>();
for (const precision of precisions) {
  if (!torch) break;
  try {
    peaks.set(precision, await torch.sgemm(2048, 5, precision));
  } catch (err) {
    console.error(`${precision} matmul peak not measured: ${err instanceof Error ? err.message : String(err)}`);
  }
}
for (const config of configs(precisions)) {
  const result = await benchConfig(backend, config, torch, peaks.get(config.precision) ?? null);
  if (result.torch_images_per_s === null && torch) {
    torch.close();
    torch = null;
  }
  console.log(JSON.stringify(result));
}
torch?.close();
// Dawn (webgpu) keeps the event loop alive.
process.exit(0);
