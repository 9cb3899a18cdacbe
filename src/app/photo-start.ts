/**
 * "Start from your photo": one photo, read and face-cropped exactly as the
 * fine-tune page does (same intake checks, same face worker; nothing leaves
 * the browser), projected into the generator by optimising z (the shared
 * Projector), then shown next to its projection with the pixel distance
 * between them and, for scale, the distance to random faces. The projection
 * then opens in the face view, where the sliders and the morph apply to it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { cropFace, loadFaceDetector } from '../components/finetune/face-crops.ts';
import { PhotoError, readPhoto } from '../components/finetune/photo-intake.ts';
import { toRgba } from '../lib/images.ts';
import { latentBatch } from '../lib/latent.ts';
import { IMAGE_SIZE } from '../lib/models.ts';
import { Projector } from '../lib/projection.ts';
import { drawFace } from './face-grid.ts';
import type { FaceModel } from './generator.ts';

const STEPS = 100;
const RANDOM_SEEDS = Array.from({ length: 16 }, (_, i) => 9001 + i);

export interface PhotoStartElements {
  input: HTMLInputElement;
  status: HTMLElement;
  photo: HTMLCanvasElement;
  projection: HTMLCanvasElement;
  result: HTMLElement;
  distance: HTMLElement;
}

/** Root-mean-square pixel difference (0..2 scale of [-1, 1] images) between two 64x64x3 images. */
export function pixelDistance(a: Float32Array, b: Float32Array, offsetB = 0): number {
  const n = IMAGE_SIZE * IMAGE_SIZE * 3;
  let s = 0;
  for (let i = 0; i < n; i++) s += (a[i] - b[offsetB + i]) ** 2;
  return Math.sqrt(s / n);
}

export class PhotoStart {
  private running = false;

  constructor(
    private readonly el: PhotoStartElements,
    private readonly model: FaceModel,
    /** Called with the projected latent once it is ready. */
    private readonly onProjected: (z: Float32Array) => void,
  ) {
    el.input.addEventListener('change', () => {
      const file = el.input.files?.[0];
      el.input.value = '';
      if (file) void this.start(file);
    });
    el.input.addEventListener('focus', () => loadFaceDetector().catch(() => {}), { once: true });
  }

  private say(text: string, error = false): void {
    this.el.status.textContent = text;
    this.el.status.classList.toggle('error-text', error);
  }

  async start(file: File): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.el.input.disabled = true;
    this.el.result.hidden = true;
    try {
      this.say('Reading the photo…');
      const photo = await readPhoto(file);
      let crop;
      try {
        crop = await cropFace(photo.bitmap);
      } finally {
        photo.bitmap.close();
      }
      if (!crop.face) {
        this.say(`${photo.name}: no face was found in this photo, so it cannot be projected. Try one where the face is clear, upright and not too small.`, true);
        return;
      }
      drawFace(this.el.photo, toRgba(crop.pixels));
      await this.project(crop.pixels);
    } catch (err) {
      const name = err instanceof PhotoError ? `${err.fileName}: ` : '';
      this.say(`${name}${err instanceof Error ? err.message : String(err)}`, true);
    } finally {
      this.running = false;
      this.el.input.disabled = false;
    }
  }

  private async project(pixels: Float32Array): Promise<void> {
    if (tf.getBackend() === 'wasm') (await import('../lib/wasm-training.ts')).registerWasmTrainingKernels();
    const projector = new Projector(this.model.model, null, [pixels], { steps: STEPS, candidates: 32, featureWeight: 0 });
    try {
      await projector.init();
      while (!projector.finished) {
        await projector.step();
        if (projector.stepsDone % 10 === 0) {
          this.say(`Projecting into the generator: step ${projector.stepsDone} of ${STEPS}…`);
          this.el.status.dataset.steps = String(projector.stepsDone);
          await new Promise((r) => setTimeout(r, 0));
        }
      }
      const recon = await projector.reconstructions();
      const z = projector.latents();
      drawFace(this.el.projection, toRgba(recon));
      const projected = pixelDistance(pixels, recon);
      const random = await this.randomDistance(pixels);
      this.el.distance.textContent = `Pixel distance photo ↔ projection: ${projected.toFixed(3)} (a random face: ${random.toFixed(3)} on average).`;
      this.el.result.dataset.projected = String(projected);
      this.el.result.dataset.random = String(random);
      this.el.result.hidden = false;
      this.say('Done: the projection is open above, where the sliders and the morph work on it.');
      this.onProjected(z);
    } finally {
      projector.dispose();
    }
  }

  private async randomDistance(pixels: Float32Array): Promise<number> {
    const faces = tf.tidy(() => this.model.model.predict(tf.tensor2d(latentBatch(RANDOM_SEEDS, this.model.zDim), [RANDOM_SEEDS.length, this.model.zDim])) as tf.Tensor);
    try {
      const data = (await faces.data()) as Float32Array;
      const n = IMAGE_SIZE * IMAGE_SIZE * 3;
      return RANDOM_SEEDS.reduce((s, _, i) => s + pixelDistance(pixels, data, i * n), 0) / RANDOM_SEEDS.length;
    } finally {
      faces.dispose();
    }
  }
}
