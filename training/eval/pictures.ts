/**
 * Pictures for the README and the model card: rows of faces (size x size in
 * [-1, 1]), one image per column, written as a lossless PNG.
 */
import sharp from 'sharp';
import { gridRgba } from '../../src/lib/images.ts';

/** Rows of equal length, stacked: e.g. photos over their projections. */
export async function writeRows(file: string, rows: readonly Float32Array[], size: number): Promise<void> {
  const P = size * size * 3;
  const cols = rows[0].length / P;
  const batch = new Float32Array(rows.length * cols * P);
  rows.forEach((r, i) => batch.set(r.subarray(0, cols * P), i * cols * P));
  const grid = gridRgba(batch, rows.length * cols, cols, size);
  await sharp(Buffer.from(grid.data.buffer), { raw: { width: grid.width, height: grid.height, channels: 4 } })
    .png({ compressionLevel: 9 })
    .toFile(file);
}
