/**
 * The fine-tune step: reads the settings, starts, pauses, resumes and stops
 * the worker's run, and shows progress with ETA, the loss chart and the
 * live sample grid from fixed noise.
 */
import { finetuneConfig, IDENTITY_TERM, type FinetuneConfig, type FinetunePhase } from '../../lib/finetune.ts';
import { formatDuration } from '../../lib/format.ts';
import { gridRgba, squareSide } from '../../lib/images.ts';
import type { GenerateReply, TrainEvent } from '../../workers/finetune-protocol.ts';
import { LossChart } from './loss-chart.ts';
import type { FinetuneClient } from './worker-client.ts';

/** The live grid's fixed noise: seeds 1 to 16. */
export const SAMPLE_SEEDS = Array.from({ length: 16 }, (_, i) => i + 1);

export const STEP_MARK = 'facegan:finetune-step';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const PHASES: Record<FinetunePhase, string> = {
  project: 'projecting your photos',
  tune: 'tuning',
  likeness: 'fitting the likeness',
};

/** The progress line's time left: "1 min 05 s", or "estimating…" until the first steps are timed. */
const timeLeft = (seconds: number | null) =>
  seconds === null || !Number.isFinite(seconds) ? 'estimating…' : formatDuration(seconds);

/** `count` faces at the generator's size (read off the pixels) as a grid of `cols` columns. */
export function drawGrid(canvas: HTMLCanvasElement, pixels: Float32Array, count: number, cols: number): void {
  const side = squareSide(pixels.length, count);
  const grid = gridRgba(pixels, count, cols, side);
  canvas.width = grid.width;
  canvas.height = grid.height;
  // 128 px faces are shown smaller than drawn: finetune.css scales them smoothly, not by dropping pixels.
  canvas.dataset.size = String(side);
  canvas
    .getContext('2d')!
    .putImageData(new ImageData(grid.data as Uint8ClampedArray<ArrayBuffer>, grid.width, grid.height), 0, 0);
}

export class TrainingPanel {
  running = false;
  paused = false;
  /** The latest run's settings and photo count, for the downloaded model's manifest. */
  lastRun: { config: FinetuneConfig; photos: number } | null = null;
  /** Losses of the latest run, for the page's own checks and tests. */
  readonly losses: { step: number; phase: FinetunePhase; loss: number }[] = [];
  onStateChange: () => void = () => {};
  private chart: LossChart | null = null;
  private readonly form = $<HTMLFormElement>('train-form');
  private readonly start = $<HTMLButtonElement>('train-start');
  private readonly pause = $<HTMLButtonElement>('train-pause');
  private readonly stopButton = $<HTMLButtonElement>('train-stop');
  private readonly progress = $<HTMLProgressElement>('train-progress');
  private readonly eta = $('train-eta');
  private readonly status = $('train-status');
  private readonly error = $('train-error');
  private readonly notice = $('train-notice');
  private readonly samples = $<HTMLCanvasElement>('train-samples');

  constructor(
    private client: FinetuneClient,
    private readonly crops: () => Float32Array[],
  ) {
    this.start.addEventListener('click', () => void this.begin());
    this.pause.addEventListener('click', () => void this.togglePause());
    this.stopButton.addEventListener('click', () => void this.client.request({ type: 'stop' }));
  }

  setClient(client: FinetuneClient): void {
    this.client = client;
  }

  /** Enable or disable the start button (the page knows whether the worker and the photos are ready). */
  setReady(ready: boolean, why = ''): void {
    this.start.disabled = !ready || this.running;
    this.start.title = ready ? '' : why;
  }

  readConfig(): FinetuneConfig {
    const f = new FormData(this.form);
    return finetuneConfig({
      steps: Number(f.get('steps')),
      projectionSteps: Number(f.get('projectionSteps')),
      likenessSteps: Number(f.get('likenessSteps')),
      batch: Number(f.get('batch')),
      learningRate: Number(f.get('learningRate')),
      augment: f.get('augment') === 'on',
      ...(f.get('identity') === 'on' ? IDENTITY_TERM : {}),
    });
  }

  /** Draw the live grid from the current generator (before any training, or after import or reset). */
  async showSamples(): Promise<void> {
    const { pixels } = await this.client.request<GenerateReply>({
      type: 'generate',
      which: 'finetuned',
      seeds: SAMPLE_SEEDS,
    });
    drawGrid(this.samples, pixels, SAMPLE_SEEDS.length, 4);
  }

  private showError(message: string): void {
    this.error.textContent = message;
    this.error.hidden = false;
  }

  private async begin(): Promise<void> {
    this.error.hidden = true;
    this.notice.hidden = true;
    delete this.status.dataset.done;
    delete this.eta.dataset.step;
    let config: FinetuneConfig;
    try {
      config = this.readConfig();
    } catch (err) {
      this.showError(`Check the settings: ${(err as Error).message}.`);
      return;
    }
    const crops = this.crops().map((c) => c.slice());
    this.lastRun = { config, photos: crops.length };
    this.chart ??= new LossChart($('loss-chart'));
    this.chart.truncate();
    this.losses.length = 0;
    performance.clearMarks(STEP_MARK);
    this.setRunning(true);
    this.status.textContent = `Fine-tuning on ${crops.length} crops…`;
    try {
      await this.client.request(
        { type: 'train', crops, config, sampleSeeds: SAMPLE_SEEDS },
        crops.map((c) => c.buffer),
      );
    } catch (err) {
      this.setRunning(false);
      this.showError(`Fine-tuning could not start: ${(err as Error).message}`);
    }
  }

  private async togglePause(): Promise<void> {
    this.paused = !this.paused;
    await this.client.request({ type: this.paused ? 'pause' : 'resume' });
    this.pause.textContent = this.paused ? 'Resume' : 'Pause';
    this.pause.setAttribute('aria-pressed', String(this.paused));
    this.status.textContent = this.paused ? 'Paused.' : 'Fine-tuning…';
  }

  private setRunning(running: boolean): void {
    this.running = running;
    this.paused = false;
    this.pause.textContent = 'Pause';
    this.pause.setAttribute('aria-pressed', 'false');
    this.pause.disabled = !running;
    this.stopButton.disabled = !running;
    this.start.disabled = running;
    for (const el of this.form.elements) (el as HTMLInputElement).disabled = running;
    this.onStateChange();
  }

  handle(event: TrainEvent): void {
    switch (event.type) {
      case 'progress': {
        // After a lost GPU context the run resumes from an earlier step: drop the steps it will redo.
        if ((this.losses.at(-1)?.step ?? 0) >= event.step) {
          while ((this.losses.at(-1)?.step ?? 0) >= event.step) this.losses.pop();
          this.chart?.truncate(event.step - 1);
        }
        this.losses.push({ step: event.step, phase: event.phase, loss: event.loss });
        // Step timestamps and the time-left estimate, for bench/finetune-bench.ts.
        performance.mark(STEP_MARK, { detail: { step: event.step, secondsLeft: event.secondsLeft } });
        this.chart?.add(event.step, event.phase, event.loss);
        this.progress.value = event.step / event.total;
        const rate = event.stepsPerSecond ? `${event.stepsPerSecond.toFixed(1)} steps/s` : '';
        const phase = PHASES[event.phase];
        this.eta.textContent = `Step ${event.step} of ${event.total} (${phase}) · ${rate} · about ${timeLeft(event.secondsLeft)} left`;
        this.eta.dataset.step = String(event.step);
        break;
      }
      case 'samples':
        drawGrid(this.samples, event.pixels, event.count, 4);
        $('samples-step').textContent = String(event.step);
        this.samples.dataset.step = String(event.step);
        break;
      case 'reconstructions': {
        const canvas = $<HTMLCanvasElement>('train-reconstructions');
        drawGrid(canvas, event.pixels, event.count, Math.min(8, event.count));
        canvas.dataset.step = String(event.step);
        $('recon-step').textContent = `, step ${event.step}`;
        break;
      }
      case 'notice':
        this.notice.textContent = event.message;
        this.notice.hidden = false;
        $('ft-backend').textContent = event.backend.toUpperCase();
        $('ft-backend').dataset.backend = event.backend;
        break;
      case 'done': {
        this.setRunning(false);
        const likeness = document.getElementById('likeness') as HTMLInputElement | null;
        if (likeness) {
          likeness.value = '1';
          $('likeness-value').textContent = '1.0';
        }
        this.status.textContent = event.message;
        this.status.dataset.done = event.reason;
        if (event.reason === 'failed') this.showError(event.message);
        break;
      }
    }
  }
}
