/// <reference lib="webworker" />
/**
 * The fine-tuning worker: holds the pretrained pair and the visitor's
 * fine-tuned pair, runs the fine-tune session (src/lib/finetune.ts: the same
 * code `npm run finetune` runs) off the page's main thread, and answers the
 * page's requests (see finetune-protocol.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { generate } from '../lib/gan.ts';
import {
  copyGuardNote,
  EtaEstimator,
  FinetuneSession,
  finetuneConfig,
  meanWeightChange,
  type FinetuneConfig,
} from '../lib/finetune.ts';
import type { FaceEmbedder } from '../lib/identity.ts';
import { latentBatch } from '../lib/latent.ts';
import { bakeLatentShift, likenessAt, shiftLatents, type LatentShift } from '../lib/latent-shift.ts';
import { artifactsFromFiles, exportFiles } from '../lib/model-files.ts';
import { discriminatorImageSize, generatorImageSize, type ImageSize } from '../lib/models.ts';
import { fromArtifacts, toArtifacts } from '../lib/weights.ts';
import type {
  ExportReply,
  GenerateReply,
  InitReply,
  InspectReply,
  ModelFile,
  Reply,
  Request,
  RestoreReply,
  SaveReply,
  TrainEvent,
  Which,
} from './finetune-protocol.ts';
import {
  assertCompatible,
  buildPair,
  disposePair,
  fetchPretrained,
  isDiscriminator,
  isGenerator,
  loadFromBrowser,
  removeFromBrowser,
  saveToBrowser,
  snapshotPair,
  type Pair,
  type PairArtifacts,
} from './model-store.ts';
import {
  contextLost,
  gpuWasLost,
  leaveGpu,
  loseContextForTest,
  startBackend,
  whenContextLost,
} from './worker-backend.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

interface State {
  backend: string;
  pretrained: PairArtifacts;
  /** The pretrained generator, for side-by-side comparison. */
  reference: LayersModel;
  tuned: Pair;
  /** The last run's generator before its shift was baked in (as artifacts: no tensors held), and that shift. */
  likeness: { base: tf.io.ModelArtifacts; shift: LatentShift; value: number } | null;
}

let state: State | null = null;
let run: TrainingRun | null = null;
/** Set while a run loads what it needs (the recogniser), so a second start is refused then too. */
let starting = false;

/**
 * face-api's recogniser on the worker's backend, fetched from the site on
 * the first run that fits the likeness through it (6.4 MB); loaded again
 * after the backend changes (its weights went with a lost GPU context).
 */
async function faceEmbedder(fresh = false): Promise<FaceEmbedder> {
  const { loadFaceEmbedder, forgetFaceEmbedder } = await import('../browser/face-identity.ts');
  if (fresh) forgetFaceEmbedder();
  return loadFaceEmbedder();
}

function need(): State {
  if (!state) throw new Error('the fine-tuner has not started yet');
  return state;
}

function emit(event: TrainEvent, transfer: Transferable[] = []): void {
  scope.postMessage({ event }, transfer);
}

/** Let queued messages (pause, stop) run between steps: awaiting GPU reads alone may never yield to them. */
const nextTask = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

class ContextLostError extends Error {
  constructor() {
    super('the GPU context was lost');
  }
}

const GPU_NAMES: Record<string, string> = { webgl: 'WebGL', webgpu: 'WebGPU' };

/**
 * One training run. On the GPU (WebGL, WebGPU) it snapshots the pair after
 * completed steps (as often as costs at most a quarter of the training time),
 * so a lost context or device resumes on WASM from the last completed step that was saved.
 */
class TrainingRun {
  paused = false;
  stopped = false;
  private resume: (() => void) | null = null;
  private session: FinetuneSession;
  private checkpoint: { step: number; pair: PairArtifacts } | null = null;
  private checkpointEvery = 1;
  /** Bumped on recovery, so work from before it is recognised. */
  private epoch = 0;
  private readonly eta = new EtaEstimator();
  private readonly sampleZ: Float32Array;

  constructor(
    private readonly crops: Float32Array[],
    private readonly config: Partial<FinetuneConfig>,
    private readonly sampleSeeds: number[],
    private embedder: FaceEmbedder | undefined,
  ) {
    const s = need();
    this.session = new FinetuneSession(s.tuned.generator, s.tuned.discriminator, crops, config, embedder);
    this.sampleZ = latentBatch(sampleSeeds, s.reference.inputs[0].shape[1] as number);
  }

  setPaused(paused: boolean): void {
    this.paused = paused;
    if (!paused) this.resume?.();
  }

  stop(): void {
    this.stopped = true;
    this.resume?.();
  }

  private async waitWhilePaused(): Promise<void> {
    while (this.paused && !this.stopped)
      await new Promise<void>((r) => {
        this.resume = r;
      });
    this.resume = null;
  }

  private async emitSamples(): Promise<void> {
    const g = this.session.sampler;
    const n = this.sampleSeeds.length;
    const zDim = this.sampleZ.length / n;
    // Drawn as the exported model will draw them: the likeness shift applied (none before the projection).
    const z = tf.tensor2d(shiftLatents(this.sampleZ, this.session.shift()), [n, zDim]);
    const out = generate(g, z);
    z.dispose();
    const pixels = (await out.data()) as Float32Array;
    out.dispose();
    emit({ type: 'samples', step: this.session.stepsDone, pixels, count: n }, [pixels.buffer]);
  }

  /** Run GPU work, abandoned as a whole if the WebGL context or WebGPU device goes (GPU reads may never return then). */
  private async guarded(work: () => Promise<void>): Promise<void> {
    if (contextLost()) throw new ContextLostError();
    const watch = whenContextLost();
    try {
      await Promise.race([
        work(),
        watch.lost.then(() => {
          throw new ContextLostError();
        }),
      ]);
    } finally {
      watch.cancel();
    }
  }

  private async emitReconstructions(): Promise<void> {
    const pixels = await this.session.reconstructions();
    if (!pixels) return;
    emit({ type: 'reconstructions', step: this.session.stepsDone, pixels, count: this.crops.length }, [pixels.buffer]);
  }

  private async stepAndReport(epoch: number): Promise<void> {
    const started = performance.now();
    const phase = this.session.phase;
    const projecting = phase === 'project';
    const result = await this.session.step();
    if (contextLost()) throw new ContextLostError();
    // Kept before it is reported: every step the page shows survives a lost context.
    if (need().backend in GPU_NAMES) await this.maybeCheckpoint(performance.now() - started, epoch);
    // A step abandoned after a lost context must not report late.
    if (epoch !== this.epoch) return;
    this.eta.record(phase, performance.now() - started, this.session.stepWork(phase));
    const { stepsDone: step, config, totalSteps: total } = this.session;
    emit({
      type: 'progress',
      step,
      total,
      ...result,
      stepsPerSecond: this.eta.stepsPerSecond(),
      secondsLeft: this.eta.secondsLeft(this.session.remaining),
    });
    if (step % config.sampleEvery === 0 || this.session.finished) await this.emitSamples();
    // The photos as G draws them from their pivots: as soon as the projection ends, and again at the end.
    if ((projecting && this.session.phase !== 'project') || this.session.finished) await this.emitReconstructions();
  }

  private async maybeCheckpoint(stepMs: number, epoch: number): Promise<void> {
    const step = this.session.stepsDone;
    if (this.checkpoint && step - this.checkpoint.step < this.checkpointEvery && !this.session.finished) return;
    const started = performance.now();
    const pair = await snapshotPair(need().tuned);
    if (contextLost() || epoch !== this.epoch) throw new ContextLostError();
    this.checkpoint = { step, pair };
    const snapMs = performance.now() - started;
    this.checkpointEvery = Math.max(1, Math.ceil(snapMs / (0.25 * Math.max(stepMs, 1))));
  }

  /** Rebuild the pair on WASM from the last snapshot (or the pretrained weights) and carry on from there. */
  private async recover(): Promise<void> {
    const s = need();
    this.epoch++;
    try {
      this.session.dispose();
    } catch {
      /* optimizer state went with the context */
    }
    try {
      disposePair(s.tuned);
    } catch {
      /* the device took it */
    }
    try {
      s.reference.dispose();
    } catch {
      /* the context took it */
    }
    const gpu = GPU_NAMES[s.backend] ?? s.backend;
    const choice = await leaveGpu();
    s.backend = choice.name;
    const from = this.checkpoint ?? { step: 0, pair: s.pretrained };
    s.tuned = await buildPair(from.pair);
    s.reference = await fromArtifacts(s.pretrained.generator);
    if (this.embedder) this.embedder = await faceEmbedder(true);
    this.session = new FinetuneSession(
      s.tuned.generator,
      s.tuned.discriminator,
      this.crops,
      this.config,
      this.embedder,
    );
    this.session.stepsDone = from.step;
    emit({
      type: 'notice',
      backend: choice.name,
      message: `The GPU (${gpu}) context was lost during training. Training continues on ${choice.name.toUpperCase()} from step ${from.step}, the last completed step that was kept.`,
    });
  }

  async run(): Promise<void> {
    let reason: 'finished' | 'stopped' | 'failed' = 'finished';
    let message = '';
    let firstSamples = true;
    try {
      while (!this.session.finished && !this.stopped) {
        await this.waitWhilePaused();
        if (this.stopped) break;
        try {
          if (firstSamples) await this.guarded(() => this.emitSamples());
          firstSamples = false;
          await this.guarded(() => this.stepAndReport(this.epoch));
        } catch (err) {
          if (!(err instanceof ContextLostError) && !(await gpuWasLost())) throw err;
          await this.recover();
        }
        await nextTask();
      }
      if (this.stopped) reason = 'stopped';
      message = this.stopped
        ? `Stopped after ${this.session.stepsDone} steps.`
        : `Finished ${this.session.stepsDone} steps.`;
      if (this.session.phase !== 'project') {
        // The likeness shift goes into G's weights: the model now draws this person from ordinary noise.
        const s = need();
        // Baking settles the copy guard's pull first, so the stored shift is the one baked.
        const baked = await this.session.bake();
        s.likeness = { base: await toArtifacts(this.session.sampler), shift: this.session.shift(), value: 1 };
        s.tuned.generator.dispose();
        s.tuned = { ...s.tuned, generator: baked };
        message += copyGuardNote(this.session.copyChecks);
      }
    } catch (err) {
      reason = 'failed';
      message = `Fine-tuning failed at step ${this.session.stepsDone}: ${err instanceof Error ? err.message : String(err)}`;
    } finally {
      this.session.dispose();
    }
    emit({ type: 'done', reason, step: this.session.stepsDone, message });
  }

  get stepsDone(): number {
    return this.session.stepsDone;
  }
}

/** Set while init runs: a second init would race it for the backend. */
let initialising = false;

/** A worker settles on one backend, once: the page switches backends by starting a new worker. */
async function init(req: Extract<Request, { type: 'init' }>): Promise<InitReply> {
  if (state || initialising) throw new Error('the fine-tuner is already started: a new backend needs a new worker');
  initialising = true;
  try {
    return await initOn(req);
  } finally {
    initialising = false;
  }
}

async function initOn(req: Extract<Request, { type: 'init' }>): Promise<InitReply> {
  const choice = await startBackend(req.backend, req.wasmPath, req.flags);
  const pretrained = await fetchPretrained(req.modelBase);
  const reference = await fromArtifacts(pretrained.generator);
  if (!isGenerator(reference)) throw new Error(`${req.modelBase}generator.json is not a face generator`);
  let tuned = await buildPair(pretrained);
  const size = pairSize(reference, tuned, req.modelBase);
  const saved = await loadFromBrowser().catch(() => null);
  let restored = false;
  if (saved) {
    const candidate = await buildPair(saved);
    try {
      assertCompatible(candidate.generator, tuned.generator, 'saved generator');
      assertCompatible(candidate.discriminator, tuned.discriminator, 'saved discriminator');
      disposePair(tuned);
      tuned = candidate;
      restored = true;
    } catch {
      // Saved for an older shipped model: keep the new pretrained pair.
      disposePair(candidate);
    }
  }
  state = { backend: choice.name, pretrained, reference, tuned, likeness: null };
  return {
    backend: choice.name,
    label: choice.label,
    fallbacks: choice.fallbacks,
    restored,
    generatorParams: reference.countParams(),
    discriminatorParams: tuned.discriminator.countParams(),
    zDim: reference.inputs[0].shape[1] as number,
    size,
  };
}

/** The side of the pretrained pair's faces; its discriminator must read them at that size (projection and tuning do). */
function pairSize(reference: LayersModel, pair: Pair, modelBase: string): ImageSize {
  const size = generatorImageSize(reference);
  const dSize = discriminatorImageSize(pair.discriminator);
  if (dSize === size) return size;
  reference.dispose();
  disposePair(pair);
  throw new Error(`${modelBase}discriminator.json reads ${dSize ?? 'no'} px faces, but its generator draws ${size} px`);
}

async function startTraining(req: Extract<Request, { type: 'train' }>): Promise<void> {
  if (run || starting) throw new Error('a fine-tuning run is already in progress');
  starting = true;
  try {
    const cfg = finetuneConfig(req.config);
    const embedder = cfg.likenessSteps > 0 || cfg.identityTuneWeight > 0 ? await faceEmbedder() : undefined;
    run = new TrainingRun(req.crops, req.config, req.sampleSeeds, embedder);
  } finally {
    starting = false;
  }
  const current = run;
  void current.run().finally(() => {
    if (run === current) run = null;
  });
}

async function generateFaces(which: Which, seeds: number[]): Promise<GenerateReply> {
  const s = need();
  if (seeds.length === 0 || seeds.length > 64) throw new Error('choose between 1 and 64 seeds');
  const model = which === 'pretrained' ? s.reference : s.tuned.generator;
  const zDim = model.inputs[0].shape[1] as number;
  const z = tf.tensor2d(latentBatch(seeds, zDim), [seeds.length, zDim]);
  const out = generate(model, z);
  z.dispose();
  const pixels = (await out.data()) as Float32Array;
  out.dispose();
  return { pixels };
}

function idle(what: string): State {
  if (run) throw new Error(`stop fine-tuning before you ${what}`);
  return need();
}

async function setLikeness(value: number): Promise<{ value: number }> {
  const s = idle('change the likeness');
  if (!s.likeness) throw new Error('fine-tune first: the likeness comes from the photos of a run in this page');
  if (!Number.isFinite(value) || value < 0 || value > 2) throw new Error('likeness must be from 0 to 2');
  const base = await fromArtifacts(s.likeness.base);
  try {
    const baked = await bakeLatentShift(base, likenessAt(s.likeness.shift, value));
    s.tuned.generator.dispose();
    s.tuned = { ...s.tuned, generator: baked };
  } finally {
    base.dispose();
  }
  s.likeness.value = value;
  return { value };
}

async function replaceTuned(next: Pair): Promise<void> {
  const s = need();
  s.likeness = null;
  disposePair(s.tuned);
  s.tuned = next;
}

async function importFiles(files: ModelFile[]): Promise<{ generator: boolean; discriminator: boolean }> {
  const s = idle('import a model');
  const models = await Promise.all(artifactsFromFiles(files).map((a) => fromArtifacts(a)));
  const g = models.find((m) => isGenerator(m));
  const d = models.find((m) => m !== g && isDiscriminator(m));
  try {
    if (!g) throw new Error('none of the chosen files is a generator');
    assertCompatible(g, s.tuned.generator, 'imported generator');
    if (d) assertCompatible(d, s.tuned.discriminator, 'imported discriminator');
  } catch (err) {
    models.forEach((m) => m.dispose());
    throw err;
  }
  models.filter((m) => m !== g && m !== d).forEach((m) => m.dispose());
  const old = s.tuned;
  s.tuned = { generator: g, discriminator: d ?? old.discriminator };
  s.likeness = null;
  old.generator.dispose();
  if (d) old.discriminator.dispose();
  return { generator: true, discriminator: Boolean(d) };
}

async function handle(req: Request): Promise<unknown> {
  switch (req.type) {
    case 'init':
      return init(req);
    case 'train':
      return startTraining(req);
    case 'pause':
      return run?.setPaused(true);
    case 'resume':
      return run?.setPaused(false);
    case 'stop':
      return run?.stop();
    case 'generate':
      return generateFaces(req.which, req.seeds);
    case 'save': {
      await saveToBrowser(idle('save').tuned);
      return { savedAt: new Date().toISOString() } satisfies SaveReply;
    }
    case 'restore': {
      const saved = await loadFromBrowser();
      if (saved) {
        const pair = await buildPair(saved);
        assertCompatible(pair.generator, idle('restore').tuned.generator, 'saved generator');
        await replaceTuned(pair);
      }
      return { found: Boolean(saved) } satisfies RestoreReply;
    }
    case 'export':
      return { files: await exportFiles(idle('export').tuned) } satisfies ExportReply;
    case 'import':
      return importFiles(req.files);
    case 'likeness':
      return setLikeness(req.value);
    case 'reset': {
      const s = idle('reset');
      await replaceTuned(await buildPair(s.pretrained));
      await removeFromBrowser();
      return null;
    }
    case 'inspect': {
      const s = need();
      const weightChange = await meanWeightChange(s.reference, s.tuned.generator);
      return {
        numTensors: tf.memory().numTensors,
        backend: tf.getBackend(),
        weightChange,
        stepsDone: run?.stepsDone ?? 0,
      } satisfies InspectReply;
    }
    case 'loseContext':
      return loseContextForTest();
  }
}

scope.onmessage = async (ev: MessageEvent<Request & { id: number }>) => {
  const { id } = ev.data;
  let reply: Reply;
  try {
    reply = { id, ok: true, value: await handle(ev.data) };
  } catch (err) {
    reply = { id, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  const transfer: Transferable[] = [];
  const value = reply.ok ? (reply.value as Partial<GenerateReply & ExportReply> | null) : null;
  if (value?.pixels) transfer.push(value.pixels.buffer);
  value?.files?.forEach((f) => transfer.push(f.bytes.buffer));
  scope.postMessage(reply, transfer);
};
