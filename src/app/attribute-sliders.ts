/**
 * Attribute sliders for the face view: one range input per shipped
 * direction (public/models/directions.json), each over its own measured
 * range, live while dragging (one redraw per animation frame), a reset
 * button, the values kept in the address (`?seed=..&smiling=0.8`) with
 * history.replaceState.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  applyDirections,
  attributeLabel,
  readSliderParams,
  sliderRanges,
  validateDirections,
  weightsSha256,
  writeSliderParams,
  type AttributeDirection,
  type DirectionsFile,
  type SliderRange,
  type SliderValues,
} from '../lib/directions.ts';

export const DIRECTIONS_URL = `${import.meta.env.BASE_URL.replace(/\/$/, '')}/models/directions.json`;

/**
 * Fetch directions.json and check it was computed for this generator (its
 * weight bytes' hash). Null, with a reason, when there is none or it does not match.
 */
export async function loadDirections(
  artifacts: tf.io.ModelArtifacts,
  zDim: number,
  url = DIRECTIONS_URL,
): Promise<{ directions: DirectionsFile | null; reason: string | null }> {
  let data: unknown;
  try {
    const res = await fetch(url);
    if (!res.ok) return { directions: null, reason: `no attribute directions on this site (${res.status})` };
    data = await res.json();
  } catch (err) {
    return {
      directions: null,
      reason: `attribute directions could not be read: ${err instanceof Error ? err.message : err}`,
    };
  }
  const directions = validateDirections(data, zDim);
  const w = artifacts.weightData;
  const buffers = w === undefined ? [] : Array.isArray(w) ? w : [w];
  const hash = await weightsSha256(buffers.map((b) => new Uint8Array(b)));
  if (hash !== directions.generator.weightsSha256) {
    return {
      directions: null,
      reason: 'the attribute directions were computed for a different generator than this one, so the sliders are off',
    };
  }
  return { directions, reason: null };
}

export interface SliderElements {
  root: HTMLElement;
  list: HTMLElement;
  reset: HTMLButtonElement;
}

export class AttributeSliders {
  private values: SliderValues = {};
  private readonly inputs = new Map<string, { input: HTMLInputElement; output: HTMLOutputElement }>();
  private frame = 0;
  readonly keys: string[];

  private readonly ranges: Record<string, SliderRange>;

  constructor(
    private readonly el: SliderElements,
    readonly attributes: readonly AttributeDirection[],
    /** Called at most once per animation frame while the values change. */
    private readonly onInput: () => void,
    /** Called when a change is complete (to write the address). */
    private readonly onCommit: () => void,
  ) {
    this.keys = attributes.map((a) => a.key);
    this.ranges = sliderRanges(attributes);
    el.list.replaceChildren(...attributes.map((a) => this.row(a)));
    el.reset.addEventListener('click', () => {
      this.set({});
      this.onInput();
      this.onCommit();
    });
    el.root.hidden = false;
  }

  private row(a: AttributeDirection): HTMLElement {
    const li = document.createElement('li');
    const id = `attr-${a.key}`;
    const label = document.createElement('label');
    label.htmlFor = id;
    label.textContent = attributeLabel(a.name);
    const input = document.createElement('input');
    Object.assign(input, {
      id,
      type: 'range',
      min: String(a.range.min),
      max: String(a.range.max),
      step: '0.05',
      value: '0',
    });
    input.dataset.attribute = a.key;
    const output = document.createElement('output');
    output.htmlFor.add(id);
    output.textContent = '0';
    input.addEventListener('input', () => {
      this.values[a.key] = Number(input.value);
      output.textContent = Number(input.value).toFixed(2);
      if (!this.frame)
        this.frame = requestAnimationFrame(() => {
          this.frame = 0;
          this.onInput();
        });
    });
    input.addEventListener('change', () => this.onCommit());
    this.inputs.set(a.key, { input, output });
    li.append(label, input, output);
    return li;
  }

  /** Current slider values (keys with 0 left out). */
  get current(): SliderValues {
    return Object.fromEntries(Object.entries(this.values).filter(([, v]) => v !== 0));
  }

  set(values: SliderValues): void {
    this.values = { ...values };
    for (const [key, { input, output }] of this.inputs) {
      const v = values[key] ?? 0;
      input.value = String(v);
      output.textContent = v.toFixed(2);
    }
  }

  /** The latent with the current edits applied. */
  apply(z: Float32Array): Float32Array {
    return applyDirections(z, this.attributes, this.values);
  }

  readFrom(url: URL): SliderValues {
    return readSliderParams(url.searchParams, this.keys, this.ranges);
  }

  writeTo(url: URL): URL {
    const next = new URL(url);
    next.search = writeSliderParams(url.searchParams, this.keys, this.values).toString();
    return next;
  }
}
