/**
 * A fine-tuned generator as one file: a zip holding generator.json, its
 * weights (float16 unless float32 is asked for) and manifest.json, which
 * names the generator it was tuned from (with that generator's weights
 * hash, which its attribute directions are tied to) and each run's settings.
 * The discriminator is left out: fine-tuning does not change it.
 * Isomorphic: the page writes and reads it, Node reads it in tests.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { strFromU8, strToU8, unzipSync, zipSync, type Zippable } from 'fflate';
import { shardPaths, weightsSha256 } from './directions.ts';
import type { FinetuneConfig } from './finetune.ts';
import type { ModelFile } from './model-files.ts';
import { fromFiles, quantizeFloat16, toFiles } from './weights.ts';

export const TUNED_FORMAT = 'facegan-tuned-generator';
export const TUNED_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
const GENERATOR_NAME = 'generator';

export type WeightDtype = 'float16' | 'float32';

/** The generator a tuned one started from. */
export interface ParentModel {
  name: string;
  /** Where the page loaded it from (a path on the site). */
  url: string;
  /** Hex sha256 of its weight shards: the hash its attribute directions name. */
  weightsSha256: string;
}

/** One fine-tuning run, on top of whatever the model was before it. */
export interface TuneRun {
  config: FinetuneConfig;
  photos: number;
  steps: number;
  outcome: 'finished' | 'stopped' | 'failed';
  backend: string;
  finishedAt: string;
}

/** What a tuned generator came from; null parent: not known (e.g. imported from loose model files). */
export interface Provenance {
  parent: ParentModel | null;
  runs: TuneRun[];
  /** The likeness the model draws at (the page's slider), null when no run in the page set it. */
  likeness: number | null;
  note?: string;
}

export interface TunedManifest extends Provenance {
  format: typeof TUNED_FORMAT;
  version: number;
  generator: { file: string; dtype: WeightDtype; params: number; bytes: number; weightsSha256: string };
  createdAt: string;
}

export interface TunedBundle {
  manifest: TunedManifest;
  artifacts: tf.io.ModelArtifacts;
  /** generator.json and its shards, as the fine-tuner's import takes them. */
  files: ModelFile[];
}

const HEX64 = /^[0-9a-f]{64}$/;

const paramCount = (specs: readonly tf.io.WeightsManifestEntry[]) =>
  specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);

/** The file's name for a download: what it holds and, when not the default, its precision. */
export function bundleName(dtype: WeightDtype): string {
  return dtype === 'float16' ? 'facegan-finetuned.zip' : 'facegan-finetuned-float32.zip';
}

/** Pack a generator's float32 artifacts, with where it came from, into the zip's bytes. */
export async function packTuned(
  artifacts: tf.io.ModelArtifacts,
  provenance: Provenance,
  options: { dtype: WeightDtype; createdAt?: Date },
): Promise<Uint8Array> {
  const stored = options.dtype === 'float16' ? quantizeFloat16(artifacts) : artifacts;
  const { modelJson, shards, weightBytes } = toFiles(stored, GENERATOR_NAME);
  const createdAt = options.createdAt ?? new Date();
  const manifest: TunedManifest = {
    format: TUNED_FORMAT,
    version: TUNED_VERSION,
    ...provenance,
    generator: {
      file: `${GENERATOR_NAME}.json`,
      dtype: options.dtype,
      params: paramCount(stored.weightSpecs ?? []),
      bytes: weightBytes,
      weightsSha256: await weightsSha256([...shards.values()]),
    },
    createdAt: createdAt.toISOString(),
  };
  const entries: Zippable = {
    [MANIFEST_FILE]: strToU8(JSON.stringify(manifest, null, 2)),
    [manifest.generator.file]: strToU8(JSON.stringify(modelJson)),
  };
  for (const [name, bytes] of shards) entries[name] = bytes;
  return zipSync(entries, { level: 6, mtime: createdAt });
}

function parseJson(bytes: Uint8Array | undefined, name: string): Record<string, unknown> {
  if (!bytes) throw new Error(`the file holds no ${name}`);
  try {
    return JSON.parse(strFromU8(bytes)) as Record<string, unknown>;
  } catch {
    throw new Error(`${name} in the file is not valid JSON`);
  }
}

function checkParent(parent: unknown): void {
  if (parent === null) return;
  const p = parent as Partial<ParentModel> | undefined;
  if (!p || typeof p.name !== 'string' || typeof p.weightsSha256 !== 'string' || !HEX64.test(p.weightsSha256))
    throw new Error('manifest.json: parent must be null or name the generator it was tuned from with its weights hash');
}

/** A parsed manifest.json, checked; throws naming what is wrong. */
export function validateManifest(data: Record<string, unknown>): TunedManifest {
  const m = data as Partial<TunedManifest>;
  if (m.format !== TUNED_FORMAT) throw new Error(`manifest.json is not a ${TUNED_FORMAT} manifest`);
  if (m.version !== TUNED_VERSION)
    throw new Error(`manifest.json has version ${String(m.version)}; this site reads version ${TUNED_VERSION}`);
  if (!m.generator || typeof m.generator.file !== 'string') throw new Error('manifest.json names no generator file');
  checkParent(m.parent);
  if (!Array.isArray(m.runs)) throw new Error('manifest.json has no list of runs');
  return m as TunedManifest;
}

function unzip(bytes: Uint8Array): Record<string, Uint8Array> {
  try {
    return unzipSync(bytes);
  } catch {
    throw new Error('the file is not a zip archive (a fine-tuned model is one .zip file)');
  }
}

/** The zip's bytes back to the manifest and the generator's artifacts; throws a readable error. */
export function unpackTuned(bytes: Uint8Array): TunedBundle {
  const entries = unzip(bytes);
  const manifest = validateManifest(parseJson(entries[MANIFEST_FILE], MANIFEST_FILE));
  const modelJson = parseJson(entries[manifest.generator.file], manifest.generator.file);
  const paths = shardPaths(modelJson as { weightsManifest?: { paths: string[] }[] });
  const missing = paths.filter((p) => !entries[p]);
  if (missing.length) throw new Error(`the file lacks the weights ${missing.join(', ')}`);
  const shards = paths.map((p) => entries[p]);
  const files: ModelFile[] = [
    { name: manifest.generator.file, bytes: entries[manifest.generator.file] },
    ...paths.map((p, i) => ({ name: p, bytes: shards[i] })),
  ];
  return { manifest, artifacts: fromFiles(modelJson, shards), files };
}

/** True when a file's first bytes are a zip's ("PK\x03\x04"). */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}
