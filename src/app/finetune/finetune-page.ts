/**
 * The fine-tune page: starts the worker (on the backend the visitor or
 * `?backend=` asks for), loads the pretrained pair (from `?model=`, a path
 * on this site, for tests and experiments), and wires the three steps.
 */
import type { BackendPreference, InitReply, InspectReply, TrainEvent } from '../../workers/finetune-protocol.ts';
import { PhotoPanel } from './photos.ts';
import { ProvenanceRecord } from './provenance.ts';
import { ResultsPanel } from './results.ts';
import { TrainingPanel } from './training.ts';
import { FinetuneClient } from './worker-client.ts';

const BASE = import.meta.env.BASE_URL.replace(/\/$/, '');
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** Only paths on this site: the page must never fetch from another origin. */
export function modelBase(param: string | null): string {
  if (!param) return `${BASE}/models/`;
  if (!param.startsWith('/') || param.startsWith('//') || param.includes('\\')) {
    throw new Error(`?model= must be a path on this site such as /models/, not "${param}"`);
  }
  return param.endsWith('/') ? param : `${param}/`;
}

/** `?tfjsflags=NAME:value,...` (TensorFlow.js' own syntax) for the worker, which sets each once the backend that defines it is loaded. */
export function tfjsFlags(param: string | null): Record<string, boolean | number> {
  const flags: Record<string, boolean | number> = {};
  for (const pair of (param ?? '').split(',').filter(Boolean)) {
    const [name, raw] = pair.split(':');
    const value = raw === 'true' ? true : raw === 'false' ? false : Number(raw);
    if (!name || (typeof value === 'number' && !Number.isFinite(value)))
      throw new Error(`?tfjsflags= entry "${pair}" is not NAME:true, NAME:false or NAME:number`);
    flags[name] = value;
  }
  return flags;
}

function backendParam(value: string | null): BackendPreference {
  return value === 'webgpu' || value === 'webgl' || value === 'wasm' || value === 'cpu' ? value : 'auto';
}

class FinetunePage {
  private client = new FinetuneClient();
  private ready = false;
  private readonly photos = new PhotoPanel();
  private readonly training: TrainingPanel;
  private readonly results: ResultsPanel;
  private readonly backendChoice = $<HTMLSelectElement>('ft-backend-choice');
  private readonly provenance: ProvenanceRecord;

  constructor(
    private readonly model: string,
    backend: BackendPreference,
    private readonly flags: Record<string, boolean | number>,
  ) {
    this.training = new TrainingPanel(this.client, () => this.photos.included);
    this.provenance = new ProvenanceRecord(model);
    this.results = new ResultsPanel(this.client, this.provenance);
    this.photos.onChange = () => this.refresh();
    this.training.onStateChange = () => this.refresh();
    this.backendChoice.value = backend;
    this.backendChoice.addEventListener('change', () => void this.start(backendParam(this.backendChoice.value)));
    void this.start(backend);
  }

  private wire(client: FinetuneClient): void {
    client.onEvent = (ev) => {
      this.training.handle(ev);
      if (ev.type === 'done') {
        this.recordRun(ev);
        void this.results.compare();
      }
    };
    client.onCrash = (message) => {
      this.ready = false;
      this.showError(`${message}. Reload the page to start again.`);
      this.refresh();
    };
  }

  /** A run that got past the projection changed the generator: the manifest of its download lists it. */
  private recordRun(done: Extract<TrainEvent, { type: 'done' }>): void {
    const run = this.training.lastRun;
    if (!run || (done.step <= run.config.projectionSteps && done.reason !== 'finished')) return;
    this.provenance.addRun({
      ...run,
      steps: done.step,
      outcome: done.reason,
      backend: $('ft-backend').dataset.backend ?? '',
      finishedAt: new Date().toISOString(),
    });
  }

  private showError(message: string): void {
    const el = $('train-error');
    el.textContent = message;
    el.hidden = false;
  }

  /** Bumped by every start: a start that a later choice overtook must not touch the page. */
  private starts = 0;

  /**
   * (Re)start the worker: used at load and whenever the visitor picks a
   * backend, also while the worker is still starting (its choice is made
   * once, at init, so a new choice needs a new worker).
   */
  private async start(backend: BackendPreference): Promise<void> {
    if (this.training.running) return;
    const id = ++this.starts;
    if (id > 1) this.replaceWorker();
    this.ready = false;
    this.refresh();
    this.wire(this.client);
    $('ft-backend').textContent = 'starting…';
    $('ft-backend').dataset.backend = '';
    try {
      const info = await this.client.request<InitReply>({
        type: 'init',
        modelBase: this.model,
        wasmPath: `${BASE}/tfjs-wasm/`,
        backend,
        flags: this.flags,
      });
      if (id !== this.starts) return;
      this.photos.modelLoaded(info.size);
      this.showRuntime(info);
      if (info.restored) this.provenance.restored();
      else this.provenance.pretrained();
      this.ready = true;
      $('train-error').hidden = true;
      await Promise.all([this.results.compare(), this.training.showSamples()]);
    } catch (err) {
      if (id !== this.starts) return;
      this.showError(`The fine-tuner could not start: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.refresh();
  }

  /** A fresh worker for the panels; the old one (ready or still starting) is closed without a crash message. */
  private replaceWorker(): void {
    this.client.onCrash = () => {};
    this.client.terminate();
    this.client = new FinetuneClient();
    this.training.setClient(this.client);
    this.results.setClient(this.client);
  }

  private showRuntime(info: InitReply): void {
    const el = $('ft-backend');
    el.textContent = info.label;
    el.dataset.backend = info.backend;
    const m = (n: number) => `${(n / 1e6).toFixed(2)}M`;
    $('ft-model').textContent =
      `(generator ${m(info.generatorParams)} parameters, discriminator ${m(info.discriminatorParams)}${info.restored ? '; your saved fine-tuned model was loaded' : ''})`;
    $('ft-model').dataset.restored = String(info.restored);
    const list = $<HTMLUListElement>('ft-fallbacks');
    list.replaceChildren(
      ...info.fallbacks.map((f) =>
        Object.assign(document.createElement('li'), { textContent: `${f.name.toUpperCase()}: ${f.reason}.` }),
      ),
    );
    list.hidden = info.fallbacks.length === 0;
  }

  private refresh(): void {
    const crops = this.photos.included.length;
    const why = !this.ready ? 'The model is still loading.' : crops === 0 ? 'Add photos with a face first.' : '';
    this.training.setReady(this.ready && crops > 0 && !this.photos.working, why);
    this.results.setEnabled(this.ready && !this.training.running);
    this.backendChoice.disabled = this.training.running;
  }

  /** For the page's end-to-end tests: tensor counts, weight change, a simulated GPU loss. */
  testHooks() {
    return {
      inspect: () => this.client.request<InspectReply>({ type: 'inspect' }),
      loseContext: () => this.client.request<boolean>({ type: 'loseContext' }),
      losses: () => [...this.training.losses],
    };
  }
}

try {
  const params = new URLSearchParams(location.search);
  const page = new FinetunePage(
    modelBase(params.get('model')),
    backendParam(params.get('backend')),
    tfjsFlags(params.get('tfjsflags')),
  );
  (window as unknown as { faceganFinetune: unknown }).faceganFinetune = page.testHooks();
} catch (err) {
  const el = $('train-error');
  el.textContent = err instanceof Error ? err.message : String(err);
  el.hidden = false;
}
