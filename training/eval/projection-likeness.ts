/**
 * "Start from your photo", judged: held-out photos projected into the
 * generator with the page's settings (src/lib/projection.ts), then each
 * projection judged by the two likeness judges against the held-out gallery
 * (likeness.ts): is it identified as the photo's person (nearest centre, the
 * person's centre from their *other* photos), and does it keep the photo's sex
 * and age (FaceRes' own estimates)? The photo itself, judged the same way, is
 * the ceiling: rank-1 identification of a real photo.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { projectPhotos, type ProjectionConfig } from '../../src/lib/projection.ts';
import type { FaceEmbedder } from '../../src/lib/identity.ts';
import { JUDGE_DIMS, JUDGE_NAMES, type JudgeName, type JudgedFaces } from './judges.ts';
import { centreOf, distance, peopleOf, type Gallery, type LikenessCalibration } from './likeness.ts';
import { judgeInChunks, loadGallery, readLikenessCalibration } from './likeness-data.ts';
import { DEFAULT_DATA_DIR, loadAligned } from './sources.ts';

export interface ProjectionJudged {
  /** Share identified as their person, and share within the judge's threshold of the person's centre. */
  projectionIdentified: number;
  projectionWithin: number;
  photoIdentified: number;
  photoWithin: number;
  /** Mean distance of the projection to the person's centre (the photo's own, for scale). */
  projectionDistance: number;
  photoDistance: number;
}

export interface ProjectionLikeness {
  photos: number;
  size: number;
  config: Partial<ProjectionConfig>;
  seconds: number;
  /** Share of projections in which a face was found. */
  detected: number;
  judges: Record<JudgeName, ProjectionJudged>;
  /** Share of photos whose projection FaceRes puts on the same side of male/female as the photo. */
  sexKept: number;
  /** Mean absolute difference of FaceRes' age estimates, photo vs projection, in years. */
  ageDifference: number;
  /** Mean squared pixel error, photo to projection ([-1, 1] range). */
  pixelError: number;
  /** The photos and their projections, for a picture. */
  images: { photos: Float32Array; projections: Float32Array };
}

/** One photo each of `count` gallery people with at least three photos with a face, spread over the gallery. */
export function projectionSubjects(
  g: Gallery & { files: string[] },
  count: number,
): { row: number; person: string; others: number[] }[] {
  const people = peopleOf(g, 3);
  const step = Math.max(1, Math.floor(people.length / count));
  return people
    .filter((_, i) => i % step === 0)
    .slice(0, count)
    .map((p) => ({ row: p.rows[0], person: p.id, others: p.rows.slice(1) }));
}

function judgeOne(
  x: Float32Array,
  row: number,
  dim: number,
  own: Float32Array,
  rivals: Float32Array[],
  threshold: number,
) {
  const d = distance(x, row, own, 0, dim);
  return { d, identified: rivals.every((c) => distance(x, row, c, 0, dim) > d), within: d < threshold };
}

function score(
  judged: JudgedFaces,
  subjects: ReturnType<typeof projectionSubjects>,
  g: Gallery,
  cal: LikenessCalibration,
  j: JudgeName,
) {
  const dim = JUDGE_DIMS[j],
    unit = j === 'faceres';
  const people = peopleOf(g);
  const centres = new Map(people.map((p) => [p.id, centreOf(g.faces.descriptors[j], p.rows, dim, unit)]));
  return subjects.map((s, i) => {
    if (!judged.found[i]) return { d: NaN, identified: false, within: false };
    const own = centreOf(g.faces.descriptors[j], s.others, dim, unit);
    const rivals = people.filter((p) => p.id !== s.person).map((p) => centres.get(p.id)!);
    return judgeOne(judged.descriptors[j], i, dim, own, rivals, cal.judges[j].threshold);
  });
}

const share = (xs: readonly boolean[]) => xs.filter(Boolean).length / xs.length;
const meanOf = (xs: readonly number[]) => {
  const ok = xs.filter((v) => Number.isFinite(v));
  return ok.reduce((a, b) => a + b, 0) / ok.length;
};

/**
 * Project `count` held-out photos with `config` on the active backend (embedder: the page's identity
 * term), then judge on WASM, where the gallery's cached descriptors were made.
 */
export async function projectionLikeness(
  generator: LayersModel,
  discriminator: LayersModel | null,
  config: Partial<ProjectionConfig>,
  embedder: FaceEmbedder | undefined,
  opts: { count: number; dataDir?: string },
): Promise<ProjectionLikeness> {
  const main = tf.getBackend();
  const size = generator.outputs[0].shape[1] as number;
  await import('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend('wasm');
  const gallery = await loadGallery(size, { dataDir: opts.dataDir });
  const cal = readLikenessCalibration(size);
  const subjects = projectionSubjects(gallery, opts.count);
  const photos = await loadAligned(
    opts.dataDir ?? DEFAULT_DATA_DIR,
    subjects.map((s) => gallery.files[s.row]),
    size,
  );
  const P = size * size * 3;
  const targets = subjects.map((_, i) => photos.slice(i * P, (i + 1) * P));
  await tf.setBackend(main);
  const t0 = performance.now();
  const { reconstructions } = await projectPhotos(generator, discriminator, targets, config, embedder);
  const seconds = (performance.now() - t0) / 1000;
  await tf.setBackend('wasm');
  try {
    const judged = await judgeInChunks(reconstructions, size, 'projections');
    const photoJudged: JudgedFaces = {
      found: subjects.map((s) => gallery.faces.found[s.row]),
      descriptors: Object.fromEntries(
        JUDGE_NAMES.map((j) => {
          const dim = JUDGE_DIMS[j];
          const x = new Float32Array(subjects.length * dim);
          subjects.forEach((s, i) =>
            x.set(gallery.faces.descriptors[j].subarray(s.row * dim, (s.row + 1) * dim), i * dim),
          );
          return [j, x];
        }),
      ) as Record<JudgeName, Float32Array>,
    };
    const photoTraits = (await judgeInChunks(photos, size, 'photos')).traits!;
    const judges = Object.fromEntries(
      JUDGE_NAMES.map((j) => {
        const proj = score(judged, subjects, gallery, cal, j);
        const real = score(photoJudged, subjects, gallery, cal, j);
        return [
          j,
          {
            projectionIdentified: share(proj.map((r) => r.identified)),
            projectionWithin: share(proj.map((r) => r.within)),
            photoIdentified: share(real.map((r) => r.identified)),
            photoWithin: share(real.map((r) => r.within)),
            projectionDistance: meanOf(proj.map((r) => r.d)),
            photoDistance: meanOf(real.map((r) => r.d)),
          },
        ];
      }),
    ) as Record<JudgeName, ProjectionJudged>;
    const t = judged.traits!;
    const sexKept = subjects.map((_, i) => Number.isFinite(t.male[i]) && t.male[i] > 0.5 === photoTraits.male[i] > 0.5);
    let px = 0;
    for (let k = 0; k < photos.length; k++) px += (photos[k] - reconstructions[k]) ** 2;
    return {
      photos: subjects.length,
      size,
      config,
      seconds: Math.round(seconds),
      detected: share(judged.found),
      judges,
      sexKept: share(sexKept),
      ageDifference: meanOf(subjects.map((_, i) => Math.abs(t.age[i] - photoTraits.age[i]))),
      pixelError: px / photos.length,
      images: { photos, projections: reconstructions },
    };
  } finally {
    await tf.setBackend(main);
  }
}
