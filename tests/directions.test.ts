/**
 * Attribute directions: the isomorphic helpers (apply, URL state with each
 * slider's range, file validation), the conditioning on sex and age, the
 * shipping rule, the shipped directions.json against the shipped generator's
 * weight bytes and the tables generated from it, and a tiny run of the
 * directions pipeline.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DirectionsError,
  MAX_SLIDER_RANGE,
  SLIDER_RANGE,
  applyDirections,
  conditionLabel,
  attributeKey,
  formatRange,
  missingNote,
  readSliderParams,
  sliderRanges,
  validateDirections,
  writeSliderParams,
  type DirectionsFile,
  type SliderRange,
} from '../src/lib/directions.ts';
import { parseAttributes } from '../training/directions/attributes.ts';
import {
  conditionDirection,
  keepSexShare,
  mostlyOf,
  rangeCap,
  rangeGrid,
  rangesBySpan,
  shortestRange,
} from '../training/directions/conditioning.ts';
import type { FaceTraits } from '../training/directions/face-traits.ts';
import { identityDistance, randomDirections, sexFlips } from '../training/directions/judging.ts';
import { fitLogistic, orthogonalise, dot } from '../training/directions/linear.ts';
import { generatorHash } from '../training/directions/pipeline.ts';
import {
  DOC_END,
  DOC_START,
  keepsSex,
  readmeRow,
  replaceBetween,
  replaceReadmeRow,
  table,
} from '../training/directions/report.ts';
import { SHIP_RULE, sexFlipAllowance, shipVerdict, type SliderMeasures } from '../training/directions/ship-rule.ts';
import { Rng, sampleLatents } from '../src/lib/latent.ts';

const ROOT = join(import.meta.dirname, '..');
const MODELS = join(ROOT, 'public/models');

const unit = (n: number, i: number) => Array.from({ length: n }, (_, j) => (j === i ? 1 : 0));

function fileWith(attributes: { name: string; vector: number[]; range?: unknown }[], zDim = 4): unknown {
  return {
    version: 2,
    generator: { file: 'generator.json', weightsSha256: 'a'.repeat(64) },
    zDim,
    range: 3,
    method: {},
    attributes: attributes.map((a) => ({
      ...a,
      key: attributeKey(a.name),
      classifierAccuracy: 0.9,
      majorityRate: 0.5,
      separability: 0.9,
      positiveRate: 0.5,
      range: { min: -1, max: 2.5 },
      conditionedOn: ['Male'],
      cosine: { Male: 0.1 },
      flipRate: 0.9,
      detectedBothEnds: 1,
      sexFlipRate: 0.1,
      sexJudged: 90,
      randomSexFlipRates: [0.15, 0.2],
      ageChange: 1,
      halfRangeDistance: 0.3,
      halfRangeSame: 1,
      fullRangeDistance: 0.5,
      steps: [],
      ...a,
    })),
    notShipped: [],
    createdAt: '',
  };
}

describe('directions helpers', () => {
  it('applies z + sum(alpha_i * d_i) without touching z', () => {
    const z = new Float32Array([1, 2, 3, 4]);
    const dirs = [
      { key: 'smiling', vector: unit(4, 0) },
      { key: 'male', vector: unit(4, 2) },
    ];
    const out = applyDirections(z, dirs, { smiling: 0.5, male: -2, unknown: 7 });
    expect(Array.from(out)).toEqual([1.5, 2, 1, 4]);
    expect(Array.from(z)).toEqual([1, 2, 3, 4]);
    expect(Array.from(applyDirections(z, dirs, {}))).toEqual([1, 2, 3, 4]);
    expect(() => applyDirections(z, [{ key: 'x', vector: [1] }], { x: 1 })).toThrow(DirectionsError);
  });

  it('round-trips slider values through the URL, keeping other parameters', () => {
    const keys = ['smiling', 'male', 'blond_hair'];
    const url = new URL('https://x.test/?seed=42&backend=wasm&smiling=9');
    const written = writeSliderParams(url.searchParams, keys, { smiling: 0.8, male: -1.234, blond_hair: 0 });
    expect(written.get('seed')).toBe('42');
    expect(written.get('backend')).toBe('wasm');
    expect(written.get('smiling')).toBe('0.8');
    expect(written.get('male')).toBe('-1.23');
    expect(written.has('blond_hair')).toBe(false);
    expect(readSliderParams(written, keys)).toEqual({ smiling: 0.8, male: -1.23 });
    // clamped, junk and unknown keys ignored
    const odd = new URLSearchParams('smiling=12&male=abc&bald=1&blond_hair=');
    expect(readSliderParams(odd, keys)).toEqual({ smiling: SLIDER_RANGE });
  });

  it('clamps each slider to its own range', () => {
    const ranges = sliderRanges([
      { key: 'smiling', range: { min: -1.5, max: 1.5 } },
      { key: 'young', range: { min: -4.5, max: 1 } },
    ]);
    const params = new URLSearchParams('smiling=3&young=-3.5&eyeglasses=9');
    expect(readSliderParams(params, ['smiling', 'young', 'eyeglasses'], ranges)).toEqual({
      smiling: 1.5,
      young: -3.5,
      eyeglasses: SLIDER_RANGE,
    });
    expect(readSliderParams(new URLSearchParams('young=2'), ['young'], ranges)).toEqual({ young: 1 });
    expect(formatRange({ min: -0.5, max: 4.5 })).toBe('−0.5 … +4.5');
  });

  it('validates a directions file', () => {
    expect(validateDirections(fileWith([{ name: 'Smiling', vector: unit(4, 1) }]), 4).attributes[0].key).toBe(
      'smiling',
    );
    expect(() => validateDirections(fileWith([{ name: 'Smiling', vector: [1, 1, 0, 0] }]), 4)).toThrow(/norm/);
    expect(() => validateDirections(fileWith([{ name: 'Smiling', vector: unit(3, 1) }]), 4)).toThrow(/vector/);
    expect(() => validateDirections(fileWith([{ name: 'Smiling', vector: unit(4, 1) }]), 100)).toThrow(/zDim/);
    expect(() => validateDirections({ ...(fileWith([]) as object), generator: {} })).toThrow(/hash/);
    const smiling = (range: unknown) => fileWith([{ name: 'Smiling', vector: unit(4, 1), range }]);
    expect(() => validateDirections(smiling(3), 4)).toThrow(/range/);
    expect(() => validateDirections(smiling({ min: 0.5, max: 2 }), 4)).toThrow(/range/);
    expect(() => validateDirections(smiling({ min: -1, max: MAX_SLIDER_RANGE + 1 }), 4)).toThrow(/range/);
    expect(() => validateDirections({ ...(fileWith([]) as object), version: 1 })).toThrow(/version/);
  });

  it('names the asked-for attributes that do not ship, grouped by why', () => {
    const note = missingNote([
      { name: 'Eyeglasses', kind: 'detect' },
      { name: 'Bald', kind: 'judge' },
      { name: 'Wearing_Hat', kind: 'detect' },
      { name: 'No_Beard', kind: 'flip' },
    ]);
    expect(note).toBe(
      'Not offered: eyeglasses, hat (faces break up before they show); beard (in this generator they come with a change of sex, and without one too few faces change).',
    );
    expect(missingNote([{ name: 'Bald', kind: 'judge' }])).toBe('');
  });
});

describe('conditioning', () => {
  const dim = 6;
  const male = unit(dim, 0);
  const young = unit(dim, 1);
  const smiling = unit(dim, 2);
  const conditions = new Map([
    ['Male', male],
    ['Young', young],
    ['Smiling', smiling],
  ]);
  const norm = (v: number[]) => {
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };

  it('makes every direction orthogonal to Male, and to Young only where entangled', () => {
    // Mostly sex, a little age: both removed, the rest kept and renormalised.
    const makeup = norm([-0.9, 0.3, 0.1, 0.3, 0, 0]);
    const c = conditionDirection('Heavy_Makeup', makeup, conditions);
    expect(c.conditionedOn).toEqual(['Male', 'Young']);
    expect(Math.abs(dot(c.vector, male))).toBeLessThan(1e-9);
    expect(Math.abs(dot(c.vector, young))).toBeLessThan(1e-9);
    expect(Math.hypot(...c.vector)).toBeCloseTo(1, 9);
    expect(c.cosine.Male).toBeCloseTo(-0.9 / Math.hypot(0.9, 0.3, 0.1, 0.3), 3);
    // No age in it: conditioned on sex only, and the small smile share stays.
    const hair = norm([0.4, 0.05, 0.15, 0, 0.9, 0]);
    const h = conditionDirection('Black_Hair', hair, conditions);
    expect(h.conditionedOn).toEqual(['Male']);
    expect(Math.abs(dot(h.vector, male))).toBeLessThan(1e-9);
    expect(dot(h.vector, smiling)).toBeGreaterThan(0.1);
  });

  it('conditions a second smile on Smiling, and says what it was', () => {
    const cheekbones = norm([-0.3, 0, 0.95, 0, 0, 0.1]);
    const c = conditionDirection('High_Cheekbones', cheekbones, conditions);
    expect(c.conditionedOn).toEqual(['Male', 'Smiling']);
    expect(Math.abs(dot(c.vector, smiling))).toBeLessThan(1e-9);
    expect(mostlyOf(c.cosine)).toMatch(/mostly Smiling's direction \(cos 0\.95\)/);
    expect(mostlyOf({ Male: 0.3 })).toBe('');
  });

  it('puts back a share of the fitted lean on sex, and labels it', () => {
    const blond = norm([-0.5, 0, 0, 0, 0, 0.85]);
    const orth = conditionDirection('Blond_Hair', blond, conditions);
    const kept = keepSexShare(orth, blond, male, 0.25);
    expect(kept.sexShare).toBe(0.25);
    expect(Math.hypot(...kept.vector)).toBeCloseTo(1, 9);
    // A quarter of the fitted Male component back on the unit orthogonal direction, renormalised.
    const k = 0.25 * dot(blond, male);
    expect(dot(kept.vector, male)).toBeCloseTo(k / Math.hypot(1, k), 9);
    expect(dot(kept.vector, orth.vector)).toBeCloseTo(1 / Math.hypot(1, k), 9);
    expect(conditionLabel(kept)).toBe('Male (25% of its lean kept)');
    expect(conditionLabel({ conditionedOn: ['Male', 'Young'] })).toBe('Male, Young');
  });

  it('Male itself is not made orthogonal to itself', () => {
    const c = conditionDirection('Male', norm([1, -0.5, 0, 0, 0, 0]), conditions);
    expect(c.conditionedOn).toEqual(['Young']);
    expect(dot(c.vector, male)).toBeCloseTo(1, 9);
  });

  it('ranges: capped where the edited latent leaves the prior, the shortest span that flips enough', async () => {
    expect(rangeCap(100)).toBe(4.5);
    expect(rangeCap(512)).toBeGreaterThan(rangeCap(100));
    expect(rangeGrid(1.5, 0.5)).toEqual([0.5, 1, 1.5]);
    const ranges = rangesBySpan([0.5, 1, 1.5]);
    expect(ranges.slice(0, 4)).toEqual([
      { min: -0.5, max: 0.5 },
      { min: -0.5, max: 1 },
      { min: -1, max: 0.5 },
      { min: -1, max: 1 },
    ]);
    expect(ranges).toHaveLength(9);
    // A rare attribute: hardly anything to remove below, a long way up.
    const flipAt = async (r: SliderRange) => (r.max >= 1.5 ? 0.85 : 0.3) - (r.min > -0.5 ? 0.5 : 0);
    const found = await shortestRange(ranges, flipAt, 0.8);
    expect(found).toEqual({ range: { min: -0.5, max: 1.5 }, flipRate: 0.85, best: { min: -0.5, max: 1.5 } });
    const none = await shortestRange(ranges, async () => 0.4, 0.8);
    expect(none.range).toBeNull();
    expect(none.flipRate).toBe(0.4);
  });
});

describe('the shipping rule', () => {
  const slider = (m: Partial<SliderMeasures>): SliderMeasures => ({
    name: 'Blond_Hair',
    range: { min: -3, max: 3 },
    flipRate: 0.9,
    detectedBothEnds: 0.9,
    sexFlipRate: 0.15,
    sexJudged: 100,
    randomSexFlipRates: [0.16, 0.2],
    halfRangeDistance: 0.35,
    ...m,
  });

  it('ships a slider that flips its attribute and keeps sex and person', () => {
    expect(shipVerdict(slider({}))).toBeNull();
  });

  it('rejects a direction that flips sex more than random directions of the same range', () => {
    // The shipped Blond hair of before: 70% of faces changed sex against 16-23% at random.
    expect(shipVerdict(slider({ sexFlipRate: 0.7 }))).toEqual({
      kind: 'sex',
      reason: expect.stringMatching(/changes the sex .* 70% .* 16% and 20%/),
    });
    // Within the measure's noise (two standard errors over the judged faces) it passes, beyond it not.
    expect(sexFlipAllowance([0.1, 0.14], 100)).toBeCloseTo(0.14 + 2 * Math.sqrt((0.14 * 0.86) / 100), 9);
    expect(shipVerdict(slider({ sexFlipRate: 0.2, randomSexFlipRates: [0.1, 0.14] }))).toBeNull();
    expect(shipVerdict(slider({ sexFlipRate: 0.22, randomSexFlipRates: [0.1, 0.14] }))?.reason).toMatch(/allowed 21%/);
    // ...but never above 25%, however noisy the random directions.
    expect(sexFlipAllowance([0.3, 0.35], 100)).toBe(SHIP_RULE.maxSexFlip);
    expect(shipVerdict(slider({ sexFlipRate: 0.27, randomSexFlipRates: [0.3, 0.35] }))?.kind).toBe('sex');
    // The Male slider's job is to change sex.
    expect(shipVerdict(slider({ name: 'Male', sexFlipRate: 0.95 }))).toBeNull();
  });

  it('rejects a slider that does not flip its attribute, loses the face or the person', () => {
    expect(shipVerdict(slider({ flipRate: 0.7 }))?.reason).toMatch(/only 70%/);
    expect(shipVerdict(slider({ detectedBothEnds: 0.6 }))?.kind).toBe('detect');
    expect(shipVerdict(slider({ halfRangeDistance: 0.65 }))).toEqual({
      kind: 'identity',
      reason: expect.stringMatching(/another person/),
    });
    // Before the judge has looked, only the classifier and detector count.
    expect(
      shipVerdict({ name: 'Eyeglasses', range: { min: -0.5, max: 3.5 }, flipRate: 0.85, detectedBothEnds: 0.9 }),
    ).toBeNull();
  });
});

describe("the judge's measures", () => {
  const traits = (found: boolean[], male: number[], descriptors: number[][]): FaceTraits => ({
    found,
    male: Float32Array.from(male),
    age: new Float32Array(found.length).fill(30),
    descriptors: Float32Array.from(descriptors.flatMap((d) => [...d, ...new Array(128 - d.length).fill(0)])),
  });

  it('counts sex flips over the faces found at both ends only', () => {
    const lo = traits([true, true, true, false], [0.9, 0.2, 0.6, 0.1], [[0], [0], [0], [0]]);
    const hi = traits([true, true, false, true], [0.3, 0.1, 0.1, 0.9], [[0], [0], [0], [0]]);
    expect(sexFlips(lo, hi)).toEqual({ rate: 0.5, judged: 2 });
  });

  it('measures identity as descriptor distance from the unedited face', () => {
    const base = traits(
      [true, true],
      [0.5, 0.5],
      [
        [0, 0],
        [1, 0],
      ],
    );
    const edited = traits(
      [true, true],
      [0.5, 0.5],
      [
        [0.3, 0.4],
        [1, 0.8],
      ],
    );
    const d = identityDistance(base, [edited], 0.6);
    expect(d.mean).toBeCloseTo((0.5 + 0.8) / 2, 6);
    expect(d.same).toBe(0.5);
  });

  it('draws the same random unit directions for a seed', () => {
    const [a, b] = randomDirections(1, 100);
    expect(Math.hypot(...a)).toBeCloseTo(1, 9);
    expect(Math.abs(dot(a, b))).toBeLessThan(0.5);
    expect(Array.from(randomDirections(1, 100)[0])).toEqual(Array.from(a));
  });
});

describe('the shipped directions', () => {
  const read = () => ({
    directions: JSON.parse(readFileSync(join(MODELS, 'directions.json'), 'utf8')) as DirectionsFile,
    manifest: JSON.parse(readFileSync(join(MODELS, 'manifest.json'), 'utf8')) as {
      generator: { weightsSha256?: string };
      directions?: { weightsSha256: string; attributes: string[] };
      model: { zDim: number };
    },
  });

  it('belong to the shipped generator (weights hash recomputed from its files)', async () => {
    const { directions, manifest } = read();
    const hash = await generatorHash(join(MODELS, 'generator.json'));
    expect(directions.generator.weightsSha256).toBe(hash);
    expect(manifest.generator.weightsSha256).toBe(hash);
    expect(manifest.directions?.weightsSha256).toBe(hash);
    expect(manifest.directions?.attributes).toEqual(directions.attributes.map((a) => a.name));
  });

  it('meet the bar: at least 6 sliders besides Male, each flipping its attribute and keeping sex and person', () => {
    const { directions, manifest } = read();
    const d = validateDirections(directions, manifest.model.zDim);
    const edits = d.attributes.filter((a) => a.name !== 'Male');
    // 6 pass on the shipped 64 px generator; docs/directions.md says what stops the others.
    expect(edits.length).toBeGreaterThanOrEqual(6);
    for (const a of d.attributes) {
      expect(a.flipRate, a.name).toBeGreaterThanOrEqual(SHIP_RULE.minFlip);
      expect(a.detectedBothEnds ?? 0, a.name).toBeGreaterThanOrEqual(SHIP_RULE.minDetected);
      expect(a.halfRangeDistance, a.name).toBeLessThan(SHIP_RULE.maxHalfRangeDistance);
      expect(-a.range.min, a.name).toBeLessThanOrEqual(d.range);
      expect(a.range.max, a.name).toBeLessThanOrEqual(d.range);
      expect(a.steps.length, a.name).toBeGreaterThan(2);
    }
    for (const a of edits) {
      expect(a.conditionedOn, a.name).toContain('Male');
      expect(a.sexFlipRate, a.name).toBeLessThanOrEqual(SHIP_RULE.maxSexFlip);
      expect(keepsSex(a), a.name).toBe(true);
      expect(a.randomSexFlipRates, a.name).toHaveLength(2);
      expect(a.sexJudged, a.name).toBeGreaterThanOrEqual(50);
    }
  });

  it('are the tables in docs/directions.md and the row in the README', () => {
    const { directions } = read();
    const doc = readFileSync(join(ROOT, 'docs/directions.md'), 'utf8');
    const between = doc.slice(doc.indexOf(DOC_START) + DOC_START.length, doc.indexOf(DOC_END)).trim();
    expect(between).toBe(table(directions).join('\n'));
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme.split('\n')).toContain(readmeRow(directions));
  });
});

describe('generated reports', () => {
  it('replace only what lies between the markers, and only the sliders row', () => {
    expect(replaceBetween(`a\n${DOC_START}\nold\n${DOC_END}\nb`, 'new')).toBe(`a\n${DOC_START}\nnew\n${DOC_END}\nb`);
    expect(() => replaceBetween('no markers', 'x')).toThrow(/markers/);
    expect(replaceReadmeRow('| x | 1 |\n| attribute sliders | old |\n| y | 2 |', '| attribute sliders | new |')).toBe(
      '| x | 1 |\n| attribute sliders | new |\n| y | 2 |',
    );
  });
});

describe('directions pipeline pieces', () => {
  it('parses CelebA attribute rows', () => {
    const t = parseAttributes('2\nSmiling Male\n000001.jpg  1 -1\n000002.jpg -1  1\n');
    expect(t.names).toEqual(['Smiling', 'Male']);
    expect(Array.from(t.rows.get('000002.jpg')!)).toEqual([0, 1]);
    expect(() => parseAttributes('1\nSmiling Male\n000001.jpg 1\n')).toThrow(/values/);
  });

  it('logistic regression recovers a planted direction; orthogonalise removes a component', () => {
    const dim = 10,
      n = 2000;
    const z = sampleLatents(new Rng(3), n, dim);
    const truth = Array.from({ length: dim }, (_, i) => (i === 2 ? 0.8 : i === 5 ? -0.6 : 0));
    const y = Uint8Array.from({ length: n }, (_, i) => (dot(z.subarray(i * dim, (i + 1) * dim), truth) > 0.3 ? 1 : 0));
    const fit = fitLogistic(z, y, dim, 1600);
    expect(dot(fit.direction, truth)).toBeGreaterThan(0.95);
    expect(fit.accuracy).toBeGreaterThan(0.9);
    const o = orthogonalise(fit.direction, [unit(dim, 2)]);
    expect(Math.abs(o[2])).toBeLessThan(1e-9);
    expect(Math.hypot(...o)).toBeCloseTo(1, 9);
  });
});

describe('npm run directions (tiny)', () => {
  const data = join(import.meta.dirname, '../../shared/celeba/img_align_celeba');
  it.skipIf(!existsSync(data))(
    'trains, labels, fits and writes a directions file tied to the generator',
    async () => {
      const { execFileSync } = await import('node:child_process');
      const out = mkdtempSync(join(tmpdir(), 'directions-'));
      try {
        execFileSync(
          'npx',
          [
            'tsx',
            'training/directions-cli.ts',
            '--limit',
            '200',
            '--steps',
            '5',
            '--width',
            '4',
            '--samples',
            '400',
            '--eval-faces',
            '8',
            '--judge-faces',
            '0',
            '--no-detect',
            '--no-manifest',
            '--projection-photos',
            '0',
            '--out',
            join(out, 'd.json'),
          ],
          { cwd: join(import.meta.dirname, '..'), stdio: 'pipe', timeout: 60_000 },
        );
        const d = JSON.parse(readFileSync(join(out, 'd.json'), 'utf8')) as DirectionsFile;
        validateDirections(d, 100);
        expect(d.generator.weightsSha256).toBe(await generatorHash(join(MODELS, 'generator.json')));
        expect(d.attributes.length + d.notShipped.length).toBe(40);
        expect(Object.keys(d.method.classifierHeldOut as object)).toHaveLength(40);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
    90_000,
  );
});
