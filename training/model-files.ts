/**
 * Reading an exported TensorFlow.js layers model (model.json + weight shards)
 * from disk, as the site's files are laid out: for evaluation, and for
 * training runs that start from an earlier export (--init-from).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { fromArtifacts, fromFiles } from '../src/lib/weights.ts';

/** Load a layers-format model (G or D) from its model.json and the shards it names (paths relative to it). */
export async function loadModelFile(modelJsonPath: string): Promise<LayersModel> {
  if (!existsSync(modelJsonPath)) throw new Error(`model not found: ${modelJsonPath}`);
  let modelJson: Record<string, unknown>;
  try {
    modelJson = JSON.parse(readFileSync(modelJsonPath, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${modelJsonPath} is not valid JSON: ${err instanceof Error ? err.message : err}`);
  }
  const manifest = modelJson.weightsManifest as tf.io.WeightsManifestConfig | undefined;
  if (!modelJson.modelTopology || !Array.isArray(manifest)) {
    throw new Error(`${modelJsonPath} is not a TensorFlow.js layers model (no modelTopology / weightsManifest)`);
  }
  const shards = manifest
    .flatMap((group) => group.paths)
    .map((p) => {
      const file = join(dirname(modelJsonPath), p);
      if (!existsSync(file)) throw new Error(`weight shard ${p} named by ${modelJsonPath} is missing`);
      return new Uint8Array(readFileSync(file));
    });
  return fromArtifacts(fromFiles(modelJson, shards));
}
