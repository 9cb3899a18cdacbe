/**
 * Which generator the home page shows: the site's own, or with
 * `?model=tuned` the fine-tuned one the fine-tune page kept in this browser.
 * A tuned model takes the attribute directions of the generator it was tuned
 * from (its manifest names that generator's weights hash), since none were
 * fitted for it.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { loadTunedBundle } from '../browser/tuned-model.ts';
import { validateDirections, type DirectionsFile } from '../lib/directions.ts';
import { unpackTuned, type TunedManifest } from '../lib/model-bundle.ts';
import { DIRECTIONS_URL } from './attribute-sliders.ts';

const BASE = import.meta.env.BASE_URL.replace(/\/$/, '');
export const FINETUNE_PAGE = `${BASE}/finetune/`;

/** A load failure with a way out (a link), which the status line shows beside the message. */
export class ModelChoiceError extends Error {
  constructor(
    message: string,
    readonly hint: { text: string; href: string },
  ) {
    super(message);
    this.name = 'ModelChoiceError';
  }
}

export type ModelSource = 'pretrained' | 'tuned';

/** The address without `?model=`: the same face and edits, on the site's generator. */
export function pretrainedAddress(url: URL): URL {
  const next = new URL(url);
  next.searchParams.delete('model');
  return next;
}

/** `?model=` as a source; anything but "tuned" is refused with a link to the site's generator. */
export function modelSource(url: URL): ModelSource {
  const value = url.searchParams.get('model');
  if (value === null) return 'pretrained';
  if (value === 'tuned') return 'tuned';
  throw new ModelChoiceError(`?model=${value} is not a model this page knows (only ?model=tuned is)`, {
    text: "Show the site's generator",
    href: pretrainedAddress(url).href,
  });
}

/** The fine-tuned model kept in this browser, unpacked; a readable error when there is none. */
export async function loadTunedModel(): Promise<{ artifacts: tf.io.ModelArtifacts; manifest: TunedManifest }> {
  const bytes = await loadTunedBundle();
  if (!bytes) {
    throw new ModelChoiceError(
      'This browser keeps no fine-tuned model: fine-tune one and choose "Open on the home page" there.',
      { text: 'Go to the fine-tune page', href: FINETUNE_PAGE },
    );
  }
  const { artifacts, manifest } = unpackTuned(bytes);
  return { artifacts, manifest };
}

/** What the model line says about a tuned model: what it came from and how it was tuned. */
export function describeTuned(m: TunedManifest): string {
  const photos = Math.max(0, ...m.runs.map((r) => r.photos));
  const steps = m.runs.reduce((n, r) => n + r.steps, 0);
  const runs = m.runs.length === 1 ? '1 run' : `${m.runs.length} runs`;
  const how = m.runs.length ? `, ${runs} of ${steps} steps on ${photos} photos` : '';
  const from = m.parent ? `tuned from ${m.parent.name}${how}` : `its origin not recorded${how}`;
  return `${from}; ${m.generator.dtype} weights, made ${new Date(m.createdAt).toLocaleString()}`;
}

async function fetchDirections(): Promise<unknown> {
  const res = await fetch(DIRECTIONS_URL);
  if (!res.ok) throw new Error(`no attribute directions on this site (${res.status})`);
  return res.json();
}

/**
 * The site's attribute directions for a tuned model: accepted when they were
 * fitted for the generator it was tuned from. Null, with a reason, otherwise.
 */
export async function loadParentDirections(
  manifest: TunedManifest,
  zDim: number,
): Promise<{ directions: DirectionsFile | null; reason: string | null }> {
  if (!manifest.parent)
    return { directions: null, reason: 'this fine-tuned model does not record what it was tuned from, so no sliders' };
  const directions = validateDirections(await fetchDirections(), zDim);
  if (directions.generator.weightsSha256 !== manifest.parent.weightsSha256) {
    return {
      directions: null,
      reason: `the attribute directions were fitted for another generator than ${manifest.parent.name}, which this model was tuned from, so no sliders`,
    };
  }
  return { directions, reason: null };
}
