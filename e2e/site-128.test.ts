/**
 * The site with a 128 px generator published as its /models/ (until one
 * ships, the 128 px candidate: e2e/grown-models.ts), in headless
 * Chromium on WASM and on software WebGL: the home grid draws 128x128 faces,
 * the same face for a seed on both backends; the face view follows the generator's size
 * (smoothly scaled), as do a slider, the morph, a seed link and the PNG;
 * "Start from your photo" crops the photo at 128 px; the fine-tune page crops
 * photos at 128 px, tunes the pair for two steps on WASM and downloads a
 * 128 px generator, which opens on the home page with the pair's sliders,
 * and tunes a small 128 px pair on software WebGL (the candidate takes
 * minutes there).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import sharp from 'sharp';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../src/lib/gan.ts';
import { gridRgba } from '../src/lib/images.ts';
import { latentBatch } from '../src/lib/latent.ts';
import { fromArtifacts } from '../src/lib/weights.ts';
import { expectGoodGrid, gridStats, largeFacePixels, maxDiff, meanDiff, screenBlockiness } from './face-stats.ts';
import { celebaFile, identityPhotos } from './fixtures/photos.ts';
import { GROWN_NAME_SUFFIX, grownPair, publishPair, writeSmallPair } from './grown-models.ts';
import { buildSite, launchBrowser, startPreview, watchPage, type PageProblems, type Server } from './helpers.ts';
import { canvasPixels, canvasSpreads, downloadTuned } from './tuned-model.ts';

const SIZE = 128;
/** Where the site copy serves a small 128 px pair (the fine-tune page takes it as `?model=`). */
const SMALL_PAIR = 'test-models-128';
/** Software WebGL (SwiftShader) draws a 128 px grid in tens of seconds here; fine-tuning takes longer. */
const SLOW_TEST = 300_000;

let server: Server;
let browser: Browser;
let pairName = '';
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  const siteDir = await buildSite('site-128');
  const pair = await grownPair();
  publishPair(pair, siteDir);
  await writeSmallPair(join(siteDir, SMALL_PAIR));
  pairName = (JSON.parse(readFileSync(join(pair, 'manifest.json'), 'utf8')) as { name: string }).name;
  server = await startPreview(siteDir);
  browser = await launchBrowser();
});

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function newPage(): Promise<{ page: Page; problems: PageProblems }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(180_000);
  return { page, problems: watchPage(page, server.origin) };
}

/** The home page at `query`, once its first grid is drawn. */
async function openHome(query: string): Promise<{ page: Page; problems: PageProblems }> {
  const opened = await newPage();
  await opened.page.goto(`${server.origin}/${query}`);
  await opened.page.waitForSelector('#faces[data-generation="1"]');
  return opened;
}

const canvasSizes = (page: Page, selector: string) =>
  page.$$eval(selector, (cs) => (cs as HTMLCanvasElement[]).map((c) => [c.width, c.height]));

const frames = (page: Page) => page.$eval('#face-large', (c) => Number((c as HTMLElement).dataset.frames ?? 0));

/** Wait for the attribute sliders; when the page shows none, fail at once with the reason it gives. */
async function expectSliders(page: Page): Promise<void> {
  await page.waitForFunction(
    () => document.querySelector('#attribute-list input') ?? document.getElementById('attributes-note')!.textContent,
  );
  expect(await page.textContent('#attributes-note')).toBe('');
}

/** Move the first attribute slider to its end and return the face it draws then. */
async function slideFirstAttribute(page: Page): Promise<number[]> {
  await expectSliders(page);
  const before = await frames(page);
  const slider = page.locator('#attribute-list input[type="range"]').first();
  await slider.focus();
  await page.keyboard.press('End');
  await page.waitForFunction(
    (n) => Number(document.querySelector<HTMLElement>('#face-large')!.dataset.frames) > n,
    before,
  );
  return largeFacePixels(page);
}

/** A seed's face as WASM drew it, for WebGL to draw the same. */
let seeded = { seed: 0, wasm: [] as number[] };

describe('home page with a 128 px generator', () => {
  it(
    'on WASM: 16 distinct 128x128 faces; the face view, a slider, the morph, a seed link and the PNG follow',
    async () => {
      const { page, problems } = await openHome('?backend=wasm');
      const stats = await gridStats(page);
      expectGoodGrid(stats);
      expect(await canvasSizes(page, '#faces canvas')).toEqual(Array.from({ length: 16 }, () => [SIZE, SIZE]));
      expect(await page.textContent('#face-size')).toBe('128×128');

      // A tile opens at the generator's size, the very face the grid shows, scaled up smoothly.
      const tile = page.locator('#faces .face-tile').nth(3);
      const seed = await tile.getAttribute('data-seed');
      const tilePixels = await canvasPixels(page, '#faces .face-tile:nth-child(4) canvas');
      await tile.click();
      await page.waitForSelector(`#face-large[aria-label="Generated face, seed ${seed}"]`);
      expect(await canvasSizes(page, '#face-large')).toEqual([[SIZE, SIZE]]);
      const plain = await largeFacePixels(page);
      expect(maxDiff(plain, tilePixels)).toBe(0);
      expect(await page.$eval('#face-large', (c) => getComputedStyle(c).imageRendering)).toBe('auto');
      expect(await screenBlockiness(page, '#face-large')).toBeLessThan(0.3);

      // The PNG: the 128 px face at 256 px.
      const [png] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      expect(png.suggestedFilename()).toBe(`facegan-seed-${seed}.png`);
      const meta = await sharp(readFileSync((await png.path())!)).metadata();
      expect([meta.width, meta.height]).toEqual([256, 256]);

      // The morph ends on another 128 px face, which its seed's own link shows.
      await page.click('#morph-new');
      await page.waitForSelector('#face-large[data-t="1.000"]', { timeout: 60_000 });
      const end = await largeFacePixels(page);
      expect(meanDiff(plain, end)).toBeGreaterThan(5);
      const to = Number(new URL(page.url()).searchParams.get('to'));
      await page.goto(`${server.origin}/?seed=${to}&backend=wasm`);
      await page.waitForSelector(`#face-large[aria-label="Generated face, seed ${to}"]`);
      const linked = await largeFacePixels(page);
      expect(maxDiff(end, linked)).toBeLessThanOrEqual(2);
      seeded = { seed: to, wasm: linked };

      // The directions fitted for the candidate move its faces.
      expect(meanDiff(linked, await slideFirstAttribute(page))).toBeGreaterThan(2);
      expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
    },
    SLOW_TEST,
  );

  it(
    'on software WebGL: 16 distinct 128x128 faces, the same face for a seed as WASM, and a slider moves it',
    async () => {
      const { page, problems } = await openHome(`?seed=${seeded.seed}&backend=webgl`);
      expect(await page.$eval('#backend', (el) => (el as HTMLElement).dataset.backend)).toBe('webgl');
      expectGoodGrid(await gridStats(page));
      expect(await canvasSizes(page, '#faces canvas')).toEqual(Array.from({ length: 16 }, () => [SIZE, SIZE]));
      await page.waitForSelector(`#face-large[aria-label="Generated face, seed ${seeded.seed}"]`);
      const plain = await largeFacePixels(page);
      expect(seeded.wasm).toHaveLength(SIZE * SIZE * 4);
      // float32 on both, summed in different orders: a step or two apart at most.
      expect(maxDiff(plain, seeded.wasm)).toBeLessThanOrEqual(2);
      expect(meanDiff(plain, await slideFirstAttribute(page))).toBeGreaterThan(2);
      expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
    },
    SLOW_TEST,
  );

  it(
    '"Start from your photo" crops the photo at 128 px and projects it into the 128 px generator',
    async () => {
      const { page, problems } = await openHome('?backend=wasm');
      await page.waitForSelector('#own-photo-panel:not([hidden])');
      await page.setInputFiles('#own-photo', celebaFile(identityPhotos(1).files[0]));
      // The first steps show that projection runs at 128 px; the rest of it is e2e/directions.test.ts' (at 64 px).
      await page.waitForFunction(
        () => Number(document.querySelector<HTMLElement>('#own-photo-status')!.dataset.steps) >= 2,
      );
      expect(await canvasSizes(page, '#own-photo-crop')).toEqual([[SIZE, SIZE]]);
      const [spread] = await canvasSpreads(page, '#own-photo-crop');
      expect(spread).toBeGreaterThan(20);
      expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
    },
    SLOW_TEST,
  );
});

/** The compare grid's seeds (the page's default) as `artifacts` draw them in Node, laid out as the page lays them out. */
async function drawnInNode(artifacts: tf.io.ModelArtifacts): Promise<{ side: number; rgba: number[] }> {
  await tf.setBackend('cpu');
  const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
  const model = await fromArtifacts(artifacts);
  const side = model.outputs[0].shape[1] as number;
  const zDim = model.inputs[0].shape[1] as number;
  const z = tf.tensor2d(latentBatch(seeds, zDim), [seeds.length, zDim]);
  const out = generate(model, z);
  const pixels = (await out.data()) as Float32Array;
  tf.dispose([z, out]);
  model.dispose();
  return { side, rgba: Array.from(gridRgba(pixels, seeds.length, seeds.length, side).data) };
}

/** Add `count` photos of one person and tune the pair at `model` for one projection step and one tuning step. */
async function tuneTwoSteps(page: Page, backend: 'wasm' | 'webgl', count: number, model = '/models/'): Promise<void> {
  await page.goto(`${server.origin}/finetune/?backend=${backend}&model=${model}`);
  await page.locator(`#ft-backend[data-backend="${backend}"]`).waitFor({ timeout: 120_000 });
  await page.setInputFiles('#photo-input', identityPhotos(count).files.map(celebaFile));
  await expect.poll(() => page.locator('#crops li[data-face=true]').count(), { timeout: 120_000 }).toBe(count);
  await page.fill('input[name=projectionSteps]', '1');
  await page.fill('input[name=steps]', '1');
  await page.fill('input[name=likenessSteps]', '0');
  await page.fill('input[name=batch]', String(count));
  await expect.poll(() => page.locator('#train-start').isEnabled(), { timeout: 30_000 }).toBe(true);
  await page.click('#train-start');
  await page.locator('#train-status[data-done]').waitFor({ timeout: SLOW_TEST });
  expect(await page.locator('#train-status').getAttribute('data-done')).toBe('finished');
}

/** Side of each face in a grid canvas of `count` faces in one row, 2 px apart (gridRgba's layout). */
const gridSide = (width: number, count: number) => (width - 2 * (count + 1)) / count;

describe('fine-tune page with a 128 px generator', () => {
  it(
    'on WASM: crops at 128 px, tunes two steps, and downloads a 128 px generator that opens on the home page',
    async () => {
      const { page, problems } = await newPage();
      await tuneTwoSteps(page, 'wasm', 2);
      // Cut at 128 px from the photo (CelebA's full-size photos give a 142 px face square: nothing enlarged).
      expect(await canvasSizes(page, '#crops canvas')).toEqual([
        [SIZE, SIZE],
        [SIZE, SIZE],
      ]);
      const recon = await page.locator('#train-reconstructions').evaluate((c: HTMLCanvasElement) => c.width);
      expect(gridSide(recon, 2)).toBe(SIZE);
      await expect.poll(() => page.locator('#model-status').getAttribute('data-result')).toBe('ok');
      const compare = await page.locator('#compare-finetuned').evaluate((c: HTMLCanvasElement) => c.width);
      expect(gridSide(compare, 8)).toBe(SIZE);

      const { bundle } = await downloadTuned(page);
      expect(bundle.manifest.parent).toMatchObject({ name: pairName, url: '/models/generator.json' });
      expect(pairName).toContain(GROWN_NAME_SUFFIX);
      // Node draws what the page draws from the downloaded file: a 128 px generator.
      const drawn = await drawnInNode(bundle.artifacts);
      expect(drawn.side).toBe(SIZE);
      const shown = await canvasPixels(page, '#compare-finetuned');
      expect(drawn.rgba).toHaveLength(shown.length);
      expect(meanDiff(drawn.rgba, shown)).toBeLessThan(0.1);

      await page.click('#model-open-home');
      await page.waitForURL(/\/\?model=tuned$/, { timeout: 60_000 });
      await page.locator('#faces[data-generation="1"]').waitFor({ timeout: 120_000 });
      expect(await canvasSizes(page, '#faces canvas')).toEqual(Array.from({ length: 16 }, () => [SIZE, SIZE]));
      for (const spread of await canvasSpreads(page, '#faces canvas')) expect(spread).toBeGreaterThan(10);
      expect(await page.textContent('#model-origin')).toContain(`tuned from ${pairName}, 1 run of 2 steps on 2 photos`);
      // The candidate's sliders, for the model tuned from it.
      await expectSliders(page);
      expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
    },
    SLOW_TEST,
  );

  it(
    'on software WebGL: tunes a small 128 px pair two steps on 128 px crops',
    async () => {
      const { page, problems } = await newPage();
      await tuneTwoSteps(page, 'webgl', 2, `/${SMALL_PAIR}/`);
      expect(await canvasSizes(page, '#crops canvas')).toEqual([
        [SIZE, SIZE],
        [SIZE, SIZE],
      ]);
      const recon = await page.locator('#train-reconstructions').evaluate((c: HTMLCanvasElement) => c.width);
      expect(gridSide(recon, 2)).toBe(SIZE);
      const losses = await page.evaluate(() =>
        (window as unknown as { faceganFinetune: { losses(): { loss: number }[] } }).faceganFinetune.losses(),
      );
      expect(losses).toHaveLength(2);
      for (const l of losses) expect(Number.isFinite(l.loss) && l.loss > 0).toBe(true);
      expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
    },
    SLOW_TEST,
  );
});
