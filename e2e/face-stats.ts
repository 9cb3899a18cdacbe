/**
 * What the e2e tests measure of the faces a page draws: the grid's faces
 * (drawn, not noise, all different), the large face's pixels, and whether
 * the large face is shown smoothly or in blocks.
 */
import sharp from 'sharp';
import type { Page } from 'playwright-core';
import { expect } from 'vitest';

export interface GridStats {
  count: number;
  /** Per face: standard deviation of its RGB values, 0 to 255 (0 for a flat, blank tile). */
  spread: number[];
  /**
   * Per face: mean absolute difference between horizontally neighbouring RGB values, over the spread.
   * About 1.13 for pixel noise (independent pixels), far lower for a face, whose pixels change smoothly.
   */
  roughness: number[];
  /** Smallest mean absolute pixel difference between any two faces. */
  minPairDiff: number;
  labels: (string | null)[];
}

export function gridStats(page: Page): Promise<GridStats> {
  return page.evaluate(() => {
    const canvases = [...document.querySelectorAll<HTMLCanvasElement>('#faces canvas')];
    const pixels = canvases.map((c) => c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data);
    const rgb = (d: Uint8ClampedArray) => d.filter((_, i) => i % 4 !== 3);
    const spread = pixels.map((d) => {
      const v = rgb(d);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      return Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    });
    const roughness = canvases.map((c, t) => {
      const d = pixels[t];
      let sum = 0,
        n = 0;
      for (let y = 0; y < c.height; y++) {
        for (let x = 0; x + 1 < c.width; x++) {
          for (let ch = 0; ch < 3; ch++, n++)
            sum += Math.abs(d[(y * c.width + x) * 4 + ch] - d[(y * c.width + x + 1) * 4 + ch]);
        }
      }
      return sum / n / spread[t];
    });
    let minPairDiff = Infinity;
    for (let i = 0; i < pixels.length; i++) {
      for (let j = i + 1; j < pixels.length; j++) {
        let sum = 0;
        for (let k = 0; k < pixels[i].length; k++) sum += Math.abs(pixels[i][k] - pixels[j][k]);
        minPairDiff = Math.min(minPairDiff, sum / pixels[i].length);
      }
    }
    return {
      count: canvases.length,
      spread,
      roughness,
      minPairDiff,
      labels: canvases.map((c) => c.getAttribute('aria-label')),
    };
  });
}

export const largeFacePixels = (page: Page) =>
  page.evaluate(() => {
    const c = document.querySelector<HTMLCanvasElement>('#face-large')!;
    return Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data);
  });

export const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
export const meanDiff = (a: number[], b: number[]) => a.reduce((sum, v, i) => sum + Math.abs(v - b[i]), 0) / a.length;

export function expectGoodGrid(stats: GridStats): void {
  expect(stats.count).toBe(16);
  // Measured on the shipped generator (480 faces from random seeds): every face's spread is at least 28,
  // its roughness at most 0.25, and two faces of a grid differ by at least 19 on average (RGBA).
  // A blank or nearly flat tile (never drawn, the model emitting a constant) has a spread under 10.
  for (const s of stats.spread) expect(s).toBeGreaterThan(10);
  // Pixel noise (a wrong kernel, garbage in the texture) passes any spread check, but its roughness is about 1.13.
  for (const r of stats.roughness) expect(r).toBeLessThan(0.6);
  // Two identical faces (the seeds or the latent ignored) differ by 0, or by rounding between backends.
  expect(stats.minPairDiff).toBeGreaterThan(5);
  for (const label of stats.labels) expect(label).toMatch(/^Generated face, seed \d+$/);
}

/**
 * How blocky an element looks on screen: the share of horizontally neighbouring screen pixels that are
 * exactly equal. A face scaled up with `image-rendering: pixelated` repeats each pixel (about 0.8 equal
 * at 5x, 0.6 at 2.75x); scaled smoothly, neighbours almost always differ (well under 0.3).
 */
export async function screenBlockiness(page: Page, selector: string): Promise<number> {
  const png = await page.locator(selector).screenshot();
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let same = 0,
    pairs = 0;
  for (let y = 0; y < info.height; y++) {
    for (let x = 0; x + 1 < info.width; x++, pairs++) {
      const i = (y * info.width + x) * 3;
      if (data[i] === data[i + 3] && data[i + 1] === data[i + 4] && data[i + 2] === data[i + 5]) same++;
    }
  }
  return same / pairs;
}
