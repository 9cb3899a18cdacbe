/**
 * `npm run finetune -- --photos DIR [--steps N] [--out DIR]`: fine-tune the
 * shipped pair on photos of one person with the page's code (src/lib): the
 * same face crops, projection, pivotal tuning, likeness fit and baked latent shift. It
 * writes the tuned pair as loose model files (facegan-generator.json,
 * facegan-discriminator.json and their shards; the page's download is one zip of the
 * generator, src/lib/model-bundle.ts, which the page also imports), plus the crops and their
 * reconstructions as PNG. Exit codes: 0 done, 1 crash, 2 bad usage or no
 * usable faces in the folder.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import sharp from 'sharp';
import { selectBackend } from '../src/lib/backends.ts';
import {
  copyGuardNote,
  DEFAULT_FINETUNE,
  FinetuneSession,
  finetuneConfig,
  type FinetuneConfig,
  type FinetunePhase,
} from '../src/lib/finetune.ts';
import { formatDuration } from '../src/lib/format.ts';
import { generate } from '../src/lib/gan.ts';
import { gridRgba } from '../src/lib/images.ts';
import { latentBatch } from '../src/lib/latent.ts';
import { exportFiles } from '../src/lib/model-files.ts';
import { MAX_PHOTOS } from '../src/lib/photo-limits.ts';
import { decodeImage } from './eval/sources.ts';
import { cropFaceNode } from './face-crops.ts';
import type { ModelManifest } from '../src/lib/weights.ts';
import { loadModelFile } from './model-files.ts';
import { initNodeBackend } from './node-backends.ts';

const EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.avif', '.gif', '.tif', '.tiff']);

export const FINETUNE_HELP = `usage: npm run finetune -- --photos DIR [options]

Fine-tunes the shipped generator on photos of one person (1 to ${MAX_PHOTOS}; 5 to 20 work best).

  --photos DIR     folder of photos (jpg, png, webp, ...); the largest face in each is used
  --steps N        tuning steps after the projection (default ${DEFAULT_FINETUNE.steps})
  --projection-steps N   latent projection steps per photo (default ${DEFAULT_FINETUNE.projectionSteps})
  --likeness-steps N     steps fitting the sampling centre through the face recogniser (default ${DEFAULT_FINETUNE.likenessSteps}; 0: the mean pivot)
  --tune-detail    with a 128 px pyramid generator, tune its detail branch too, at 128 px (about twice the time;
                   by default only its 64 px base, which draws the face, learns the person)
  --identity-weight W    weight of a face-identity term (face-api's recogniser) on faces drawn where the export
                   samples, while tuning (default ${DEFAULT_FINETUNE.identityTuneWeight}: off; 0.5 with --pivot-noise 0.3 reaches
                   the likeness goals for more people; in Node about 5x the CPU time, in the page a quarter more)
  --identity-every N     run that term every N tuning steps (default ${DEFAULT_FINETUNE.identityTuneEvery})
  --pivot-noise S  noise added to the pivots while tuning (default ${DEFAULT_FINETUNE.pivotNoise})
  --likeness A:M   sampling z' = A*z + c, c starting at M*mean(pivots), baked into the export (default ${DEFAULT_FINETUNE.likenessScale}:${DEFAULT_FINETUNE.likenessPull})
  --out DIR        where the model files go (default runs/finetune)
  --models DIR     the pretrained pair (default public/models)
  --backend NAME   auto, native, wasm, cpu, ... (default auto)
  --seed N         (default 1)
  --quiet          no progress bar
Exit codes: 0 done, 1 crash, 2 bad usage or no usable faces.`;

class UsageError extends Error {}

const PHASE_NAMES: Record<FinetunePhase, string> = { project: 'projection', tune: 'tuning', likeness: 'likeness' };

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      photos: { type: 'string' },
      steps: { type: 'string' },
      'projection-steps': { type: 'string' },
      'likeness-steps': { type: 'string' },
      likeness: { type: 'string' },
      'identity-weight': { type: 'string' },
      'pivot-noise': { type: 'string' },
      'identity-every': { type: 'string' },
      'tune-detail': { type: 'boolean', default: false },
      out: { type: 'string', default: 'runs/finetune' },
      models: { type: 'string', default: 'public/models' },
      backend: { type: 'string', default: 'auto' },
      seed: { type: 'string', default: '1' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  return values;
}

const int = (name: string, v: string | undefined) => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} must be a whole number, got "${v}"`);
  return Number(v);
};

/** `count` square faces of `batch` (any size: 64 or 128 px) as a PNG grid of `cols` columns. */
async function writePng(file: string, batch: Float32Array, count: number, cols: number): Promise<void> {
  const grid = gridRgba(batch, count, cols, Math.round(Math.sqrt(batch.length / count / 3)));
  await sharp(Buffer.from(grid.data.buffer), { raw: { width: grid.width, height: grid.height, channels: 4 } })
    .png({ compressionLevel: 9 })
    .toFile(file);
}

/** What a run does, from the command line. */
interface Settings {
  photos: string;
  out: string;
  models: string;
  backend: string;
  quiet: boolean;
  config: FinetuneConfig;
}

/** The command line checked ('help' for --help); throws, with the reason, on anything it cannot use. */
function commandLine(argv: string[]): Settings | 'help' {
  const args = parse(argv);
  if (args.help) return 'help';
  if (!args.photos) throw new UsageError('--photos DIR is required');
  if (!existsSync(args.photos) || !statSync(args.photos).isDirectory())
    throw new UsageError(`photo folder not found: ${args.photos}`);
  const likeness = args.likeness?.split(':').map(Number);
  if (likeness && (likeness.length !== 2 || likeness.some((x) => !Number.isFinite(x))))
    throw new UsageError(`--likeness must be A:M, e.g. 0.8:0.7, got "${args.likeness}"`);
  const config = finetuneConfig({
    ...(args.steps !== undefined ? { steps: int('steps', args.steps) } : {}),
    ...(args['projection-steps'] !== undefined
      ? { projectionSteps: int('projection-steps', args['projection-steps']) }
      : {}),
    ...(args['likeness-steps'] !== undefined ? { likenessSteps: int('likeness-steps', args['likeness-steps']) } : {}),
    ...(likeness ? { likenessScale: likeness[0], likenessPull: likeness[1] } : {}),
    ...(args['identity-weight'] !== undefined ? { identityTuneWeight: Number(args['identity-weight']) } : {}),
    ...(args['pivot-noise'] !== undefined ? { pivotNoise: Number(args['pivot-noise']) } : {}),
    ...(args['identity-every'] !== undefined
      ? { identityTuneEvery: int('identity-every', args['identity-every']) }
      : {}),
    baseOnly: !args['tune-detail'],
    seed: int('seed', args.seed),
  });
  return {
    photos: args.photos,
    out: args.out!,
    models: args.models!,
    backend: args.backend!,
    quiet: args.quiet!,
    config,
  };
}

/** The side the pair in `dir` draws, from its manifest (pairs exported before 128 px existed say none: 64). */
function pairSize(dir: string): number {
  const manifest = join(dir, 'manifest.json');
  if (!existsSync(manifest)) return 64;
  return (JSON.parse(readFileSync(manifest, 'utf8')) as ModelManifest).model?.size ?? 64;
}

/** The largest face in each image of `dir` (name order, at most MAX_PHOTOS), saying why each skipped file was skipped. */
async function readFaces(
  dir: string,
  size: number,
): Promise<{ files: string[]; crops: Float32Array[]; used: string[] }> {
  const files = readdirSync(dir)
    .filter((f) => EXTENSIONS.has(extname(f).toLowerCase()))
    .sort();
  const crops: Float32Array[] = [];
  const used: string[] = [];
  for (const f of files) {
    if (crops.length >= MAX_PHOTOS) {
      console.error(`note: only the first ${MAX_PHOTOS} photos with a face are used`);
      break;
    }
    try {
      const crop = await cropFaceNode(await decodeImage(join(dir, f)), size);
      if (!crop) console.error(`skipped ${f}: no face found`);
      else if (crop.inside < 0.6)
        console.error(
          `skipped ${f}: the face is too close to the edge (${Math.round(crop.inside * 100)}% of the crop inside the photo)`,
        );
      else {
        crops.push(crop.pixels);
        used.push(f);
      }
    } catch (err) {
      console.error(`skipped ${f}: cannot read it (${err instanceof Error ? err.message : err})`);
    }
  }
  return { files, crops, used };
}

/** Every step of the session, under a progress bar unless `quiet`; when they started, and the CPU seconds they took. */
async function runSteps(session: FinetuneSession, quiet: boolean): Promise<{ t0: number; cpuSeconds: number }> {
  const bar = new cliProgress.SingleBar(
    {
      format: 'finetune |{bar}| {value}/{total} | {phase} | loss {loss} | ETA {eta_formatted}',
      noTTYOutput: true,
      notTTYSchedule: 10_000,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  if (!quiet) bar.start(session.totalSteps, 0, { phase: 'projection', loss: '-' });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    while (!session.finished) {
      const r = await session.step();
      if (!quiet) bar.update(session.stepsDone, { phase: PHASE_NAMES[r.phase], loss: r.loss.toFixed(4) });
    }
  } finally {
    if (!quiet) bar.stop();
  }
  const cpu = process.cpuUsage(cpu0);
  return { t0, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/** The page's model files (the likeness baked into G), then the crops, their reconstructions and 16 samples as PNG; ends the session. */
async function writeResults(
  out: string,
  session: FinetuneSession,
  discriminator: LayersModel,
  crops: Float32Array[],
): Promise<CopyGuard> {
  mkdirSync(out, { recursive: true });
  const baked = await session.bake();
  const guard = { pull: session.shift().pull, checks: [...session.copyChecks] };
  for (const file of await exportFiles({ generator: baked, discriminator }))
    writeFileSync(join(out, file.name), file.bytes);
  const recon = (await session.reconstructions())!;
  session.dispose();
  const flat = new Float32Array(crops.length * crops[0].length);
  crops.forEach((c, i) => flat.set(c, i * c.length));
  await writePng(join(out, 'photos.png'), flat, crops.length, Math.min(8, crops.length));
  await writePng(join(out, 'reconstructions.png'), recon, crops.length, Math.min(8, crops.length));
  const seeds = Array.from({ length: 16 }, (_, i) => i + 1);
  const z = tf.tensor2d(latentBatch(seeds), [16, 100]);
  const samples = generate(baked, z);
  await writePng(join(out, 'samples.png'), (await samples.data()) as Float32Array, 16, 8);
  tf.dispose([z, samples]);
  return guard;
}

/** The pull the copy guard settled on, and the share of near-copies at each pull it tried. */
interface CopyGuard {
  pull: number;
  checks: { pull: number; share: number }[];
}

async function main(): Promise<number> {
  let settings: Settings | 'help';
  try {
    settings = commandLine(process.argv.slice(2));
  } catch (err) {
    console.error(`finetune: ${err instanceof Error ? err.message : err}\n\n${FINETUNE_HELP}`);
    return 2;
  }
  if (settings === 'help') {
    console.log(FINETUNE_HELP);
    return 0;
  }
  const { config, out } = settings;

  // Face detection on WASM (as the eval runs face-api), training on the fastest backend.
  await selectBackend(['wasm', 'cpu']);
  const { files, crops, used } = await readFaces(settings.photos, pairSize(settings.models));
  if (crops.length === 0) {
    console.error(
      `finetune: no usable faces in ${settings.photos} (${files.length} image file${files.length === 1 ? '' : 's'} found): add photos in which one face is clearly visible`,
    );
    return 2;
  }
  console.log(
    `${crops.length} face${crops.length === 1 ? '' : 's'} from ${files.length} file${files.length === 1 ? '' : 's'}`,
  );

  const backend = await initNodeBackend(settings.backend);
  console.log(`backend: ${backend.name} (${backend.detail})`);
  const generator = await loadModelFile(join(settings.models, 'generator.json'));
  const discriminator = await loadModelFile(join(settings.models, 'discriminator.json'));
  // The recogniser the likeness is fitted through: face-api's, as the eval measures with.
  const embedder =
    config.likenessSteps > 0 || config.identityTuneWeight > 0
      ? (await import('./eval/face-nets.ts')).faceNets().embedder
      : undefined;
  const session = new FinetuneSession(generator, discriminator, crops, config, embedder);
  const { t0, cpuSeconds } = await runSteps(session, settings.quiet);
  const copyGuard = await writeResults(out, session, discriminator, crops);
  writeFileSync(
    join(out, 'finetune.json'),
    `${JSON.stringify({ photos: used, config, cpuSeconds, backend: backend.name, copyGuard }, null, 2)}\n`,
  );
  const note = copyGuardNote(copyGuard.checks).trim();
  if (note) console.log(note);
  console.log(
    `done in ${formatDuration((performance.now() - t0) / 1000)} (${cpuSeconds.toFixed(0)} CPU-s): ${out}/facegan-generator.json draws this person from ordinary N(0, 1) noise; photos.png, reconstructions.png, samples.png show the crops, the projections and 16 samples`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`finetune: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
    process.exit(1);
  },
);
