/**
 * The results step: the same seeds through the pretrained and the
 * fine-tuned generator side by side; open it on the home page, save it in
 * this browser (IndexedDB), download it as one .zip, import it again, reset
 * to pretrained.
 */
import { storeTunedBundle } from '../../browser/tuned-model.ts';
import { bundleName, isZip, packTuned, unpackTuned, type WeightDtype } from '../../lib/model-bundle.ts';
import { generatorArtifacts } from '../../lib/model-files.ts';
import type { ExportReply, GenerateReply, SaveReply } from '../../workers/finetune-protocol.ts';
import type { ProvenanceRecord } from './provenance.ts';
import { drawGrid } from './training.ts';
import type { FinetuneClient } from './worker-client.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const BUTTONS = ['compare', 'compare-random', 'model-open-home', 'model-save', 'model-export', 'model-reset'];
const HOME_URL = `${import.meta.env.BASE_URL.replace(/\/$/, '')}/?model=tuned`;

/** Hand bytes to the browser as a download named `name`. */
function saveBytes(bytes: Uint8Array, name: string): void {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/zip' }));
  Object.assign(document.createElement('a'), { href: url, download: name }).click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

const megabytes = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

/** "1 2, 3" to [1, 2, 3]: whole numbers from 0 to 2^32 - 1, at most 16. */
export function parseSeeds(text: string): number[] {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  if (parts.length === 0) throw new Error('enter at least one seed');
  if (parts.length > 16) throw new Error('at most 16 seeds at a time');
  return parts.map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
      throw new Error(`"${p}" is not a seed (a whole number from 0 to 4294967295)`);
    return n;
  });
}

export class ResultsPanel {
  private readonly status = $('model-status');
  /** The model actions in order; each waits for the one before. */
  private queue: Promise<void> = Promise.resolve();
  private readonly seedsInput = $<HTMLFormElement>('compare-form').elements.namedItem('seeds') as HTMLInputElement;

  constructor(
    private client: FinetuneClient,
    private readonly provenance: ProvenanceRecord,
  ) {
    $<HTMLFormElement>('compare-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.compare();
    });
    $('compare-random').addEventListener('click', () => {
      this.seedsInput.value = Array.from({ length: 8 }, () => Math.floor(Math.random() * 1e6)).join(' ');
      void this.compare();
    });
    $('model-open-home').addEventListener(
      'click',
      () => void this.act('open-home', 'Keeping it in this browser…', () => this.openHome()),
    );
    $('model-save').addEventListener('click', () => void this.act('save', 'Saving…', () => this.save()));
    $('model-export').addEventListener(
      'click',
      () => void this.act('download', 'Preparing the download…', () => this.download()),
    );
    $('model-reset').addEventListener('click', () => void this.act('reset', 'Resetting…', () => this.reset()));
    const likeness = $<HTMLInputElement>('likeness');
    likeness.addEventListener('input', () => {
      $('likeness-value').textContent = Number(likeness.value).toFixed(1);
    });
    likeness.addEventListener(
      'change',
      () =>
        void this.act('likeness', 'Redrawing at this likeness…', async () => {
          await this.client.request({ type: 'likeness', value: Number(likeness.value) });
          this.provenance.setLikeness(Number(likeness.value));
          await this.drawComparison();
          return `Likeness ${Number(likeness.value).toFixed(1)}: the fine-tuned model and its download now draw faces this close to your photos.`;
        }),
    );
    const input = $<HTMLInputElement>('model-import');
    input.addEventListener('change', () => {
      const files = [...(input.files ?? [])];
      input.value = '';
      void this.act('import', 'Importing…', () => this.importFiles(files));
    });
  }

  setClient(client: FinetuneClient): void {
    this.client = client;
  }

  setEnabled(enabled: boolean): void {
    for (const id of BUTTONS) $<HTMLButtonElement>(id).disabled = !enabled;
    $<HTMLInputElement>('likeness').disabled = !enabled;
    $<HTMLInputElement>('model-import').disabled = !enabled;
    $<HTMLInputElement>('model-float32').disabled = !enabled;
    $('model-import-label').classList.toggle('disabled', !enabled);
  }

  /**
   * Runs one action on the model after any still running (the comparison drawn
   * when a run ends, a click on Download meanwhile), so each one's message is
   * shown in turn instead of a later message overwriting an earlier result.
   * `data-action` names the action whose result the status shows. An action must not call act itself (it
   * would wait for its own end): inside one, draw with drawComparison.
   */
  private act(action: string, busy: string, work: () => Promise<string>): Promise<void> {
    const run = async () => {
      this.status.textContent = busy;
      delete this.status.dataset.result;
      this.status.dataset.action = action;
      try {
        this.status.textContent = await work();
        this.status.dataset.result = 'ok';
      } catch (err) {
        this.status.textContent = `That did not work: ${err instanceof Error ? err.message : String(err)}.`;
        this.status.dataset.result = 'error';
      }
    };
    this.queue = this.queue.then(run);
    return this.queue;
  }

  /** Draw the comparison as an action of its own (queued after any running one). */
  async compare(): Promise<void> {
    await this.act('compare', 'Generating…', () => this.drawComparison());
  }

  /** The same seeds through both generators; actions that change the model call it inside their own turn. */
  private async drawComparison(): Promise<string> {
    const seeds = parseSeeds(this.seedsInput.value);
    for (const which of ['pretrained', 'finetuned'] as const) {
      const { pixels } = await this.client.request<GenerateReply>({ type: 'generate', which, seeds });
      drawGrid($(`compare-${which}`), pixels, seeds.length, Math.min(seeds.length, 8));
    }
    return `Seeds ${seeds.join(', ')}: pretrained above, fine-tuned below.`;
  }

  private async save(): Promise<string> {
    const { savedAt } = await this.client.request<SaveReply>({ type: 'save' });
    await this.provenance.save();
    return `Saved in this browser at ${new Date(savedAt).toLocaleTimeString()}. It is loaded again when you come back.`;
  }

  private get dtype(): WeightDtype {
    return $<HTMLInputElement>('model-float32').checked ? 'float32' : 'float16';
  }

  /** The fine-tuned generator as the one-file download: weights, topology and manifest. */
  private async bundle(dtype: WeightDtype): Promise<Uint8Array> {
    const { files } = await this.client.request<ExportReply>({ type: 'export' });
    return packTuned(generatorArtifacts(files), await this.provenance.resolve(), { dtype });
  }

  private async download(): Promise<string> {
    const dtype = this.dtype;
    const bytes = await this.bundle(dtype);
    const name = bundleName(dtype);
    saveBytes(bytes, name);
    return `Downloaded ${name} (${megabytes(bytes.length)}, ${dtype} weights). Import it here to use this model again.`;
  }

  /** Keep the model for the home page (and, like Save, for this page), then go there. */
  private async openHome(): Promise<string> {
    await storeTunedBundle(await this.bundle(this.dtype));
    await this.save();
    location.assign(HOME_URL);
    return 'Opening the home page with your fine-tuned model…';
  }

  private async importFiles(files: File[]): Promise<string> {
    if (files.length === 0) return 'No files chosen.';
    const payload = await Promise.all(
      files.map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })),
    );
    const zip = payload.length === 1 && isZip(payload[0].bytes) ? unpackTuned(payload[0].bytes) : null;
    const got = await this.client.request<{ generator: boolean; discriminator: boolean }>({
      type: 'import',
      files: zip ? zip.files : payload,
    });
    this.provenance.imported(zip?.manifest ?? null);
    await this.drawComparison();
    if (zip) return `Imported the fine-tuned generator from ${files[0].name} (the discriminator is unchanged).`;
    return got.discriminator
      ? 'Imported the generator and discriminator.'
      : 'Imported the generator (the discriminator is unchanged).';
  }

  private async reset(): Promise<string> {
    await this.client.request({ type: 'reset' });
    this.provenance.pretrained();
    this.provenance.forget();
    await this.drawComparison();
    return 'Back to the pretrained model; the copy saved in this browser was removed.';
  }
}
