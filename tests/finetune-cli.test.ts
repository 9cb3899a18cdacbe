// `npm run finetune` as a user runs it: a real (short) fine-tune on photos of
// one person, the page's model files out; exit 2 for folders without faces.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { CELEBA, identityPhotos } from '../e2e/fixtures/photos.ts';

const root = join(__dirname, '..');
function finetune(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'training/finetune-cli.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('npm run finetune', () => {
  it('--help lists the flags', () => {
    const r = finetune('--help');
    expect(r.code).toBe(0);
    for (const flag of ['--photos', '--steps', '--out', '--projection-steps', '--likeness-steps', '--likeness'])
      expect(r.out).toContain(flag);
  });

  it('exits 2 without --photos, and for a folder with no usable faces, saying why', async () => {
    expect(finetune().code).toBe(2);
    const empty = mkdtempSync(join(tmpdir(), 'facegan-ft-empty-'));
    const r = finetune('--photos', empty);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`no usable faces in ${empty} (0 image files found)`);
    // A picture without a face, and a file that is not an image.
    const noFace = mkdtempSync(join(tmpdir(), 'facegan-ft-noface-'));
    await sharp({ create: { width: 200, height: 200, channels: 3, background: '#6b7a5a' } })
      .png()
      .toFile(join(noFace, 'wall.png'));
    writeFileSync(join(noFace, 'notes.jpg'), 'not a photo');
    const r2 = finetune('--photos', noFace);
    expect(r2.code).toBe(2);
    expect(r2.err).toContain('skipped wall.png: no face found');
    expect(r2.err).toMatch(/skipped notes\.jpg: cannot read it/);
    expect(r2.err).toContain('no usable faces');
  });

  it('fine-tunes on photos of one person and writes the files the page downloads', () => {
    const photos = mkdtempSync(join(tmpdir(), 'facegan-ft-photos-'));
    for (const f of identityPhotos(4).files) symlinkSync(join(CELEBA, 'img_align_celeba', f), join(photos, f));
    const out = mkdtempSync(join(tmpdir(), 'facegan-ft-out-'));
    const r = finetune(
      '--photos',
      photos,
      '--steps',
      '3',
      '--projection-steps',
      '2',
      '--likeness-steps',
      '2',
      '--out',
      out,
      '--quiet',
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/4 faces from 4 files/);
    for (const f of [
      'facegan-generator.json',
      'facegan-discriminator.json',
      'photos.png',
      'reconstructions.png',
      'samples.png',
      'finetune.json',
    ]) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    // The baked shift: G's first layer now has a bias.
    const g = JSON.parse(readFileSync(join(out, 'facegan-generator.json'), 'utf8')) as {
      weightsManifest: { weights: { name: string }[] }[];
    };
    expect(g.weightsManifest.flatMap((m) => m.weights.map((w) => w.name))).toContain('g_project/bias');
  });
});
