/**
 * Messages between the fine-tuning page and its worker. Every request
 * carries an id and gets exactly one reply with that id (`ok` or an error
 * message); training progress arrives as events without an id.
 */
import type { Fallback } from '../lib/backends.ts';
import type { FinetuneConfig, FinetunePhase } from '../lib/finetune.ts';
import type { ModelFile } from '../lib/model-files.ts';

export type BackendPreference = 'auto' | 'webgpu' | 'webgl' | 'wasm' | 'cpu';
export type Which = 'pretrained' | 'finetuned';

export type { ModelFile };

export type Request =
  /** `flags`: TensorFlow.js flags from the page's `?tfjsflags=`, which a worker cannot read from its own URL. */
  | {
      type: 'init';
      modelBase: string;
      wasmPath: string;
      backend: BackendPreference;
      flags: Record<string, boolean | number>;
    }
  | { type: 'train'; crops: Float32Array[]; config: Partial<FinetuneConfig>; sampleSeeds: number[] }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'stop' }
  | { type: 'generate'; which: Which; seeds: number[] }
  | { type: 'save' }
  | { type: 'restore' }
  | { type: 'export' }
  | { type: 'import'; files: ModelFile[] }
  | { type: 'reset' }
  /** Re-bake the last run's likeness shift at `value` (0: anyone, as pretrained sampling; 1: the run's setting). */
  | { type: 'likeness'; value: number }
  /** Test hooks: the page's e2e test reads tensor counts and weight change, and simulates a lost WebGL context. */
  | { type: 'inspect' }
  | { type: 'loseContext' };

export interface InitReply {
  backend: string;
  /** What the page shows: "WebGPU (adapter)", "WEBGL", "WASM", "CPU". */
  label: string;
  fallbacks: Fallback[];
  generatorParams: number;
  discriminatorParams: number;
  zDim: number;
  /** The side of the generator's faces (64 or 128): the page cuts the photos' face crops at this size. */
  size: number;
  /** A fine-tuned generator saved in this browser from an earlier visit was loaded. */
  restored: boolean;
}

export interface InspectReply {
  numTensors: number;
  backend: string;
  /** Mean absolute change of G's weights from the pretrained ones. */
  weightChange: number;
  stepsDone: number;
}

export interface SaveReply {
  savedAt: string;
}

export interface RestoreReply {
  found: boolean;
}

export interface GenerateReply {
  /** [seeds.length, size, size, 3] in [-1, 1], at the generator's size. */
  pixels: Float32Array;
}

export interface ExportReply {
  files: ModelFile[];
}

export type DoneReason = 'finished' | 'stopped' | 'failed';

export type TrainEvent =
  | {
      type: 'progress';
      step: number;
      total: number;
      phase: FinetunePhase;
      loss: number;
      stepsPerSecond: number | null;
      secondsLeft: number | null;
    }
  | { type: 'samples'; step: number; pixels: Float32Array; count: number }
  /** Each photo as the generator draws it from its projected latent (after the projection, and at the end). */
  | { type: 'reconstructions'; step: number; pixels: Float32Array; count: number }
  | { type: 'notice'; message: string; backend: string }
  | { type: 'done'; reason: DoneReason; step: number; message: string };

export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

export type WorkerMessage = Reply | { id?: undefined; event: TrainEvent };

/** Storage keys for the fine-tuned pair in the visitor's browser. */
export const IDB_GENERATOR = 'indexeddb://facegan-finetuned-generator';
export const IDB_DISCRIMINATOR = 'indexeddb://facegan-finetuned-discriminator';
