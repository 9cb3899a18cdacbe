/**
 * Fine-tuning quality on held-out people: for each benchmark identity of
 * training/eval/identities.json, the shipped pair is fine-tuned on that
 * person's CelebA photos with src/lib/finetune.ts (native backend, CPU time
 * measured), the latent shift baked in, and the result judged against the
 * pretrained generator with the same latents (WASM, face-api nets).
 *
 *   npm run bench:identity -- [--ids 1250,2290] [--samples 200] [--config '{"steps":200}'] [--out runs/ft-bench]
 *
 * One JSON line per person on stdout.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import sharp from 'sharp';
import { gridRgba } from '../src/lib/images.ts';
import '@tensorflow/tfjs-backend-wasm';
import { FinetuneSession, type FinetuneConfig } from '../src/lib/finetune.ts';
import { bakeLatentShift } from '../src/lib/latent-shift.ts';
import { initNodeBackend } from '../training/node-backends.ts';
import { selectBackend } from '../src/lib/backends.ts';
import { evaluateIdentity, personPhotos, targetsMet } from '../training/eval/identity-eval.ts';
import { readIdentityList } from '../training/eval/identities.ts';
import { loadGallery } from '../training/eval/likeness-data.ts';
import type { Gallery } from '../training/eval/likeness.ts';
import { generatorImages, loadGeneratorFile, outputSize } from '../training/eval/sources.ts';

const pixelsAt = (size: number) => size * size * 3;
const COLS = 8;

/**
 * Rows of COLS faces: photos, their projections, pretrained samples, tuned samples (same latents), then one row of
 * each other sampling setting (--shifts); blanks are white.
 */
export async function comparisonGrid(
  photos: Float32Array,
  recon: Float32Array,
  pretrained: Float32Array,
  tuned: Float32Array,
  file: string,
  others: Float32Array[] = [],
  size = 64,
): Promise<void> {
  const PIXELS = pixelsAt(size);
  const rows = [photos, recon, pretrained, tuned, ...others];
  const rowCounts = rows.map((r) => Math.ceil(r.length / PIXELS / COLS));
  const total = rowCounts.reduce((a, b) => a + b, 0) * COLS;
  const batch = new Float32Array(total * PIXELS).fill(1);
  let at = 0;
  rows.forEach((r, i) => {
    batch.set(r, at * PIXELS);
    at += rowCounts[i] * COLS;
  });
  const grid = gridRgba(batch, total, COLS, size);
  await sharp(Buffer.from(grid.data.buffer), { raw: { width: grid.width, height: grid.height, channels: 4 } })
    .png({ compressionLevel: 9 })
    .toFile(file);
}

const { values } = parseArgs({
  options: {
    ids: { type: 'string' },
    samples: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    config: { type: 'string', default: '{}' },
    models: { type: 'string', default: 'public/models' },
    backend: { type: 'string', default: 'native' },
    out: { type: 'string' },
    save: { type: 'string' },
    shifts: { type: 'string' },
    'without-identity': { type: 'boolean' },
  },
});
const ids = values.ids ? values.ids.split(',') : readIdentityList().benchmark;
const config = JSON.parse(values.config!) as Partial<FinetuneConfig>;

let gallery: Gallery | null = null;
for (const id of ids) {
  await initNodeBackend(values.backend);
  const g = await loadGeneratorFile(join(values.models!, 'generator.json'));
  // Photos cut, and faces judged, at the generator's own size (the judges are calibrated at 64 and 128 px).
  const size = outputSize(g);
  const PIXELS = pixelsAt(size);
  const person = await personPhotos(`celeba:${id}`, undefined, size);
  const crops = Array.from({ length: person.files.length }, (_, i) =>
    person.images.slice(i * PIXELS, (i + 1) * PIXELS),
  );
  const d = await loadGeneratorFile(join(values.models!, 'discriminator.json'));
  // The recogniser the projection and the likeness fit pull through (as the page and the CLI do); off: neither.
  const embedder = values['without-identity']
    ? undefined
    : (await import('../training/eval/face-nets.ts')).faceNets().embedder;
  const session = new FinetuneSession(g, d, crops, config, embedder);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let last = null;
  while (!session.finished) last = await session.step();
  const cpu = process.cpuUsage(cpu0);
  const wall = (performance.now() - t0) / 1000;
  const baked = await session.bake();
  const reconstructions = await session.reconstructions();
  const pretrained = await loadGeneratorFile(join(values.models!, 'generator.json'));
  await selectBackend(['wasm']);
  if (values.save) {
    const { toArtifacts, toFiles } = await import('../src/lib/weights.ts');
    const files = toFiles(await toArtifacts(baked), 'generator');
    mkdirSync(values.save, { recursive: true });
    for (const [f, bytes] of files.shards) writeFileSync(join(values.save, f), bytes);
    writeFileSync(join(values.save, `generator-${id}.json`), JSON.stringify(files.modelJson));
  }
  // Other likeness settings on the same tuned G ("scale:pull,scale:pull"), judged with the same latents.
  const extra: Record<string, LayersModel> = {};
  for (const pair of values.shifts ? values.shifts.split(',') : []) {
    const [scale, pull] = pair.split(':').map(Number);
    extra[`tuned ${scale}:${pull}`] = await bakeLatentShift(session.sampler, { ...session.shift(), scale, pull });
  }
  const copyChecks = [...session.copyChecks];
  session.dispose();
  gallery ??= await loadGallery(size);
  const report = await evaluateIdentity(
    person,
    { pretrained, tuned: baked, ...extra },
    { samples: Number(values.samples), seed: Number(values.seed), gallery },
  );
  if (values.out) {
    mkdirSync(values.out, { recursive: true });
    const photos = person.images.slice(0, Math.min(person.files.length, COLS) * PIXELS);
    const recon = reconstructions!.slice(0, photos.length);
    await comparisonGrid(
      photos,
      recon,
      await generatorImages(pretrained, COLS, 1000),
      await generatorImages(baked, 3 * COLS, 1000),
      join(values.out, `grid-${id}.png`),
      await Promise.all(Object.values(extra).map((g) => generatorImages(g, COLS, 1000))),
      size,
    );
  }
  console.log(
    JSON.stringify({
      id,
      config,
      cpu_s: Number(((cpu.user + cpu.system) / 1e6).toFixed(1)),
      wall_s: Number(wall.toFixed(1)),
      last,
      copy_checks: copyChecks,
      met: Object.fromEntries(
        Object.keys(report.generators)
          .filter((k) => k !== 'pretrained')
          .map((k) => [k, targetsMet(report.generators[k])]),
      ),
      ...report,
      calibration: undefined,
    }),
  );
  tf.dispose([g, d, pretrained, baked, ...Object.values(extra)].flatMap((m) => m.weights.map((w) => w.read())));
}
if (values.out) {
  // One picture of every person's rows, stacked (the README's docs/finetune-identities.jpg, as JPEG quality 92).
  const files = ids.map((id) => join(values.out!, `grid-${id}.png`));
  const metas = await Promise.all(files.map((f) => sharp(f).metadata()));
  const gap = 10;
  let top = 0;
  const composite = files.map((input, i) => {
    const c = { input, left: 0, top };
    top += metas[i].height! + gap;
    return c;
  });
  await sharp({
    create: { width: Math.max(...metas.map((m) => m.width!)), height: top - gap, channels: 4, background: '#ffffff' },
  })
    .composite(composite)
    .png({ compressionLevel: 9 })
    .toFile(join(values.out, 'finetune-identities.png'));
}
process.exit(0);
