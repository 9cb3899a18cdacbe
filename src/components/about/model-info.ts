/**
 * Build-time reading of what public/models/ holds, for the "About the model"
 * page: the manifest, the generator's layers, its weight files and the
 * training log. Every piece may be missing; the page shows what exists.
 */
import { validateDirections, type DirectionsFile } from '../../lib/directions.ts';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ModelManifest } from '../../lib/weights.ts';

/** A manifest as found on disk: any field may be missing. */
export type PartialManifest = Partial<Omit<ModelManifest, 'training'>> & {
  training?: Partial<ModelManifest['training']>;
};

export interface LayerRow {
  name: string;
  kind: string;
  detail: string;
}

export interface LossPoint {
  step: number;
  dLoss: number;
  gLoss: number;
}

/** A face detection rate and a Fréchet distance, judged at one image side. */
export interface ScaleScore {
  detectionRate: number;
  fid: number;
}

/**
 * One line of the evaluation table: `npm run eval` results recorded in manifest.metrics.eval. A 128 px generator
 * is judged at 128 and area-downscaled to 64, so that it compares with 64 px generators on their scale.
 */
export interface EvalRow {
  key: string;
  label: string;
  samples: number;
  referenceImages: number | null;
  at64: ScaleScore | null;
  at128: ScaleScore | null;
  /** The shipped generator's own row. */
  shipped: boolean;
}

/** Labels for the keys `npm run eval --manifest` uses by default, when no --label was recorded. */
const EVAL_LABELS: Record<string, string> = {
  held_out_floor: 'Held-out photos, half vs half (the floor)',
  generator: 'This generator',
};

const isNumber = (v: unknown): v is number => typeof v === 'number';

function scaleScore(r: unknown): ScaleScore | null {
  const s = r as { detection_rate?: unknown; fid?: unknown } | undefined;
  return isNumber(s?.fid) && isNumber(s.detection_rate) ? { detectionRate: s.detection_rate, fid: s.fid } : null;
}

/**
 * The recorded evaluations, by Fréchet distance at 64 px (then at 128), lowest first; malformed entries are left
 * out. A result without `size` was judged at 64.
 */
export function evalRows(manifest: PartialManifest | null): EvalRow[] {
  const recorded = (manifest?.metrics as { eval?: Record<string, unknown> } | undefined)?.eval ?? {};
  const rows: EvalRow[] = [];
  for (const [key, value] of Object.entries(recorded)) {
    const r = value as {
      label?: unknown;
      samples?: unknown;
      size?: unknown;
      at64?: unknown;
      reference?: { images?: unknown };
    };
    const own = scaleScore(r);
    if (!own || !isNumber(r.samples)) continue;
    const big = r.size === 128;
    rows.push({
      key,
      label: typeof r.label === 'string' ? r.label : (EVAL_LABELS[key] ?? key.replace(/_/g, ' ')),
      samples: r.samples,
      referenceImages: isNumber(r.reference?.images) ? r.reference.images : null,
      at64: big ? scaleScore(r.at64) : own,
      at128: big ? own : null,
      shipped: key === 'generator',
    });
  }
  const order = (row: EvalRow) => row.at64?.fid ?? row.at128?.fid ?? Infinity;
  return rows.sort((a, b) => order(a) - order(b));
}

export interface ModelInfo {
  manifest: PartialManifest | null;
  /** Why the manifest could not be read, if it could not. */
  problem: string | null;
  layers: LayerRow[];
  /** Bytes the page downloads for the generator (model JSON plus weight shards), if known. */
  downloadBytes: number | null;
  log: LossPoint[];
}

export const MODELS_DIR = resolve('public/models');

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

function readManifest(dir: string): { manifest: PartialManifest | null; problem: string | null } {
  const path = join(dir, 'manifest.json');
  if (!existsSync(path))
    return { manifest: null, problem: 'No model has been exported yet (public/models/manifest.json is missing).' };
  try {
    return { manifest: readJson(path) as PartialManifest, problem: null };
  } catch (err) {
    return { manifest: null, problem: `public/models/manifest.json could not be read: ${(err as Error).message}` };
  }
}

type LayerConfig = Record<string, unknown>;

const shape = (v: unknown) => (Array.isArray(v) ? v.join('×') : String(v));

/** One line that says what a layer does, from its Keras-style config. */
function layerDetail(kind: string, c: LayerConfig): string {
  const act = c.activation && c.activation !== 'linear' ? `, ${c.activation}` : '';
  switch (kind) {
    case 'Dense':
      return `${c.units} units${act}`;
    case 'Reshape':
      return `to ${shape(c.target_shape)}`;
    case 'Conv2D':
    case 'Conv2DTranspose':
      return `${c.filters} filters, ${shape(c.kernel_size)} kernel, stride ${shape(c.strides)}${act}`;
    case 'UpSampling2D':
      return `×${shape(c.size)}`;
    case 'BatchNormalization':
      return `momentum ${c.momentum}`;
    case 'LeakyReLU':
      return `alpha ${c.alpha}`;
    case 'Activation':
      return String(c.activation);
    default:
      return '';
  }
}

function readLayers(dir: string, file: string): LayerRow[] {
  const path = join(dir, file);
  if (!existsSync(path)) return [];
  try {
    const json = readJson(path) as {
      modelTopology?: { config?: { layers?: { class_name: string; config: LayerConfig }[] } };
    };
    return (json.modelTopology?.config?.layers ?? []).map(({ class_name: kind, config }) => ({
      name: String(config.name ?? ''),
      kind,
      detail: layerDetail(kind, config),
    }));
  } catch {
    return [];
  }
}

function downloadBytes(dir: string, file: string): number | null {
  const path = join(dir, file);
  if (!existsSync(path)) return null;
  try {
    const json = readJson(path) as { weightsManifest?: { paths: string[] }[] };
    const shards = (json.weightsManifest ?? []).flatMap((g) => g.paths).map((p) => join(dir, p));
    return shards.reduce((n, p) => n + (existsSync(p) ? statSync(p).size : 0), statSync(path).size);
  } catch {
    return null;
  }
}

/** The training log's loss curve; accepts snake_case and camelCase fields. */
function readLog(dir: string, file: string | undefined): LossPoint[] {
  const path = join(dir, file ?? 'training-log.jsonl');
  if (!existsSync(path)) return [];
  const points: LossPoint[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const row = JSON.parse(line) as Record<string, number>;
      const point = { step: row.step, dLoss: row.d_loss ?? row.dLoss, gLoss: row.g_loss ?? row.gLoss };
      if ([point.step, point.dLoss, point.gLoss].every(Number.isFinite)) points.push(point);
    } catch {
      /* a torn last line while training writes: skip it */
    }
  }
  return points;
}

/** public/models/directions.json (attribute sliders and their measures), or null when absent or unreadable. */
export function readDirectionsFile(dir = MODELS_DIR): DirectionsFile | null {
  const path = join(dir, 'directions.json');
  if (!existsSync(path)) return null;
  try {
    return validateDirections(readJson(path));
  } catch {
    return null;
  }
}

export function readModelInfo(dir = MODELS_DIR): ModelInfo {
  const { manifest, problem } = readManifest(dir);
  const generatorFile = manifest?.generator?.file ?? 'generator.json';
  return {
    manifest,
    problem,
    layers: readLayers(dir, generatorFile),
    downloadBytes: downloadBytes(dir, generatorFile),
    log: readLog(dir, manifest?.trainingLog),
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 ** 2).toFixed(2)} MB`;
}

export function formatNumber(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumSignificantDigits: 4 });
}

/** Metrics values as text: numbers formatted, objects flattened to JSON. */
export function formatValue(v: unknown): string {
  if (typeof v === 'number') return formatNumber(v);
  if (v === null || v === undefined) return '–';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}
