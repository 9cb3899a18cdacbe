/**
 * "Start from your photo": one photo, read and face-cropped exactly as the
 * fine-tune page does (same intake checks, same face worker; nothing leaves
 * the browser), projected into the generator by optimising z (the shared
 * Projector, with a face-identity term), then shown next to its projection
 * with a plain statement of what a projection keeps. No likeness number is
 * shown: the only recogniser here is the one the projection optimises, which
 * rates its own work far better than an independent judge (docs/likeness.md).
 * The projection then opens in the face view, where the sliders and the morph apply to it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { cropFace, loadFaceDetector } from '../browser/face-crops.ts';
import { PhotoError, readPhoto } from '../browser/photo-intake.ts';
import { toRgba } from '../lib/images.ts';
import { latentBatch } from '../lib/latent.ts';
import { PHOTO_PROJECTION, Projector } from '../lib/projection.ts';
import { drawFace } from './face-grid.ts';
import type { FaceModel } from './generator.ts';

const RANDOM_SEEDS = Array.from({ length: 16 }, (_, i) => 9001 + i);

/** What a projection keeps, as measured by a judge nothing here optimises (docs/likeness.md, "Start from your photo"). */
export const LIKENESS_NOTE =
  'The generator keeps sex, age, skin and hair, but seldom the person: an independent face recogniser ' +
  '(not the one this projection steers by) recognises the person in about 1 projection in 10 (docs/likeness.md in the project).';

export interface PhotoStartElements {
  input: HTMLInputElement;
  status: HTMLElement;
  photo: HTMLCanvasElement;
  projection: HTMLCanvasElement;
  result: HTMLElement;
  distance: HTMLElement;
}

/** Root-mean-square pixel difference (0..2 scale of [-1, 1] images) between `a` and the image of its size in `b`. */
export function pixelDistance(a: Float32Array, b: Float32Array, offsetB = 0): number {
  const n = a.length;
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
        // Cut at the generator's size from the photo itself, so a 128 px model gets the photo's own detail.
        crop = await cropFace(photo.bitmap, this.model.size);
      } finally {
        photo.bitmap.close();
      }
      if (!crop.face) {
        this.say(
          `${photo.name}: no face was found in this photo, so it cannot be projected. Try one where the face is clear, upright and not too small.`,
          true,
        );
        return;
      }
      drawFace(this.el.photo, toRgba(crop.pixels, 0, this.model.size));
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
    this.say('Loading the face-recognition network (6 MB, once)…');
    // Loaded on first use: face-api brings the rest of TensorFlow.js with it, which the home page must not download.
    const { descriptorDistances, loadFaceEmbedder } = await import('../browser/face-identity.ts');
    const embed = await loadFaceEmbedder();
    const projector = new Projector(this.model.model, null, [pixels], PHOTO_PROJECTION, embed);
    try {
      this.say('Projecting into the generator…');
      await projector.init();
      while (!projector.finished) {
        await projector.step();
        this.say(`Projecting into the generator: step ${projector.stepsDone} of ${projector.config.steps}…`);
        this.el.status.dataset.steps = String(projector.stepsDone);
        // A step is one forward and backward pass of two networks: let the page paint between steps.
        await new Promise((r) => setTimeout(r, 0));
      }
      const recon = await projector.reconstructions();
      const z = projector.latents();
      drawFace(this.el.projection, toRgba(recon, 0, this.model.size));
      const random = await this.randomFaces();
      const n = pixels.length;
      const [projectedId, ...randomIds] = await descriptorDistances(embed, pixels, concat(recon, random));
      const projected = pixelDistance(pixels, recon);
      const randomPixels =
        RANDOM_SEEDS.reduce((s, _, i) => s + pixelDistance(pixels, random, i * n), 0) / RANDOM_SEEDS.length;
      const bestId = Math.min(...randomIds);
      this.el.distance.textContent = LIKENESS_NOTE;
      // For the tests only (not shown): that the identity term and the pixel loss did pull towards the photo.
      Object.assign(this.el.result.dataset, {
        projected: String(projected),
        random: String(randomPixels),
        identity: String(projectedId),
        randomIdentity: String(bestId),
      });
      this.el.result.hidden = false;
      this.say('Done: the projection is open above, where the sliders and the morph work on it.');
      this.onProjected(z);
    } finally {
      projector.dispose();
    }
  }

  /** The fixed random faces the projection is compared with, row-major [-1, 1]. */
  private async randomFaces(): Promise<Float32Array> {
    const faces = tf.tidy(
      () =>
        this.model.model.predict(
          tf.tensor2d(latentBatch(RANDOM_SEEDS, this.model.zDim), [RANDOM_SEEDS.length, this.model.zDim]),
        ) as tf.Tensor,
    );
    try {
      return (await faces.data()) as Float32Array;
    } finally {
      faces.dispose();
    }
  }
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
