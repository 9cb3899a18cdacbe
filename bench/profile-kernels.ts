/**
 * Where a training step's time goes, kernel by kernel:
 *   npx tsx bench/profile-kernels.ts [--backend native|cpu] [--width 32] [--batch 64] [--warmup 3] [--by-shape]
 * Times (CPU time) each kernel call of one GanTrainer.step (after warm-up steps: the
 * native backend's buffer pool takes a few steps to fill) and prints the slowest
 * kernels with their call counts; --by-shape splits them by their inputs' shapes.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { buildGan, modelConfig } from '../src/lib/models.ts';
import { GanTrainer } from '../src/lib/gan.ts';
import { registerNativeBackend } from '../training/native/index.ts';

const { values: opts } = parseArgs({
  options: {
    backend: { type: 'string', default: 'native' },
    width: { type: 'string', default: '32' },
    batch: { type: 'string', default: '64' },
    warmup: { type: 'string', default: '3' },
    'by-shape': { type: 'boolean', default: false },
  },
});
const width = Number(opts.width),
  batch = Number(opts.batch),
  backend = opts.backend!,
  warmup = Number(opts.warmup);

// PROD silences TensorFlow.js' banners ("install tfjs-node"), which would mix into the profile.
tf.env().set('PROD', true);
if (backend === 'native') {
  const reg = await registerNativeBackend();
  if (!reg.ok) throw new Error(reg.reason);
}
await tf.setBackend(backend);

const times = new Map<string, { ms: number; calls: number }>();
for (const k of tf.getKernelsForBackend(backend)) {
  const run = k.kernelFunc;
  (k as { kernelFunc: tf.KernelFunc }).kernelFunc = (args) => {
    // CPU time, not wall time: a loaded machine stretches the latter. Run with OPENBLAS_NUM_THREADS=1
    // to see work rather than idle spinning of BLAS threads.
    const c0 = process.cpuUsage();
    const out = run(args);
    const c = process.cpuUsage(c0);
    const shapes = Object.values(args.inputs)
      .map((t) => (t ? `[${t.shape.join(',')}]` : '-'))
      .join(' ');
    const key = opts['by-shape'] ? `${k.kernelName} ${shapes}` : k.kernelName;
    const e = times.get(key) ?? { ms: 0, calls: 0 };
    e.ms += (c.user + c.system) / 1000;
    e.calls++;
    times.set(key, e);
    return out;
  };
}

const gan = buildGan(modelConfig('dcgan', width));
const trainer = new GanTrainer(gan.generator, gan.discriminator);
const real = tf.randomUniform([batch, 64, 64, 3], -1, 1) as tf.Tensor4D;
const z = tf.randomNormal([batch, 100]) as tf.Tensor2D;
for (let i = 0; i < warmup; i++) await trainer.step(real, z);
times.clear();
const t0 = performance.now();
const cpu0 = process.cpuUsage();
await trainer.step(real, z);
const total = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const inKernels = [...times.values()].reduce((s, e) => s + e.ms, 0);
console.log(
  `${backend} width ${width} batch ${batch}: step ${total.toFixed(0)} ms, ${inKernels.toFixed(0)} ms in kernels, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms of CPU time`,
);
for (const [name, e] of [...times.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, opts['by-shape'] ? 40 : 25)) {
  console.log(
    `${name.padEnd(opts['by-shape'] ? 56 : 24)} ${e.ms.toFixed(1).padStart(9)} ms ${String(e.calls).padStart(5)} calls`,
  );
}
