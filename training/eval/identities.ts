/**
 * The benchmark people (training/eval/identities.json): held-out CelebA
 * identities whose photos the fine-tuning benchmarks use, and which the
 * likeness calibration leaves out; and the slightly degraded copy of a photo
 * that sets the near-copy bound.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IMAGE_SIZE } from '../../src/lib/models.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const IDENTITIES_FILE = join(here, 'identities.json');

export interface IdentityList {
  identities: Record<string, string[]>;
  benchmark: string[];
}

export function readIdentityList(): IdentityList {
  return JSON.parse(readFileSync(IDENTITIES_FILE, 'utf8')) as IdentityList;
}

/** A 64x64 image blurred by a 2x2 box (each pixel the mean of itself and its left, upper and upper-left neighbours; edges repeated), then moved one more pixel right and down. */
export function degradedCopy(img: Float32Array, size = IMAGE_SIZE): Float32Array {
  const out = new Float32Array(size * size * 3);
  const at = (y: number, x: number, c: number) =>
    img[(Math.min(size - 1, Math.max(0, y)) * size + Math.min(size - 1, Math.max(0, x))) * 3 + c];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const sy = y - 2,
        sx = x - 2;
      for (let c = 0; c < 3; c++)
        out[(y * size + x) * 3 + c] =
          (at(sy, sx, c) + at(sy + 1, sx, c) + at(sy, sx + 1, c) + at(sy + 1, sx + 1, c)) / 4;
    }
  }
  return out;
}
