/**
 * Training throughput of the Node trainer against PyTorch, measured in one
 * run: `npm run bench [-- --width 32 --batch 64 --steps 3 --backend native]`.
 * For each configuration it warms both up, then times one GanTrainer.step
 * and one PyTorch step alternately, `steps` times each, so that both see the
 * same machine load. One JSON line per configuration on stdout.
 * `--backend webgpu` (Dawn) or any other trainer backend is started as
 * `npm run train -- --backend` starts it; `--no-torch` leaves PyTorch out;
 * `--no-onednn` keeps the native convolutions on OpenBLAS, `--conv-precision
 * f32|bf16` sets what oneDNN's read (default auto, as training). With PyTorch it
 * also measures the sgemm peak (torch.matmul 2048^3, 2 threads) in the same
 * run and reports the step's GFLOP/s against it.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { buildGan, modelConfig } from '../src/lib/models.ts';
import { GanTrainer } from '../src/lib/gan.ts';
import { registerNativeBackend } from '../training/native/index.ts';
import { backendLine, initNodeBackend } from '../training/node-backends.ts';
import { stepFlopsPerImage } from './flops.ts';
import { TorchRunner } from './torch-runner.ts';

const { values: opts } = parseArgs({
  options: {
    width: { type: 'string' },
    batch: { type: 'string', default: '64' },
    steps: { type: 'string', default: '3' },
    backend: { type: 'string', default: 'native' },
    'no-torch': { type: 'boolean', default: false },
    /** Convolutions on OpenBLAS even where oneDNN is built in (native backend). */
    'no-onednn': { type: 'boolean', default: false },
    /** auto | bf16 | f32, as `npm run train -- --conv-precision` (native backend). */
    'conv-precision': { type: 'string' },
  },
});

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${value}"`);
  return n;
}

const widths = opts.width ? [positiveInt('width', opts.width)] : [32, 64];
const batch = positiveInt('batch', opts.batch!);
const steps = positiveInt('steps', opts.steps!);

async function chooseBackend(wanted: string): Promise<string> {
  if (wanted === 'native') {
    if (opts['no-onednn']) process.env.FACEGAN_NO_ONEDNN = '1';
    if (opts['conv-precision']) process.env.FACEGAN_CONV_PRECISION = opts['conv-precision'];
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

async function benchWidth(backend: string, width: number, torch: TorchRunner | null, sgemmPeak: number | null) {
  const gan = buildGan(modelConfig('dcgan', width));
  const trainer = new GanTrainer(gan.generator, gan.discriminator);
  const real = tf.randomUniform([batch, 64, 64, 3], -1, 1) as tf.Tensor4D;
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
  await timeStep(trainer, real, z);
  if (torch) await run(() => torch!.run(width, batch, 1));
  let ours = 0,
    theirs = 0;
  for (let i = 0; i < steps; i++) {
    ours += await timeStep(trainer, real, z);
    if (torch) theirs += await run(() => torch!.run(width, batch, 1));
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
    width,
    batch,
    backend,
    images_per_s: round(imagesPerS),
    gflops: round(gflops),
    ...(sgemmPeak ? { sgemm_peak_gflops: round(sgemmPeak), of_peak: round(gflops / sgemmPeak) } : {}),
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
let torch: TorchRunner | null = opts['no-torch'] ? null : new TorchRunner();
// The machine's sgemm peak (torch.matmul 2048^3, 2 threads), measured in this run, before and after
// each width; the best reading is what the step's GFLOP/s is read against.
let sgemmPeak: number | null = null;
const measurePeak = async () => {
  if (!torch) return;
  try {
    sgemmPeak = Math.max(sgemmPeak ?? 0, await torch.sgemm());
  } catch (err) {
    console.error(`sgemm peak not measured: ${err instanceof Error ? err.message : String(err)}`);
  }
};
await measurePeak();
for (const width of widths) {
  const result = await benchWidth(backend, width, torch, sgemmPeak);
  if (result.torch_images_per_s === null && torch) {
    torch.close();
    torch = null;
  }
  console.log(JSON.stringify(result));
}
torch?.close();
// Dawn (webgpu) keeps the event loop alive.
process.exit(0);
