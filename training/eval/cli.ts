/**
 * `npm run eval -- ...`: judge generated faces and print one JSON object.
 *
 *   --generator public/models/generator.json   a saved generator
 *   --images DIR                               a folder of images
 *   --held-out                                 held-out half vs half (the floor)
 *   --training-photos                          N training photos as if generated (the floor at a generator's N)
 *   --untrained --arch dcgan --width 64        a fresh generator (the ceiling)
 *   --size 64|128   the size --images, --held-out and --untrained are judged at (a generator: its own);
 *                   128 px faces are reported at 128 and, shrunk 2x2, at 64 (at128, at64)
 *   --samples N (500)  --seed S (1)  --reference N (all held-out)  --data DIR  --backend wasm|cpu
 *   --no-cache   recompute the held-out descriptors instead of reading node_modules/.cache/facegan-eval
 *   --identity DIR|celeba:ID --generator TUNED.json [--pretrained MODEL.json] [--samples 200]
 *                     likeness to one person's photos, next to the pretrained generator with the same latents
 *   --projection [--generator G.json] [--photos 20] [--picture FILE]   "start from your photo" judged: held-out photos
 *                     projected with the page's settings, identified (or not) as their person by both likeness judges
 *   --calibrate [--size 64|128]   calibrate the two likeness judges on held-out people and write
 *                     training/eval/likeness-calibration-SIZE.json (pair AUC, 1%-false-accept threshold, rank-1)
 *   --manifest FILE   also record the result in a model manifest, under metrics.eval.<key> (--key, default the source;
 *                     --label TEXT names its row in the model page's evaluation table)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../../src/lib/wasm-training.ts';
import { preferBackend, selectBackend } from '../../src/lib/backends.ts';
import { ARCHS, IMAGE_SIZES, isArch, isImageSize, modelConfig } from '../../src/lib/models.ts';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { calibrateLikeness, describeCalibration, likenessCalibrationFile } from './likeness-data.ts';
import { evaluateIdentity, personPhotos, targetsMet } from './identity-eval.ts';
import { loadGeneratorFile, outputSize } from './sources.ts';
import { PHOTO_PROJECTION } from '../../src/lib/projection.ts';
import { faceNets } from './face-nets.ts';
import { projectionLikeness } from './projection-likeness.ts';
import { writeRows } from './pictures.ts';
import {
  evaluateFolder,
  evaluateGenerator,
  evaluateHeldOut,
  evaluateTrainingPhotos,
  evaluateUntrained,
  type EvalOptions,
  type EvalResult,
  type ScaleResult,
} from './evaluate.ts';

/** WASM runs these convolutions several times faster than plain JS. */
const NODE_ORDER = ['wasm', 'cpu'] as const;
const DEFAULT_SAMPLES = 500;
const IDENTITY_SAMPLES = 200;

const USAGE = `usage: npm run eval -- (--generator MODEL.json | --images DIR | --held-out | --training-photos | --untrained [--arch ${ARCHS.join('|')}] [--width N])
                     [--size ${IMAGE_SIZES.join('|')} (not for --generator: its own)] [--samples N] [--seed S] [--reference N] [--data DIR] [--backend ${NODE_ORDER.join('|')}] [--no-cache]
                     [--manifest public/models/manifest.json [--key NAME] [--label TEXT]]
       npm run eval -- --identity DIR|celeba:ID [--generator TUNED.json] [--pretrained public/models/generator.json] [--samples 200] [--seed S]
       npm run eval -- --projection [--generator public/models/generator.json] [--photos 20] [--picture FILE]
       npm run eval -- --calibrate [--size 64|128]`;

function integer(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new Error(`--${name} must be a non-negative integer, got "${value}"`);
  return n;
}

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      generator: { type: 'string' },
      images: { type: 'string' },
      'held-out': { type: 'boolean', default: false },
      'training-photos': { type: 'boolean', default: false },
      untrained: { type: 'boolean', default: false },
      arch: { type: 'string', default: 'dcgan' },
      width: { type: 'string' },
      samples: { type: 'string' },
      seed: { type: 'string', default: '1' },
      reference: { type: 'string' },
      data: { type: 'string' },
      backend: { type: 'string' },
      'no-cache': { type: 'boolean', default: false },
      manifest: { type: 'string' },
      key: { type: 'string' },
      label: { type: 'string' },
      identity: { type: 'string' },
      pretrained: { type: 'string', default: 'public/models/generator.json' },
      calibrate: { type: 'boolean', default: false },
      size: { type: 'string', default: '64' },
      projection: { type: 'boolean', default: false },
      photos: { type: 'string', default: '20' },
      picture: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  return values;
}

type Args = ReturnType<typeof parse>;

function run(args: Args): Promise<EvalResult> {
  const sources = [
    args.generator !== undefined,
    args.images !== undefined,
    args['held-out'],
    args['training-photos'],
    args.untrained,
  ].filter(Boolean).length;
  if (sources !== 1)
    throw new Error(
      `choose exactly one of --generator, --images, --held-out, --training-photos, --untrained\n${USAGE}`,
    );
  const samples = integer('samples', args.samples);
  const size = integer('size', args.size)!;
  if (!isImageSize(size)) throw new Error(`--size must be one of ${IMAGE_SIZES.join(', ')}, got "${args.size}"`);
  const opts: EvalOptions = {
    // The held-out floor uses a whole half unless told otherwise.
    samples: samples ?? (args['held-out'] ? Number.MAX_SAFE_INTEGER : DEFAULT_SAMPLES),
    seed: integer('seed', args.seed)!,
    reference: integer('reference', args.reference),
    dataDir: args.data,
    cacheDir: args['no-cache'] ? null : undefined,
    size,
  };
  if (args.generator !== undefined) return evaluateGenerator(args.generator, opts);
  if (args.images !== undefined) return evaluateFolder(args.images, opts);
  if (args['held-out']) return evaluateHeldOut(opts);
  if (args['training-photos']) return evaluateTrainingPhotos(opts);
  if (!isArch(args.arch!)) throw new Error(`unknown --arch "${args.arch}": one of ${ARCHS.join(', ')}`);
  const width = integer('width', args.width);
  if (width === 0) throw new Error('--width must be at least 1');
  return evaluateUntrained(modelConfig(args.arch, width, undefined, undefined, size), opts);
}

function roundScale<T extends ScaleResult>(scale: T): T {
  return { ...scale, detection_rate: Number(scale.detection_rate.toFixed(4)), fid: Number(scale.fid.toFixed(4)) };
}

/** Numbers rounded for reading; the API returns them unrounded. */
function rounded(result: EvalResult): EvalResult {
  return {
    ...roundScale(result),
    ...(result.at64 ? { at64: roundScale(result.at64) } : {}),
    ...(result.at128 ? { at128: roundScale(result.at128) } : {}),
  };
}

async function main(): Promise<void> {
  // PROD silences TensorFlow.js' banners ("install tfjs-node"), which would mix into the report.
  tf.env().set('PROD', true);
  const args = parse(process.argv.slice(2));
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const { order, note } = preferBackend(NODE_ORDER, args.backend ?? null);
  if (note) console.error(note);
  const backend = await selectBackend(order);
  for (const f of backend.fallbacks) console.error(`backend ${f.name} skipped: ${f.reason}`);
  const started = performance.now();
  if (args.identity !== undefined || args.calibrate || args.projection) {
    const out = args.calibrate
      ? await runCalibration(args)
      : args.projection
        ? await runProjection(args)
        : await runIdentity(args);
    console.error(`evaluated in ${((performance.now() - started) / 1000).toFixed(1)} s on ${backend.name}`);
    console.log(JSON.stringify(out, null, 2));
    return;
  }
  const result = await run(args);
  // Timing goes to stderr so that stdout is the same JSON for the same seed.
  console.error(`evaluated in ${((performance.now() - started) / 1000).toFixed(1)} s on ${backend.name}`);
  console.log(JSON.stringify(rounded(result)));
  if (args.manifest) {
    const record = { ...(args.label ? { label: args.label } : {}), ...rounded(result) };
    recordInManifest(args.manifest, args.key ?? sourceKey(args), record);
  }
}

/** One person's likeness: the pretrained generator (and --generator, when given) on the same latents. */
async function runIdentity(args: Args) {
  const generators: Record<string, LayersModel> = { pretrained: await loadGeneratorFile(args.pretrained!) };
  if (args.generator !== undefined) generators.tuned = await loadGeneratorFile(args.generator);
  const person = await personPhotos(args.identity!, args.data, outputSize(generators.pretrained));
  const report = await evaluateIdentity(person, generators, {
    samples: integer('samples', args.samples) ?? IDENTITY_SAMPLES,
    seed: integer('seed', args.seed)!,
  });
  return { ...report, ...(generators.tuned ? { targets: targetsMet(report.generators.tuned) } : {}) };
}

/** The page's photo projection on held-out photos, judged by both likeness judges. */
async function runProjection(args: Args) {
  // As the page does: projecting through a 128 px pyramid G needs kernels the WASM backend lacks (filter gradients).
  if (tf.getBackend() === 'wasm') registerWasmTrainingKernels();
  const generator = await loadGeneratorFile(args.generator ?? 'public/models/generator.json');
  const config = { ...PHOTO_PROJECTION, seed: integer('seed', args.seed)! };
  const embedder = (config.identityWeight ?? 0) > 0 ? faceNets().embedder : undefined;
  const result = await projectionLikeness(generator, null, config, embedder, {
    count: integer('photos', args.photos)!,
    dataDir: args.data,
  });
  if (args.picture) await writeRows(args.picture, [result.images.photos, result.images.projections], result.size);
  return { ...result, images: undefined };
}

async function runCalibration(args: Args) {
  const size = integer('size', args.size)!;
  const result = await calibrateLikeness(size, { dataDir: args.data, cacheDir: args['no-cache'] ? null : undefined });
  for (const line of describeCalibration(result)) console.error(line);
  console.error(`wrote ${likenessCalibrationFile(size)}`);
  return result;
}

function sourceKey(args: Args): string {
  if (args.generator !== undefined) return 'generator';
  if (args['held-out']) return 'held_out_floor';
  if (args['training-photos']) return 'training_photos_floor';
  if (args.untrained) return `untrained_${args.arch}`;
  return 'images';
}

/** The model page and the README read these numbers from the manifest. */
function recordInManifest(path: string, key: string, result: EvalResult & { label?: string }): void {
  const manifest = JSON.parse(readFileSync(path, 'utf8')) as { metrics?: { eval?: Record<string, unknown> } };
  manifest.metrics = { ...manifest.metrics, eval: { ...manifest.metrics?.eval, [key]: result } };
  writeFileSync(path, `${JSON.stringify(manifest, null, 2)}\n`);
}

main().catch((err: unknown) => {
  console.error(`eval: ${err instanceof Error ? err.message : err}`);
  process.exitCode = 1;
});
