/**
 * The fine-tune page in Chromium: photos in (faces of one CelebA identity and
 * every kind of bad input), crops shown, fine-tuning on WebGPU, WebGL and WASM
 * (WebGPU's losses matching WASM's),
 * a lost WebGL context, IndexedDB across a reload, the model as one download
 * (float16 unless asked, drawing the page's faces in Node) and opened on the
 * home page, flat tensor counts, and no request that could carry the photos anywhere.
 *
 * The page is pointed at a small DCGAN made here (`?model=/test-models/`), so
 * the run stays short on a software GPU whatever model the site ships; the
 * home page test tunes the shipped model for a few steps, whose sliders it needs.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { unzipSync } from 'fflate';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../src/lib/gan.ts';
import { gridRgba } from '../src/lib/images.ts';
import { latentBatch } from '../src/lib/latent.ts';
import { buildGan, modelConfig } from '../src/lib/models.ts';
import { fromArtifacts, toArtifacts, toFiles } from '../src/lib/weights.ts';
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
import { badInputs, celebaFile, identityPhotos, type FilePayload } from './fixtures/photos.ts';
import { canvasPixels, canvasSpreads, downloadTuned } from './tuned-model.ts';

const MODEL_DIR = 'test-models';

/** Polls wait on the page's own work (detection, training, IndexedDB), slow on a software GPU: 30 s unless told. */
const poll = <T>(fn: () => T | Promise<T>, options: { timeout?: number } = {}) =>
  expect.poll(fn, { timeout: 30_000, ...options });
const STEPS = 20;
const LOST_STEPS = 12;
/** Likeness-fit steps of the lost-context run: they run after the recovery, on WASM. */
const LIKENESS_STEPS = 2;
/** Projection steps before the tuning steps; the progress counts both. */
const PROJ = 4;

/** Hex sha256 of the test generator's weights: what a model tuned from it names as its parent. */
let testModelHash = '';

/** A small DCGAN pair in the build's test-models/ (width 8: ~40k parameters in G). */
async function writeTestModel(outDir: string): Promise<void> {
  await tf.setBackend('cpu');
  const { generator, discriminator } = buildGan({ ...modelConfig('dcgan', 8), seed: 3 });
  const dir = join(outDir, MODEL_DIR);
  mkdirSync(dir, { recursive: true });
  for (const [name, model] of [
    ['generator', generator],
    ['discriminator', discriminator],
  ] as const) {
    const files = toFiles(await toArtifacts(model), name);
    writeFileSync(join(dir, `${name}.json`), JSON.stringify(files.modelJson));
    for (const [shard, bytes] of files.shards) writeFileSync(join(dir, shard), bytes);
    if (name === 'generator')
      testModelHash = createHash('sha256').update(files.shards.values().next().value!).digest('hex');
  }
}

interface Inspect {
  numTensors: number;
  backend: string;
  weightChange: number;
  stepsDone: number;
}
type Hooks = {
  inspect(): Promise<Inspect>;
  loseContext(): Promise<boolean>;
  losses(): { step: number; phase: string; loss: number }[];
};
const inspect = () => page.evaluate(() => (window as unknown as { faceganFinetune: Hooks }).faceganFinetune.inspect());
const losses = () => page.evaluate(() => (window as unknown as { faceganFinetune: Hooks }).faceganFinetune.losses());
const loseContext = () =>
  page.evaluate(() => (window as unknown as { faceganFinetune: Hooks }).faceganFinetune.loseContext());

let server: Server;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let problems: PageProblems;
const requests: Request[] = [];
let faces: FilePayload[];

async function openPage(backend: 'webgpu' | 'webgl' | 'wasm'): Promise<void> {
  await page.goto(`${server.origin}/finetune/?model=/${MODEL_DIR}/&backend=${backend}`);
  await page.locator('#ft-backend[data-backend]:not([data-backend=""])').waitFor({ timeout: 60_000 });
  await poll(() => page.locator('#compare-pretrained').evaluate((c: HTMLCanvasElement) => c.width), {
    timeout: 30_000,
  }).toBeGreaterThan(1);
}

/** The compare grid's seeds (the page's default) as `artifacts` draw them in Node: RGBA, laid out as the page lays them out. */
async function drawnInNode(artifacts: tf.io.ModelArtifacts): Promise<number[]> {
  const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
  const model = await fromArtifacts(artifacts);
  const zDim = model.inputs[0].shape[1] as number;
  const z = tf.tensor2d(latentBatch(seeds, zDim), [seeds.length, zDim]);
  const out = generate(model, z);
  const pixels = (await out.data()) as Float32Array;
  tf.dispose([z, out]);
  model.dispose();
  return Array.from(gridRgba(pixels, seeds.length, seeds.length).data);
}

const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const meanDiff = (a: number[], b: number[]) => a.reduce((sum, v, i) => sum + Math.abs(v - b[i]), 0) / a.length;

const sampleGrid = () => page.locator('#train-samples').evaluate((c: HTMLCanvasElement) => c.toDataURL());

/** `likeness`: fit steps after tuning (their effect is judged in finetune-likeness.test.ts). */
async function train(steps: number, likeness = 0): Promise<void> {
  await poll(() => page.locator('#train-start').isEnabled()).toBe(true);
  await page.fill('input[name=projectionSteps]', String(PROJ));
  await page.fill('input[name=steps]', String(steps));
  await page.fill('input[name=likenessSteps]', String(likeness));
  await page.fill('input[name=batch]', '4');
  await page.click('#train-start');
}

/** How the run ended, with the page's own words (so a failure shows its reason). */
async function waitDone(timeout = 180_000): Promise<string> {
  await page.locator('#train-status[data-done]').waitFor({ timeout });
  const reason = await page.locator('#train-status').getAttribute('data-done');
  return `${reason}: ${await page.locator('#train-status').textContent()}`;
}

beforeAll(async () => {
  const outDir = await buildSite('finetune');
  await writeTestModel(outDir);
  server = await startPreview(outDir);
  browser = await launchBrowser();
  context = await browser.newContext();
  page = await context.newPage();
  problems = watchPage(page, server.origin);
  context.on('request', (r) => requests.push(r));
  const { files } = identityPhotos(8);
  faces = files.map(celebaFile);
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('fine-tune page', () => {
  it('crops the faces of 8 photos of one person', async () => {
    await openPage('webgl');
    await page.setInputFiles('#photo-input', faces);
    await poll(() => page.locator('#crops li[data-face=true]').count(), { timeout: 90_000 }).toBe(8);
    await poll(() => page.locator('#photo-status').textContent()).toContain('8 of 8 crops will be used');
    // A crop is a 64x64 face, not a blank or grey square.
    const spread = await page
      .locator('#crops canvas')
      .first()
      .evaluate((c: HTMLCanvasElement) => {
        const d = c.getContext('2d')!.getImageData(0, 0, 64, 64).data;
        let min = 255,
          max = 0;
        for (let i = 0; i < d.length; i += 4) {
          min = Math.min(min, d[i]);
          max = Math.max(max, d[i]);
        }
        return { w: c.width, range: max - min };
      });
    expect(spread.w).toBe(64);
    expect(spread.range).toBeGreaterThan(80);
    // Detection ran off the main thread: the face worker fetched the detector's weights, the page itself did not.
    expect(
      page
        .workers()
        .map((w) => w.url())
        .some((u) => /face\.worker/.test(u)),
    ).toBe(true);
    const pageFetched = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name));
    expect(pageFetched.filter((u) => /tiny_face_detector|face_landmark/.test(u))).toEqual([]);
    expect(requests.some((r) => /tiny_face_detector_model.*\.bin/.test(r.url()))).toBe(true);
  });

  it(`fine-tunes ${STEPS} steps on WebGL: losses reported, G changed, samples redrawn, tensors flat`, async () => {
    expect(await page.locator('#ft-backend').getAttribute('data-backend')).toBe('webgl');
    const before = await inspect();
    expect(before.weightChange).toBe(0);
    const gridBefore = await sampleGrid();
    await train(STEPS);
    expect(await waitDone()).toMatch(/^finished: Finished/);
    const got = await losses();
    expect(got.map((l) => l.step)).toEqual(Array.from({ length: STEPS + PROJ }, (_, i) => i + 1));
    for (const l of got) expect(Number.isFinite(l.loss) && l.loss > 0).toBe(true);
    expect(await page.locator('#train-eta').textContent()).toContain(`Step ${STEPS + PROJ} of ${STEPS + PROJ}`);
    expect(await page.locator('#samples-step').textContent()).toBe(String(STEPS + PROJ));
    expect(await sampleGrid()).not.toBe(gridBefore);
    // Each photo's projection is shown, redrawn at the end.
    expect(await page.locator('#train-reconstructions').getAttribute('data-step')).toBe(String(STEPS + PROJ));
    expect(await page.locator('#train-reconstructions').evaluate((c: HTMLCanvasElement) => c.width)).toBeGreaterThan(
      8 * 64,
    );
    const after = await inspect();
    expect(after.weightChange).toBeGreaterThan(0);
    // One tensor more: the likeness shift baked into G gives its first layer a bias.
    expect(after.numTensors).toBe(before.numTensors + 1);
  });

  it('keeps the fine-tuned model in IndexedDB across a reload, downloads it as one file, resets and imports it', async () => {
    await page.click('#model-save');
    await page.locator('#model-status[data-action=save][data-result=ok]').waitFor({ timeout: 60_000 });
    const changed = (await inspect()).weightChange;
    await openPage('webgl');
    expect(await page.locator('#ft-model').getAttribute('data-restored')).toBe('true');
    expect((await inspect()).weightChange).toBeCloseTo(changed, 6);
    const [pre, tuned] = await Promise.all(['pretrained', 'finetuned'].map((w) => canvasPixels(page, `#compare-${w}`)));
    expect(meanDiff(tuned, pre)).toBeGreaterThan(0);

    // One file: the generator's JSON, its weights in float16 and a manifest of what it was tuned from, and how.
    const half = await downloadTuned(page);
    expect(half.name).toBe('facegan-finetuned.zip');
    expect(Object.keys(unzipSync(half.bytes)).sort()).toEqual([
      'generator.json',
      'generator.weights1of1.bin',
      'manifest.json',
    ]);
    const { manifest, artifacts } = half.bundle;
    expect(manifest.generator.dtype).toBe('float16');
    expect(artifacts.weightSpecs!.every((w) => w.quantization?.dtype === 'float16')).toBe(true);
    expect(manifest.generator.bytes).toBe(2 * manifest.generator.params);
    // The record was saved with the model, so the restored model keeps it.
    expect(manifest.parent).toEqual({
      name: `/${MODEL_DIR}/generator.json`,
      url: `/${MODEL_DIR}/generator.json`,
      weightsSha256: testModelHash,
    });
    expect(manifest.runs).toEqual([
      expect.objectContaining({ photos: 8, steps: STEPS + PROJ, outcome: 'finished', backend: 'webgl' }),
    ]);
    expect(manifest.runs[0].config).toMatchObject({ steps: STEPS, projectionSteps: PROJ, batch: 4 });
    // Loaded back in Node, it draws the faces the page draws for the same seeds (float16 weights, another backend).
    const shown = await canvasPixels(page, '#compare-finetuned');
    const drawn = await drawnInNode(artifacts);
    expect(drawn).toHaveLength(shown.length);
    // Measured: a mean difference of 2e-5 and at most 1 in a pixel value (0-255).
    expect(meanDiff(drawn, shown)).toBeLessThan(0.1);
    expect(maxDiff(drawn, shown)).toBeLessThanOrEqual(3);

    // float32 when asked for: twice the weight bytes, the same record.
    await page.check('#model-float32');
    const full = await downloadTuned(page);
    await page.uncheck('#model-float32');
    expect(full.name).toBe('facegan-finetuned-float32.zip');
    expect(full.bundle.manifest.generator.dtype).toBe('float32');
    expect(full.bundle.manifest.generator.bytes).toBe(2 * manifest.generator.bytes);
    expect(full.bundle.manifest.runs).toEqual(manifest.runs);

    await page.click('#model-reset');
    await poll(() => page.locator('#model-status').textContent()).toContain('Back to the pretrained model');
    expect((await inspect()).weightChange).toBe(0);
    await openPage('webgl');
    expect(await page.locator('#ft-model').getAttribute('data-restored')).toBe('false');
    // The downloaded file brings the fine-tuned model back.
    await page.setInputFiles('#model-import', {
      name: full.name,
      mimeType: 'application/zip',
      buffer: Buffer.from(full.bytes),
    });
    await poll(() => page.locator('#model-status').textContent()).toContain(
      'Imported the fine-tuned generator from facegan-finetuned-float32.zip',
    );
    expect((await inspect()).weightChange).toBeCloseTo(changed, 6);
    // A generator JSON without its weights is refused with the reason.
    await page.setInputFiles('#model-import', {
      name: 'generator.json',
      mimeType: 'application/json',
      buffer: Buffer.from(unzipSync(half.bytes)['generator.json']),
    });
    await poll(() => page.locator('#model-status').textContent()).toContain('needs generator.weights1of1.bin');
  });

  it(`fine-tunes ${STEPS} steps on WASM, chosen on the page`, async () => {
    await page.setInputFiles('#photo-input', faces);
    await poll(() => page.locator('#crops li[data-face=true]').count(), { timeout: 90_000 }).toBe(8);
    await page.selectOption('#ft-backend-choice', 'wasm');
    await poll(() => page.locator('#ft-backend').getAttribute('data-backend')).toBe('wasm');
    await poll(() => page.locator('#train-start').isEnabled()).toBe(true);
    const before = await inspect();
    const gridBefore = await sampleGrid();
    await train(STEPS);
    const done = await waitDone();
    expect(done).toMatch(/^finished: Finished/);
    // The share of faces that copy a photo pixel for pixel, measured after tuning, is said in words.
    expect(done).toMatch(/\d+% of faces the model draws are near-copies of one of your photos/);
    const got = await losses();
    expect(got).toHaveLength(STEPS + PROJ);
    for (const l of got) expect(Number.isFinite(l.loss) && l.loss > 0).toBe(true);
    expect(await sampleGrid()).not.toBe(gridBefore);
    const after = await inspect();
    expect(after.weightChange).toBeGreaterThan(0);
    // The run bakes the likeness shift into G's first layer as a bias: one tensor more when the G it started from
    // had none, and a second run on top of it must leave the count exactly where the first left it (no leak).
    expect(after.numTensors - before.numTensors).toBeLessThanOrEqual(1);
    await train(2);
    expect(await waitDone()).toMatch(/^finished: Finished/);
    expect((await inspect()).numTensors).toBe(after.numTensors);
  });

  it('pauses, resumes and stops a run', async () => {
    await train(200);
    await poll(async () => Number(await page.locator('#train-eta').getAttribute('data-step')), {
      timeout: 60_000,
    }).toBeGreaterThanOrEqual(2);
    await page.click('#train-pause');
    await poll(() => page.locator('#train-status').textContent()).toBe('Paused.');
    const pausedAt = (await losses()).length;
    await page.waitForTimeout(1500);
    expect((await losses()).length).toBeLessThanOrEqual(pausedAt + 1);
    await page.click('#train-pause');
    await poll(async () => (await losses()).length, { timeout: 60_000 }).toBeGreaterThan(pausedAt + 1);
    await page.click('#train-stop');
    expect(await waitDone()).toMatch(/^stopped: Stopped after \d+ steps/);
    expect(await page.locator('#train-start').isEnabled()).toBe(true);
  });

  it('tunes with "stronger likeness": the recogniser is fetched for it and every step has a finite loss', async () => {
    const fetched = () => requests.filter((r) => /face_recognition_model.*\.bin/.test(r.url())).length;
    const before = fetched();
    await page.check('input[name=identity]');
    await train(3);
    expect(await waitDone()).toMatch(/^finished: Finished/);
    await page.uncheck('input[name=identity]');
    const got = await losses();
    expect(got).toHaveLength(3 + PROJ);
    for (const l of got) expect(Number.isFinite(l.loss) && l.loss > 0).toBe(true);
    // No test before this one uses the recogniser: the option is what fetched it.
    expect([before, fetched()]).toEqual([0, 1]);
  });

  it('continues on WASM from the last completed step when the WebGL context is lost, the recogniser loaded anew there', async () => {
    await page.selectOption('#ft-backend-choice', 'webgl');
    await poll(() => page.locator('#ft-backend').getAttribute('data-backend')).toBe('webgl');
    await poll(() => page.locator('#train-start').isEnabled()).toBe(true);
    await train(LOST_STEPS, LIKENESS_STEPS);
    await poll(async () => Number(await page.locator('#train-eta').getAttribute('data-step')), {
      timeout: 90_000,
    }).toBeGreaterThanOrEqual(3);
    const shown = Number(await page.locator('#train-eta').getAttribute('data-step'));
    expect(await loseContext()).toBe(true);
    expect(await waitDone()).toMatch(/^finished: Finished/);
    // The page says what happened, and no step it had shown was lost.
    const notice = (await page.locator('#train-notice').textContent()) ?? '';
    expect(notice).toMatch(/WebGL\) context was lost .* continues on WASM from step \d+/);
    expect(Number(/from step (\d+)/.exec(notice)![1])).toBeGreaterThanOrEqual(shown);
    expect(await page.locator('#ft-backend').getAttribute('data-backend')).toBe('wasm');
    const got = await losses();
    expect(got.map((l) => l.step)).toEqual(Array.from({ length: LOST_STEPS + PROJ + LIKENESS_STEPS }, (_, i) => i + 1));
    expect(await page.locator('#train-eta').textContent()).toContain('fitting the likeness');
    expect((await inspect()).weightChange).toBeGreaterThan(0);
  });

  it('trains on WASM where WebGL cannot render float32, and says why', async () => {
    await page.goto(
      `${server.origin}/finetune/?model=/${MODEL_DIR}/&backend=webgl&tfjsflags=WEBGL_RENDER_FLOAT32_CAPABLE:false`,
    );
    await page.locator('#ft-backend[data-backend]:not([data-backend=""])').waitFor({ timeout: 60_000 });
    expect(await page.locator('#ft-backend').getAttribute('data-backend')).toBe('wasm');
    expect(await page.locator('#ft-fallbacks').textContent()).toContain(
      'WEBGL: this GPU cannot render float32 textures, which training needs',
    );
  });

  it('explains every photo it cannot use, and the page keeps working', async () => {
    await openPage('wasm');
    const bad = await badInputs(faces[0].buffer);
    await page.setInputFiles('#photo-input', Object.values(bad));
    const problemsList = page.locator('#photo-problems');
    await poll(() => page.locator('#photo-status').textContent(), { timeout: 120_000 }).not.toContain('Reading');
    const text = (await problemsList.textContent()) ?? '';
    expect(text).toMatch(/notes\.txt: This is not a photo/);
    expect(text).toMatch(/empty\.jpg: This file is empty/);
    expect(text).toMatch(/corrupt\.jpg: This JPEG file is damaged/);
    expect(text).toMatch(/truncated\.jpg: This JPEG file is cut short/);
    expect(text).toMatch(/huge\.png: This image is 12000 x 12000 pixels, too large/);
    expect(text).toMatch(/photo\.heic: HEIC\/HEIF photos/);
    expect(text).toMatch(/noise\.png: No face was found/);
    // Usable despite their quirks: the animated GIF (first frame), the transparent PNG, the tilted CMYK JPEG, the EXIF-rotated JPEG and a 24-megapixel photo.
    const faceNames = await page.locator('#crops li[data-face=true] .crop-name').allTextContents();
    expect(faceNames.sort()).toEqual(['animated.gif', 'big.jpg', 'cmyk.jpg', 'rotated.jpg', 'transparent.png']);
    expect(await page.locator('#crops li', { hasText: 'big.jpg' }).textContent()).toContain(
      'scaled down from 6000 x 4000',
    );
    expect(await page.locator('#crops li', { hasText: 'animated.gif' }).textContent()).toContain('first frame');
    // The no-face photo can still be used as a centre crop.
    const noFace = page.locator('#crops li[data-face=false]');
    await noFace.locator('input[type=checkbox]').check();
    await poll(() => page.locator('#photo-status').textContent()).toContain('6 of 6 crops will be used');
    expect(await page.locator('#train-start').isEnabled()).toBe(true);
  });

  it('takes at most 50 photos at once and says so', async () => {
    await page.click('#clear-photos');
    const tiny = await badInputs(faces[0].buffer).then((b) => b.noFace.buffer);
    const many = Array.from({ length: 200 }, (_, i) => ({
      name: `p${String(i).padStart(3, '0')}.png`,
      mimeType: 'image/png',
      buffer: tiny,
    }));
    await page.setInputFiles('#photo-input', many);
    await poll(() => page.locator('#photo-problems').textContent()).toContain(
      '200 photos were chosen, but a session takes at most 50: 150 were left out',
    );
    await poll(() => page.locator('#crops li').count(), { timeout: 180_000 }).toBe(50);
    // Still responsive: a click is handled.
    await page.click('#clear-photos');
    expect(await page.locator('#crops li').count()).toBe(0);
  });

  it('opens a model tuned from the shipped generator on the home page, from this browser, with the base sliders', async () => {
    const shipped = JSON.parse(readFileSync(join(ROOT, 'public/models/manifest.json'), 'utf8')) as { name: string };
    await page.goto(`${server.origin}/finetune/?backend=wasm`);
    await page.locator('#ft-backend[data-backend="wasm"]').waitFor({ timeout: 60_000 });
    await page.setInputFiles('#photo-input', faces.slice(0, 2));
    await poll(() => page.locator('#crops li[data-face=true]').count(), { timeout: 90_000 }).toBe(2);
    await poll(() => page.locator('#train-start').isEnabled()).toBe(true);
    // The fewest steps that tune the shipped model: one projection step, one tuning step.
    await page.fill('input[name=projectionSteps]', '1');
    await page.fill('input[name=steps]', '1');
    await page.fill('input[name=likenessSteps]', '0');
    await page.fill('input[name=batch]', '2');
    await page.click('#train-start');
    expect(await waitDone()).toMatch(/^finished: Finished/);

    const errorsBefore = problems.consoleErrors.length;
    await page.click('#model-open-home');
    await page.waitForURL(/\/\?model=tuned$/, { timeout: 60_000 });
    await page.locator('#faces[data-generation="1"]').waitFor({ timeout: 60_000 });
    for (const spread of await canvasSpreads(page, '#faces canvas')) expect(spread).toBeGreaterThan(10);
    expect(await page.isVisible('#model-line')).toBe(true);
    expect(await page.textContent('#model-origin')).toContain(
      `tuned from ${shipped.name}, 1 run of 2 steps on 2 photos`,
    );

    // A face of its own (read from IndexedDB again on a new load) with the base model's sliders.
    await page.goto(`${server.origin}/?model=tuned&seed=77`);
    await page.waitForSelector('#face-large[aria-label="Generated face, seed 77"]');
    await page.waitForSelector('#attributes:not([hidden]) #attribute-list input[type="range"]');
    expect(await page.textContent('#attributes-base')).toContain(
      `the base model's directions, fitted for ${shipped.name}`,
    );
    const plain = await canvasPixels(page, '#face-large');
    const frames = () => page.$eval('#face-large', (c) => Number((c as HTMLElement).dataset.frames ?? 0));
    const before = await frames();
    const slider = page.locator('#attribute-list input[type="range"]').first();
    await slider.focus();
    await page.keyboard.press('End');
    await page.waitForFunction(
      (n) => Number(document.querySelector<HTMLElement>('#face-large')!.dataset.frames) > n,
      before,
    );
    await page.waitForFunction(() => new URL(location.href).searchParams.get('model') === 'tuned');
    const edited = await canvasPixels(page, '#face-large');
    expect(meanDiff(plain, edited)).toBeGreaterThan(2);
    const [png] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    expect(png.suggestedFilename()).toBe('facegan-tuned-seed-77.png');

    // Back to the shipped generator: the same seed and edit, another face.
    const key = (await slider.getAttribute('data-attribute'))!;
    // End moved the slider to its top; each attribute has its own measured range.
    const top = Number(await slider.getAttribute('max'));
    await page.click('#model-back');
    await page.waitForURL((url) => !url.searchParams.has('model') && Number(url.searchParams.get(key)) === top);
    await page.waitForSelector('#face-large[aria-label="Generated face, seed 77"]');
    await page.waitForSelector('#attributes:not([hidden])');
    expect(await page.isHidden('#model-line')).toBe(true);
    await page.waitForTimeout(300);
    expect(meanDiff(edited, await canvasPixels(page, '#face-large'))).toBeGreaterThan(2);
    expect(problems.consoleErrors.slice(errorsBefore)).toEqual([]);
  }, 300_000);

  it('made no request that could carry the photos, and none to another origin', () => {
    expect(problems.foreignRequests).toEqual([]);
    const withBody = requests.filter((r) => r.postData() !== null || r.method() !== 'GET');
    expect(withBody.map((r) => `${r.method()} ${r.url()}`)).toEqual([]);
    expect(problems.pageErrors).toEqual([]);
  });
});

/** Steps of the WebGPU run, which loses its device after COMPARED_STEPS; those are compared with WASM's. */
const GPU_STEPS = 8;
const COMPARED_STEPS = 2;
/** SwiftShader compiles every WebGPU shader on the CPU: the first step alone takes about a minute here. */
const GPU_TEST_MS = 420_000;

describe('fine-tune page on WebGPU', () => {
  // A browser of its own, with WebGPU (SwiftShader) turned on; the helpers above now drive its page.
  let gpuBrowser: Browser;

  beforeAll(async () => {
    gpuBrowser = await launchBrowser(WEBGPU_ARGS);
    page = await (await gpuBrowser.newContext()).newPage();
    problems = watchPage(page, server.origin);
  });

  afterAll(async () => {
    await gpuBrowser?.close();
  });

  let webgpuLosses: { step: number; phase: string; loss: number }[] = [];

  it(
    'fine-tunes on WebGPU when forced with ?backend=webgpu, says so, and goes on on WASM when the device is lost',
    async () => {
      await openPage('webgpu');
      expect(await page.locator('#ft-backend').getAttribute('data-backend')).toBe('webgpu');
      expect(await page.locator('#ft-backend').textContent()).toMatch(/^WebGPU \(.*swiftshader.*\)$/);
      await page.setInputFiles('#photo-input', faces);
      await poll(() => page.locator('#crops li[data-face=true]').count(), { timeout: 90_000 }).toBe(8);
      expect((await inspect()).backend).toBe('webgpu');
      await train(GPU_STEPS);
      await poll(async () => Number(await page.locator('#train-eta').getAttribute('data-step')), {
        timeout: 120_000,
      }).toBeGreaterThanOrEqual(COMPARED_STEPS);
      const shown = Number(await page.locator('#train-eta').getAttribute('data-step'));
      webgpuLosses = (await losses()).slice(0, COMPARED_STEPS);
      expect(await loseContext()).toBe(true);
      expect(await waitDone()).toMatch(/^finished: Finished/);
      const notice = (await page.locator('#train-notice').textContent()) ?? '';
      expect(notice).toMatch(/WebGPU\) context was lost .* continues on WASM from step \d+/);
      expect(Number(/from step (\d+)/.exec(notice)![1])).toBeGreaterThanOrEqual(shown);
      const got = await losses();
      expect(got.map((l) => l.step)).toEqual(Array.from({ length: GPU_STEPS + PROJ }, (_, i) => i + 1));
      for (const l of got) expect(Number.isFinite(l.loss) && l.loss > 0).toBe(true);
      expect(got.slice(0, COMPARED_STEPS)).toEqual(webgpuLosses);
      expect((await inspect()).weightChange).toBeGreaterThan(0);
      expect(problems.pageErrors).toEqual([]);
    },
    GPU_TEST_MS,
  );

  it('gave, on WebGPU, the losses WASM gives for the same photos, settings and seed', async () => {
    await page.selectOption('#ft-backend-choice', 'wasm');
    // The page was already on WASM after the lost device; the restarted fine-tuner begins again
    // from the pretrained pair (nothing was saved), and answers once it has started.
    await poll(
      () =>
        inspect().then(
          (i) => i.weightChange,
          () => -1,
        ),
      { timeout: 60_000 },
    ).toBe(0);
    expect(await page.locator('#ft-backend').getAttribute('data-backend')).toBe('wasm');
    await train(COMPARED_STEPS);
    expect(await waitDone()).toMatch(/^finished: Finished/);
    // The first steps (projection of the photos) on both backends.
    const wasmLosses = (await losses()).slice(0, COMPARED_STEPS);
    expect(webgpuLosses).toHaveLength(COMPARED_STEPS);
    expect(wasmLosses).toHaveLength(COMPARED_STEPS);
    // Both in float32, but WebGPU sums its reductions in another order, and Adam's first step on the latents
    // (g / (|g| + eps)) magnifies that: the projection losses agree to about 1e-4 (a wrong kernel is off by far more).
    wasmLosses.forEach((l, i) => {
      expect(webgpuLosses[i].phase).toBe(l.phase);
      // Far above the tolerance, so agreeing is not agreeing on zero.
      expect(l.loss).toBeGreaterThan(0.01);
      expect(webgpuLosses[i].loss).toBeCloseTo(l.loss, 3);
    });
  });
});
