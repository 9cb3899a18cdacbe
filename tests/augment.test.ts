import { describe, expect, it } from 'vitest';
import {
  DEFAULT_AUGMENT, NO_AUGMENT, applyAugment, augmentBatch, drawAugment, type AugmentDraw,
} from '../src/lib/augment.ts';
import { Rng } from '../src/lib/latent.ts';

const SIZE = 8;
const N = SIZE * SIZE * 3;
const IDENTITY: AugmentDraw = { flip: false, dx: 0, dy: 0, brightness: 0, contrast: 1, saturation: 1 };

/** A test image whose every value says where it came from: R = x, G = y, B = fixed; scaled into [-1, 1]. */
function gradient(): Float32Array {
  const img = new Float32Array(N);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const i = (y * SIZE + x) * 3;
      img[i] = x / (SIZE - 1) * 2 - 1;
      img[i + 1] = y / (SIZE - 1) * 2 - 1;
      img[i + 2] = 0.25;
    }
  }
  return img;
}
const px = (img: Float32Array, x: number, y: number) => Array.from(img.subarray((y * SIZE + x) * 3, (y * SIZE + x) * 3 + 3));

describe('applyAugment', () => {
  it('leaves the image unchanged with the identity draw', () => {
    const src = gradient();
    expect(applyAugment(src, new Float32Array(N), IDENTITY, SIZE)).toEqual(src);
  });

  it('mirrors left-right', () => {
    const src = gradient();
    const out = applyAugment(src, new Float32Array(N), { ...IDENTITY, flip: true }, SIZE);
    expect(px(out, 0, 3)).toEqual(px(src, SIZE - 1, 3));
    expect(px(out, SIZE - 1, 5)).toEqual(px(src, 0, 5));
  });

  it('shifts by whole pixels and repeats the edge into the gap', () => {
    const src = gradient();
    const out = applyAugment(src, new Float32Array(N), { ...IDENTITY, dx: 2, dy: -1 }, SIZE);
    expect(px(out, 5, 3)).toEqual(px(src, 3, 4));
    expect(px(out, 0, 0)).toEqual(px(src, 0, 1));
    expect(px(out, 1, SIZE - 1)).toEqual(px(src, 0, SIZE - 1));
  });

  it('brightens, keeps values in [-1, 1], and greys out at zero saturation', () => {
    const src = gradient();
    const bright = applyAugment(src, new Float32Array(N), { ...IDENTITY, brightness: 0.2 }, SIZE);
    expect(bright[3 * 9 + 2]).toBeCloseTo(0.45, 5);
    expect(Math.max(...bright)).toBeLessThanOrEqual(1);
    expect(Math.min(...bright)).toBeGreaterThanOrEqual(-1);
    const grey = applyAugment(src, new Float32Array(N), { ...IDENTITY, saturation: 0 }, SIZE);
    const [r, g, b] = px(grey, 6, 2);
    expect(r).toBeCloseTo(g, 5);
    expect(g).toBeCloseTo(b, 5);
  });

  it('rejects images of the wrong size and an output that aliases the input', () => {
    const src = gradient();
    expect(() => applyAugment(src, new Float32Array(N - 1), IDENTITY, SIZE)).toThrow(/8x8x3/);
    expect(() => applyAugment(src, src, IDENTITY, SIZE)).toThrow(/different array/);
  });
});

describe('drawAugment', () => {
  it('stays inside the configured ranges and uses all shifts and both flips', () => {
    const rng = new Rng(7);
    const seen = new Set<number>();
    let flips = 0;
    for (let i = 0; i < 500; i++) {
      const d = drawAugment(rng, DEFAULT_AUGMENT);
      expect(Math.abs(d.dx)).toBeLessThanOrEqual(DEFAULT_AUGMENT.maxShift);
      expect(Math.abs(d.brightness)).toBeLessThanOrEqual(DEFAULT_AUGMENT.brightness * 2);
      expect(Math.abs(d.contrast - 1)).toBeLessThanOrEqual(DEFAULT_AUGMENT.contrast);
      expect(Math.abs(d.saturation - 1)).toBeLessThanOrEqual(DEFAULT_AUGMENT.saturation);
      seen.add(d.dx);
      if (d.flip) flips++;
    }
    expect(seen.size).toBe(2 * DEFAULT_AUGMENT.maxShift + 1);
    expect(flips).toBeGreaterThan(200);
    expect(flips).toBeLessThan(300);
  });

  it('draws the identity when augmentation is off', () => {
    expect(drawAugment(new Rng(1), NO_AUGMENT)).toEqual(IDENTITY);
  });
});

describe('augmentBatch', () => {
  const images = [gradient(), gradient().map((v) => -v)];

  it('builds the batch from the picked images, reproducibly for a seed', () => {
    const a = augmentBatch(images, [1, 0, 1], new Rng(3), DEFAULT_AUGMENT, SIZE);
    const b = augmentBatch(images, [1, 0, 1], new Rng(3), DEFAULT_AUGMENT, SIZE);
    expect(a.length).toBe(3 * N);
    expect(a).toEqual(b);
    expect(augmentBatch(images, [1, 0, 1], new Rng(4), DEFAULT_AUGMENT, SIZE)).not.toEqual(a);
    const plain = augmentBatch(images, [1, 0], new Rng(3), NO_AUGMENT, SIZE);
    expect(plain.subarray(0, N)).toEqual(images[1]);
    expect(plain.subarray(N)).toEqual(images[0]);
  });

  it('keeps augmented batches close to the originals (mild changes only)', () => {
    const out = augmentBatch([images[0]], [0], new Rng(9), { ...DEFAULT_AUGMENT, flip: false, maxShift: 0 }, SIZE);
    let diff = 0;
    for (let i = 0; i < N; i++) diff = Math.max(diff, Math.abs(out[i] - images[0][i]));
    expect(diff).toBeLessThan(0.45);
  });

  it('reports bad picks and bad options clearly', () => {
    expect(() => augmentBatch(images, [2], new Rng(0), DEFAULT_AUGMENT, SIZE)).toThrow(/no image at index 2/);
    expect(() => augmentBatch(images, [0], new Rng(0), { ...DEFAULT_AUGMENT, maxShift: 1.5 }, SIZE)).toThrow(/whole number/);
    expect(() => augmentBatch(images, [0], new Rng(0), { ...DEFAULT_AUGMENT, brightness: -1 }, SIZE)).toThrow(/brightness/);
  });
});
