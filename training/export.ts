/**
 * Export for the site: G and D as TensorFlow.js layers models (model.json +
 * weight shards), the manifest that the model page reads, the fixed-noise
 * sample grid and the run's metrics log.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { quantizeFloat16, toArtifacts, toFiles, type ModelManifest } from '../src/lib/weights.ts';
import { writeAtomic } from './data.ts';

export type ExportDtype = 'float32' | 'float16';

async function writeModel(model: LayersModel, dir: string, name: string, dtype: ExportDtype) {
  let artifacts = await toArtifacts(model);
  if (dtype === 'float16') artifacts = quantizeFloat16(artifacts);
  const files = toFiles(artifacts, name);
  // Old shards of this model (another shard count) would otherwise linger.
  for (const f of readdirSync(dir))
    if (f.startsWith(`${name}.weights`) && !files.shards.has(f)) unlinkSync(join(dir, f));
  for (const [file, bytes] of files.shards) writeAtomic(join(dir, file), bytes);
  writeAtomic(join(dir, `${name}.json`), JSON.stringify(files.modelJson));
  return { file: `${name}.json`, params: model.countParams(), bytes: files.weightBytes, dtype };
}

export interface ExportInput {
  dir: string;
  generator: LayersModel;
  discriminator: LayersModel;
  dtype: ExportDtype;
  /** Manifest fields other than the model files. */
  manifest: Omit<ModelManifest, 'generator' | 'discriminator' | 'exportedAt' | 'sampleGrid' | 'trainingLog'>;
  sampleGridPng?: string;
  metricsLog?: string;
}

export async function exportModels(input: ExportInput): Promise<ModelManifest> {
  mkdirSync(input.dir, { recursive: true });
  const manifest: ModelManifest = {
    ...input.manifest,
    generator: await writeModel(input.generator, input.dir, 'generator', input.dtype),
    discriminator: await writeModel(input.discriminator, input.dir, 'discriminator', input.dtype),
    exportedAt: new Date().toISOString(),
  };
  if (input.sampleGridPng && existsSync(input.sampleGridPng)) {
    copyFileSync(input.sampleGridPng, join(input.dir, 'samples.png'));
    manifest.sampleGrid = 'samples.png';
  }
  if (input.metricsLog && existsSync(input.metricsLog)) {
    copyFileSync(input.metricsLog, join(input.dir, 'training-log.jsonl'));
    manifest.trainingLog = 'training-log.jsonl';
  }
  writeFileSync(join(input.dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
