/**
 * A grid of generated faces, one canvas per face at the generator's size
 * (64 or 128 px), scaled by CSS.
 * Used by the home page and reusable by any page that shows faces: mount it
 * on the element that src/components/FaceGrid.astro renders, then call
 * `show(faces)` as often as needed (tiles are reused).
 */
import { squareSide } from '../lib/images.ts';
import { IMAGE_SIZE } from '../lib/models.ts';
import type { Face } from './generator.ts';

export interface FaceGridOptions {
  /** Makes every tile a button; called with the face and its index. */
  onSelect?: (face: Face, index: number) => void;
  /** Accessible name of a face (the canvas' alt text). */
  describe?: (face: Face, index: number) => string;
}

const defaultDescribe = (face: Face, i: number) =>
  face.seed === null ? `Generated face ${i + 1}` : `Generated face, seed ${face.seed}`;

/** Paint a square face's RGBA pixels into a canvas of the same size (its side read off the pixels). */
export function drawFace(canvas: HTMLCanvasElement, rgba: Uint8ClampedArray): void {
  const side = squareSide(rgba.length, 1, 4);
  canvas.width = side;
  canvas.height = side;
  // For the CSS: how to scale it (src/styles/face-grid.css).
  canvas.dataset.size = String(side);
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('this browser cannot draw into a 2D canvas');
  ctx.putImageData(new ImageData(new Uint8ClampedArray(rgba), side, side), 0, 0);
}

/** An empty tile's canvas: the default size until the first face gives it the generator's. */
function makeCanvas(): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = IMAGE_SIZE;
  canvas.height = IMAGE_SIZE;
  canvas.className = 'face-canvas';
  canvas.setAttribute('role', 'img');
  return canvas;
}

export class FaceGrid {
  private faces: Face[] = [];

  constructor(
    readonly root: HTMLElement,
    private readonly options: FaceGridOptions = {},
  ) {
    root.classList.add('face-grid');
    // Replace the server-rendered placeholders with tiles of the right kind.
    root.replaceChildren(...Array.from(root.children, () => this.makeTile()));
    this.markEmpty(true);
    root.addEventListener('click', (event) => this.onClick(event));
  }

  /** Tell assistive technology a new batch is on its way (the old faces stay until it lands). */
  setBusy(busy: boolean): void {
    this.root.setAttribute('aria-busy', String(busy));
  }

  /** Back to `count` empty, pulsing tiles (e.g. before the first batch of a new model). */
  clear(count = this.root.children.length): void {
    this.faces = [];
    this.resize(count, true);
  }

  show(faces: Face[]): void {
    this.faces = faces;
    this.resize(faces.length, false);
    faces.forEach((face, i) => this.paint(this.root.children[i] as HTMLElement, face, i));
    this.setBusy(false);
  }

  /** The canvases, in grid order (for tests and callers that read pixels). */
  canvases(): HTMLCanvasElement[] {
    return [...this.root.querySelectorAll<HTMLCanvasElement>('canvas.face-canvas')];
  }

  /** The tile now showing the face of `seed`, or null (another batch replaced it). */
  tileShowing(seed: number): HTMLElement | null {
    return this.root.querySelector<HTMLElement>(`.face-tile:not(.is-empty)[data-seed="${seed}"]`);
  }

  private resize(count: number, empty: boolean): void {
    while (this.root.children.length > count) this.root.lastElementChild!.remove();
    while (this.root.children.length < count) this.root.append(this.makeTile());
    this.markEmpty(empty);
  }

  private markEmpty(empty: boolean): void {
    for (const tile of this.root.children) {
      tile.classList.toggle('is-empty', empty);
      if (tile instanceof HTMLButtonElement) tile.disabled = empty;
    }
  }

  private makeTile(): HTMLElement {
    const tile = document.createElement(this.options.onSelect ? 'button' : 'div');
    tile.className = 'face-tile';
    if (tile instanceof HTMLButtonElement) tile.type = 'button';
    tile.append(makeCanvas());
    return tile;
  }

  private paint(tile: HTMLElement, face: Face, i: number): void {
    const canvas = tile.querySelector('canvas')!;
    drawFace(canvas, face.rgba);
    const name = (this.options.describe ?? defaultDescribe)(face, i);
    canvas.setAttribute('aria-label', name);
    tile.dataset.seed = face.seed === null ? '' : String(face.seed);
    if (this.options.onSelect) tile.setAttribute('aria-label', `Open ${name.charAt(0).toLowerCase()}${name.slice(1)}`);
  }

  private onClick(event: Event): void {
    if (!this.options.onSelect) return;
    const tile = (event.target as HTMLElement).closest('.face-tile');
    if (!tile || tile.classList.contains('is-empty')) return;
    const index = [...this.root.children].indexOf(tile);
    if (this.faces[index]) this.options.onSelect(this.faces[index], index);
  }
}
