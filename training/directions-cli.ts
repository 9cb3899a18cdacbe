/**
 * npm run directions -- [--generator public/models/generator.json] [--out public/models/directions.json]
 *   [--data DIR] [--backend auto|native|...] [--steps N] [--width N] [--limit N] [--samples N]
 *   [--eval-faces N] [--range-step X] [--judge-faces N] [--identity-faces N] [--no-detect] [--no-manifest] [--no-docs] [--seed S]
 *   [--faces-seed S]
 *
 * Trains the attribute classifier, fits, conditions and measures one
 * direction per attribute (training/directions/pipeline.ts), writes
 * directions.json, records the generator's weights hash in the manifest
 * beside it, and (for the shipped file) writes the tables into
 * docs/directions.md and the README.
 * `npm run eval:directions` (--evaluate) measures the shipped sliders again
 * (--faces-seed S: on other faces, with the same classifier) and prints the table; --print-only prints the table of a directions.json.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { validateDirections, type DirectionsFile } from '../src/lib/directions.ts';
import { DEFAULT_DATA } from './config.ts';
import { evaluateDirections } from './directions/evaluate.ts';
import { DEFAULTS, runDirections, type DirectionsOptions } from './directions/pipeline.ts';
import { PROJECTION_DEFAULTS, measureProjection } from './directions/projection.ts';
import { table, writeReports } from './directions/report.ts';
import { backendLine, initNodeBackend } from './node-backends.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SHIPPED = join(root, 'public/models/directions.json');

const FLAGS = {
  generator: { type: 'string' },
  out: { type: 'string' },
  data: { type: 'string' },
  backend: { type: 'string' },
  steps: { type: 'string' },
  width: { type: 'string' },
  limit: { type: 'string' },
  samples: { type: 'string' },
  'eval-faces': { type: 'string' },
  'range-step': { type: 'string' },
  'judge-faces': { type: 'string' },
  'identity-faces': { type: 'string' },
  'no-detect': { type: 'boolean' },
  'no-manifest': { type: 'boolean' },
  'no-docs': { type: 'boolean' },
  seed: { type: 'string' },
  'faces-seed': { type: 'string' },
  'print-only': { type: 'boolean' },
  evaluate: { type: 'boolean' },
  'projection-photos': { type: 'string' },
  'projection-steps': { type: 'string' },
  'projection-starts': { type: 'string' },
  'projection-features': { type: 'string' },
  'projection-identity': { type: 'string' },
  'projection-picture': { type: 'string' },
  'projection-only': { type: 'boolean' },
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof FLAGS }>>['values'];

const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));

function pipelineOptions(a: Flags, generatorJson: string): DirectionsOptions {
  return {
    ...DEFAULTS,
    generatorJson,
    dataDir: resolve(root, a.data ?? DEFAULT_DATA),
    cacheDir: join(root, 'node_modules/.cache/facegan-directions'),
    limit: num(a.limit, DEFAULTS.limit),
    classifierSteps: num(a.steps, DEFAULTS.classifierSteps),
    classifierWidth: num(a.width, DEFAULTS.classifierWidth),
    samples: num(a.samples, DEFAULTS.samples),
    evalFaces: num(a['eval-faces'], DEFAULTS.evalFaces),
    rangeStep: num(a['range-step'], DEFAULTS.rangeStep),
    judgeFaces: num(a['judge-faces'], DEFAULTS.judgeFaces),
    identityFaces: num(a['identity-faces'], DEFAULTS.identityFaces),
    detect: !a['no-detect'],
    seed: num(a.seed, DEFAULTS.seed),
    facesSeed: a['faces-seed'] === undefined ? undefined : Number(a['faces-seed']),
    log: (l) => console.error(l),
  };
}

/** "Start from your photo", measured with the projection flags. */
async function project(a: Flags, o: DirectionsOptions) {
  const p = await measureProjection(o.generatorJson, o.dataDir, o.cacheDir, {
    photos: num(a['projection-photos'], PROJECTION_DEFAULTS.photos),
    steps: num(a['projection-steps'], PROJECTION_DEFAULTS.steps),
    candidates: num(a['projection-starts'], PROJECTION_DEFAULTS.candidates),
    featureWeight: num(a['projection-features'], PROJECTION_DEFAULTS.featureWeight),
    identityWeight: num(a['projection-identity'], PROJECTION_DEFAULTS.identityWeight),
    picture: a['projection-picture'],
  });
  console.error(
    `projection of ${p.photos} held-out photos: descriptor distance ${p.projected.toFixed(3)} vs best of ${p.randomSamples} random ${p.bestRandom.toFixed(3)}; closer for ${(p.closerShare * 100).toFixed(0)}%`,
  );
  return { ...p };
}

/** The manifest beside the generator records the hash and the shipped attributes. */
function writeManifest(generatorJson: string, out: string, d: DirectionsFile): void {
  const manifestPath = join(dirname(generatorJson), 'manifest.json');
  if (!existsSync(manifestPath)) return;
  const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, Record<string, unknown>>;
  m.generator = { ...m.generator, weightsSha256: d.generator.weightsSha256 };
  m.directions = {
    file: out.split('/').pop(),
    weightsSha256: d.generator.weightsSha256,
    attributes: d.attributes.map((x) => x.name),
  };
  writeFileSync(manifestPath, `${JSON.stringify(m, null, 2)}\n`);
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({ options: FLAGS });
  const generatorJson = resolve(a.generator ?? join(root, 'public/models/generator.json'));
  const out = resolve(a.out ?? join(dirname(generatorJson), 'directions.json'));
  const read = () => validateDirections(JSON.parse(readFileSync(out, 'utf8')));
  if (a['print-only']) {
    console.log(table(read()).join('\n'));
    return;
  }
  const backend = await initNodeBackend(a.backend ?? 'auto');
  console.error(backendLine(backend, a.backend ?? 'auto'));
  const o = pipelineOptions(a, generatorJson);
  if (a.evaluate) {
    const d = await evaluateDirections(read(), o);
    d.method.backend = `${backend.name} (${backend.detail})`;
    console.log(table(d).join('\n'));
    return;
  }
  if (a['projection-only']) {
    const d = read();
    d.projection = await project(a, o);
    writeFileSync(out, `${JSON.stringify(d, null, 1)}\n`);
    return;
  }
  const result = await runDirections(o);
  result.method.backend = `${backend.name} (${backend.detail})`;
  if (num(a['projection-photos'], PROJECTION_DEFAULTS.photos) > 0) result.projection = await project(a, o);
  writeFileSync(out, `${JSON.stringify(result, null, 1)}\n`);
  if (!a['no-manifest']) writeManifest(generatorJson, out, result);
  if (!a['no-docs'] && out === SHIPPED) writeReports(result, join(root, 'docs/directions.md'), join(root, 'README.md'));
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
