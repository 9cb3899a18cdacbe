/**
 * Attribute directions: the isomorphic helpers (apply, URL state, file
 * validation), the shipped directions.json against the shipped generator's
 * weight bytes, and a tiny run of the directions pipeline.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DirectionsError,
  SLIDER_RANGE,
  applyDirections,
  attributeKey,
  readSliderParams,
  validateDirections,
  writeSliderParams,
  type DirectionsFile,
} from '../src/lib/directions.ts';
import { parseAttributes } from '../training/directions/attributes.ts';
import { fitLogistic, orthogonalise, dot } from '../training/directions/linear.ts';
import { generatorHash } from '../training/directions/pipeline.ts';
import { Rng, sampleLatents } from '../src/lib/latent.ts';

const MODELS = join(import.meta.dirname, '../public/models');

const unit = (n: number, i: number) => Array.from({ length: n }, (_, j) => (j === i ? 1 : 0));

function fileWith(attributes: { name: string; vector: number[] }[], zDim = 4): unknown {
  return {
    version: 1,
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
      orthogonalTo: [],
      flipRate: 0.9,
      detectedBothEnds: 1,
      steps: [],
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

  it('validates a directions file', () => {
    expect(validateDirections(fileWith([{ name: 'Smiling', vector: unit(4, 1) }]), 4).attributes[0].key).toBe(
      'smiling',
    );
    expect(() => validateDirections(fileWith([{ name: 'Smiling', vector: [1, 1, 0, 0] }]), 4)).toThrow(/norm/);
    expect(() => validateDirections(fileWith([{ name: 'Smiling', vector: unit(3, 1) }]), 4)).toThrow(/vector/);
    expect(() => validateDirections(fileWith([{ name: 'Smiling', vector: unit(4, 1) }]), 100)).toThrow(/zDim/);
    expect(() => validateDirections({ ...(fileWith([]) as object), generator: {} })).toThrow(/hash/);
  });
});

describe('the shipped directions', () => {
  const read = () => ({
    directions: JSON.parse(readFileSync(join(MODELS, 'directions.json'), 'utf8')) as DirectionsFile,
    manifest: JSON.parse(readFileSync(join(MODELS, 'manifest.json'), 'utf8')) as {
      generator: { weightsSha256?: string };
      model: { zDim: number };
    },
  });

  it('belong to the shipped generator (weights hash recomputed from its files)', async () => {
    const { directions, manifest } = read();
    const hash = await generatorHash(join(MODELS, 'generator.json'));
    expect(directions.generator.weightsSha256).toBe(hash);
    expect(manifest.generator.weightsSha256).toBe(hash);
  });

  it('are valid and meet the bar: at least 8 attributes, each flipping >= 80% with faces still detected', () => {
    const { directions, manifest } = read();
    const d = validateDirections(directions, manifest.model.zDim);
    expect(d.attributes.length).toBeGreaterThanOrEqual(8);
    for (const a of d.attributes) {
      expect(a.flipRate, a.name).toBeGreaterThanOrEqual(0.8);
      expect(a.detectedBothEnds ?? 0, a.name).toBeGreaterThanOrEqual(0.8);
      expect(a.steps.length, a.name).toBeGreaterThan(2);
    }
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
            '--descriptor-faces',
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
