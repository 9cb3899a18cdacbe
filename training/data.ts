/**
 * The training set in Node: list a folder of CelebA-style photos, decode each
 * once with sharp, preprocess with the page's own code (src/lib/images.ts),
 * and cache the results (64x64 or 128x128) as bytes so later epochs and later runs decode
 * nothing. Unreadable files are skipped and counted, never fatal.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { IMAGE_SIZE } from '../src/lib/models.ts';
import { alignedFaceCrop, flipHorizontal, preprocessAligned } from '../src/lib/images.ts';
import type { Rng } from '../src/lib/latent.ts';
import { readIdentities, splitFiles } from './split.ts';

const IMAGE_EXT = /\.(jpe?g|png|webp)$/i;
const pixelsOf = (size: number) => size * size * 3;
/** Bump when preprocessing changes, so stale caches are not reused. */
const CACHE_VERSION = 2;

export class DataError extends Error {}

/** A photo whose face crop is smaller than the model's side: it would have to be upsampled, so it is left out. */
export class TooSmallError extends Error {}

export interface Dataset {
  dir: string;
  /** Training image names, in cache order. */
  files: string[];
  /** Image side: size x size x 3 uint8 per image, back to back in `pixels`. */
  size: number;
  pixels: Uint8Array;
  skipped: { file: string; reason: string }[];
  /** Photos left out because their face crop is smaller than `size` (CelebA's half-size files at 128 px). */
  tooSmall: number;
  heldOut: number;
  fromCache: boolean;
}

/** The image files of a folder (sorted), or a DataError a user can act on. */
export function listImages(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DataError(`data folder not found: ${dir}`);
  const files = readdirSync(dir)
    .filter((f) => IMAGE_EXT.test(f))
    .sort();
  if (files.length === 0) throw new DataError(`no .jpg/.png/.webp images in data folder: ${dir}`);
  return files;
}

/**
 * Decode one file to model-ready bytes at size x size; throws on anything sharp cannot read. The
 * aligned crop is about 142 px of CelebA's 178x218, so 64 and 128 px are both downscales, never upsampling.
 */
export async function decodeOne(path: string, size: number = IMAGE_SIZE): Promise<Uint8Array> {
  const { data, info } = await sharp(path)
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const crop = alignedFaceCrop(info.width, info.height).size;
  if (crop < size) throw new TooSmallError(`${path}: face crop ${crop} px is smaller than ${size} px`);
  const floats = preprocessAligned({ data, width: info.width, height: info.height, channels: info.channels }, size);
  const bytes = new Uint8Array(floats.length);
  for (let i = 0; i < floats.length; i++) bytes[i] = Math.round((floats[i] + 1) * 127.5);
  return bytes;
}

function cacheKey(dir: string, files: string[], limit: number | undefined): string {
  const h = createHash('sha256');
  h.update(`${CACHE_VERSION}\n${resolve(dir)}\n${limit ?? 'all'}\n`);
  for (const f of files) h.update(`${f}:${statSync(join(dir, f)).size}\n`);
  return h.digest('hex').slice(0, 16);
}

interface CacheIndex {
  files: string[];
  skipped: Dataset['skipped'];
  tooSmall?: number;
  heldOut: number;
}

export interface LoadOptions {
  /** Where decoded caches live (created if missing). */
  cacheDir: string;
  /** Use at most this many training images (the first ones, in name order). */
  limit?: number;
  /** Called after each decoded image, for a progress bar. */
  onProgress?: (done: number, total: number) => void;
  /** Decode concurrency; sharp decodes on its own thread pool. */
  concurrency?: number;
  /** Image side to preprocess to (default 64). */
  size?: number;
}

/**
 * One readable line for a file sharp could not decode. libvips reports a cut-off file as a warning that
 * failOn turns into an error, worded differently by thread and codec ("premature end of JPEG image",
 * "Warning treated as error due to failOn", "truncated"), so those all read as one reason.
 */
export function decodeFailure(err: Error): string {
  const lines = err.message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const detail = lines.find((l) => !/^warning treated as error/i.test(l)) ?? lines[0] ?? 'unknown error';
  if (/premature end|truncat|failOn|unexpected end/i.test(err.message)) return `damaged or cut short (${detail})`;
  return detail;
}

export async function loadDataset(dir: string, opts: LoadOptions): Promise<Dataset> {
  const all = listImages(dir);
  const { train, heldOut } = splitFiles(all, readIdentities(dir));
  const files = opts.limit ? train.slice(0, opts.limit) : train;
  const size = opts.size ?? IMAGE_SIZE;
  const PIXELS = pixelsOf(size);
  const key = cacheKey(dir, files, opts.limit);
  const binPath = join(opts.cacheDir, `celeba${size}-${key}.bin`);
  const idxPath = join(opts.cacheDir, `celeba${size}-${key}.json`);
  if (existsSync(binPath) && existsSync(idxPath)) {
    const idx = JSON.parse(readFileSync(idxPath, 'utf8')) as CacheIndex;
    const pixels = new Uint8Array(readFileSync(binPath));
    if (pixels.length === idx.files.length * PIXELS)
      return { dir, ...idx, tooSmall: idx.tooSmall ?? 0, size, pixels, fromCache: true };
  }

  const decoded: (Uint8Array | null)[] = new Array(files.length).fill(null);
  const skipped: Dataset['skipped'] = [];
  let next = 0,
    done = 0,
    tooSmall = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      try {
        decoded[i] = await decodeOne(join(dir, files[i]), size);
      } catch (err) {
        if (err instanceof TooSmallError) tooSmall++;
        else skipped.push({ file: files[i], reason: decodeFailure(err as Error) });
      }
      opts.onProgress?.(++done, files.length);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));

  const kept = files.filter((_, i) => decoded[i] !== null);
  if (kept.length === 0) {
    throw new DataError(
      tooSmall > 0
        ? `none of the ${files.length} images in ${dir} is large enough for ${size} px (${tooSmall} too small, ${skipped.length} unreadable)`
        : `none of the ${files.length} images in ${dir} could be decoded`,
    );
  }
  const pixels = new Uint8Array(kept.length * PIXELS);
  let k = 0;
  for (const d of decoded) if (d) pixels.set(d, PIXELS * k++);
  skipped.sort((a, b) => a.file.localeCompare(b.file));

  mkdirSync(opts.cacheDir, { recursive: true });
  writeAtomic(binPath, pixels);
  writeAtomic(
    idxPath,
    JSON.stringify({ files: kept, skipped, tooSmall, heldOut: heldOut.length } satisfies CacheIndex),
  );
  return { dir, files: kept, size, pixels, skipped, tooSmall, heldOut: heldOut.length, fromCache: false };
}

/** Write via a temporary file and rename, so a crash never leaves half a file. */
export function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/**
 * Epoch-based batches: a fresh shuffle every epoch, random horizontal flips.
 * All randomness comes from the given Rng, so a resumed run (same Rng state,
 * same position) draws exactly the batches an uninterrupted run would.
 */
export interface SamplerState {
  position: number;
  epoch: number;
  order: number[];
}

export class BatchSampler {
  private order: number[];
  position: number;
  epoch: number;

  constructor(
    private readonly data: Dataset,
    private readonly rng: Rng,
    saved?: SamplerState,
  ) {
    this.order = saved ? [...saved.order] : [];
    this.position = saved?.position ?? 0;
    this.epoch = saved?.epoch ?? 0;
  }

  snapshot(): SamplerState {
    return { position: this.position, epoch: this.epoch, order: [...this.order] };
  }

  get size(): number {
    return this.data.files.length;
  }

  /** Fill `out` ([batch, size, size, 3] floats) with the next batch in [-1, 1]. */
  next(batch: number, out: Float32Array): Float32Array {
    const PIXELS = pixelsOf(this.data.size);
    const img = new Float32Array(PIXELS);
    for (let b = 0; b < batch; b++) {
      if (this.order.length === 0 || this.position >= this.order.length) this.reshuffle();
      const i = this.order[this.position++];
      const src = this.data.pixels.subarray(i * PIXELS, (i + 1) * PIXELS);
      for (let p = 0; p < PIXELS; p++) img[p] = src[p] / 127.5 - 1;
      const dst = out.subarray(b * PIXELS, (b + 1) * PIXELS);
      if (this.rng.uniform() < 0.5) flipHorizontal(img, dst, this.data.size);
      else dst.set(img);
    }
    return out;
  }

  private reshuffle(): void {
    if (this.order.length > 0) this.epoch++;
    this.order = this.rng.shuffle(Array.from({ length: this.size }, (_, i) => i));
    this.position = 0;
  }
}
