/**
 * `npm run eval -- --identity DIR|celeba:ID`: how much a generator's faces
 * look like one person, by the two likeness judges (likeness.ts), next to
 * the pretrained generator with the same latents and to the person's own
 * photos (each judged against the centre of the others).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { JUDGE_NAMES, type JudgeName } from './judges.ts';
import {
  centreOf,
  distance,
  galleryCentres,
  likenessMeasures,
  personCentres,
  type Gallery,
  type LikenessCalibration,
  type LikenessMeasures,
} from './likeness.ts';
import { judgeInChunks, loadGallery, readLikenessCalibration } from './likeness-data.ts';
import { readIdentityList } from './identities.ts';
import { cropFaceNode } from '../face-crops.ts';
import { DEFAULT_DATA_DIR, decodeImage, generatorImages, loadAligned, outputSize } from './sources.ts';

export interface PersonPhotos {
  name: string;
  /** size x size crops in [-1, 1], concatenated. */
  images: Float32Array;
  size: number;
  files: string[];
}

/**
 * A person's photos at `size`: `celeba:<id>` takes the files listed for that identity in
 * training/eval/identities.json (training's crop); anything else is a folder of photos, cropped as
 * `npm run finetune` and the page crop them (face detection and landmarks).
 */
export async function personPhotos(spec: string, dataDir = DEFAULT_DATA_DIR, size = 64): Promise<PersonPhotos> {
  const m = /^celeba:(\d+)$/.exec(spec);
  if (m) {
    const files = readIdentityList().identities[m[1]];
    if (!files) throw new Error(`identity ${m[1]} is not listed in training/eval/identities.json`);
    return { name: spec, files, size, images: await loadAligned(dataDir, files, size) };
  }
  if (!existsSync(spec) || !statSync(spec).isDirectory()) throw new Error(`photo folder not found: ${spec}`);
  const crops: Float32Array[] = [];
  const files: string[] = [];
  for (const f of readdirSync(spec)
    .filter((n) => /\.(jpe?g|png|webp)$/i.test(n))
    .sort()) {
    const crop = await cropFaceNode(await decodeImage(join(spec, f)), size);
    if (crop) {
      crops.push(crop.pixels);
      files.push(join(spec, f));
    }
  }
  if (crops.length < 2)
    throw new Error(`${spec}: faces found in ${crops.length} photo(s); the measure needs at least 2`);
  const P = size * size * 3;
  const images = new Float32Array(crops.length * P);
  crops.forEach((c, i) => images.set(c, i * P));
  return { name: spec, images, files, size };
}

export interface PhotoLikeness {
  photos: number;
  detected: number;
  /** Per judge: each photo against the centre of the person's other photos. */
  judges: Record<JudgeName, { within: number; identified: number; meanDistance: number }>;
}

export interface LikenessReport {
  person: string;
  size: number;
  samples: number;
  seed: number;
  /** What each judge can tell apart (from the calibration file). */
  calibration: Record<
    JudgeName,
    { pairAuc: number; threshold: number; rank1: number; rank1People: number; medianSamePair: number }
  >;
  /** How the person's own photos score: the most a generator of this person could reach. */
  photos: PhotoLikeness;
  /** One entry per generator, same latents. */
  generators: Record<string, LikenessMeasures>;
}

/** The person's own photos, leave-one-out, against the gallery's other people. */
function photoLikeness(
  judged: Awaited<ReturnType<typeof judgeInChunks>>,
  others: Record<JudgeName, Float32Array[]> | null,
  cal: LikenessCalibration,
): PhotoLikeness {
  const rows = judged.found.flatMap((f, i) => (f ? [i] : []));
  const n = judged.found.length;
  const judges = {} as PhotoLikeness['judges'];
  for (const j of JUDGE_NAMES) {
    const dim = j === 'faceapi' ? 128 : 1024,
      x = judged.descriptors[j];
    let within = 0,
      identified = 0,
      sum = 0;
    for (const r of rows) {
      const rest = rows.filter((o) => o !== r);
      if (rest.length === 0) continue;
      const c = centreOf(x, rest, dim, j === 'faceres');
      const d = distance(x, r, c, 0, dim);
      sum += d;
      if (d < cal.judges[j].threshold) within++;
      if (others?.[j].every((o) => distance(x, r, o, 0, dim) > d)) identified++;
    }
    judges[j] = { within: within / n, identified: others ? identified / n : NaN, meanDistance: sum / rows.length };
  }
  return { photos: n, detected: rows.length / n, judges };
}

/** Judge generators (name -> model, same size) on the same `samples` latents from Rng(seed) against a person. */
export async function evaluateIdentity(
  person: PersonPhotos,
  generators: Record<string, LayersModel>,
  /** gallery null: no identification (shares identified are NaN), so nothing is judged but the photos and samples. */
  opts: { samples: number; seed: number; calibration?: LikenessCalibration; gallery?: Gallery | null },
): Promise<LikenessReport> {
  const size = person.size;
  for (const [name, g] of Object.entries(generators)) {
    if (outputSize(g) !== size)
      throw new Error(`generator "${name}" draws ${outputSize(g)} px faces; the photos were cropped at ${size} px`);
  }
  const cal = opts.calibration ?? readLikenessCalibration(size);
  const gallery = opts.gallery === undefined ? await loadGallery(size) : opts.gallery;
  const id = /^celeba:(\d+)$/.exec(person.name)?.[1];
  const others = gallery ? galleryCentres(gallery, id) : null;
  const photos = await judgeInChunks(person.images, size, 'photos');
  const centre = personCentres(photos);
  const out: Record<string, LikenessMeasures> = {};
  for (const [name, g] of Object.entries(generators)) {
    const images = await generatorImages(g, opts.samples, opts.seed);
    const judged = await judgeInChunks(images, size, name);
    out[name] = likenessMeasures(judged, centre, others, cal, { samples: images, photos: person.images, size });
  }
  const calibration = Object.fromEntries(
    JUDGE_NAMES.map((j) => {
      const c = cal.judges[j];
      return [
        j,
        {
          pairAuc: c.pairAuc,
          threshold: c.threshold,
          rank1: c.rank1,
          rank1People: c.rank1People,
          medianSamePair: c.medianSamePair,
        },
      ];
    }),
  ) as LikenessReport['calibration'];
  return {
    person: person.name,
    size,
    samples: opts.samples,
    seed: opts.seed,
    calibration,
    photos: photoLikeness(photos, others, cal),
    generators: out,
  };
}

/** The likeness issue's bar for a fine-tuned generator's samples. */
export function targetsMet(m: LikenessMeasures): Record<string, boolean> {
  return {
    faceapi_within: m.judges.faceapi.within >= 0.7,
    faceres_within: m.judges.faceres.within >= 0.7,
    faceres_identified: m.judges.faceres.identified >= 0.7,
    detected: m.detected >= 0.9,
    diversity: m.judges.faceapi.diversityRatio >= 0.9 && m.judges.faceres.diversityRatio >= 0.9,
    near_copies: m.nearCopies < 0.1,
  };
}
