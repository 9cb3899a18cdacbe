/**
 * Every knob of a training run, its default, and the command line that sets
 * it. Read this file to know what `npm run train` can do.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  ARCHS,
  DEFAULT_WIDTH,
  IMAGE_SIZES,
  LAST_UPSAMPLES,
  isArch,
  isImageSize,
  type Arch,
  type ImageSize,
  type LastUpsample,
} from '../src/lib/models.ts';
import { DEFAULT_TRAIN, LOSSES, type GanLoss } from '../src/lib/gan.ts';
import { parsePolicy, type DiffAugmentPolicy } from '../src/lib/diffaugment.ts';
import type { ExportDtype } from './export.ts';
import { convPrecision as parseConvPrecision, type ConvPrecision } from './native/precision.ts';
import type { ModelManifest } from '../src/lib/weights.ts';

export const DEFAULT_DATA = '../shared/celeba/img_align_celeba';

export interface TrainOptions {
  data: string;
  arch: Arch;
  width: number;
  /** Image side: 64, or 128 (dcgan; from a 64 px --init-from pair, grown). Absent in older checkpoints: 64. */
  size: ImageSize;
  zDim: number;
  batch: number;
  /** Total optimisation steps; when null, `epochs` decides. */
  steps: number | null;
  epochs: number | null;
  lr: number;
  /** D's learning rate; null: --lr. */
  dLr: number | null;
  beta1: number;
  labelSmoothing: number;
  loss: GanLoss;
  /** DiffAugment ops for every image D sees (empty: none). */
  diffAugment: DiffAugmentPolicy;
  r1Gamma: number;
  r1Every: number;
  /** Decay of the moving average of G's weights that samples and exports use; null: no average. */
  emaDecay: number | null;
  /** G's layers before this one stay fixed (e.g. g_deconv4: only a grown pair's 128 px stage learns); null: all of G. */
  gTrainFrom: string | null;
  /** How G's last stage doubles the image (dcgan): DCGAN's transposed convolution, or nearest + 3x3 convolution. */
  gUpsample: LastUpsample;
  /** 'pyramid': the detail branch's channels; null: the width. Absent in older checkpoints: null. */
  gDetailWidth?: number | null;
  /**
   * 128 px runs: weight of a second, 64 px D in G's loss, judging G's images area-downscaled against every 64 px
   * training photo (0: none). Absent in older checkpoints: 0.
   */
  halfSizeD?: number;
  /** Start from an exported G and D (a folder with manifest.json, generator.json, discriminator.json). */
  initFrom: string | null;
  /** Set by the trainer from --init-from's manifest: the export this run started from. */
  parent?: NonNullable<ModelManifest['training']['initFrom']>;
  seed: number;
  out: string;
  resume: boolean;
  backend: string;
  /** What the native backend's oneDNN convolutions read: bf16 where the CPU has bf16 dot products ('auto'), or always f32. */
  convPrecision: ConvPrecision;
  /** Where to export for the site; null disables export. */
  export: string | null;
  exportDtype: ExportDtype;
  /** Use only the first N training images (quick experiments, tests). */
  limit: number | null;
  logEvery: number;
  sampleEvery: number;
  checkpointEvery: number;
  /** End after this many wall-clock minutes (checkpoint and export, resumable); null for no limit. */
  maxMinutes: number | null;
  /** The same for CPU time (all threads, summed over resumes): equal-compute comparisons on a shared machine. */
  maxCpuMinutes: number | null;
  summary: boolean;
  quiet: boolean;
}

export const HELP = `Usage: npm run train -- [options]

Trains the face GAN on a folder of CelebA-style photos and exports it for the site.

Data and model
  --data DIR            folder of .jpg/.png/.webp faces (default ${DEFAULT_DATA})
  --limit N             use only the first N training images
  --arch NAME           ${ARCHS.join(' | ')} (default dcgan)
  --width N             channel width (default 64; ignored by seed-classic)
  --size N              image side: ${IMAGE_SIZES.join(' | ')} (default 64; 128 needs dcgan). With --init-from a 64 px
                        pair, --size 128 grows it: shared layers copied, new ones starting as its 2x
  --summary             print every layer and the parameter counts of G and D, then exit
Optimisation
  --batch N             batch size (default 64)
  --steps N             optimisation steps (default: 1 epoch when --epochs is absent too)
  --epochs N            passes over the data (instead of --steps)
  --lr X                Adam learning rate (default ${DEFAULT_TRAIN.learningRate})
  --d-lr X              D's learning rate, when it should differ from G's (default: --lr)
  --beta1 X             Adam beta1 (default ${DEFAULT_TRAIN.beta1})
  --label-smoothing X   one-sided: real targets become 1 - X (default 0; bce only)
  --loss NAME           ${LOSSES.join(' | ')} (default bce)
  --diffaugment OPS     differentiable augmentation of D's inputs, real and fake: comma-separated
                        color,translation,cutout, or none (default none)
  --r1 GAMMA            R1 gradient penalty on real images (default 0: off)
  --r1-every N          apply R1 every N steps, scaled by N (default ${DEFAULT_TRAIN.r1Every})
  --ema DECAY           keep a moving average of G's weights with this decay (with warm-up) and use it
                        for sample grids and the export, e.g. 0.999 (default: none)
  --g-train-from L      train only G's layers from the one named L on; the earlier ones stay fixed (default:
                        all). With --size 128 grown from a 64 px pair, g_deconv4 keeps the 64 px model's
                        structure, learnt on every photo, and lets the new 128 px stage learn the detail
  --g-upsample U        G's last stage: transposed (DCGAN's 4x4 stride-2 transposed convolution, the default) or
                        nearest (nearest-neighbour 2x then a 3x3 convolution: no checkerboard). Grown from a
                        64 px pair, the new RGB layer is fitted to draw its faces doubled; or pyramid
                        (128 px: the 64 px G whole, its image doubled, plus a detail branch from its 32 px
                        features whose 2x2 block means are zero, so the face at 64 px is the 64 px G's;
                        grown from a pair, train the branch alone with --g-train-from g_detail4)
  --g-detail-width N    pyramid: the detail branch's channels (default: the width; half of it draws 128 px faces
                        in the page in well under twice the 64 px G's time)
  --half-size-d W       128 px: a second D judges G's images area-downscaled to 64 px against all the 64 px
                        photos (12,976; the 128 px set has the 4,248 full-size ones); W weighs its term in G's
                        loss (default 0: none). Grown from a 64 px pair, it starts as that pair's D
  --init-from DIR       start from the G and D exported in DIR (e.g. public/models); arch and width
                        come from its manifest.json, and its size unless --size asks to grow it
  --seed N              seed for init, noise, shuffling and flips (default 1)
  --backend NAME        auto | tensorflow | webgpu | native | wasm | cpu (default auto)
  --conv-precision P    auto | bf16 | f32: what the native backend's oneDNN convolutions read; auto is
                        bf16 (f32 accumulation and weights) where the CPU has AVX512_BF16 or AMX
  --max-minutes N       stop after N minutes, with a checkpoint and the export (resumable)
  --max-cpu-minutes N   the same, once the run has used N CPU-minutes (all threads, across resumes)
Run folder and export
  --out DIR             run folder: log, sample grids, checkpoint (default runs/default)
  --resume              continue the run in --out from its last checkpoint
  --log-every N         steps between metrics log lines (default 10)
  --sample-every N      steps between sample grids (default 500)
  --checkpoint-every N  steps between checkpoints (default 500)
  --export DIR          export G, D and manifest here at the end (default: OUT/export; --export public/models
                        publishes the run to the site)
  --no-export           do not export
  --export-dtype T      float16 | float32 weight storage (default float16)
  --quiet               no progress bar
  --help                this text
`;

export class UsageError extends Error {}

function num(name: string, value: string | undefined, integer: boolean, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got "${value}"`);
  }
  return n;
}

/** The command line's flags, as node:util parseArgs takes them (values are checked below). */
const FLAGS = {
  data: { type: 'string' },
  limit: { type: 'string' },
  arch: { type: 'string' },
  width: { type: 'string' },
  size: { type: 'string' },
  summary: { type: 'boolean' },
  batch: { type: 'string' },
  steps: { type: 'string' },
  epochs: { type: 'string' },
  lr: { type: 'string' },
  'd-lr': { type: 'string' },
  beta1: { type: 'string' },
  'label-smoothing': { type: 'string' },
  seed: { type: 'string' },
  loss: { type: 'string' },
  diffaugment: { type: 'string' },
  r1: { type: 'string' },
  'r1-every': { type: 'string' },
  ema: { type: 'string' },
  'g-train-from': { type: 'string' },
  'g-upsample': { type: 'string' },
  'g-detail-width': { type: 'string' },
  'half-size-d': { type: 'string' },
  'init-from': { type: 'string' },
  backend: { type: 'string' },
  'conv-precision': { type: 'string' },
  'max-minutes': { type: 'string' },
  'max-cpu-minutes': { type: 'string' },
  out: { type: 'string' },
  resume: { type: 'boolean' },
  'log-every': { type: 'string' },
  'sample-every': { type: 'string' },
  'checkpoint-every': { type: 'string' },
  export: { type: 'string' },
  'no-export': { type: 'boolean' },
  'export-dtype': { type: 'string' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function readFlags(argv: string[]) {
  try {
    return parseArgs({ args: argv, strict: true, options: FLAGS }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

type Flags = ReturnType<typeof readFlags>;

/** The flags checked for more than being a number, in the order their errors are reported. */
interface Choices {
  arch: Arch;
  steps: number | null;
  epochs: number | null;
  loss: GanLoss;
  diffAugment: DiffAugmentPolicy;
  emaDecay: number | null;
  initFrom: string | null;
  convPrecision: ConvPrecision;
  size: ImageSize;
  exportDtype: ExportDtype;
  gUpsample: LastUpsample;
}

export function parseTrainArgs(argv: string[]): TrainOptions | 'help' {
  const flags = readFlags(argv);
  if (flags.help) return 'help';
  const arch = archFlag(flags);
  const { steps, epochs } = lengthFlags(flags);
  const { loss, diffAugment, emaDecay } = recipeFlags(flags);
  const initFrom = initFromFlag(flags);
  const convPrecision = convPrecisionFlag(flags);
  const size = sizeFlag(flags, arch, initFrom);
  const exportDtype = exportDtypeFlag(flags);
  const gUpsample = gUpsampleFlag(flags, arch);
  const opts = trainOptions(flags, {
    arch,
    steps,
    epochs,
    loss,
    diffAugment,
    emaDecay,
    initFrom,
    convPrecision,
    size,
    exportDtype,
    gUpsample,
  });
  if (opts.halfSizeD! > 0 && size !== 128) throw new UsageError('--half-size-d needs --size 128');
  if (opts.gDetailWidth !== null && gUpsample !== 'pyramid')
    throw new UsageError('--g-detail-width needs --g-upsample pyramid');
  return opts;
}

function archFlag(flags: Flags): Arch {
  const arch = flags.arch ?? 'dcgan';
  if (!isArch(arch)) throw new UsageError(`--arch must be one of ${ARCHS.join(', ')}, got "${arch}"`);
  return arch;
}

/** --steps or --epochs (not both); neither: one epoch for a new run, the saved length for --resume (see train.ts). */
function lengthFlags(flags: Flags): { steps: number | null; epochs: number | null } {
  const steps = num('steps', flags.steps, true, 1) ?? null;
  const epochs = num('epochs', flags.epochs, false, 0.001) ?? null;
  if (steps !== null && epochs !== null) throw new UsageError('give --steps or --epochs, not both');
  return { steps, epochs };
}

function recipeFlags(flags: Flags): { loss: GanLoss; diffAugment: DiffAugmentPolicy; emaDecay: number | null } {
  const loss = flags.loss ?? DEFAULT_TRAIN.loss;
  if (!(LOSSES as readonly string[]).includes(loss))
    throw new UsageError(`--loss must be one of ${LOSSES.join(', ')}, got "${loss}"`);
  let diffAugment: DiffAugmentPolicy;
  try {
    diffAugment = parsePolicy(flags.diffaugment ?? '');
  } catch (err) {
    throw new UsageError(`--diffaugment: ${(err as Error).message}`);
  }
  const emaDecay = num('ema', flags.ema, false, 0) ?? null;
  if (emaDecay !== null && emaDecay >= 1) throw new UsageError(`--ema must be below 1, got "${flags.ema}"`);
  return { loss: loss as GanLoss, diffAugment, emaDecay };
}

function initFromFlag(flags: Flags): string | null {
  const initFrom = flags['init-from'] ?? null;
  if (initFrom !== null && !existsSync(initFrom)) throw new UsageError(`--init-from: folder not found: ${initFrom}`);
  return initFrom;
}

/** The flag, else FACEGAN_CONV_PRECISION, else auto. */
function convPrecisionFlag(flags: Flags): ConvPrecision {
  try {
    const flag = flags['conv-precision'];
    return flag === undefined ? parseConvPrecision() : parseConvPrecision(flag, '--conv-precision');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function sizeFlag(flags: Flags, arch: Arch, initFrom: string | null): ImageSize {
  const size = num('size', flags.size, true, 1) ?? (initFrom ? parentSize(initFrom) : 64);
  if (!isImageSize(size)) throw new UsageError(`--size must be one of ${IMAGE_SIZES.join(', ')}, got "${flags.size}"`);
  if (size !== 64 && arch !== 'dcgan' && initFrom === null)
    throw new UsageError(`--size ${size} needs --arch dcgan (the seed's models draw 64x64)`);
  return size;
}

/** The size of the pair in an --init-from folder (its manifest's; 64 for exports older than 128 px). */
function parentSize(dir: string): number {
  const path = join(dir, 'manifest.json');
  if (!existsSync(path)) return 64; // the trainer names the missing manifest
  return (JSON.parse(readFileSync(path, 'utf8')) as ModelManifest).model.size ?? 64;
}

function gUpsampleFlag(flags: Flags, arch: Arch): LastUpsample {
  const u = flags['g-upsample'] ?? 'transposed';
  if (!(LAST_UPSAMPLES as readonly string[]).includes(u))
    throw new UsageError(`--g-upsample must be one of ${LAST_UPSAMPLES.join(', ')}, got "${u}"`);
  if (u !== 'transposed' && arch !== 'dcgan') throw new UsageError(`--g-upsample ${u} needs --arch dcgan`);
  if (u === 'pyramid' && flags.size !== '128') throw new UsageError('--g-upsample pyramid needs --size 128');
  return u as LastUpsample;
}

function exportDtypeFlag(flags: Flags): ExportDtype {
  const dtype = flags['export-dtype'] ?? 'float16';
  if (dtype !== 'float16' && dtype !== 'float32')
    throw new UsageError(`--export-dtype must be float16 or float32, got "${dtype}"`);
  return dtype;
}

/** The options with their defaults; plain numbers are checked here, in this order. */
function trainOptions(flags: Flags, c: Choices): TrainOptions {
  const out = flags.out ?? 'runs/default';
  return {
    data: flags.data ?? DEFAULT_DATA,
    arch: c.arch,
    width: num('width', flags.width, true, 1) ?? DEFAULT_WIDTH[c.arch],
    size: c.size,
    zDim: 100,
    batch: num('batch', flags.batch, true, 1) ?? 64,
    steps: c.steps,
    epochs: c.epochs,
    lr: num('lr', flags.lr, false, 0) ?? DEFAULT_TRAIN.learningRate,
    dLr: num('d-lr', flags['d-lr'], false, 0) ?? null,
    beta1: num('beta1', flags.beta1, false, 0) ?? DEFAULT_TRAIN.beta1,
    labelSmoothing: num('label-smoothing', flags['label-smoothing'], false, 0) ?? 0,
    loss: c.loss,
    diffAugment: c.diffAugment,
    r1Gamma: num('r1', flags.r1, false, 0) ?? 0,
    r1Every: num('r1-every', flags['r1-every'], true, 1) ?? DEFAULT_TRAIN.r1Every,
    emaDecay: c.emaDecay,
    gTrainFrom: flags['g-train-from'] ?? null,
    gUpsample: c.gUpsample,
    gDetailWidth: num('g-detail-width', flags['g-detail-width'], true, 1) ?? null,
    halfSizeD: num('half-size-d', flags['half-size-d'], false, 0) ?? 0,
    initFrom: c.initFrom,
    seed: num('seed', flags.seed, true, 0) ?? 1,
    out,
    resume: flags.resume ?? false,
    backend: flags.backend ?? 'auto',
    convPrecision: c.convPrecision,
    // A run exports into its own folder: replacing the shipped weights is a deliberate --export public/models.
    export: flags['no-export'] ? null : (flags.export ?? join(out, 'export')),
    exportDtype: c.exportDtype,
    limit: num('limit', flags.limit, true, 1) ?? null,
    logEvery: num('log-every', flags['log-every'], true, 1) ?? 10,
    sampleEvery: num('sample-every', flags['sample-every'], true, 1) ?? 500,
    checkpointEvery: num('checkpoint-every', flags['checkpoint-every'], true, 1) ?? 500,
    maxMinutes: num('max-minutes', flags['max-minutes'], false, 0) ?? null,
    maxCpuMinutes: num('max-cpu-minutes', flags['max-cpu-minutes'], false, 0) ?? null,
    summary: flags.summary ?? false,
    quiet: flags.quiet ?? false,
  };
}

/** The data folder exists check that --summary does not need. */
export function dataFolderHint(dir: string): string {
  return existsSync(dir)
    ? ''
    : ` (pass --data DIR; the default ${DEFAULT_DATA} exists only beside the shared CelebA folder)`;
}
