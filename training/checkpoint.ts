/**
 * Checkpoints: everything a run needs to continue exactly where it stopped
 * (G, D, both Adam states, step, RNG state, sampler position), in one file
 * written atomically (temporary file, then rename): a crash or Ctrl-C during
 * a save leaves the previous checkpoint intact.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { fromArtifacts, toArtifacts } from '../src/lib/weights.ts';
import type { RngState } from '../src/lib/latent.ts';
import { writeAtomic, type SamplerState } from './data.ts';

const MAGIC = 'FGCK1';

/** Progress and state that is not a tensor. */
export interface RunState {
  step: number;
  imagesSeen: number;
  wallSeconds: number;
  /** CPU time of the training process (all threads), summed over resumes; absent in checkpoints made before it was kept. */
  cpuSeconds?: number;
  rng: RngState;
  sampler: SamplerState;
  /** The half-size D's sampler over the 64 px photos, when the run has that D. */
  sampler64?: SamplerState;
  /** Updates of the moving average of G's weights so far (its warm-up depends on it). */
  emaUpdates?: number;
  /** The last step's losses and scores, for the manifest of an export made right after a resume. */
  last?: { dLoss: number; gLoss: number; dReal: number; dFake: number };
}

export interface Checkpoint<C> {
  config: C;
  state: RunState;
  generator: LayersModel;
  discriminator: LayersModel;
  /** The moving average of G's weights, when the run keeps one. */
  ema?: LayersModel;
  /** The half-size (64 px) D of a 128 px run, when it has one. */
  discriminator64?: LayersModel;
}

/** Adam states by role: D's, G's and, when there is one, the half-size D's. */
export interface Optimizers {
  d: tf.AdamOptimizer;
  g: tf.AdamOptimizer;
  d64?: tf.AdamOptimizer | null;
}

interface Section {
  offset: number;
  length: number;
}
interface ModelSection {
  topology: object;
  specs: tf.io.WeightsManifestEntry[];
  data: Section;
}
interface Header<C> {
  config: C;
  state: RunState;
  models: Record<'generator' | 'discriminator', ModelSection> & { ema?: ModelSection; discriminator64?: ModelSection };
  optimizers: Record<'d' | 'g', OptimizerSection | null> & { d64?: OptimizerSection | null };
}

interface OptimizerSection {
  specs: tf.io.WeightsManifestEntry[];
  data: Section;
  accBeta: [number, number];
}

/** Adam keeps beta^t in private variables; setWeights recomputes them with pow(), which is not bit-exact. */
type AdamInternals = { accBeta1: tf.Variable; accBeta2: tf.Variable };

async function optimizerBlob(opt: tf.AdamOptimizer) {
  const internals = opt as unknown as AdamInternals;
  // Before the first step Adam has no moments yet: nothing to save.
  if ((opt as unknown as { accumulatedFirstMoment?: unknown }).accumulatedFirstMoment == null) return null;
  const weights = await opt.getWeights();
  const { data, specs } = await tf.io.encodeWeights(weights);
  const accBeta: [number, number] = [internals.accBeta1.dataSync()[0], internals.accBeta2.dataSync()[0]];
  return { data: new Uint8Array(data as ArrayBuffer), specs, accBeta };
}

export async function saveCheckpoint<C>(path: string, ck: Checkpoint<C>, optimizers: Optimizers): Promise<void> {
  const blobs: Uint8Array[] = [];
  let offset = 0;
  const add = (bytes: Uint8Array): Section => {
    blobs.push(bytes);
    const s = { offset, length: bytes.length };
    offset += bytes.length;
    return s;
  };
  const model = async (m: LayersModel) => {
    const a = await toArtifacts(m);
    const data = a.weightData as ArrayBuffer;
    return { topology: a.modelTopology as object, specs: a.weightSpecs!, data: add(new Uint8Array(data)) };
  };
  const opt = async (o: tf.AdamOptimizer) => {
    const b = await optimizerBlob(o);
    return b && { specs: b.specs, accBeta: b.accBeta, data: add(b.data) };
  };
  const header: Header<C> = {
    config: ck.config,
    state: ck.state,
    models: {
      generator: await model(ck.generator),
      discriminator: await model(ck.discriminator),
      ...(ck.ema ? { ema: await model(ck.ema) } : {}),
      ...(ck.discriminator64 ? { discriminator64: await model(ck.discriminator64) } : {}),
    },
    optimizers: {
      d: await opt(optimizers.d),
      g: await opt(optimizers.g),
      ...(optimizers.d64 ? { d64: await opt(optimizers.d64) } : {}),
    },
  };
  const headBytes = new TextEncoder().encode(JSON.stringify(header));
  const prefix = new Uint8Array(MAGIC.length + 4);
  prefix.set(new TextEncoder().encode(MAGIC));
  new DataView(prefix.buffer).setUint32(MAGIC.length, headBytes.length, true);
  writeAtomic(path, Buffer.concat([prefix, headBytes, ...blobs]));
}

function readHeader<C>(path: string): { header: Header<C>; body: Uint8Array } {
  const file = new Uint8Array(readFileSync(path));
  if (new TextDecoder().decode(file.subarray(0, MAGIC.length)) !== MAGIC)
    throw new Error(`not a facegan checkpoint: ${path}`);
  const len = new DataView(file.buffer, file.byteOffset).getUint32(MAGIC.length, true);
  const start = MAGIC.length + 4;
  const header = JSON.parse(new TextDecoder().decode(file.subarray(start, start + len))) as Header<C>;
  return { header, body: file.subarray(start + len) };
}

const slice = (body: Uint8Array, s: Section) => body.slice(s.offset, s.offset + s.length).buffer;

export interface LoadedCheckpoint<C> extends Checkpoint<C> {
  /** Put the saved Adam moments into the optimizers of a trainer built on the loaded models. */
  restoreOptimizers(optimizers: Optimizers): Promise<void>;
}

export async function loadCheckpoint<C>(path: string): Promise<LoadedCheckpoint<C>> {
  const { header, body } = readHeader<C>(path);
  const model = (m: ModelSection) =>
    fromArtifacts({ modelTopology: m.topology, weightSpecs: m.specs, weightData: slice(body, m.data) });
  const restore = async (opt: tf.AdamOptimizer | null | undefined, saved: OptimizerSection | null | undefined) => {
    if (!saved || !opt) return;
    const named = tf.io.decodeWeights(slice(body, saved.data), saved.specs);
    await opt.setWeights(saved.specs.map((s) => ({ name: s.name, tensor: named[s.name] })));
    tf.dispose(Object.values(named));
    const internals = opt as unknown as AdamInternals;
    tf.tidy(() => {
      internals.accBeta1.assign(tf.scalar(saved.accBeta[0]));
      internals.accBeta2.assign(tf.scalar(saved.accBeta[1]));
    });
  };
  return {
    config: header.config,
    state: header.state,
    generator: await model(header.models.generator),
    discriminator: await model(header.models.discriminator),
    ...(header.models.ema ? { ema: await model(header.models.ema) } : {}),
    ...(header.models.discriminator64 ? { discriminator64: await model(header.models.discriminator64) } : {}),
    restoreOptimizers: async ({ d, g, d64 }) => {
      await restore(d, header.optimizers.d);
      await restore(g, header.optimizers.g);
      await restore(d64, header.optimizers.d64);
    },
  };
}
