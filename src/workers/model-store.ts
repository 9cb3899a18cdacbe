/**
 * Where the fine-tuner's models come from and go to: the site's pretrained
 * pair (fetched once, kept as artifacts so the pair can be rebuilt on another
 * backend or reset) and the visitor's IndexedDB. The model files the visitor
 * exports and imports are src/lib/model-files.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { fromArtifacts, toArtifacts } from '../lib/weights.ts';
import { discriminatorImageSize, imageSideOf } from '../lib/models.ts';
import { IDB_DISCRIMINATOR, IDB_GENERATOR } from './finetune-protocol.ts';

export interface PairArtifacts {
  generator: tf.io.ModelArtifacts;
  discriminator: tf.io.ModelArtifacts;
}

export interface Pair {
  generator: LayersModel;
  discriminator: LayersModel;
}

async function fetchArtifacts(url: string): Promise<tf.io.ModelArtifacts> {
  try {
    return await tf.io.http(url).load!();
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    throw new Error(`could not load the pretrained model ${url}: ${text}`);
  }
}

export async function fetchPretrained(base: string): Promise<PairArtifacts> {
  const root = base.endsWith('/') ? base : `${base}/`;
  const [generator, discriminator] = await Promise.all([
    fetchArtifacts(`${root}generator.json`),
    fetchArtifacts(`${root}discriminator.json`),
  ]);
  return { generator, discriminator };
}

const shapeOf = (m: LayersModel, io: 'inputs' | 'outputs') => JSON.stringify(m[io][0].shape);

/** z -> a face of one of the sizes the site draws (64 or 128 px); which size is the generator's own. */
export function isGenerator(m: LayersModel): boolean {
  return m.inputs[0].shape.length === 2 && imageSideOf(m.outputs[0].shape) !== null;
}

/** A face of one of the sizes the site draws -> one logit. */
export function isDiscriminator(m: LayersModel): boolean {
  return discriminatorImageSize(m) !== null;
}

/**
 * The weight layout, less a bias on the first Dense layer: a fine-tuned
 * generator has one there (its baked likeness shift, src/lib/latent-shift.ts)
 * and still stands in for the pretrained one.
 */
function layout(m: LayersModel): string {
  const first = m.layers.find((l) => l.getClassName() === 'Dense');
  return JSON.stringify(
    m.weights.filter((w) => !(first && w.originalName === `${first.name}/bias`)).map((w) => w.shape),
  );
}

/** A model that can stand in for `reference`: same input and output shapes and the same weight layout. */
export function assertCompatible(model: LayersModel, reference: LayersModel, what: string): void {
  const same =
    shapeOf(model, 'inputs') === shapeOf(reference, 'inputs') &&
    shapeOf(model, 'outputs') === shapeOf(reference, 'outputs') &&
    layout(model) === layout(reference);
  if (!same) throw new Error(`the ${what} does not match this site's model (different architecture or size)`);
}

export async function buildPair(a: PairArtifacts): Promise<Pair> {
  const [generator, discriminator] = await Promise.all([fromArtifacts(a.generator), fromArtifacts(a.discriminator)]);
  return { generator, discriminator };
}

export async function snapshotPair(p: Pair): Promise<PairArtifacts> {
  return { generator: await toArtifacts(p.generator), discriminator: await toArtifacts(p.discriminator) };
}

export function disposePair(p: Pair | null): void {
  if (!p) return;
  for (const m of [p.generator, p.discriminator]) {
    // On a lost WebGL context releasing textures can throw; the memory is gone with the context anyway.
    try {
      m.dispose();
    } catch {
      /* already unusable */
    }
  }
}

export async function saveToBrowser(p: Pair): Promise<void> {
  await p.generator.save(IDB_GENERATOR);
  await p.discriminator.save(IDB_DISCRIMINATOR);
}

async function storedKeys(): Promise<Set<string>> {
  return new Set(Object.keys(await tf.io.listModels()));
}

/** The pair saved in this browser, or null when there is none. */
export async function loadFromBrowser(): Promise<PairArtifacts | null> {
  const keys = await storedKeys();
  if (!keys.has(IDB_GENERATOR) || !keys.has(IDB_DISCRIMINATOR)) return null;
  const load = (url: string) => tf.io.getLoadHandlers(url)[0].load!();
  const [generator, discriminator] = await Promise.all([load(IDB_GENERATOR), load(IDB_DISCRIMINATOR)]);
  return { generator, discriminator };
}

export async function removeFromBrowser(): Promise<void> {
  const keys = await storedKeys();
  for (const key of [IDB_GENERATOR, IDB_DISCRIMINATOR]) if (keys.has(key)) await tf.io.removeModel(key);
}
