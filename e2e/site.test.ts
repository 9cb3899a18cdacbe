/**
 * The site in headless Chromium, served from dist/ as `npm start` serves it:
 * faces appear on WebGPU and WebGL (SwiftShader here), WASM and CPU, the same
 * face for the same seed on each; only the running backend is downloaded; shared seed links
 * reproduce a face; nothing leaks; nothing is fetched from another origin.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { buildSite, launchBrowser, ROOT, startPreview, watchPage, WEBGPU_ARGS, type PageProblems, type Server } from './helpers.ts';

let server: Server;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'public/models/generator.json'))) {
    throw new Error('public/models/generator.json is missing: the site needs an exported generator (npm run train exports one)');
  }
  server = await startPreview(await buildSite('site'));
  browser = await launchBrowser();
});

// Each test's pages go away with it: idle pages would still hold WebGL contexts, and Chromium caps those.
afterEach(async () => {
  await Promise.all(contexts.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/**
 * For tests on WebGL (SwiftShader's is slow: a full-size generator can take
 * tens of seconds per grid here) and for the 50-grid leak run.
 */
const SLOW_TEST = 360_000; // ms, for the tests that render many faces on software WebGL

async function newPage(width = 1280, inBrowser = browser): Promise<Page> {
  const context = await inBrowser.newContext({ viewport: { width, height: 900 }, acceptDownloads: true });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(180_000);
  return page;
}

interface OpenOptions {
  width?: number;
  /** Another browser than the default one (e.g. one with WebGPU). */
  browser?: Browser;
  /** Runs before navigation (routes, init scripts). */
  prepare?: (page: Page) => Promise<void>;
}

/** Open the home page and wait until the first grid of faces is drawn. */
async function openHome(query = '', { width, prepare, browser: inBrowser }: OpenOptions = {}): Promise<{ page: Page; problems: PageProblems }> {
  const page = await newPage(width, inBrowser);
  await prepare?.(page);
  const problems = watchPage(page, server.origin);
  await page.goto(`${server.origin}/${query}`);
  await page.waitForSelector('#faces[data-generation="1"]');
  return { page, problems };
}

interface GridStats {
  count: number;
  /** Per face: standard deviation of its RGB values (0 for a flat, blank tile). */
  spread: number[];
  /** Smallest mean absolute pixel difference between any two faces. */
  minPairDiff: number;
  labels: (string | null)[];
}

function gridStats(page: Page): Promise<GridStats> {
  return page.evaluate(() => {
    const canvases = [...document.querySelectorAll<HTMLCanvasElement>('#faces canvas')];
    const pixels = canvases.map((c) => c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data);
    const rgb = (d: Uint8ClampedArray) => d.filter((_, i) => i % 4 !== 3);
    const spread = pixels.map((d) => {
      const v = rgb(d);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      return Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    });
    let minPairDiff = Infinity;
    for (let i = 0; i < pixels.length; i++) {
      for (let j = i + 1; j < pixels.length; j++) {
        let sum = 0;
        for (let k = 0; k < pixels[i].length; k++) sum += Math.abs(pixels[i][k] - pixels[j][k]);
        minPairDiff = Math.min(minPairDiff, sum / pixels[i].length);
      }
    }
    return { count: canvases.length, spread, minPairDiff, labels: canvases.map((c) => c.getAttribute('aria-label')) };
  });
}

const largeFacePixels = (page: Page) =>
  page.evaluate(() => {
    const c = document.querySelector<HTMLCanvasElement>('#face-large')!;
    return Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data);
  });

const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

const backendOf = (page: Page) =>
  page.$eval('#backend', (el) => ({ label: el.textContent ?? '', name: (el as HTMLElement).dataset.backend }));

/** The page's "X skipped: why." lines. */
const fallbackNotes = (page: Page) => page.$$eval('#fallbacks li', (lis) => lis.map((li) => li.textContent ?? ''));

/** Headless Chromium without WebGPU flags has navigator.gpu but no adapter: the page says so and moves on. */
const NO_ADAPTER = /^WEBGPU skipped: WebGPU found no GPU adapter here/;

function expectGoodGrid(stats: GridStats): void {
  expect(stats.count).toBe(16);
  // A blank tile (never drawn, or the model emitting a constant) has no spread at all.
  for (const s of stats.spread) expect(s).toBeGreaterThan(0);
  // Two identical faces would differ by exactly 0.
  expect(stats.minPairDiff).toBeGreaterThan(0);
  for (const label of stats.labels) expect(label).toMatch(/^Generated face, seed \d+$/);
}

/** Keep every WebGL context the page creates, so a test can lose them as a driver reset would. */
function recordWebglContexts(page: Page): Promise<void> {
  return page.addInitScript(() => {
    const seen: WebGLRenderingContext[] = [];
    (window as unknown as { __glContexts: WebGLRenderingContext[] }).__glContexts = seen;
    for (const proto of [HTMLCanvasElement.prototype, OffscreenCanvas.prototype] as { getContext: (...a: unknown[]) => unknown }[]) {
      const original = proto.getContext;
      proto.getContext = function (this: unknown, ...args: unknown[]) {
        const ctx = original.apply(this, args);
        if (typeof args[0] === 'string' && args[0].startsWith('webgl') && ctx) seen.push(ctx as WebGLRenderingContext);
        return ctx;
      };
    }
  });
}

describe('home page', () => {
  it('shows 16 distinct faces on WebGL, with no console errors and no request to another origin', async () => {
    const { page, problems } = await openHome();
    expect(await backendOf(page)).toEqual({ label: expect.stringMatching(/^WebGL/), name: 'webgl' });
    expect(await fallbackNotes(page)).toEqual([expect.stringMatching(NO_ADAPTER)]);
    expectGoodGrid(await gridStats(page));
    expect(await page.isHidden('#loading')).toBe(true);
    // The WebGL path must not leak either (the long run below uses WASM).
    const tensors = await page.evaluate(() => window.__facegan!.numTensors());
    await page.click('#generate');
    await page.waitForSelector('#faces[data-generation="2"]');
    expect(await page.evaluate(() => window.__facegan!.numTensors())).toBe(tensors);
    expect(await page.isHidden('#error')).toBe(true);
    expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
  }, SLOW_TEST);

  // Backend-independent checks below run on WASM: SwiftShader's WebGL is ten times slower here.
  const FAST = 'backend=wasm';

  it('opens a face from the keyboard with its seed in the URL, and the link shows the same face after reload', async () => {
    const { page, problems } = await openHome();
    const tile = page.locator('#faces .face-tile').nth(2);
    const seed = await tile.getAttribute('data-seed');
    expect(seed).toMatch(/^\d+$/);
    await tile.focus();
    await page.keyboard.press('Enter');
    const shown = `#face-large[aria-label="Generated face, seed ${seed}"]`;
    await page.waitForSelector(shown);
    expect(new URL(page.url()).searchParams.get('seed')).toBe(seed);
    expect(await page.textContent('#face-title')).toBe(`Seed ${seed}`);
    const before = await largeFacePixels(page);

    await page.reload();
    await page.waitForSelector(shown);
    expect(await page.isVisible('#face-view')).toBe(true);
    expect(maxDiff(before, await largeFacePixels(page))).toBeLessThanOrEqual(2);
    expect(problems.consoleErrors).toEqual([]);
  }, SLOW_TEST);

  it('downloads the open face as a PNG named after its seed', async () => {
    const { page } = await openHome(`?seed=1234&${FAST}`);
    await page.waitForSelector('#face-large[aria-label="Generated face, seed 1234"]');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    expect(download.suggestedFilename()).toBe('facegan-seed-1234.png');
    const bytes = readFileSync((await download.path())!);
    expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  });

  it('morphs to another face, and the slider scrubs back to the start', async () => {
    const { page } = await openHome(`?seed=1&${FAST}`);
    await page.waitForSelector('#face-large[data-t="0.000"]');
    const start = await largeFacePixels(page);
    await page.click('#morph-new');
    // The animation ends by writing the target and t=1 into the address.
    await page.waitForFunction(() => new URL(location.href).searchParams.get('t') === '1.000', null, { timeout: 60_000 });
    await page.waitForSelector('#face-large[data-t="1.000"]');
    const end = await largeFacePixels(page);
    expect(maxDiff(start, end)).toBeGreaterThan(0);
    const to = new URL(page.url()).searchParams.get('to');
    expect(to).toMatch(/^\d+$/);

    const slider = page.locator('#morph-t');
    await slider.focus();
    await page.keyboard.press('Home');
    await page.waitForSelector('#face-large[data-t="0.000"]');
    expect(maxDiff(start, await largeFacePixels(page))).toBeLessThanOrEqual(2);

    // The end of the morph is the target face itself.
    await page.goto(`${server.origin}/?seed=${to}&${FAST}`);
    await page.waitForSelector(`#face-large[aria-label="Generated face, seed ${to}"]`);
    expect(maxDiff(end, await largeFacePixels(page))).toBeLessThanOrEqual(2);
  });

  it('runs on WASM with SIMD, and its threaded build because the site is cross-origin isolated, when forced with ?backend=wasm', async () => {
    const wasmFiles: string[] = [];
    const { page, problems } = await openHome('?backend=wasm', {
      prepare: async (p) => { p.on('request', (r) => { if (r.url().endsWith('.wasm')) wasmFiles.push(new URL(r.url()).pathname); }); },
    });
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    expect(wasmFiles).toEqual(['/tfjs-wasm/tfjs-backend-wasm-threaded-simd.wasm']);
    expect(await backendOf(page)).toEqual({ label: expect.stringMatching(/^WASM \(SIMD, \d+ threads?\)$/), name: 'wasm' });
    expectGoodGrid(await gridStats(page));
    expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
  });

  for (const backend of ['cpu'] as const) {
    it(`runs on ${backend} when forced with ?backend=${backend}`, async () => {
      const { page, problems } = await openHome(`?backend=${backend}`);
      expect(await backendOf(page)).toEqual({ label: expect.stringMatching(/^CPU/), name: backend });
      expectGoodGrid(await gridStats(page));
      expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
    });
  }

  it('shows a readable error for a malformed seed link and still draws faces', async () => {
    const { page } = await openHome(`?seed=banana&${FAST}`);
    expect(await page.textContent('#error')).toContain('"banana" is not a seed');
    expect((await gridStats(page)).count).toBe(16);
  });

  it('keeps tf.memory().numTensors flat over 50 regenerations', async () => {
    const { page } = await openHome(`?${FAST}`);
    const numTensors = () => page.evaluate(() => window.__facegan!.numTensors());
    const first = await numTensors();
    for (let i = 2; i <= 51; i++) {
      await page.click('#generate');
      await page.waitForSelector(`#faces[data-generation="${i}"]`);
    }
    expect(await numTensors()).toBe(first);
  }, SLOW_TEST);

  it('explains missing weights instead of failing silently', async () => {
    const page = await newPage();
    await page.route('**/models/generator.json', (route) => route.fulfill({ status: 404, body: 'not found' }));
    await page.goto(`${server.origin}/`);
    await page.waitForSelector('#error:not([hidden])', { timeout: 60_000 });
    expect(await page.textContent('#error')).toMatch(/weights are missing/);
  });

  it('notes an unknown ?backend= and picks WebGL itself; a lost WebGL context is explained, with a WASM link', async () => {
    const { page } = await openHome('?backend=metal', { prepare: recordWebglContexts });
    expect(await page.textContent('#fallbacks')).toContain('Unknown backend "metal"');
    expect((await backendOf(page)).name).toBe('webgl');

    await page.evaluate(() => {
      for (const gl of (window as unknown as { __glContexts: WebGLRenderingContext[] }).__glContexts) {
        if (!gl.isContextLost()) gl.getExtension('WEBGL_lose_context')?.loseContext();
      }
    });
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.textContent('#error')).toContain('WebGL context was lost');
    expect(new URL((await page.getAttribute('#error a', 'href'))!).searchParams.get('backend')).toBe('wasm');
    expect(await page.isDisabled('#generate')).toBe(true);
  }, SLOW_TEST);

  it('falls back to WASM, and says why, in a browser without WebGL', async () => {
    const noGpu = await launchBrowser(['--disable-webgl']);
    try {
      const page = await noGpu.newPage();
      const problems = watchPage(page, server.origin);
      await page.goto(`${server.origin}/`);
      await page.waitForSelector('#faces[data-generation="1"]', { timeout: 180_000 });
      expect((await backendOf(page)).name).toBe('wasm');
      expect(await fallbackNotes(page)).toEqual([expect.stringMatching(NO_ADAPTER), expect.stringMatching(/^WEBGL skipped: .*WebGL/)]);
      expectGoodGrid(await gridStats(page));
      expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
    } finally {
      await noGpu.close();
    }
  });

  it('fits a phone screen without sideways scrolling', async () => {
    const { page } = await openHome(`?seed=5&${FAST}`, { width: 375 });
    await page.waitForSelector('#face-view:not([hidden])');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
  });
});

/** A string only each backend's own code holds (one of its flag names), to see which backends a page downloaded. */
const BACKEND_MARKERS = {
  webgpu: 'WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE',
  webgl: 'WEBGL_FORCE_F16_TEXTURES',
  wasm: 'WASM_HAS_MULTITHREAD_SUPPORT',
} as const;

describe('home page on WebGPU', () => {
  let gpuBrowser: Browser;

  beforeAll(async () => {
    gpuBrowser = await launchBrowser(WEBGPU_ARGS);
  });

  afterAll(async () => {
    await gpuBrowser?.close();
  });

  it('runs on WebGPU by default where there is an adapter, and downloads neither the WebGL nor the WASM backend', async () => {
    const scripts: Promise<string>[] = [];
    const requested: string[] = [];
    // SwiftShader's adapter counts as a GPU when software WebGPU is allowed.
    const { page, problems } = await openHome('?tfjsflags=SOFTWARE_WEBGPU_ENABLED:true', {
      browser: gpuBrowser,
      prepare: async (p) => {
        p.on('response', (r) => {
          requested.push(new URL(r.url()).pathname);
          if (r.request().resourceType() === 'script') scripts.push(r.text().catch(() => ''));
        });
      },
    });
    expect(await backendOf(page)).toEqual({ label: expect.stringMatching(/^WebGPU \(.*swiftshader.*\)$/), name: 'webgpu' });
    expect(await fallbackNotes(page)).toEqual([]);
    expectGoodGrid(await gridStats(page));
    const code = (await Promise.all(scripts)).join('\n');
    const downloaded = Object.entries(BACKEND_MARKERS).filter(([, marker]) => code.includes(marker)).map(([name]) => name);
    expect(downloaded).toEqual(['webgpu']);
    expect(requested.filter((p) => p.endsWith('.wasm'))).toEqual([]);
    // TensorFlow.js echoes the URL flag as a warning; nothing else may be logged as an error.
    expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
  }, SLOW_TEST);

  it('passes over a software-only WebGPU adapter by itself, and draws the same face for a seed on WebGPU, WebGL and WASM', async () => {
    const seed = 4321;
    const faces: Record<string, number[]> = {};
    // Automatic choice: SwiftShader's WebGPU is skipped, with the reason, and WebGL (the next in line) runs.
    for (const backend of ['auto', 'webgpu', 'wasm']) {
      const { page, problems } = await openHome(`?seed=${seed}${backend === 'auto' ? '' : `&backend=${backend}`}`, { browser: gpuBrowser });
      await page.waitForSelector(`#face-large[aria-label="Generated face, seed ${seed}"]`);
      const running = await backendOf(page);
      if (backend === 'auto') {
        expect(await fallbackNotes(page)).toEqual([
          expect.stringMatching(/^WEBGPU skipped: WebGPU has only a software adapter here \(.*swiftshader.*\), which is slower than WASM\.$/),
        ]);
        expect(running.name).toBe('webgl');
      } else {
        expect(running.name).toBe(backend);
        expect(await fallbackNotes(page)).toEqual([]);
      }
      faces[running.name ?? backend] = await largeFacePixels(page);
      expect(problems.consoleErrors).toEqual([]);
    }
    // 8-bit pixels from float32 on every backend, summed in different orders: at most a step or two apart.
    expect(maxDiff(faces.webgpu, faces.wasm)).toBeLessThanOrEqual(2);
    expect(maxDiff(faces.webgl, faces.wasm)).toBeLessThanOrEqual(2);
    expect(maxDiff(faces.webgpu, faces.webgl)).toBeLessThanOrEqual(2);
  }, SLOW_TEST);
});

describe('about page', () => {
  it('shows the shipped model\'s parameter count, and links every page', async () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'public/models/manifest.json'), 'utf8'));
    const page = await newPage();
    const problems = watchPage(page, server.origin);
    await page.goto(`${server.origin}/about/`);
    expect(await page.textContent('h1')).toBe('About the model');
    expect(await page.textContent('main')).toContain(manifest.generator.params.toLocaleString('en-US'));
    const nav = await page.$$eval('nav a', (as) => as.map((a) => a.textContent));
    expect(nav).toEqual(['Home', 'Fine-tune', 'About the model']);
    // The evaluation table: the shipped generator's own row, with the numbers recorded in the manifest.
    const shipped = manifest.metrics.eval.generator;
    const row = await page.$$eval('table.eval tr.shipped td', (tds) => tds.map((td) => td.textContent?.trim()));
    expect(row).toEqual([expect.stringContaining(shipped.samples.toLocaleString('en-US')), `${(shipped.detection_rate * 100).toFixed(1)}%`, shipped.fid.toFixed(4)]);
    expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
    await page.setViewportSize({ width: 375, height: 800 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
  });
});
