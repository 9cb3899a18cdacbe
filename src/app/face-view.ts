/**
 * One face, large: its seed, a PNG download, and a morph towards another
 * face along the slerp path between their latents, played as an animation
 * or scrubbed with a slider.
 */
import { latentFromSeed, randomSeed, slerp } from '../lib/latent.ts';
import { drawFace } from './face-grid.ts';
import { renderLatents, type FaceModel } from './generator.ts';
import type { FaceLink } from './seed-url.ts';

const MORPH_MS = 2500;
/** The PNG's side: the face (64 or 128 px) scaled up smoothly, as the page shows it. */
const DOWNLOAD_SIZE = 256;

export interface FaceViewElements {
  root: HTMLElement;
  canvas: HTMLCanvasElement;
  title: HTMLElement;
  download: HTMLButtonElement;
  close: HTMLButtonElement;
  morphNew: HTMLButtonElement;
  morphPlay: HTMLButtonElement;
  slider: HTMLInputElement;
  morphLabel: HTMLElement;
  /** What the address holds: the seed, or (a projected photo) nothing to share. */
  addressHint: HTMLElement;
  /** "The address keeps the edits", beside the sliders: true of a seed only. */
  editsHint: HTMLElement;
}

const SEED_HINT = "This page's address now holds the seed: share it and the same face appears.";
const PHOTO_HINT =
  'A projected photo has no seed, so the address cannot hold it and it cannot be shared by link: download the PNG to keep it.';

/** Smooth start and stop, so the morph does not jerk at its ends. */
const easeInOut = (x: number) => (x < 0.5 ? 2 * x * x : 1 - (-2 * x + 2) ** 2 / 2);

export class FaceView {
  private seed = 0;
  /** A latent not from a seed (a projected photo), or null. */
  private base: Float32Array | null = null;
  private target: number | null = null;
  private t = 0;
  /** Latest position asked for while a frame was still being drawn. */
  private wanted: number | null = null;
  private drawing: Promise<void> | null = null;
  private animation = 0;
  /** Edits applied to every latent before drawing (attribute sliders); identity by default. */
  adjust: (z: Float32Array) => Float32Array = (z) => z;
  /** Start of the PNG's file name: says which generator drew it. */
  namePrefix = 'facegan';
  /** Called after the visitor closed the view (its Close button or Escape), e.g. to move focus out of the hidden view. */
  onClose: () => void = () => {};

  constructor(
    private readonly el: FaceViewElements,
    private readonly model: FaceModel,
    /** Called whenever the shown face changes (to update the URL), or with null on close. */
    private readonly onChange: (link: FaceLink | null) => void,
  ) {
    el.close.addEventListener('click', () => this.close());
    el.download.addEventListener('click', () => void this.download());
    el.morphNew.addEventListener('click', () => this.startMorph(randomSeed()));
    el.morphPlay.addEventListener('click', () => (this.animation ? this.stop() : this.play()));
    el.slider.addEventListener('input', () => {
      this.stop();
      void this.showAt(Number(el.slider.value) / 1000);
    });
    el.slider.addEventListener('change', () => this.report());
    el.root.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') this.close();
    });
  }

  get isOpen(): boolean {
    return !this.el.root.hidden;
  }

  /** Show `link`'s face (and morph position, if any). */
  async open(link: FaceLink): Promise<void> {
    this.stop();
    this.base = null;
    this.seed = link.seed;
    this.target = link.morph?.to ?? null;
    this.el.root.hidden = false;
    this.el.title.textContent = `Seed ${link.seed}`;
    this.showHints(false);
    this.updateMorphControls();
    await this.showAt(link.morph?.t ?? 0);
    await this.drawing;
  }

  /** Show a face from a latent of its own (a projected photo); the address cannot hold it, so it is left alone. */
  async openLatent(z: Float32Array, title: string): Promise<void> {
    this.stop();
    this.base = z.slice();
    this.target = null;
    this.el.root.hidden = false;
    this.el.title.textContent = title;
    this.showHints(true);
    this.updateMorphControls();
    await this.showAt(0);
    await this.drawing;
  }

  private showHints(photo: boolean): void {
    this.el.addressHint.textContent = photo ? PHOTO_HINT : SEED_HINT;
    this.el.editsHint.hidden = photo;
  }

  /** True while the face shown is a projected photo rather than a seed. */
  get fromPhoto(): boolean {
    return this.base !== null;
  }

  /** Draw the current face again (after `adjust` changed). */
  redraw(): Promise<void> {
    return this.showAt(this.t);
  }

  close(): void {
    this.stop();
    this.el.root.hidden = true;
    this.onChange(null);
    this.onClose();
  }

  /** Resolves once the face on screen matches the last request. */
  async settled(): Promise<void> {
    while (this.drawing) await this.drawing;
  }

  private startMorph(to: number): void {
    this.target = to;
    this.t = 0;
    this.updateMorphControls();
    this.play();
  }

  private play(): void {
    if (this.target === null) return;
    const from = this.t >= 1 ? 0 : this.t;
    const start = performance.now() - easeInverse(from) * MORPH_MS;
    const frame = (now: number) => {
      const x = Math.min(1, (now - start) / MORPH_MS);
      void this.showAt(easeInOut(x));
      if (x < 1) {
        this.animation = requestAnimationFrame(frame);
      } else {
        this.animation = 0;
        this.updatePlayButton();
        this.report();
      }
    };
    this.animation = requestAnimationFrame(frame);
    this.updatePlayButton();
  }

  private stop(): void {
    if (!this.animation) return;
    cancelAnimationFrame(this.animation);
    this.animation = 0;
    this.updatePlayButton();
    this.report();
  }

  /** Draw the face at morph position t; frames asked for while one is drawing collapse into the latest. */
  private showAt(t: number): Promise<void> {
    this.t = t;
    this.el.slider.value = String(Math.round(t * 1000));
    this.el.morphLabel.textContent =
      this.target === null ? '' : `${Math.round(t * 100)}% of the way to seed ${this.target}`;
    this.el.canvas.dataset.source = this.base ? 'photo' : 'seed';
    this.wanted = t;
    if (!this.drawing) {
      this.drawing = this.drainFrames().finally(() => {
        this.drawing = null;
      });
    }
    return this.drawing;
  }

  private async drainFrames(): Promise<void> {
    while (this.wanted !== null) {
      const t = this.wanted;
      this.wanted = null;
      const [rgba] = await renderLatents(this.model, this.latentAt(t), 1);
      drawFace(this.el.canvas, rgba);
      this.el.canvas.setAttribute('aria-label', this.describe(t));
      // Lets scripts (and tests) tell which frame is on screen.
      this.el.canvas.dataset.t = t.toFixed(3);
      this.el.canvas.dataset.frames = String(Number(this.el.canvas.dataset.frames ?? 0) + 1);
    }
  }

  private latentAt(t: number): Float32Array {
    const a = this.base ?? latentFromSeed(this.seed, this.model.zDim);
    if (this.target === null || t <= 0) return this.adjust(a);
    return this.adjust(slerp(a, latentFromSeed(this.target, this.model.zDim), t));
  }

  private describe(t: number): string {
    if (this.base)
      return this.target === null || t <= 0
        ? 'Projection of your photo'
        : `Projection of your photo, ${Math.round(t * 100)}% of the morph to seed ${this.target}`;
    if (this.target === null || t <= 0) return `Generated face, seed ${this.seed}`;
    return `Generated face, ${Math.round(t * 100)}% of the morph from seed ${this.seed} to seed ${this.target}`;
  }

  /** The face on show, as a link. */
  get link(): FaceLink {
    return { seed: this.seed, morph: this.target === null ? null : { to: this.target, t: this.t } };
  }

  private report(): void {
    if (!this.isOpen || this.base) return;
    this.onChange(this.link);
  }

  private updateMorphControls(): void {
    const none = this.target === null;
    this.el.slider.disabled = none;
    this.el.morphPlay.disabled = none;
    this.updatePlayButton();
  }

  private updatePlayButton(): void {
    this.el.morphPlay.textContent = this.animation ? 'Pause' : 'Play morph';
    this.el.morphPlay.setAttribute('aria-pressed', String(this.animation !== 0));
  }

  private async download(): Promise<void> {
    await this.settled();
    const big = document.createElement('canvas');
    big.width = DOWNLOAD_SIZE;
    big.height = DOWNLOAD_SIZE;
    const ctx = big.getContext('2d')!;
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    const { width, height } = this.el.canvas;
    ctx.drawImage(this.el.canvas, 0, 0, width, height, 0, 0, DOWNLOAD_SIZE, DOWNLOAD_SIZE);
    const blob = await new Promise<Blob | null>((resolve) => big.toBlob(resolve, 'image/png'));
    if (!blob) throw new Error('this browser could not encode the PNG');
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = this.fileName();
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }

  private fileName(): string {
    const p = this.namePrefix;
    if (this.base) return `${p}-your-photo.png`;
    if (this.target === null || this.t <= 0) return `${p}-seed-${this.seed}.png`;
    return `${p}-seed-${this.seed}-to-${this.target}-${Math.round(this.t * 100)}pct.png`;
  }
}

/** Where on the eased curve position y lies, so resuming a paused morph does not jump. */
function easeInverse(y: number): number {
  return y < 0.5 ? Math.sqrt(y / 2) : 1 - Math.sqrt((1 - y) * 2) / 2;
}
