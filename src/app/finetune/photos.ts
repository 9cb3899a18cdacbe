/**
 * The photo step: files in (picker or drop), face crops out as thumbnails
 * the visitor can leave out, and a readable line for every file that could
 * not be used. Photos are processed one at a time so the page stays
 * responsive with many of them.
 */
import { squareSide, toRgba } from '../../lib/images.ts';
import { cropFace, loadFaceDetector } from '../../browser/face-crops.ts';
import { PhotoError, capPhotos, readPhoto } from '../../browser/photo-intake.ts';

export interface CropEntry {
  id: number;
  name: string;
  pixels: Float32Array;
  face: boolean;
  included: boolean;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** A face crop at its own size (the generator's, read off the pixels). */
export function drawCrop(canvas: HTMLCanvasElement, pixels: Float32Array): void {
  const side = squareSide(pixels.length);
  canvas.width = side;
  canvas.height = side;
  canvas.dataset.size = String(side);
  canvas
    .getContext('2d')!
    .putImageData(new ImageData(toRgba(pixels, 0, side) as Uint8ClampedArray<ArrayBuffer>, side, side), 0, 0);
}

export class PhotoPanel {
  readonly entries: CropEntry[] = [];
  onChange: () => void = () => {};
  private nextId = 1;
  private queue: Promise<void> = Promise.resolve();
  private busy = 0;
  private readonly status = $('photo-status');
  private readonly problems = $<HTMLUListElement>('photo-problems');
  private readonly list = $<HTMLUListElement>('crops');
  private readonly clear = $<HTMLButtonElement>('clear-photos');
  /** The generator's image side, once the fine-tuner has loaded it: crops are cut at that size. */
  private readonly size: Promise<number>;
  private setSize: (size: number) => void = () => {};
  private sizeKnown = false;

  constructor() {
    this.size = new Promise((resolve) => (this.setSize = resolve));
    const input = $<HTMLInputElement>('photo-input');
    input.addEventListener('change', () => {
      this.add([...(input.files ?? [])]);
      input.value = '';
    });
    this.wireDrop($('dropzone'));
    this.clear.addEventListener('click', () => this.removeAll());
    // Fetch the detector while the visitor picks photos.
    loadFaceDetector().catch(() => {});
  }

  private wireDrop(zone: HTMLElement): void {
    const over = (on: boolean) => (ev: DragEvent) => {
      ev.preventDefault();
      zone.classList.toggle('dragging', on);
    };
    zone.addEventListener('dragenter', over(true));
    zone.addEventListener('dragover', over(true));
    zone.addEventListener('dragleave', over(false));
    zone.addEventListener('drop', (ev) => {
      over(false)(ev);
      this.add([...(ev.dataTransfer?.files ?? [])]);
    });
  }

  /**
   * The loaded generator's side (from the fine-tuner's start): photos wait for it, so that each crop is
   * cut from the photo at the model's own size (a 128 px model is never given 64 px crops enlarged).
   */
  modelLoaded(size: number): void {
    this.setSize(size);
    this.sizeKnown = true;
    this.showCount();
  }

  get included(): Float32Array[] {
    return this.entries.filter((e) => e.included).map((e) => e.pixels);
  }

  get working(): boolean {
    return this.busy > 0;
  }

  add(files: File[]): void {
    if (files.length === 0) return;
    const { take, message } = capPhotos(files, this.entries.length + this.busy);
    if (message) this.problem('Too many photos', message);
    this.busy += take.length;
    this.showCount();
    for (const file of take) this.queue = this.queue.then(() => this.process(file));
  }

  private async process(file: File): Promise<void> {
    try {
      const photo = await readPhoto(file);
      try {
        const crop = await cropFace(photo.bitmap, await this.size);
        const entry: CropEntry = {
          id: this.nextId++,
          name: photo.name,
          pixels: crop.pixels,
          face: crop.face,
          included: crop.face,
        };
        this.entries.push(entry);
        this.list.append(this.thumb(entry, this.entries.length, photo.notes));
        if (!crop.face)
          this.problem(photo.name, 'No face was found. Its centre crop is shown; tick "use" to train on it anyway.');
      } finally {
        photo.bitmap.close();
      }
    } catch (err) {
      const name = err instanceof PhotoError ? err.fileName : file.name;
      this.problem(name, err instanceof Error ? err.message : String(err));
    } finally {
      this.busy--;
      this.showCount();
      this.onChange();
    }
  }

  /** `n`: the photo's place in the list, so each checkbox has a name of its own ("use photo 3 (IMG_0042.jpg)"). */
  private thumb(entry: CropEntry, n: number, notes: string[]): HTMLLIElement {
    const li = document.createElement('li');
    li.className = entry.face ? 'crop' : 'crop no-face';
    li.dataset.face = String(entry.face);
    const canvas = document.createElement('canvas');
    canvas.className = 'pixelated';
    drawCrop(canvas, entry.pixels);
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', `${entry.face ? 'Face crop' : 'Centre crop (no face found)'} of ${entry.name}`);
    const label = document.createElement('label');
    const box = Object.assign(document.createElement('input'), { type: 'checkbox', checked: entry.included });
    // Starts with the visible "use", so speech input ("click use") still finds it.
    box.setAttribute('aria-label', `use photo ${n} (${entry.name})`);
    box.addEventListener('change', () => {
      entry.included = box.checked;
      this.showCount();
      this.onChange();
    });
    label.append(box, ` use`);
    const caption = Object.assign(document.createElement('span'), {
      className: 'crop-name',
      textContent: entry.name,
      title: [entry.name, ...notes].join('\n'),
    });
    li.append(canvas, label, caption);
    if (notes.length)
      li.append(
        Object.assign(document.createElement('span'), { className: 'crop-note', textContent: notes.join('; ') }),
      );
    return li;
  }

  private problem(name: string, message: string): void {
    const li = document.createElement('li');
    li.append(Object.assign(document.createElement('strong'), { textContent: name }), `: ${message}`);
    this.problems.append(li);
    this.problems.hidden = false;
  }

  private showCount(): void {
    const used = this.entries.filter((e) => e.included).length;
    const parts = [`${used} of ${this.entries.length} crops will be used.`];
    const waiting = this.sizeKnown ? '' : ' (once the model has loaded)';
    if (this.busy > 0) parts.push(`Reading ${this.busy} more photo${this.busy === 1 ? '' : 's'}${waiting}…`);
    this.status.textContent = parts.join(' ');
    this.clear.disabled = this.entries.length === 0 && this.problems.childElementCount === 0;
  }

  private removeAll(): void {
    this.entries.length = 0;
    this.list.replaceChildren();
    this.problems.replaceChildren();
    this.problems.hidden = true;
    this.showCount();
    this.onChange();
  }
}
