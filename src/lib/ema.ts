/**
 * An exponential moving average of a model's weights (Karras et al. 2018;
 * Yazici et al. 2019). A GAN's generator oscillates around a good solution as
 * G and D chase each other; the average of its recent weights sits nearer the
 * centre and draws smoother, more coherent faces, at no cost to training.
 * Sample grids, exports and evaluation use the average; training never reads it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { fromArtifacts, toArtifacts } from './weights.ts';

export interface EmaOptions {
  /** Weight of the old average per step (0.999: a horizon of about a thousand steps). */
  decay: number;
  /**
   * Ramp the decay up as (1 + t) / (10 + t) over the first updates, so the
   * average forgets the initial weights quickly instead of dragging them
   * along for thousands of steps.
   */
  warmup: boolean;
}

export const DEFAULT_EMA: EmaOptions = { decay: 0.999, warmup: true };

/** A second model with the same layout and weights (its own variables). */
export async function cloneModel(model: LayersModel): Promise<LayersModel> {
  return fromArtifacts(await toArtifacts(model));
}

export function validateEma(o: EmaOptions): void {
  if (!Number.isFinite(o.decay) || o.decay < 0 || o.decay >= 1)
    throw new Error(`ema: decay must be in [0, 1), got ${o.decay}`);
}

/**
 * Keeps `target` as the running average of `source`. Every weight is
 * averaged, BatchNorm's moving statistics included, so the average is a
 * network whose statistics match its own weights' recent history.
 */
export class WeightAverage {
  /** Updates so far; part of a checkpoint, so a resumed run ramps exactly as an uninterrupted one. */
  updates: number;

  constructor(
    readonly source: LayersModel,
    readonly target: LayersModel,
    readonly options: EmaOptions = DEFAULT_EMA,
    updates = 0,
  ) {
    validateEma(options);
    const s = source.weights,
      t = target.weights;
    if (s.length !== t.length || s.some((w, i) => w.shape.join() !== t[i].shape.join())) {
      throw new Error('ema: the average must have the same weight layout as the model it follows');
    }
    this.updates = updates;
  }

  /** The decay the next update uses. */
  currentDecay(): number {
    const { decay, warmup } = this.options;
    return warmup ? Math.min(decay, (1 + this.updates) / (10 + this.updates)) : decay;
  }

  /** average <- decay * average + (1 - decay) * weights; call after each optimiser step. */
  update(): void {
    const d = this.currentDecay();
    const s = this.source.weights,
      t = this.target.weights;
    tf.tidy(() => {
      for (let i = 0; i < s.length; i++) {
        const avg = t[i].read();
        // lerp written as avg + (w - avg) * (1 - d): one rounding less than d*avg + (1-d)*w.
        t[i].write(tf.add(avg, tf.mul(tf.sub(s[i].read(), avg), 1 - d)));
      }
    });
    this.updates++;
  }

  /** Restart the average at the source's current weights. */
  reset(): void {
    this.target.setWeights(this.source.getWeights());
    this.updates = 0;
  }
}
