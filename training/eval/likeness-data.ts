/**
 * The likeness measure's data: the held-out gallery (every held-out CelebA
 * person but the benchmark people, judged at the generator's size, cached on
 * disk), the calibration file per size, and a person's photos.
 *
 *   npm run eval -- --likeness-calibrate [--size 64|128]   writes training/eval/likeness-calibration-SIZE.json
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { JUDGE_ABOUT, JUDGE_DIMS, JUDGE_NAMES, judgeFaces, type JudgedFaces, type JudgeName } from './judges.ts';
import { calibrateJudges, quantile, type Gallery, type LikenessCalibration } from './likeness.ts';
import { DEFAULT_CACHE_DIR } from './descriptor-cache.ts';
import { degradedCopy, readIdentityList } from './identities.ts';
import { pixelRms } from '../../src/lib/near-copies.ts';
import { DEFAULT_DATA_DIR, heldOutFiles, largeEnough, loadAligned } from './sources.ts';
import { JUDGE_PACKAGE } from './judge-model.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const likenessCalibrationFile = (size: number) => join(here, `likeness-calibration-${size}.json`);

/** Bump when the judging pipeline changes, so cached descriptors are recomputed. */
const PIPELINE_VERSION = 1;

interface CacheFile {
  key: string;
  files: Record<string, { found: boolean; d: Record<JudgeName, number[]> }>;
}

function cachePath(dir: string, size: number): string {
  return join(dir, `likeness-gallery-${size}-${tf.getBackend()}.json`);
}

/** The held-out files judged at `size` (those whose face crop is at least that large), minus the benchmark people. */
export async function galleryFiles(
  size: number,
  dataDir = DEFAULT_DATA_DIR,
): Promise<{ files: string[]; identities: string[] }> {
  const excluded = new Set(Object.keys(readIdentityList().identities));
  const { files: all, identities } = heldOutFiles(dataDir);
  const files: string[] = [];
  for (const f of all) {
    if (excluded.has(String(identities.get(f)))) continue;
    if (size > 64 && !(await largeEnough(join(dataDir, f), size))) continue;
    files.push(f);
  }
  return { files, identities: files.map((f) => String(identities.get(f))) };
}

/** Judge images in chunks, reporting progress on stderr. */
export async function judgeInChunks(
  images: Float32Array,
  size: number,
  label: string,
  chunk = 100,
): Promise<JudgedFaces> {
  const count = images.length / (size * size * 3);
  const found: boolean[] = [];
  const descriptors = Object.fromEntries(
    JUDGE_NAMES.map((j) => [j, new Float32Array(count * JUDGE_DIMS[j])]),
  ) as Record<JudgeName, Float32Array>;
  const traits = { male: new Float32Array(count), age: new Float32Array(count) };
  for (let s = 0; s < count; s += chunk) {
    const n = Math.min(chunk, count - s);
    const part = await judgeFaces(images.subarray(s * size * size * 3, (s + n) * size * size * 3), size);
    found.push(...part.found);
    for (const j of JUDGE_NAMES) descriptors[j].set(part.descriptors[j], s * JUDGE_DIMS[j]);
    traits.male.set(part.traits!.male, s);
    traits.age.set(part.traits!.age, s);
    if (count > chunk) process.stderr.write(`  ${label}: ${s + n}/${count} judged\n`);
  }
  return { found, descriptors, traits };
}

/** The gallery at `size`, from the disk cache where it was judged before with the same pipeline and backend. */
export async function loadGallery(
  size: number,
  opts: { dataDir?: string; cacheDir?: string | null } = {},
): Promise<Gallery & { files: string[] }> {
  const dataDir = opts.dataDir ?? DEFAULT_DATA_DIR;
  const { files, identities } = await galleryFiles(size, dataDir);
  const key = `${PIPELINE_VERSION}|${JUDGE_PACKAGE.version}|${size}|${tf.getBackend()}|${files.length}`;
  const path = opts.cacheDir === null ? null : cachePath(opts.cacheDir ?? DEFAULT_CACHE_DIR, size);
  let cache: CacheFile = { key, files: {} };
  if (path && existsSync(path)) {
    try {
      const read = JSON.parse(readFileSync(path, 'utf8')) as CacheFile;
      if (read.key === key) cache = read;
    } catch {
      /* a torn cache is a miss */
    }
  }
  const missing = files.filter((f) => !cache.files[f]);
  if (missing.length) {
    const judged = await judgeInChunks(
      await loadAligned(dataDir, missing, size),
      size,
      `held-out photos at ${size} px`,
    );
    missing.forEach((f, i) => {
      cache.files[f] = {
        found: judged.found[i],
        d: Object.fromEntries(
          JUDGE_NAMES.map((j) => [
            j,
            Array.from(judged.descriptors[j].subarray(i * JUDGE_DIMS[j], (i + 1) * JUDGE_DIMS[j])),
          ]),
        ) as Record<JudgeName, number[]>,
      };
    });
    if (path) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(`${path}.tmp`, JSON.stringify(cache));
      renameSync(`${path}.tmp`, path);
    }
  }
  const found = files.map((f) => cache.files[f].found);
  const descriptors = Object.fromEntries(
    JUDGE_NAMES.map((j) => {
      const x = new Float32Array(files.length * JUDGE_DIMS[j]);
      files.forEach((f, i) =>
        x.set(
          cache.files[f].d[j].map((v) => (v === null ? NaN : v)),
          i * JUDGE_DIMS[j],
        ),
      );
      return [j, x];
    }),
  ) as Record<JudgeName, Float32Array>;
  return { files, identities, faces: { found, descriptors } };
}

/** Calibrate both judges at `size` on the gallery, with the near-copy pixel bound; writes the calibration file. */
export async function calibrateLikeness(
  size: number,
  opts: { dataDir?: string; cacheDir?: string | null; write?: boolean } = {},
): Promise<LikenessCalibration> {
  const gallery = await loadGallery(size, opts);
  const cal = calibrateJudges(gallery, size, JUDGE_ABOUT);
  // A photo blurred a little and moved by a pixel or two is still a copy: 9 in 10 such copies lie within nearCopyRms.
  const some = gallery.files.filter((_, i) => i % 5 === 0).slice(0, 200);
  const pixels = await loadAligned(opts.dataDir ?? DEFAULT_DATA_DIR, some, size);
  const P = size * size * 3;
  const copy = some.map((_, i) =>
    pixelRms(pixels, i, degradedCopy(pixels.subarray(i * P, (i + 1) * P), size), 0, size),
  );
  cal.nearCopyRms = quantile(copy, 0.9);
  if (opts.write !== false) writeFileSync(likenessCalibrationFile(size), `${JSON.stringify(cal, null, 2)}\n`);
  return cal;
}

export function readLikenessCalibration(size: number): LikenessCalibration {
  const file = likenessCalibrationFile(size);
  if (!existsSync(file))
    throw new Error(`no likeness calibration for ${size} px: run npm run eval -- --likeness-calibrate --size ${size}`);
  return JSON.parse(readFileSync(file, 'utf8')) as LikenessCalibration;
}

/** One line per judge: what the calibration shows the judge can do. */
export function describeCalibration(cal: LikenessCalibration): string[] {
  return JUDGE_NAMES.map((j) => {
    const c = cal.judges[j];
    return (
      `${j} at ${cal.size} px: pair AUC ${c.pairAuc.toFixed(3)}, threshold to a person's centre ${c.threshold.toFixed(3)} ` +
      `(1% of other people's photos pass; ${(100 * c.trueAcceptAt1pct).toFixed(0)}% of the person's own do), median pair same ${c.medianSamePair.toFixed(3)} / ` +
      `different ${c.medianDifferentPair.toFixed(3)}, rank-1 identification ${(100 * c.rank1).toFixed(1)}% among ${c.rank1People} people`
    );
  });
}
