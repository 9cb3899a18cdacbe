/**
 * A 128 px generator/discriminator pair for the tests and benches of the
 * site at 128 px, until one ships: the 128 px candidate, models/g128-pyramid
 * (a 64 px pair, models/g64, grown into the pyramid generator and its detail
 * branch trained at 128 px; MODEL_CARD.md), written by the trainer's own
 * export code (training/export.ts), float16 as shipped, with the attribute
 * directions `npm run directions` fitted for it (models/g128-pyramid/directions.json).
 *
 * Made on first use into .cache/e2e-models-128-<hash>/, where <hash> covers
 * everything it is made from, and then only read; `publishPair` copies it
 * over a site copy's /models/, as publishing a 128 px pair would. Also a
 * small untrained 128 px pair, for the fine-tune page on software WebGL.
 */
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { exportModels } from '../training/export.ts';
import { loadModelFile } from '../training/model-files.ts';
import { weightsSha256, type DirectionsFile } from '../src/lib/directions.ts';
import { buildGan, modelConfig, type GanModels } from '../src/lib/models.ts';
import { toArtifacts, toFiles, type ModelManifest } from '../src/lib/weights.ts';
import { ROOT } from './site-build.ts';

const SHIPPED = join(ROOT, 'public/models');
/** The 128 px candidate: the pyramid pair trained at 128 px (MODEL_CARD.md), kept for `--init-from`. */
const CANDIDATE = join(ROOT, 'models/g128-pyramid');
const SHIPPED_FILES = ['manifest.json', 'directions.json', 'generator.json', 'discriminator.json'];
const CANDIDATE_FILES = [
  'manifest.json',
  'directions.json',
  'generator.json',
  'generator.weights1of1.bin',
  'discriminator.json',
  'discriminator.weights1of1.bin',
];
const CODE = ['src/lib/models.ts', 'src/lib/weights.ts', 'training/export.ts', 'e2e/grown-models.ts'];

/** Added to the candidate's name in the published pair's manifest (a model tuned from it names it as its parent). */
export const GROWN_NAME_SUFFIX = ', the 128 px candidate (not shipped: for tests)';

/** The shipped pair's files (model JSONs, their shards, manifest, directions), the candidate's, and the code. */
function inputsHash(): string {
  const hash = createHash('sha256');
  const shards = readdirSync(SHIPPED).filter((f) => /^(generator|discriminator)\.weights.*\.bin$/.test(f));
  const files = [
    ...[...SHIPPED_FILES, ...shards.sort()].map((f) => join(SHIPPED, f)),
    ...CANDIDATE_FILES.map((f) => join(CANDIDATE, f)),
    ...CODE.map((f) => join(ROOT, f)),
  ];
  for (const file of files) hash.update(relative(ROOT, file)).update('\0').update(readFileSync(file)).update('\0');
  return hash.digest('hex').slice(0, 16);
}

async function loadCandidate(): Promise<GanModels> {
  await tf.setBackend('cpu');
  const manifest = JSON.parse(readFileSync(join(CANDIDATE, 'manifest.json'), 'utf8')) as ModelManifest;
  return {
    config: manifest.model,
    generator: await loadModelFile(join(CANDIDATE, manifest.generator.file)),
    discriminator: await loadModelFile(join(CANDIDATE, manifest.discriminator.file)),
  };
}

/** Write the grown pair, its manifest and its directions into `dir`. */
async function writePair(dir: string): Promise<void> {
  const candidate = JSON.parse(readFileSync(join(CANDIDATE, 'manifest.json'), 'utf8')) as ModelManifest;
  const models = await loadCandidate();
  // The export writes its own file entries; the rest is the candidate's record, under a name that says what it is.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { generator, discriminator, exportedAt, sampleGrid, trainingLog, ...rest } = candidate;
  await exportModels({
    dir,
    generator: models.generator,
    discriminator: models.discriminator,
    dtype: 'float16',
    manifest: { ...rest, name: `${candidate.name}${GROWN_NAME_SUFFIX}`, model: models.config },
  });
  models.generator.dispose();
  models.discriminator.dispose();
  const modelJson = JSON.parse(readFileSync(join(dir, 'generator.json'), 'utf8')) as {
    weightsManifest: { paths: string[] }[];
  };
  const shards = modelJson.weightsManifest.flatMap((g) => g.paths).map((p) => readFileSync(join(dir, p)));
  // Fitted for the candidate's own weights; the export above wrote the very bytes they were fitted on.
  const directions = JSON.parse(readFileSync(join(CANDIDATE, 'directions.json'), 'utf8')) as DirectionsFile;
  if (directions.generator.weightsSha256 !== (await weightsSha256(shards)))
    throw new Error(`${CANDIDATE}/directions.json was fitted for other weights: run npm run directions on it`);
  writeFileSync(join(dir, 'directions.json'), JSON.stringify(directions));
}

const PREFIX = 'e2e-models-128-';
const HOUR_MS = 3_600_000;

/** Remove pairs made from other inputs that were made over an hour ago (a run of older sources may still read one). */
function pruneOthers(keep: string): void {
  const cache = join(ROOT, '.cache');
  for (const name of readdirSync(cache)) {
    const path = join(cache, name);
    if (name.startsWith(PREFIX) && path !== keep && Date.now() - statSync(path).mtimeMs > HOUR_MS)
      rmSync(path, { recursive: true, force: true });
  }
}

/** The grown pair's folder, made when its inputs changed (built beside it, then renamed into place). */
export async function grownPair(): Promise<string> {
  const dir = join(ROOT, '.cache', `${PREFIX}${inputsHash()}`);
  if (existsSync(join(dir, 'directions.json'))) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    await writePair(tmp);
    try {
      renameSync(tmp, dir);
    } catch (err) {
      // Another run made the same pair meanwhile: use that one.
      if (!existsSync(join(dir, 'directions.json'))) throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  pruneOthers(dir);
  return dir;
}

/**
 * A small untrained 128 px pair (DCGAN width 8, about a sixteenth of the shipped width's work) written
 * into `dir`: for runs where only the 128 px shapes matter and software WebGL has to be quick.
 */
export async function writeSmallPair(dir: string): Promise<void> {
  await tf.setBackend('cpu');
  const pair = buildGan({ ...modelConfig('dcgan', 8, 100, undefined, 128), seed: 3, lastUpsample: 'pyramid' });
  mkdirSync(dir, { recursive: true });
  for (const [name, model] of [
    ['generator', pair.generator],
    ['discriminator', pair.discriminator],
  ] as const) {
    const files = toFiles(await toArtifacts(model), name);
    writeFileSync(join(dir, `${name}.json`), JSON.stringify(files.modelJson));
    for (const [shard, bytes] of files.shards) writeFileSync(join(dir, shard), bytes);
    model.dispose();
  }
}

/** Publish the pair in `pairDir` as `siteDir`'s /models/ (its files replace the shipped pair's). */
export function publishPair(pairDir: string, siteDir: string): void {
  cpSync(pairDir, join(siteDir, 'models'), { recursive: true });
}
