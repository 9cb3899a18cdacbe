/**
 * Models to and from TensorFlow.js layers-format artifacts (model.json plus
 * binary weight shards), with optional float16 storage; and the manifest that
 * describes a shipped generator/discriminator pair. Isomorphic: Node writes
 * the files, the page fetches them.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ModelConfig } from './models.ts';

/** TensorFlow.js' default shard size: small enough for HTTP caches. */
const SHARD_BYTES = 4 * 1024 * 1024;

export interface ExportedFiles {
  /** model.json contents (topology + weights manifest). */
  modelJson: Record<string, unknown>;
  /** Shard file name to bytes, in the manifest's order. */
  shards: Map<string, Uint8Array>;
  weightBytes: number;
}

/** Capture a model's artifacts without touching any storage. */
export async function toArtifacts(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return captured!;
}

export function fromArtifacts(artifacts: tf.io.ModelArtifacts): Promise<tfl.LayersModel> {
  return tfl.loadLayersModel(tf.io.fromMemory(artifacts));
}

function weightBuffer(artifacts: tf.io.ModelArtifacts): ArrayBuffer {
  const data = artifacts.weightData;
  if (!data) throw new Error('model has no weight data');
  return Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data;
}

/** IEEE half-precision bits of a float32 (round to nearest even; overflow to infinity). */
export function float16Bits(value: number): number {
  const f32 = new Float32Array([value]);
  const x = new Uint32Array(f32.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant = (mant | 0x800000) >>> (1 - e);
    if (mant & 0x1000 && mant & 0x2fff) mant += 0x2000;
    return sign | (mant >>> 13);
  }
  // Round to nearest, ties to even.
  const round = mant & 0x1fff;
  mant >>>= 13;
  if (round > 0x1000 || (round === 0x1000 && mant & 1)) {
    mant++;
    if (mant === 0x400) {
      mant = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | mant;
}

/**
 * Store float32 weights as float16 (half the bytes). TensorFlow.js' loader
 * dequantizes entries marked `quantization: {dtype: 'float16'}` on load.
 */
export function quantizeFloat16(artifacts: tf.io.ModelArtifacts): tf.io.ModelArtifacts {
  const src = new Float32Array(weightBuffer(artifacts));
  const specs = artifacts.weightSpecs ?? [];
  if (specs.some((s) => s.dtype !== 'float32' || s.quantization))
    throw new Error('float16: only plain float32 weights can be quantized');
  const half = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) half[i] = float16Bits(src[i]);
  return {
    ...artifacts,
    weightData: half.buffer,
    weightSpecs: specs.map((s) => ({ ...s, quantization: { dtype: 'float16' as const } })),
  };
}

/** Artifacts to the files TensorFlow.js' HTTP loader reads: `${name}.json` plus shards. */
export function toFiles(artifacts: tf.io.ModelArtifacts, name: string): ExportedFiles {
  const bytes = new Uint8Array(weightBuffer(artifacts));
  const shards = new Map<string, Uint8Array>();
  const count = Math.max(1, Math.ceil(bytes.length / SHARD_BYTES));
  for (let i = 0; i < count; i++) {
    shards.set(`${name}.weights${i + 1}of${count}.bin`, bytes.subarray(i * SHARD_BYTES, (i + 1) * SHARD_BYTES));
  }
  const modelJson = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
    convertedBy: null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [...shards.keys()], weights: artifacts.weightSpecs }],
  };
  return { modelJson, shards, weightBytes: bytes.length };
}

/** Files (as read from disk or fetched) back to artifacts. */
export function fromFiles(modelJson: Record<string, unknown>, shards: Uint8Array[]): tf.io.ModelArtifacts {
  const manifest = modelJson.weightsManifest as tf.io.WeightsManifestConfig;
  const total = shards.reduce((n, s) => n + s.length, 0);
  const joined = new Uint8Array(total);
  let off = 0;
  for (const s of shards) {
    joined.set(s, off);
    off += s.length;
  }
  return {
    modelTopology: modelJson.modelTopology as object,
    weightSpecs: manifest.flatMap((g) => g.weights),
    weightData: joined.buffer,
  };
}

export interface TrainingRecipe {
  loss: string;
  diffAugment: string[];
  r1: { gamma: number; every: number } | null;
  /** A moving average of G's weights; when set, the exported generator is the average. */
  ema: { decay: number; warmup: boolean } | null;
  /** G's layers before this one were kept fixed (absent: all of G trained). */
  gTrainFrom?: string;
  /** D's learning rate, where it differed from G's (training.learningRate). */
  dLearningRate?: number;
  /**
   * G's last stage, where it was not DCGAN's transposed convolution ('nearest': resize-convolution; 'pyramid': the
   * 64 px G doubled plus a detail branch).
   */
  gUpsample?: 'nearest' | 'pyramid';
  /** 128 px runs: weight of a 64 px D's term in G's loss (it judges G's images downscaled against every 64 px photo). */
  halfSizeD?: number;
}

/** What public/models/manifest.json says about the shipped pair. */
export interface ModelManifest {
  name: string;
  /** True for weights from a short run shipped as a placeholder. */
  placeholder: boolean;
  note?: string;
  model: ModelConfig;
  generator: { file: string; params: number; bytes: number; dtype: 'float32' | 'float16' };
  discriminator: { file: string; params: number; bytes: number; dtype: 'float32' | 'float16' };
  training: {
    steps: number;
    imagesSeen: number;
    epochs: number;
    batch: number;
    learningRate: number;
    beta1: number;
    labelSmoothing: number;
    seed: number;
    data: { dir: string; images: number; skipped: number; heldOut: number };
    wallSeconds: number;
    /** CPU time of the training process, all threads (absent when not measured). */
    cpuSeconds?: number;
    backend: string;
    machine: string;
    finalMetrics?: { dLoss: number; gLoss: number; dReal: number; dFake: number };
    /** The techniques the run trained with (absent in older manifests: plain bce, nothing else). */
    recipe?: TrainingRecipe;
    /** The export this run started from (--init-from), with that run's own training record. */
    initFrom?: { dir: string; name: string; training?: ModelManifest['training'] };
  };
  sampleGrid?: string;
  trainingLog?: string;
  metrics?: Record<string, unknown>;
  exportedAt: string;
}
