// The likeness measure: its maths on synthetic descriptors, the judges on real
// CelebA photos (they must tell people apart before they may judge a
// generator), and the second judge's pinned download.
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../src/lib/backends.ts';
import { Rng } from '../src/lib/latent.ts';
import { JUDGE_DIMS, JUDGE_NAMES, judgeFaces, type JudgedFaces, type JudgeName } from '../training/eval/judges.ts';
import {
  calibrateJudges,
  centreDistances,
  galleryCentres,
  likenessMeasures,
  pairAuc,
  personCentres,
  quantile,
  rank1,
  type Gallery,
} from '../training/eval/likeness.ts';
import { JUDGE_FILES, judgeFilesPresent } from '../training/eval/judge-model.ts';
import { readIdentityList } from '../training/eval/identities.ts';
import { DEFAULT_DATA_DIR, loadAligned } from '../training/eval/sources.ts';

/** People as clusters: person p's descriptors are their centre plus noise of `spread`. */
function clusters(people: number, perPerson: number, spread: number, seed = 1): Gallery {
  const rng = new Rng(seed);
  const count = people * perPerson;
  const descriptors = {} as Record<JudgeName, Float32Array>;
  for (const j of JUDGE_NAMES) {
    const dim = JUDGE_DIMS[j];
    const centres = Array.from({ length: people }, () => Array.from({ length: dim }, () => rng.normal()));
    const x = new Float32Array(count * dim);
    for (let i = 0; i < count; i++) {
      const c = centres[Math.floor(i / perPerson)];
      let norm = 0;
      for (let k = 0; k < dim; k++) {
        x[i * dim + k] = c[k] + spread * rng.normal();
        norm += x[i * dim + k] ** 2;
      }
      // faceres' descriptors are unit vectors.
      if (j === 'faceres') for (let k = 0; k < dim; k++) x[i * dim + k] /= Math.sqrt(norm);
    }
    descriptors[j] = x;
  }
  return {
    faces: { found: new Array(count).fill(true), descriptors },
    identities: Array.from({ length: count }, (_, i) => String(Math.floor(i / perPerson))),
  };
}

describe('likeness maths', () => {
  it('pair AUC: 1 when every same pair is closer, 0 when every one is farther, 0.5 for ties', () => {
    expect(pairAuc([0.1, 0.2], [0.5, 0.6, 0.7])).toBe(1);
    expect(pairAuc([0.8, 0.9], [0.5, 0.6])).toBe(0);
    expect(pairAuc([0.5, 0.5], [0.5, 0.5])).toBe(0.5);
    expect(pairAuc([0.1, 0.6], [0.5, 0.7])).toBe(0.75);
    expect(quantile([1, 2, 3, 4, 5], 0.25)).toBe(2);
  });

  it('calibration tells tight clusters apart and cannot tell noise apart', () => {
    const tight = calibrateJudges(clusters(40, 4, 0.2), 64, { faceapi: 'a', faceres: 'b' });
    const noise = calibrateJudges(clusters(40, 4, 50), 64, { faceapi: 'a', faceres: 'b' });
    for (const j of JUDGE_NAMES) {
      expect(tight.judges[j].pairAuc).toBeGreaterThan(0.99);
      expect(tight.judges[j].rank1).toBeGreaterThan(0.95);
      expect(tight.judges[j].trueAcceptAt1pct).toBeGreaterThan(0.9);
      expect(tight.judges[j].rank1People).toBe(40);
      expect(noise.judges[j].pairAuc).toBeLessThan(0.65);
      expect(noise.judges[j].rank1).toBeLessThan(0.2);
    }
    expect(tight.samePairs).toBe(40 * 6);
    // One person alone cannot calibrate anything (and must not loop forever looking for a second).
    expect(() => calibrateJudges(clusters(1, 4, 0.2), 64, { faceapi: 'a', faceres: 'b' })).toThrow(/two people/);
  });

  it("1% of other people's photos fall within the threshold of a centre", () => {
    const g = clusters(30, 3, 0.8);
    const cal = calibrateJudges(g, 64, { faceapi: 'a', faceres: 'b' });
    const { different } = centreDistances(g, 'faceapi');
    const within = different.filter((d) => d < cal.judges.faceapi.threshold).length / different.length;
    expect(within).toBeGreaterThan(0.005);
    expect(within).toBeLessThan(0.015);
  });

  it('samples drawn around the person are within and identified; around someone else they are not', () => {
    const g = clusters(21, 5, 0.3, 3);
    const cal = calibrateJudges(g, 64, { faceapi: 'a', faceres: 'b' });
    const rows = (p: number) => ({
      found: [true, true, true, true, true],
      descriptors: Object.fromEntries(
        JUDGE_NAMES.map((j) => [j, g.faces.descriptors[j].slice(p * 5 * JUDGE_DIMS[j], (p + 1) * 5 * JUDGE_DIMS[j])]),
      ) as Record<JudgeName, Float32Array>,
    });
    // Person 20 is "the person": photos are their first 3 rows, samples their last 2 and person 0's.
    const person: JudgedFaces = rows(20);
    const photos: JudgedFaces = {
      found: [true, true, true],
      descriptors: Object.fromEntries(
        JUDGE_NAMES.map((j) => [j, person.descriptors[j].slice(0, 3 * JUDGE_DIMS[j])]),
      ) as Record<JudgeName, Float32Array>,
    };
    const others = galleryCentres({ ...g, identities: g.identities.map((id) => (id === '20' ? 'x' : id)) }, 'x');
    const like = likenessMeasures(rows(20), personCentres(photos), others, cal);
    const unlike = likenessMeasures(rows(0), personCentres(photos), others, cal);
    for (const j of JUDGE_NAMES) {
      expect(like.judges[j].identified).toBe(1);
      expect(like.judges[j].within).toBeGreaterThan(0.5);
      expect(unlike.judges[j].identified).toBe(0);
      expect(unlike.judges[j].within).toBe(0);
      expect(unlike.judges[j].meanDistance).toBeGreaterThan(like.judges[j].meanDistance);
    }
    // Without a gallery, identification is not measured.
    expect(likenessMeasures(rows(20), personCentres(photos), null, cal).judges.faceres.identified).toBeNaN();
    expect(rank1(g, 'faceres').people).toBe(21);
  });
});

describe('the judges on real photos', () => {
  beforeAll(async () => {
    await selectBackend(['wasm']);
  });

  it('both judges put photos of one person closer together than photos of different people; noise has no face', async () => {
    const list = readIdentityList().identities;
    const ids = Object.keys(list).slice(0, 4);
    const files = ids.flatMap((id) => list[id].slice(0, 4));
    const judged = await judgeFaces(await loadAligned(DEFAULT_DATA_DIR, files, 64), 64);
    expect(judged.found.filter(Boolean).length).toBeGreaterThanOrEqual(files.length - 2);
    const gallery: Gallery = { faces: judged, identities: ids.flatMap((id) => [id, id, id, id]) };
    const cal = calibrateJudges(gallery, 64, { faceapi: 'a', faceres: 'b' });
    for (const j of JUDGE_NAMES) {
      expect(cal.judges[j].pairAuc).toBeGreaterThan(0.85);
      expect(cal.judges[j].medianSamePair).toBeLessThan(cal.judges[j].medianDifferentPair);
    }
    const noise = new Float32Array(2 * 64 * 64 * 3).map((_, i) => Math.sin(i * 12.9898) * 0.9);
    const before = tf.memory().numTensors;
    const none = await judgeFaces(noise, 64);
    expect(none.found).toEqual([false, false]);
    expect(Number.isNaN(none.descriptors.faceres[0])).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  }, 300_000);
});

describe("the second judge's files", () => {
  it('are accepted only with the pinned hashes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'judge-'));
    mkdirSync(dir, { recursive: true });
    for (const f of Object.keys(JUDGE_FILES)) writeFileSync(join(dir, f), 'not the model');
    expect(judgeFilesPresent(dir)).toBe(false);
    expect(judgeFilesPresent(join(dir, 'missing'))).toBe(false);
  });
});
