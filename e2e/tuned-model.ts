/**
 * The fine-tune page's one-file download, as the e2e tests take it: click,
 * check that exactly one file came, and unpack it with the site's own reader
 * (src/lib/model-bundle.ts). Also how blank a canvas is, for the tuned model
 * on the home page.
 */
import { readFileSync } from 'node:fs';
import type { Download, Page } from 'playwright-core';
import { expect } from 'vitest';
import { unpackTuned, type TunedBundle } from '../src/lib/model-bundle.ts';

export interface TunedDownload {
  name: string;
  bytes: Uint8Array;
  bundle: TunedBundle;
}

/** Time left, after the page says the download is done, for a second download to show up (there must be none). */
const SETTLE_MS = 500;

/** Click "Download the model" and return the single file it gives. */
export async function downloadTuned(page: Page): Promise<TunedDownload> {
  const downloads: Download[] = [];
  const onDownload = (d: Download) => downloads.push(d);
  page.on('download', onDownload);
  try {
    await page.locator('#model-status').evaluate((el) => delete (el as HTMLElement).dataset.action);
    await page.click('#model-export');
    // Another action (the comparison drawn when the run ended) may finish first: wait for the download's own result.
    await page.locator('#model-status[data-action=download][data-result]').waitFor({ timeout: 60_000 });
    expect(await page.locator('#model-status').textContent()).toMatch(/^Downloaded /);
    await page.waitForTimeout(SETTLE_MS);
  } finally {
    page.off('download', onDownload);
  }
  expect(downloads).toHaveLength(1);
  const bytes = new Uint8Array(readFileSync((await downloads[0].path())!));
  return { name: downloads[0].suggestedFilename(), bytes, bundle: unpackTuned(bytes) };
}

/** Per canvas matching `selector`: the standard deviation of its RGB values (0 for a blank, flat canvas). */
export function canvasSpreads(page: Page, selector: string): Promise<number[]> {
  return page.$$eval(selector, (canvases) =>
    (canvases as HTMLCanvasElement[]).map((c) => {
      const d = c
        .getContext('2d')!
        .getImageData(0, 0, c.width, c.height)
        .data.filter((_, i) => i % 4 !== 3);
      const mean = d.reduce((a, b) => a + b, 0) / d.length;
      return Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / d.length);
    }),
  );
}

/** A canvas' RGBA bytes. */
export function canvasPixels(page: Page, selector: string): Promise<number[]> {
  return page
    .locator(selector)
    .evaluate((c: HTMLCanvasElement) => Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data));
}
