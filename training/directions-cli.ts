/**
 * npm run directions -- [--generator public/models/generator.json] [--out public/models/directions.json]
 *   [--data DIR] [--backend auto|native|...] [--steps N] [--width N] [--limit N] [--samples N]
 *   [--eval-faces N] [--descriptor-faces N] [--no-detect] [--no-manifest] [--seed S]
 *
 * Trains the attribute classifier, fits and measures one direction per
 * attribute (training/directions/pipeline.ts), writes directions.json and
 * records the generator's weights hash in the manifest beside it.
 * `npm run eval:directions` prints the measured table of a directions.json.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { validateDirections, type DirectionsFile } from '../src/lib/directions.ts';
import { DEFAULT_DATA } from './config.ts';
import {
  DEFAULTS,
  PROJECTION_DEFAULTS,
  measureProjection,
  runDirections,
  type ProjectionMeasure,
} from './directions/pipeline.ts';
import { backendLine, initNodeBackend } from './node-backends.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function table(d: DirectionsFile): string[] {
  const pct = (v: number | null | undefined) => (v === null || v === undefined ? '-' : `${(v * 100).toFixed(1)}%`);
  const lines = [
    '| attribute | classifier acc. (held-out) | majority rate | separability in z | flip rate -3..+3 | face detected at both ends | other attributes moved at +3 | descriptor distance at -3 / +3 |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const a of d.attributes) {
    const end = a.steps[a.steps.length - 1];
    const start = a.steps[0];
    const cos = Object.entries(a.cosine ?? {})
      .map(([k, v]) => `cos ${k} ${v.toFixed(2)}`)
      .join(', ');
    lines.push(
      `| ${a.name}${a.orthogonalTo.length ? ` (⟂ ${a.orthogonalTo.join(', ')})` : ''}${cos ? `<br><small>${cos}${a.orthogonalFlipRate !== undefined ? `; orthogonalised: flip ${pct(a.orthogonalFlipRate)}` : ''}</small>` : ''} | ${pct(a.classifierAccuracy)} | ${pct(a.majorityRate)} | ${pct(a.separability)} | ${pct(a.flipRate)} | ${pct(a.detectedBothEnds)} | ${end.othersMoved.toFixed(3)} | ${start.descriptorDistance?.toFixed(3) ?? '-'} / ${end.descriptorDistance?.toFixed(3) ?? '-'} |`,
    );
  }
  const p = d.projection as
    | (Partial<ProjectionMeasure> & {
        photos: number;
        projected: number;
        bestRandom: number;
        randomSamples: number;
        closerShare: number;
      })
    | undefined;
  if (p) {
    const how =
      p.steps === undefined
        ? ''
        : ` (${p.steps} steps, best of ${p.candidates} starts, feature weight ${p.featureWeight}, identity weight ${p.identityWeight ?? 0}${p.seconds === undefined ? '' : `, ${p.seconds} s`})`;
    const px =
      p.pixelError === undefined
        ? ''
        : ` Mean squared pixel error ${p.pixelError.toFixed(3)} vs ${p.bestRandomPixelError!.toFixed(3)} for the nearest random face in pixels.`;
    lines.push(
      '',
      `Projection of ${p.photos} held-out photos${how}: descriptor distance ${p.projected.toFixed(3)} to their projection vs ${p.bestRandom.toFixed(3)} to the best of ${p.randomSamples} random faces; projection closer for ${pct(p.closerShare)} of photos.${px}`,
    );
  }
  lines.push(
    '',
    '| not shipped | classifier acc. | majority | separability | flip rate | why |',
    '|---|---|---|---|---|---|',
  );
  for (const r of d.notShipped)
    lines.push(
      `| ${r.name} | ${pct(r.classifierAccuracy)} | ${pct(r.majorityRate)} | ${pct(r.separability)} | ${pct(r.flipRate)} | ${r.reason} |`,
    );
  return lines;
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      generator: { type: 'string' },
      out: { type: 'string' },
      data: { type: 'string' },
      backend: { type: 'string' },
      steps: { type: 'string' },
      width: { type: 'string' },
      limit: { type: 'string' },
      samples: { type: 'string' },
      'eval-faces': { type: 'string' },
      'descriptor-faces': { type: 'string' },
      'no-detect': { type: 'boolean' },
      'no-manifest': { type: 'boolean' },
      seed: { type: 'string' },
      'print-only': { type: 'boolean' },
      'projection-photos': { type: 'string' },
      'projection-steps': { type: 'string' },
      'projection-starts': { type: 'string' },
      'projection-features': { type: 'string' },
      'projection-identity': { type: 'string' },
      'projection-picture': { type: 'string' },
      'projection-only': { type: 'boolean' },
    },
  });
  const generatorJson = resolve(a.generator ?? join(root, 'public/models/generator.json'));
  const out = resolve(a.out ?? join(dirname(generatorJson), 'directions.json'));
  if (a['print-only']) {
    const d = validateDirections(JSON.parse(readFileSync(out, 'utf8')));
    console.log(table(d).join('\n'));
    return;
  }
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  const backend = await initNodeBackend(a.backend ?? 'auto');
  console.error(backendLine(backend, a.backend ?? 'auto'));
  const dataDir = resolve(root, a.data ?? DEFAULT_DATA);
  const cacheDir = join(root, 'node_modules/.cache/facegan-directions');
  const projectionPhotos = num(a['projection-photos'], PROJECTION_DEFAULTS.photos);
  const project = async () => {
    const p = await measureProjection(generatorJson, dataDir, cacheDir, {
      photos: projectionPhotos,
      steps: num(a['projection-steps'], PROJECTION_DEFAULTS.steps),
      candidates: num(a['projection-starts'], PROJECTION_DEFAULTS.candidates),
      featureWeight: num(a['projection-features'], PROJECTION_DEFAULTS.featureWeight),
      identityWeight: num(a['projection-identity'], PROJECTION_DEFAULTS.identityWeight),
      picture: a['projection-picture'],
    });
    console.error(
      `projection of ${p.photos} held-out photos: descriptor distance ${p.projected.toFixed(3)} vs best of ${p.randomSamples} random ${p.bestRandom.toFixed(3)}; closer for ${(p.closerShare * 100).toFixed(0)}%`,
    );
    return p;
  };
  if (a['projection-only']) {
    const d = validateDirections(JSON.parse(readFileSync(out, 'utf8')));
    d.projection = { ...(await project()) };
    writeFileSync(out, `${JSON.stringify(d, null, 1)}\n`);
    return;
  }
  const result = await runDirections({
    ...DEFAULTS,
    generatorJson,
    dataDir,
    cacheDir,
    limit: num(a.limit, DEFAULTS.limit),
    classifierSteps: num(a.steps, DEFAULTS.classifierSteps),
    classifierWidth: num(a.width, DEFAULTS.classifierWidth),
    samples: num(a.samples, DEFAULTS.samples),
    evalFaces: num(a['eval-faces'], DEFAULTS.evalFaces),
    descriptorFaces: num(a['descriptor-faces'], DEFAULTS.descriptorFaces),
    detect: !a['no-detect'],
    seed: num(a.seed, DEFAULTS.seed),
    log: (l) => console.error(l),
  });
  result.method.backend = `${backend.name} (${backend.detail})`;
  if (projectionPhotos > 0) result.projection = { ...(await project()) };
  writeFileSync(out, `${JSON.stringify(result, null, 1)}\n`);
  const manifestPath = join(dirname(generatorJson), 'manifest.json');
  if (!a['no-manifest'] && existsSync(manifestPath)) {
    const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, Record<string, unknown>>;
    m.generator = { ...m.generator, weightsSha256: result.generator.weightsSha256 };
    m.directions = {
      file: out.split('/').pop(),
      weightsSha256: result.generator.weightsSha256,
      attributes: result.attributes.map((x) => x.name),
    };
    writeFileSync(manifestPath, `${JSON.stringify(m, null, 2)}\n`);
  }
  console.log(table(result).join('\n'));
  console.error(`wrote ${out}: ${result.attributes.length} attributes shipped`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
