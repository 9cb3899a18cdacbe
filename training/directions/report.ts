/**
 * The measured tables of a directions.json, as docs/directions.md holds them
 * between its markers, and the README's one-line summary: generated from the
 * file, so the pages and the file cannot disagree (tests/directions.test.ts
 * checks both).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { conditionLabel, formatRange, type DirectionsFile } from '../../src/lib/directions.ts';
import { SAME_PERSON } from './face-traits.ts';
import { SEX_ATTRIBUTE, sexFlipAllowance } from './ship-rule.ts';

export const DOC_START = '<!-- directions:start -->';
export const DOC_END = '<!-- directions:end -->';
/** The README's row in "Numbers now" starts with this cell. */
export const README_ROW = '| attribute sliders';

const pct = (v: number | null | undefined) =>
  v === null || v === undefined || Number.isNaN(v) ? '-' : `${Math.round(v * 100)}%`;
const num = (v: number | null | undefined, digits = 2) =>
  v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits);
const label = (name: string) => name.replace(/_/g, ' ');

/** Lowest and highest of some numbers, "a-b" (or "a" when equal). */
function span(values: number[], format: (v: number) => string): string {
  const lo = format(Math.min(...values));
  const hi = format(Math.max(...values));
  return lo === hi ? lo : `${lo}-${hi}`;
}

function heading(d: DirectionsFile): string {
  const m = d.method as Record<string, unknown>;
  const command =
    m.facesSeed === undefined ? 'npm run directions' : `npm run eval:directions -- --faces-seed ${String(m.facesSeed)}`;
  return `Measured on the shipped generator (weights sha256 \`${d.generator.weightsSha256.slice(0, 12)}…\`; \`${command}\`, ${String(m.seconds ?? '?')} s${m.backend ? ` on ${String(m.backend)}` : ''}). **${d.attributes.length} sliders ship.** Own flip: share of ${String(m.evalFaces)} random faces the project's classifier calls negative at the slider's bottom and positive at its top. Sex flips: share of ${String(m.judgeFaces)} of those faces (the ones face-api finds at both ends) whose sex by face-api's gender net differs between the two ends; "random" is the same share along ${String(m.randomDirections)} random directions moved over the same range, the noise of the measure. Identity: mean face-descriptor distance (face-api FaceRecognitionNet, aligned) from the unedited face half way to each end, over ${String(m.identityFaces)} faces, and the share under face-api's same-person threshold ${SAME_PERSON}; then at the ends. Each end reaches at most ${d.range}.`;
}

/** The shipped sliders' table, the projection line and the not-shipped table. */
export function table(d: DirectionsFile): string[] {
  const lines = [
    heading(d),
    '',
    '| slider | conditioned on | range | own flip | sex flips (gender net) | random, same range | age change (years) | identity at half range | at the ends | face at both ends | classifier acc. / majority |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const a of d.attributes) {
    const cos = Object.entries(a.cosine ?? {})
      .map(([k, v]) => `cos ${k} ${v.toFixed(2)}`)
      .join(', ');
    const sex = a.name === SEX_ATTRIBUTE ? `${pct(a.sexFlipRate)} (the slider's job)` : pct(a.sexFlipRate);
    lines.push(
      `| ${label(a.name)}${cos ? `<br><small>fitted: ${cos}</small>` : ''} | ${conditionLabel(a) || '-'} | ${formatRange(a.range)} | ${pct(a.flipRate)} | ${sex} | ${a.randomSexFlipRates.map(pct).join(', ')} | ${num(a.ageChange, 1)} | ${num(a.halfRangeDistance)} (${pct(a.halfRangeSame)} same) | ${num(a.fullRangeDistance)} | ${pct(a.detectedBothEnds)} | ${pct(a.classifierAccuracy)} / ${pct(a.majorityRate)} |`,
    );
  }
  lines.push(...projectionLine(d));
  lines.push(
    '',
    '| not shipped | classifier acc. / majority | separability in z | conditioned on | flip (range) | sex flips (random) | why |',
    '|---|---|---|---|---|---|---|',
  );
  for (const r of d.notShipped)
    lines.push(
      `| ${label(r.name)} | ${pct(r.classifierAccuracy)} / ${pct(r.majorityRate)} | ${pct(r.separability)} | ${conditionLabel(r) || '-'} | ${pct(r.flipRate)}${r.range ? ` (${formatRange(r.range)})` : ''} | ${r.sexFlipRate === undefined ? '-' : `${pct(r.sexFlipRate)} (${r.randomSexFlipRates?.map(pct).join(', ')})`} | ${r.reason} |`,
    );
  return lines;
}

function projectionLine(d: DirectionsFile): string[] {
  const p = d.projection as Record<string, number> | undefined;
  if (!p) return [];
  const px =
    p.pixelError === undefined
      ? ''
      : ` Mean squared pixel error ${p.pixelError.toFixed(3)} vs ${p.bestRandomPixelError.toFixed(3)} for the nearest random face in pixels.`;
  return [
    '',
    `Projection of ${p.photos} held-out photos (${p.steps} steps, best of ${p.candidates} starts, feature weight ${p.featureWeight}, identity weight ${p.identityWeight ?? 0}, ${p.seconds} s): descriptor distance ${p.projected.toFixed(3)} to their projection vs ${p.bestRandom.toFixed(3)} to the best of ${p.randomSamples} random faces; projection closer for ${pct(p.closerShare)} of photos.${px}`,
  ];
}

/** The README's "Numbers now" row for the sliders. */
export function readmeRow(d: DirectionsFile): string {
  const edits = d.attributes.filter((a) => a.name !== SEX_ATTRIBUTE);
  const male = d.attributes.length > edits.length ? 'Male, and ' : '';
  const keep = edits.length
    ? `${edits.length} that keep the sex: face-api's gender net sees it change for ${span(
        edits.map((a) => a.sexFlipRate),
        pct,
      )} of faces (random directions over the same range: ${span(
        edits.flatMap((a) => a.randomSexFlipRates),
        pct,
      )})`
    : 'none that keeps the sex';
  const half = span(
    d.attributes.map((a) => a.halfRangeDistance),
    (v) => v.toFixed(2),
  );
  return `${README_ROW}, each made orthogonal to sex (and to age where entangled) | ${d.attributes.length} ship: ${male}${keep}; each flips its own attribute for >= 80% of faces over its own range; face-descriptor distance half way to an end ${half} (same person under ${SAME_PERSON}) | [docs/directions.md](docs/directions.md) |`;
}

/** `text` with what lies between the start and end markers replaced by `body` (the markers kept). */
export function replaceBetween(text: string, body: string, start = DOC_START, end = DOC_END): string {
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i === -1 || j < i) throw new Error(`markers ${start} ... ${end} not found`);
  return `${text.slice(0, i + start.length)}\n${body}\n${text.slice(j)}`;
}

/** `text` with its README_ROW line replaced by `row`. */
export function replaceReadmeRow(text: string, row: string): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.startsWith(README_ROW));
  if (i === -1) throw new Error(`no "${README_ROW}" row in the README`);
  lines[i] = row;
  return lines.join('\n');
}

/** Write the tables into docs/directions.md and the summary row into README.md. */
export function writeReports(d: DirectionsFile, docPath: string, readmePath: string): void {
  writeFileSync(docPath, replaceBetween(readFileSync(docPath, 'utf8'), table(d).join('\n')));
  writeFileSync(readmePath, replaceReadmeRow(readFileSync(readmePath, 'utf8'), readmeRow(d)));
}

/** Whether a shipped slider keeps the sex by the file's own numbers (for tests and the summary). */
export function keepsSex(a: DirectionsFile['attributes'][number]): boolean {
  return a.sexFlipRate <= sexFlipAllowance(a.randomSexFlipRates, a.sexJudged);
}
