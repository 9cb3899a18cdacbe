/**
 * A generator/discriminator pair as TensorFlow.js files
 * (facegan-generator.json, facegan-discriminator.json and their weight
 * shards), and files picked back into artifacts. Isomorphic: the fine-tune
 * worker hands them to the page (which packs the generator into one
 * download, model-bundle.ts), `npm run finetune` writes them to disk.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { fromFiles, toArtifacts, toFiles } from './weights.ts';

/** A model file as the visitor picked it or gets it (export and import). */
export interface ModelFile {
  name: string;
  bytes: Uint8Array;
}

const encoder = new TextEncoder();

/** The pair as downloadable files: facegan-generator.json plus weight shards, and the same for D. */
export async function exportFiles(p: { generator: LayersModel; discriminator: LayersModel }): Promise<ModelFile[]> {
  const files: ModelFile[] = [];
  for (const [name, model] of [
    ['facegan-generator', p.generator],
    ['facegan-discriminator', p.discriminator],
  ] as const) {
    const out = toFiles(await toArtifacts(model), name);
    files.push({ name: `${name}.json`, bytes: encoder.encode(JSON.stringify(out.modelJson)) });
    for (const [shard, bytes] of out.shards) files.push({ name: shard, bytes: bytes.slice() });
  }
  return files;
}

function parseModelJson(file: ModelFile): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(file.bytes));
  } catch {
    throw new Error(`${file.name} is not valid JSON`);
  }
  const ok =
    json &&
    typeof json === 'object' &&
    'modelTopology' in json &&
    Array.isArray((json as { weightsManifest?: unknown }).weightsManifest);
  if (!ok) throw new Error(`${file.name} is not a TensorFlow.js layers model (no modelTopology or weightsManifest)`);
  return json as Record<string, unknown>;
}

/** Model files picked by the visitor to artifacts, one per .json, each with its shards. */
export function artifactsFromFiles(files: readonly ModelFile[]): tf.io.ModelArtifacts[] {
  const byName = new Map(files.map((f) => [f.name, f]));
  const jsons = files.filter((f) => f.name.toLowerCase().endsWith('.json'));
  if (jsons.length === 0) throw new Error('no model .json file among the chosen files');
  return jsons.map((file) => {
    const json = parseModelJson(file);
    const paths = (json.weightsManifest as tf.io.WeightsManifestConfig).flatMap((g) => g.paths);
    const missing = paths.filter((p) => !byName.has(p.split('/').pop()!));
    if (missing.length)
      throw new Error(`${file.name} needs ${missing.join(', ')}: choose the weight files together with the .json`);
    return fromFiles(
      json,
      paths.map((p) => byName.get(p.split('/').pop()!)!.bytes),
    );
  });
}

/** The generator's artifacts among exportFiles' files (facegan-generator.json and its shards). */
export function generatorArtifacts(files: readonly ModelFile[]): tf.io.ModelArtifacts {
  const json = files.find((f) => f.name === 'facegan-generator.json');
  if (!json) throw new Error('the exported files hold no facegan-generator.json');
  return artifactsFromFiles([json, ...files.filter((f) => f.name.endsWith('.bin'))])[0];
}
