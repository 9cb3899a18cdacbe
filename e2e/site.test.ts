/**
 * The site in headless Chromium, served from dist/ as `npm start` serves it:
 * faces appear on WebGPU and WebGL (SwiftShader here), WASM and CPU, the same
 * face for the same seed on each; "Automatic" passes over SwiftShader's WebGL
 * for WASM and says why; only the running backend is downloaded; shared seed links
 * reproduce a face; focus comes back to a closed face; phones get whole
 * numbers, fingertip-sized controls and a face that stays in view; the
 * fine-tune page honours an early backend choice; `?model=tuned` with no tuned
 * model kept says so; nothing leaks; nothing is fetched from another origin;
 * the build holds no large file twice.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import {
  buildSite,
  launchBrowser,
  ROOT,
  startPreview,
  watchPage,
  WEBGPU_ARGS,
  type PageProblems,
  type Server,
} from './helpers.ts';
import { celebaFile, identityPhotos } from './fixtures/photos.ts';
import { expectGoodGrid, gridStats, largeFacePixels, maxDiff, meanDiff, screenBlockiness } from './face-stats.ts';

let server: Server;
let browser: Browser;
let siteDir: string;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'public/models/generator.json'))) {
    throw new Error(
      'public/models/generator.json is missing: the site needs an exported generator (npm run train exports one)',
    );
  }
  siteDir = await buildSite('site');
  server = await startPreview(siteDir);
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

async function newPage(width = 1280, inBrowser = browser, height = 900): Promise<Page> {
  const context = await inBrowser.newContext({ viewport: { width, height }, acceptDownloads: true });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(180_000);
  return page;
}

interface OpenOptions {
  width?: number;
  height?: number;
  /** Another browser than the default one (e.g. one with WebGPU). */
  browser?: Browser;
  /** Runs before navigation (routes, init scripts). */
  prepare?: (page: Page) => Promise<void>;
}

/** Open the home page and wait until the first grid of faces is drawn. */
async function openHome(
  query = '',
  { width, height, prepare, browser: inBrowser }: OpenOptions = {},
): Promise<{ page: Page; problems: PageProblems }> {
  const page = await newPage(width, inBrowser, height);
  await prepare?.(page);
  const problems = watchPage(page, server.origin);
  await page.goto(`${server.origin}/${query}`);
  await page.waitForSelector('#faces[data-generation="1"]');
  return { page, problems };
}

const backendOf = (page: Page) =>
  page.$eval('#backend', (el) => ({ label: el.textContent ?? '', name: (el as HTMLElement).dataset.backend }));

/** The page's "X skipped: why." lines (all but the nearest skip, which the backend line tells). */
const fallbackNotes = (page: Page) => page.$$eval('#fallbacks li', (lis) => lis.map((li) => li.textContent ?? ''));

/** Beside the backend's name: why the backend before it was passed over ('' when none was). */
const backendWhy = (page: Page) =>
  page.$eval('#backend-why', (el) => ((el as HTMLElement).hidden ? '' : (el.textContent ?? '')));

/** What SwiftShader's WebGL (this machine's only one) is passed over for. */
const SOFTWARE_WEBGL = ' — WebGL here is a software renderer (SwiftShader), slower than WASM';

/** Headless Chromium without WebGPU flags has navigator.gpu but no adapter: the page says so and moves on. */
const NO_ADAPTER = /^WEBGPU skipped: WebGPU found no GPU adapter here/;

/** Keep every WebGL context the page creates, so a test can lose them as a driver reset would. */
function recordWebglContexts(page: Page): Promise<void> {
  return page.addInitScript(() => {
    const seen: WebGLRenderingContext[] = [];
    (window as unknown as { __glContexts: WebGLRenderingContext[] }).__glContexts = seen;
    for (const proto of [HTMLCanvasElement.prototype, OffscreenCanvas.prototype] as {
      getContext: (...a: unknown[]) => unknown;
    }[]) {
      const original = proto.getContext;
      proto.getContext = function (this: unknown, ...args: unknown[]) {
        const ctx = original.apply(this, args);
        if (typeof args[0] === 'string' && args[0].startsWith('webgl') && ctx) seen.push(ctx as WebGLRenderingContext);
        return ctx;
      };
    }
  });
}

describe('build output', () => {
  it('holds each large file once: no two files over 1 MB have the same bytes (e.g. weights that a page and a worker both import)', () => {
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
      );
    const byHash = new Map<string, string[]>();
    for (const file of files(siteDir).filter((f) => statSync(f).size > 1_000_000)) {
      const hash = createHash('sha256').update(readFileSync(file)).digest('hex');
      byHash.set(hash, [...(byHash.get(hash) ?? []), relative(siteDir, file)]);
    }
    expect(byHash.size).toBeGreaterThan(0);
    expect([...byHash.values()].filter((names) => names.length > 1)).toEqual([]);
  });
});

describe('home page', () => {
  it('picks WASM by itself where WebGL is only a software renderer (SwiftShader here), and says why beside it', async () => {
    const { page, problems } = await openHome();
    expect(await backendOf(page)).toEqual({
      label: expect.stringMatching(/^WASM \(SIMD, \d+ threads?\)$/),
      name: 'wasm',
    });
    expect(await page.textContent('.runtime')).toBe(`Running on ${(await backendOf(page)).label}${SOFTWARE_WEBGL}`);
    expect(await fallbackNotes(page)).toEqual([expect.stringMatching(NO_ADAPTER)]);
    expectGoodGrid(await gridStats(page));
    expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
  });

  it(
    'shows 16 distinct faces on WebGL when asked for it (software or not), with no console errors and no request to another origin',
    async () => {
      const { page, problems } = await openHome('?backend=webgl');
      expect(await backendOf(page)).toEqual({ label: expect.stringMatching(/^WebGL/), name: 'webgl' });
      expect(await backendWhy(page)).toBe('');
      expect(await fallbackNotes(page)).toEqual([]);
      expectGoodGrid(await gridStats(page));
      expect(await page.isHidden('#loading')).toBe(true);
      // The WebGL path must not leak either (the long run below uses WASM).
      const tensors = await page.evaluate(() => window.__facegan!.numTensors());
      await page.click('#generate');
      await page.waitForSelector('#faces[data-generation="2"]');
      expect(await page.evaluate(() => window.__facegan!.numTensors())).toBe(tensors);
      expect(await page.isHidden('#error')).toBe(true);
      expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
    },
    SLOW_TEST,
  );

  // Backend-independent checks below run on WASM: SwiftShader's WebGL is ten times slower here.
  const FAST = 'backend=wasm';

  it(
    'opens a face from the keyboard with its seed in the URL, and the link shows the same face after reload',
    async () => {
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
      // The hint beside it is true of a seed (a projected photo gets another: e2e/directions.test.ts).
      expect(await page.textContent('#face-address-hint')).toMatch(/address now holds the seed: share it/);
      const before = await largeFacePixels(page);

      await page.reload();
      await page.waitForSelector(shown);
      expect(await page.isVisible('#face-view')).toBe(true);
      expect(maxDiff(before, await largeFacePixels(page))).toBeLessThanOrEqual(2);
      expect(problems.consoleErrors).toEqual([]);
    },
    SLOW_TEST,
  );

  it('gives focus back to the face that was opened when the face view closes (Close button or Escape)', async () => {
    const { page, problems } = await openHome(`?${FAST}`);
    const focusedSeed = () =>
      page.evaluate(
        () =>
          (document.activeElement as HTMLElement | null)?.closest<HTMLElement>('.face-tile')?.dataset.seed ??
          document.activeElement?.id ??
          null,
      );
    for (const [index, close] of [
      [2, () => page.click('#close-face')],
      [5, () => page.keyboard.press('Escape')],
    ] as const) {
      const tile = page.locator('#faces .face-tile').nth(index);
      const seed = await tile.getAttribute('data-seed');
      await tile.click();
      await page.waitForSelector(`#face-large[aria-label="Generated face, seed ${seed}"]`);
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('face-title');
      await close();
      await page.waitForSelector('#face-view', { state: 'hidden' });
      expect(await focusedSeed()).toBe(seed);
    }
    expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
  });

  it('shows the open face scaled smoothly, not in blocks, and downloads it as a PNG named after its seed', async () => {
    const { page } = await openHome(`?seed=1234&${FAST}`);
    await page.waitForSelector('#face-large[aria-label="Generated face, seed 1234"]');
    expect(
      await page.$eval('#face-large', (c) => [(c as HTMLCanvasElement).width, getComputedStyle(c).imageRendering]),
    ).toEqual([64, 'auto']);
    expect(await screenBlockiness(page, '#face-large')).toBeLessThan(0.3);
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
    await page.waitForFunction(() => new URL(location.href).searchParams.get('t') === '1.000', null, {
      timeout: 60_000,
    });
    await page.waitForSelector('#face-large[data-t="1.000"]');
    const end = await largeFacePixels(page);
    // Another face, not the same one with a few pixels changed: two faces differ by about 20 or more on average.
    expect(meanDiff(start, end)).toBeGreaterThan(5);
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
      prepare: async (p) => {
        p.on('request', (r) => {
          if (r.url().endsWith('.wasm')) wasmFiles.push(new URL(r.url()).pathname);
        });
      },
    });
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    expect(wasmFiles).toEqual(['/tfjs-wasm/tfjs-backend-wasm-threaded-simd.wasm']);
    expect(await backendOf(page)).toEqual({
      label: expect.stringMatching(/^WASM \(SIMD, \d+ threads?\)$/),
      name: 'wasm',
    });
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

  it(
    'keeps tf.memory().numTensors flat over 50 regenerations',
    async () => {
      const { page } = await openHome(`?${FAST}`);
      const numTensors = () => page.evaluate(() => window.__facegan!.numTensors());
      const first = await numTensors();
      for (let i = 2; i <= 51; i++) {
        await page.click('#generate');
        await page.waitForSelector(`#faces[data-generation="${i}"]`);
      }
      expect(await numTensors()).toBe(first);
    },
    SLOW_TEST,
  );

  it('explains missing weights instead of failing silently', async () => {
    const page = await newPage();
    await page.route('**/models/generator.json', (route) => route.fulfill({ status: 404, body: 'not found' }));
    await page.goto(`${server.origin}/`);
    await page.waitForSelector('#error:not([hidden])', { timeout: 60_000 });
    expect(await page.textContent('#error')).toMatch(/weights are missing/);
  });

  it('says so when ?model=tuned finds no fine-tuned model in this browser, and links to the fine-tune page', async () => {
    const page = await newPage();
    const problems = watchPage(page, server.origin);
    await page.goto(`${server.origin}/?model=tuned&${FAST}`);
    await page.waitForSelector('#error:not([hidden])', { timeout: 60_000 });
    expect(await page.textContent('#error')).toContain('This browser keeps no fine-tuned model');
    expect(await page.getAttribute('#error a', 'href')).toBe('/finetune/');
    expect(await page.isHidden('#model-line')).toBe(true);
    expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
  });

  it('notes an unknown ?backend= and chooses by itself', async () => {
    const { page, problems } = await openHome('?backend=metal');
    expect(await page.textContent('#fallbacks')).toContain('Unknown backend "metal"');
    expect((await backendOf(page)).name).toBe('wasm');
    expect(problems.consoleErrors).toEqual([]);
  });

  it(
    'explains a lost WebGL context, with a WASM link',
    async () => {
      const { page } = await openHome('?backend=webgl', { prepare: recordWebglContexts });
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
    },
    SLOW_TEST,
  );

  it('falls back to WASM, and says why, in a browser without WebGL', async () => {
    const noGpu = await launchBrowser(['--disable-webgl']);
    try {
      const page = await noGpu.newPage();
      const problems = watchPage(page, server.origin);
      await page.goto(`${server.origin}/`);
      await page.waitForSelector('#faces[data-generation="1"]', { timeout: 180_000 });
      expect((await backendOf(page)).name).toBe('wasm');
      expect(await backendWhy(page)).toBe(' — WebGL is disabled or unavailable on this device');
      expect(await fallbackNotes(page)).toEqual([expect.stringMatching(NO_ADAPTER)]);
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

  it('on a phone (390x844): every button and slider is at least 44 px tall, and the face stays in view while the last slider moves it', async () => {
    const { page, problems } = await openHome(`?seed=5&${FAST}`, { width: 390, height: 844 });
    await page.waitForSelector('#face-large[aria-label="Generated face, seed 5"]');
    const short = await page.$$eval('main button, main input[type=range], nav a', (els) =>
      els
        .filter((el) => (el as HTMLElement).offsetParent !== null)
        .map((el) => ({
          what: el.id || el.textContent?.trim() || el.tagName,
          height: el.getBoundingClientRect().height,
        }))
        .filter((t) => t.height < 44),
    );
    expect(short).toEqual([]);
    // The slider furthest below the face (the last attribute, or the morph slider without attributes).
    const last = page.locator('#face-view input[type=range]:not([disabled])').last();
    await last.scrollIntoViewIfNeeded();
    await last.focus();
    await page.keyboard.press('End');
    const inView = (selector: string) =>
      page.$eval(selector, (el) => {
        const r = el.getBoundingClientRect();
        return r.height > 0 && r.top >= 0 && r.bottom <= innerHeight;
      });
    expect(await inView('#face-large')).toBe(true);
    expect(
      await last.evaluate((el) => {
        const r = el.getBoundingClientRect();
        return r.top >= 0 && r.bottom <= innerHeight;
      }),
    ).toBe(true);
    // The slider is not hidden under the face either: the point at its centre is the slider itself.
    expect(
      await last.evaluate((el) => {
        const r = el.getBoundingClientRect();
        return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === el;
      }),
    ).toBe(true);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
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

  it(
    'runs on WebGPU by default where there is an adapter, and downloads neither the WebGL nor the WASM backend',
    async () => {
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
      expect(await backendOf(page)).toEqual({
        label: expect.stringMatching(/^WebGPU \(.*swiftshader.*\)$/),
        name: 'webgpu',
      });
      expect(await fallbackNotes(page)).toEqual([]);
      expectGoodGrid(await gridStats(page));
      const code = (await Promise.all(scripts)).join('\n');
      const downloaded = Object.entries(BACKEND_MARKERS)
        .filter(([, marker]) => code.includes(marker))
        .map(([name]) => name);
      expect(downloaded).toEqual(['webgpu']);
      expect(requested.filter((p) => p.endsWith('.wasm'))).toEqual([]);
      // TensorFlow.js echoes the URL flag as a warning; nothing else may be logged as an error.
      expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
    },
    SLOW_TEST,
  );

  it(
    'passes over a software-only WebGPU adapter by itself, and draws the same face for a seed on WebGPU, WebGL and WASM',
    async () => {
      const seed = 4321;
      const faces: Record<string, number[]> = {};
      // Automatic choice: SwiftShader's WebGPU and WebGL are skipped, with the reasons, and WASM runs.
      for (const backend of ['auto', 'webgpu', 'webgl']) {
        const { page, problems } = await openHome(`?seed=${seed}${backend === 'auto' ? '' : `&backend=${backend}`}`, {
          browser: gpuBrowser,
        });
        await page.waitForSelector(`#face-large[aria-label="Generated face, seed ${seed}"]`);
        const running = await backendOf(page);
        if (backend === 'auto') {
          expect(await fallbackNotes(page)).toEqual([
            expect.stringMatching(
              /^WEBGPU skipped: WebGPU has only a software adapter here \(.*swiftshader.*\), which is slower than WASM\.$/,
            ),
          ]);
          expect(await backendWhy(page)).toBe(SOFTWARE_WEBGL);
          expect(running.name).toBe('wasm');
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
    },
    SLOW_TEST,
  );
});

describe('about page', () => {
  it("shows the shipped model's parameter count, and links every page", async () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'public/models/manifest.json'), 'utf8'));
    const page = await newPage();
    const problems = watchPage(page, server.origin);
    await page.goto(`${server.origin}/about/`);
    expect(await page.textContent('h1')).toBe('About the model');
    expect(await page.textContent('main')).toContain(manifest.generator.params.toLocaleString('en-US'));
    const nav = await page.$$eval('nav a', (as) => as.map((a) => a.textContent));
    expect(nav).toEqual(['Home', 'Fine-tune', 'About the model']);
    // The evaluation table: the shipped generator's own row, with the numbers recorded in the manifest.
    // A 128 px generator's row holds both scales: area-downscaled to 64 px, and its own.
    const shipped = manifest.metrics.eval.generator;
    const cells = (s: { detection_rate: number; fid: number }) => [
      `${(s.detection_rate * 100).toFixed(1)}%`,
      s.fid.toFixed(4),
    ];
    const row = await page.$$eval('table.eval tr.shipped td', (tds) => tds.map((td) => td.textContent?.trim()));
    expect(row).toEqual([
      expect.stringContaining(shipped.samples.toLocaleString('en-US')),
      ...(shipped.size === 128 ? [...cells(shipped.at64), ...cells(shipped)] : [...cells(shipped), '–', '–']),
    ]);
    expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
    await page.setViewportSize({ width: 375, height: 800 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
  });

  it('on a phone (390 px): no sideways scrolling of the page; wide tables scroll in their own box, and no number is broken across lines', async () => {
    const page = await newPage(390, browser, 844);
    const problems = watchPage(page, server.origin);
    await page.goto(`${server.origin}/about/`);
    for (const name of ['documentElement', 'body'] as const) {
      const [scrollWidth, clientWidth] = await page.evaluate(
        (n) => [document[n].scrollWidth, document[n].clientWidth],
        name,
      );
      expect(scrollWidth, name).toBeLessThanOrEqual(clientWidth);
    }
    const layout = await page.evaluate(() => {
      const broken: string[] = [];
      const unboxed: string[] = [];
      let numbers = 0;
      for (const cell of document.querySelectorAll<HTMLElement>('main td, main th')) {
        const style = getComputedStyle(cell);
        const inner =
          cell.getBoundingClientRect().width - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
        const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          for (const m of (node.textContent ?? '').matchAll(/[−+-]?\d[\d,.]*%?/g)) {
            numbers++;
            const range = document.createRange();
            range.setStart(node, m.index!);
            range.setEnd(node, m.index! + m[0].length);
            // One box per line a number is spread over; and the cell's content box must be as wide as the number.
            const boxes = [...range.getClientRects()].filter((r) => r.width > 0);
            const width = range.getBoundingClientRect().width;
            if (boxes.length !== 1 || width > inner + 0.5)
              broken.push(
                `${m[0]} in "${cell.textContent?.trim()}": ${boxes.length} lines, ${width.toFixed(0)} px in ${inner.toFixed(0)} px`,
              );
          }
        }
      }
      // A table wider than the page's column must sit in a box that scrolls sideways.
      for (const table of document.querySelectorAll<HTMLElement>('main table')) {
        const box = table.parentElement!;
        if (table.offsetWidth > box.clientWidth && getComputedStyle(box).overflowX !== 'auto')
          unboxed.push(table.className || table.textContent!.slice(0, 40));
      }
      return { numbers, broken, unboxed };
    });
    expect(layout.numbers).toBeGreaterThan(20);
    expect(layout.broken).toEqual([]);
    expect(layout.unboxed).toEqual([]);
    expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
  });
});

describe('fine-tune page', () => {
  it('honours "Run on: WASM" chosen while the worker is still starting (on WebGL here)', async () => {
    const page = await newPage();
    const problems = watchPage(page, server.origin);
    await page.goto(`${server.origin}/finetune/?backend=webgl`);
    // Still starting: the WebGL worker has not answered yet (SwiftShader takes seconds to load the pair).
    expect(await page.getAttribute('#ft-backend', 'data-backend')).toBe('');
    await page.selectOption('#ft-backend-choice', 'wasm');
    await page.waitForSelector('#ft-backend[data-backend="wasm"]', { timeout: 120_000 });
    expect(await page.textContent('#ft-backend')).toBe('WASM');
    const inspect = () =>
      page.evaluate(() =>
        (
          window as unknown as { faceganFinetune: { inspect(): Promise<{ backend: string }> } }
        ).faceganFinetune.inspect(),
      );
    expect((await inspect()).backend).toBe('wasm');
    // The first worker, had it lived on, would have answered by now and put WebGL back.
    await page.waitForTimeout(3000);
    expect(await page.getAttribute('#ft-backend', 'data-backend')).toBe('wasm');
    expect(await page.isHidden('#train-error')).toBe(true);
    expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
  });

  it("names each crop's checkbox for its photo", async () => {
    const page = await newPage();
    const problems = watchPage(page, server.origin);
    await page.goto(`${server.origin}/finetune/?backend=wasm`);
    const { files } = identityPhotos(2);
    await page.setInputFiles('#photo-input', files.map(celebaFile));
    await expect.poll(() => page.locator('#crops li').count(), { timeout: 120_000 }).toBe(2);
    const names = await page.$$eval('#crops input[type=checkbox]', (boxes) =>
      boxes.map((b) => b.getAttribute('aria-label')),
    );
    expect(names).toEqual(files.map((f, i) => `use photo ${i + 1} (${f})`));
    await page.getByRole('checkbox', { name: `use photo 2 (${files[1]})` }).uncheck();
    await expect.poll(() => page.textContent('#photo-status')).toContain('1 of 2 crops will be used');
    expect(problems).toEqual({ consoleErrors: [], pageErrors: [], foreignRequests: [] });
  });
});
