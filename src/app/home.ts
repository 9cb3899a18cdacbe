/**
 * The home page: start a backend, load the generator (the site's, or with
 * `?model=tuned` the fine-tuned one kept in this browser), show a grid of
 * faces, "Generate" for new ones, and a face's own view (seed in the URL)
 * when one is clicked or a shared link names it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DirectionsFile } from '../lib/directions.ts';
import { randomSeed } from '../lib/latent.ts';
import type { TunedManifest } from '../lib/model-bundle.ts';
import { AttributeSliders, loadDirections } from './attribute-sliders.ts';
import { FaceGrid } from './face-grid.ts';
import {
  describeTuned,
  loadParentDirections,
  loadTunedModel,
  ModelChoiceError,
  modelSource,
  pretrainedAddress,
} from './home-model.ts';
import { PhotoStart } from './photo-start.ts';
import { FaceView, type FaceViewElements } from './face-view.ts';
import { buildFaceModel, downloadFaceModel, renderSeeds, type FaceModel } from './generator.ts';
import { readFaceLink, withFaceLink, type FaceLink } from './seed-url.ts';
import { StatusLine, type StatusElements } from './status.ts';
import { startRuntime, webglCanvas } from './tf-runtime.ts';

const GRID_SIZE = 16;

/** What the end-to-end tests and benchmarks read from the page. */
export interface FaceganHook {
  numTensors(): number;
  backend(): string;
}

declare global {
  interface Window {
    __facegan?: FaceganHook;
  }
}

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page is missing #${id}`);
  return el as T;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

function faceViewElements(): FaceViewElements {
  return {
    root: byId('face-view'),
    canvas: byId('face-large'),
    title: byId('face-title'),
    download: byId('download'),
    close: byId('close-face'),
    morphNew: byId('morph-new'),
    morphPlay: byId('morph-play'),
    slider: byId('morph-t'),
    morphLabel: byId('morph-label'),
    addressHint: byId('face-address-hint'),
    editsHint: byId('attributes-address-hint'),
  };
}

function watchContextLoss(status: StatusLine, generateButton: HTMLButtonElement): void {
  webglCanvas()?.addEventListener('webglcontextlost', () => {
    generateButton.disabled = true;
    const retry = withFaceLink(new URL(location.href), null);
    retry.searchParams.set('backend', 'wasm');
    status.showError(
      'The WebGL context was lost (the graphics driver reset or the tab used too much GPU memory), so no more faces can be drawn with WebGL.',
      { text: 'Reload using WASM instead', href: retry.href },
    );
  });
}

/** The link in the address bar, or null (with a visible error) when it is malformed. */
function linkFromAddress(status: StatusLine): FaceLink | null {
  try {
    return readFaceLink(new URL(location.href));
  } catch (err) {
    status.showError(`${message(err)}. Showing new faces instead.`);
    return null;
  }
}

class HomePage {
  private generation = 0;
  private readonly grid: FaceGrid;
  private readonly view: FaceView;
  sliders: AttributeSliders | null = null;

  constructor(
    readonly model: FaceModel,
    private readonly button: HTMLButtonElement,
    private readonly status: StatusLine,
  ) {
    this.grid = new FaceGrid(byId('faces'), {
      onSelect: (face) => void this.openFace({ seed: face.seed!, morph: null }, true),
    });
    this.view = new FaceView(faceViewElements(), model, (link) => this.setAddress(link, false));
    this.view.onClose = () => this.returnFocus();
    button.addEventListener('click', () => this.generate().catch((err) => this.status.showError(message(err))));
    addEventListener('popstate', () => void this.followAddress());
  }

  async generate(): Promise<void> {
    this.button.disabled = true;
    this.grid.setBusy(true);
    try {
      const started = performance.now();
      const seeds = Array.from({ length: GRID_SIZE }, randomSeed);
      this.grid.show(await renderSeeds(this.model, seeds));
      this.generation++;
      this.grid.root.dataset.generation = String(this.generation);
      // Read by bench/web-bench.ts: time to first faces, and the cost of each batch.
      if (this.generation === 1) performance.mark('facegan:first-faces');
      performance.measure('facegan:generate', { start: started, end: performance.now() });
    } finally {
      this.button.disabled = false;
    }
  }

  /** Sliders for the shipped attribute directions, restored from the address. */
  attachSliders(directions: DirectionsFile): void {
    const sliders = new AttributeSliders(
      { root: byId('attributes'), list: byId('attribute-list'), reset: byId('attributes-reset') },
      directions.attributes,
      () => void this.view.redraw(),
      () => {
        if (this.view.isOpen && !this.view.fromPhoto) this.setAddress(this.view.link, false);
      },
    );
    sliders.set(sliders.readFrom(new URL(location.href)));
    this.view.adjust = (z) => sliders.apply(z);
    this.sliders = sliders;
  }

  /**
   * Focus leaves the closed (hidden) view for the face that was opened, while
   * the grid still shows it; else for the photo picker (a projected photo) or
   * "Generate" (a face from a link, or one a new batch replaced), never the page body.
   */
  private returnFocus(): void {
    const tile = this.view.fromPhoto ? null : this.grid.tileShowing(this.view.link.seed);
    const fallback = this.view.fromPhoto ? document.getElementById('own-photo') : this.button;
    (tile ?? fallback ?? this.button).focus();
  }

  /** "Start from your photo": the projection opens in the face view (unedited; the address keeps no photo). */
  attachPhotoStart(): void {
    new PhotoStart(
      {
        input: byId('own-photo'),
        status: byId('own-photo-status'),
        photo: byId('own-photo-crop'),
        projection: byId('own-photo-projection'),
        result: byId('own-photo-result'),
        distance: byId('own-photo-distance'),
      },
      this.model,
      (z) => {
        this.setAddress(null, false);
        void this.view
          .openLatent(z, 'Your photo, projected')
          .then(() => byId('face-title').scrollIntoView({ block: 'nearest', behavior: 'smooth' }));
      },
    );
    byId('own-photo-panel').hidden = false;
  }

  /** The line that says a fine-tuned model is on show, with the way back to the site's generator. */
  showTuned(manifest: TunedManifest): void {
    this.view.namePrefix = 'facegan-tuned';
    byId('model-origin').textContent = describeTuned(manifest);
    const back = byId<HTMLAnchorElement>('model-back');
    // The same face and edits on the site's generator: the address is read when the link is followed.
    back.addEventListener('click', () => (back.href = pretrainedAddress(new URL(location.href)).href));
    const line = byId('model-line');
    line.dataset.model = 'tuned';
    line.hidden = false;
  }

  async openFace(link: FaceLink, push: boolean): Promise<void> {
    // A new face from the grid starts unedited; a face from the address keeps the address's edits.
    if (push) this.sliders?.set({});
    if (push) this.setAddress(link, true);
    await this.view.open(link);
    const title = byId('face-title');
    // Move focus only when the visitor asked for the face, not on page load.
    if (push) title.focus({ preventScroll: true });
    title.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  /** Back/forward: show whatever the address now names. */
  async followAddress(): Promise<void> {
    const link = linkFromAddress(this.status);
    this.sliders?.set(this.sliders.readFrom(new URL(location.href)));
    if (link) await this.view.open(link);
    else if (this.view.isOpen) byId('face-view').hidden = true;
  }

  private setAddress(link: FaceLink | null, push: boolean): void {
    let next = withFaceLink(new URL(location.href), link);
    if (this.sliders) {
      if (!link) this.sliders.set({});
      next = this.sliders.writeTo(next);
    }
    if (next.href === location.href) return;
    if (push) history.pushState(null, '', next);
    else history.replaceState(null, '', next);
  }
}

function statusElements(): StatusElements {
  return {
    backend: byId('backend'),
    why: byId('backend-why'),
    fallbacks: byId('fallbacks'),
    loading: byId('loading'),
    progress: byId<HTMLProgressElement>('progress'),
    error: byId('error'),
  };
}

interface Loaded {
  artifacts: tf.io.ModelArtifacts;
  /** Set for a fine-tuned model from this browser. */
  tuned: TunedManifest | null;
}

/** The generator's files: the site's (downloaded, with progress) or the tuned one from this browser. */
function loadArtifacts(status: StatusLine): Promise<Loaded> {
  const loading =
    modelSource(new URL(location.href)) === 'tuned'
      ? loadTunedModel().then(({ artifacts, manifest }) => ({ artifacts, tuned: manifest }))
      : downloadFaceModel(undefined, (f) => status.showProgress(f)).then((artifacts) => ({ artifacts, tuned: null }));
  // Handled where it is awaited; this keeps the browser from reporting it as unhandled in between.
  loading.catch(() => undefined);
  return loading;
}

/** The site's directions for its own generator; for a tuned one, those of the generator it was tuned from. */
async function attachDirections(page: HomePage, { artifacts, tuned }: Loaded): Promise<void> {
  const zDim = page.model.zDim;
  const { directions, reason } = await (
    tuned ? loadParentDirections(tuned, zDim) : loadDirections(artifacts, zDim)
  ).catch((err: unknown) => ({ directions: null, reason: message(err) }));
  if (!directions) {
    byId('attributes-note').textContent = reason ?? '';
    return;
  }
  page.attachSliders(directions);
  if (!tuned) return;
  const base = byId('attributes-base');
  base.textContent = `These are the base model's directions, fitted for ${tuned.parent!.name}, which this model was tuned from: on the tuned model they may move the face less cleanly.`;
  base.hidden = false;
}

async function main(): Promise<void> {
  const status = new StatusLine(statusElements());
  const button = byId<HTMLButtonElement>('generate');
  window.__facegan = { numTensors: () => tf.memory().numTensors, backend: () => tf.getBackend() };
  try {
    const link = linkFromAddress(status);
    // The weights load while the backend starts (WebGL start-up alone can take a second).
    const loading = loadArtifacts(status);
    const runtime = await startRuntime(new URL(location.href).searchParams.get('backend'));
    performance.mark('facegan:backend-ready');
    status.showBackend(runtime);
    watchContextLoss(status, button);
    const loaded = await loading;
    const model = await buildFaceModel(
      loaded.artifacts,
      loaded.tuned ? 'the fine-tuned model kept in this browser' : undefined,
    );
    performance.mark('facegan:model-ready');
    status.doneLoading();
    // The intro names the size of the faces: the loaded generator's, whatever the site ships.
    byId('face-size').textContent = `${model.size}×${model.size}`;
    const page = new HomePage(model, button, status);
    if (loaded.tuned) page.showTuned(loaded.tuned);
    // The first faces do not wait for the sliders (their file, and the weights' hash they are checked against):
    // a cold visit sees faces sooner. A face from a link opens once both are there.
    const sliders = attachDirections(page, loaded);
    page.attachPhotoStart();
    await page.generate();
    await sliders;
    if (link) await page.openFace(link, false);
  } catch (err) {
    if (err instanceof ModelChoiceError) {
      // A visitor's situation (no model kept, an unknown ?model=), not a fault: said on the page, with a way out.
      status.showError(message(err), err.hint);
      return;
    }
    console.error(err);
    status.showError(message(err));
  }
}

void main();
