// The fine-tuned generator as one zip: float16 by default, its manifest, and back to the same faces.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { strToU8, unzipSync, zipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { finetuneConfig } from '../src/lib/finetune.ts';
import { generate } from '../src/lib/gan.ts';
import { latentBatch } from '../src/lib/latent.ts';
import { bundleName, isZip, packTuned, unpackTuned, type Provenance } from '../src/lib/model-bundle.ts';
import { exportFiles, generatorArtifacts } from '../src/lib/model-files.ts';
import { buildGan, modelConfig } from '../src/lib/models.ts';
import { fromArtifacts, toArtifacts } from '../src/lib/weights.ts';

const PROVENANCE: Provenance = {
  parent: { name: 'test parent', url: '/models/generator.json', weightsSha256: 'a'.repeat(64) },
  runs: [
    {
      config: finetuneConfig({ steps: 2 }),
      photos: 3,
      steps: 4,
      outcome: 'finished',
      backend: 'cpu',
      finishedAt: '2025-01-01T00:00:00.000Z',
    },
  ],
  likeness: 1,
};

let pair: ReturnType<typeof buildGan>;

beforeAll(async () => {
  await tf.setBackend('cpu');
  pair = buildGan({ ...modelConfig('dcgan', 8), seed: 5 });
});

async function faces(model: Parameters<typeof generate>[0]): Promise<Float32Array> {
  const z = tf.tensor2d(latentBatch([1, 2, 3], 100), [3, 100]);
  const out = generate(model, z);
  const data = (await out.data()) as Float32Array;
  tf.dispose([z, out]);
  return data;
}

describe('model bundle', () => {
  it('packs the generator of an exported pair as float16, with its manifest, and loads back to the same faces', async () => {
    const artifacts = generatorArtifacts(await exportFiles(pair));
    const zip = await packTuned(artifacts, PROVENANCE, { dtype: 'float16' });
    expect(isZip(zip)).toBe(true);
    expect(Object.keys(unzipSync(zip)).sort()).toEqual([
      'generator.json',
      'generator.weights1of1.bin',
      'manifest.json',
    ]);
    const { manifest, artifacts: back, files } = unpackTuned(zip);
    expect(manifest.generator.dtype).toBe('float16');
    expect(manifest.generator.params).toBe(pair.generator.countParams());
    expect(manifest.generator.bytes).toBe(2 * pair.generator.countParams());
    expect(manifest.parent).toEqual(PROVENANCE.parent);
    expect(manifest.runs).toEqual(PROVENANCE.runs);
    expect(files.map((f) => f.name)).toEqual(['generator.json', 'generator.weights1of1.bin']);
    expect(back.weightSpecs!.every((s) => s.quantization?.dtype === 'float16')).toBe(true);
    const loaded = await fromArtifacts(back);
    const [want, got] = [await faces(pair.generator), await faces(loaded)];
    const maxDiff = want.reduce((m, v, i) => Math.max(m, Math.abs(v - got[i])), 0);
    expect(maxDiff).toBeGreaterThan(0);
    expect(maxDiff).toBeLessThan(0.01);
    loaded.dispose();
  });

  it('keeps float32 exactly when asked, twice the bytes', async () => {
    const zip = await packTuned(await toArtifacts(pair.generator), PROVENANCE, { dtype: 'float32' });
    const { manifest, artifacts } = unpackTuned(zip);
    expect(manifest.generator.dtype).toBe('float32');
    expect(manifest.generator.bytes).toBe(4 * pair.generator.countParams());
    const loaded = await fromArtifacts(artifacts);
    expect(await faces(loaded)).toEqual(await faces(pair.generator));
    loaded.dispose();
    expect(bundleName('float16')).toBe('facegan-finetuned.zip');
    expect(bundleName('float32')).toBe('facegan-finetuned-float32.zip');
  });

  it('refuses what is not a bundle, saying why', async () => {
    expect(() => unpackTuned(strToU8('{"modelTopology":{}}'))).toThrow(/not a zip archive/);
    expect(() => unpackTuned(zipSync({ 'a.txt': strToU8('x') }))).toThrow(/no manifest\.json/);
    const zip = await packTuned(await toArtifacts(pair.generator), PROVENANCE, { dtype: 'float16' });
    const entries = unzipSync(zip);
    delete entries['generator.weights1of1.bin'];
    expect(() => unpackTuned(zipSync(entries))).toThrow(/lacks the weights generator\.weights1of1\.bin/);
    entries['manifest.json'] = strToU8(JSON.stringify({ format: 'other' }));
    expect(() => unpackTuned(zipSync(entries))).toThrow(/not a facegan-tuned-generator manifest/);
  });
});
