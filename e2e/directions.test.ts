/**
 * Attribute sliders in headless Chromium, on WebGL and WASM: each slider
 * spans its own measured range, a slider changes the face and the address,
 * the address restores the edited face, reset brings the plain face back,
 * directions for another generator are refused, the asked-for attributes
 * that do not ship are named, and nothing is fetched from another origin.
 * "Start from your photo" projects a held-out photo on both backends.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { missingNote, type DirectionsFile } from '../src/lib/directions.ts';
import { buildSite, launchBrowser, ROOT, startPreview, watchPage, type PageProblems, type Server } from './helpers.ts';

const shipped = () => JSON.parse(readFileSync(join(ROOT, 'public/models/directions.json'), 'utf8')) as DirectionsFile;

let server: Server;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'public/models/directions.json')))
    throw new Error('public/models/directions.json is missing: run npm run directions');
  server = await startPreview(await buildSite('directions'));
  browser = await launchBrowser();
});

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function open(
  query: string,
  prepare?: (page: Page) => Promise<void>,
): Promise<{ page: Page; problems: PageProblems }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(180_000);
  await prepare?.(page);
  const problems = watchPage(page, server.origin);
  await page.goto(`${server.origin}/${query}`);
  await page.waitForSelector('#faces[data-generation="1"]');
  return { page, problems };
}

const pixels = (page: Page) =>
  page.evaluate(() => {
    const c = document.querySelector<HTMLCanvasElement>('#face-large')!;
    return Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data);
  });
const meanDiff = (a: number[], b: number[]) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;
const frames = (page: Page) => page.$eval('#face-large', (c) => Number((c as HTMLElement).dataset.frames ?? 0));

for (const backend of ['webgl', 'wasm'] as const) {
  describe(`attribute sliders on ${backend}`, () => {
    it('a slider changes the face and the address; the address restores it; reset undoes it', async () => {
      const { page, problems } = await open(`?seed=77&backend=${backend}`);
      await page.waitForSelector('#face-large[aria-label="Generated face, seed 77"]');
      await page.waitForSelector('#attributes:not([hidden]) #attribute-list input[type="range"]');
      expect(await page.$eval('#backend', (el) => (el as HTMLElement).dataset.backend)).toBe(backend);
      const plain = await pixels(page);
      // Every slider spans its own range, as measured.
      const ranges = await page.$$eval('#attribute-list input[type="range"]', (inputs) =>
        inputs.map((i) => [
          (i as HTMLInputElement).dataset.attribute,
          (i as HTMLInputElement).min,
          (i as HTMLInputElement).max,
        ]),
      );
      expect(ranges).toEqual(shipped().attributes.map((a) => [a.key, String(a.range.min), String(a.range.max)]));
      const slider = page.locator('#attribute-list input[type="range"]').first();
      const key = await slider.getAttribute('data-attribute');
      const max = (await slider.getAttribute('max'))!;
      const before = await frames(page);
      await slider.focus();
      await page.keyboard.press('End'); // +range: input and change events, as a drag ends
      await page.waitForFunction(([k, m]) => new URL(location.href).searchParams.get(k!) === m, [key, max] as const);
      await page.waitForFunction(
        (n) => Number(document.querySelector<HTMLElement>('#face-large')!.dataset.frames) > n,
        before,
      );
      await page.waitForTimeout(300);
      const edited = await pixels(page);
      expect(meanDiff(plain, edited)).toBeGreaterThan(2);
      expect(new URL(page.url()).searchParams.get('seed')).toBe('77');

      await page.reload();
      await page.waitForSelector('#faces[data-generation="1"]');
      await page.waitForSelector('#face-large[aria-label="Generated face, seed 77"]');
      await page.waitForSelector('#attributes:not([hidden])');
      expect(await slider.inputValue()).toBe(max);
      await page.waitForTimeout(300);
      expect(meanDiff(edited, await pixels(page))).toBeLessThan(1);

      const beforeReset = await frames(page);
      await page.click('#attributes-reset');
      await page.waitForFunction((k) => !new URL(location.href).searchParams.has(k!), key);
      // The redraw is asynchronous (software WebGL is slow here): wait for the frame, not a fixed time.
      await page.waitForFunction(
        (n) => Number(document.querySelector<HTMLElement>('#face-large')!.dataset.frames) > n,
        beforeReset,
      );
      await page.waitForTimeout(300);
      expect(meanDiff(plain, await pixels(page))).toBeLessThan(1);
      expect(problems.foreignRequests).toEqual([]);
      expect(problems.pageErrors).toEqual([]);
    }, 300_000);
  });
}

describe('attributes that do not ship', () => {
  it('the asked-for ones are named on the home page, with the reason', async () => {
    const note = missingNote(shipped().notShipped);
    const { page } = await open('?seed=5&backend=wasm');
    if (!note) {
      expect(await page.$('#attributes-missing')).toBeNull();
      return;
    }
    expect(await page.textContent('#attributes-missing')).toBe(note);
  }, 120_000);
});

describe('directions for another generator', () => {
  it('are refused: no sliders, and the page says why', async () => {
    const { page } = await open('?seed=5&backend=wasm', async (p) => {
      await p.route('**/models/directions.json', async (route) => {
        const res = await route.fetch();
        const body = (await res.json()) as { generator: { weightsSha256: string } };
        body.generator.weightsSha256 = '0'.repeat(64);
        await route.fulfill({ response: res, json: body });
      });
    });
    await page.waitForFunction(() => (document.querySelector('#attributes-note')?.textContent ?? '').length > 0);
    expect(await page.textContent('#attributes-note')).toMatch(/different generator/);
    expect(await page.isHidden('#attributes')).toBe(true);
  }, 120_000);
});

describe('start from your photo', () => {
  // The projection runs two networks forward and backward 60 times: about 30 s on WASM, 140 s on software WebGL here.
  it.each(['wasm', 'webgl'])(
    'on %s: refuses bad input with a message, projects a held-out photo closer than random faces (pixels and face descriptor), and the sliders edit it; nothing leaves the page',
    async (backend) => {
      const { celebaFile, heldOutIdentityPhotos } = await import('./fixtures/photos.ts');
      const { page, problems } = await open(`?backend=${backend}`);
      await page.waitForSelector('#own-photo-panel:not([hidden])');
      await page.setInputFiles('#own-photo', {
        name: 'notes.txt',
        mimeType: 'text/plain',
        buffer: Buffer.from('not a photo\n'),
      });
      await page.waitForFunction(() => document.querySelector('#own-photo-status')!.classList.contains('error-text'));
      expect(await page.isHidden('#own-photo-result')).toBe(true);

      const [photo] = heldOutIdentityPhotos(1).files;
      await page.setInputFiles('#own-photo', celebaFile(photo));
      // Done, or stopped with an error (whose message then fails the test rather than a timeout).
      await page
        .waitForFunction(
          () =>
            !document.querySelector<HTMLElement>('#own-photo-result')!.hidden ||
            document.querySelector('#own-photo-status')!.classList.contains('error-text'),
          undefined,
          { timeout: 480_000 },
        )
        .catch(() => undefined);
      expect(await page.textContent('#own-photo-status')).toMatch(/^Done/);
      const measured = await page.$eval('#own-photo-result', (el) => ({ ...(el as HTMLElement).dataset }));
      // In pixels closer than an average random face, and by face descriptor closer than the nearest of 16 random faces.
      expect(Number(measured.projected)).toBeLessThan(Number(measured.random));
      expect(Number(measured.identity)).toBeLessThan(Number(measured.randomIdentity));
      // A plain statement, with no number from the recogniser the projection optimises.
      expect(await page.textContent('#own-photo-distance')).toMatch(
        /^The generator keeps sex, age, skin and hair.*about 1 projection in 10/,
      );
      expect(await page.textContent('#own-photo-distance')).not.toMatch(/\d\.\d/);
      await page.waitForSelector('#face-large[data-source="photo"]');
      // The address holds no seed for a projection, and the page says so.
      expect(await page.textContent('#face-address-hint')).toMatch(/cannot be shared by link/);
      expect(await page.isHidden('#attributes-address-hint')).toBe(true);
      const before = await pixels(page);
      const slider = page.locator('#attribute-list input[type="range"]').first();
      const n = await frames(page);
      await slider.focus();
      await page.keyboard.press('End');
      await page.waitForFunction(
        (k) => Number(document.querySelector<HTMLElement>('#face-large')!.dataset.frames) > k,
        n,
      );
      await page.waitForTimeout(300);
      expect(meanDiff(before, await pixels(page))).toBeGreaterThan(2);
      expect(problems.foreignRequests).toEqual([]);
      expect(problems.pageErrors).toEqual([]);
    },
    600_000,
  );
});
