/**
 * `npm run eval -- --identity DIR`: how much a generator's faces look like
 * one person, next to the pretrained generator with the same latents.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { describeFaces, detectFaces } from './face-nets.ts';
import { centre, identityMeasures, leaveOneOut, mean, meanPairwise, type Calibration, type IdentityMeasures } from './identity.ts';
import { readCalibration, readIdentityList } from './identity-calibration.ts';
import { cropFaceNode } from '../face-crops.ts';
import { DEFAULT_DATA_DIR, decodeImage, generatorImages, loadAligned } from './sources.ts';

const PIXELS = 64 * 64 * 3;

export interface PersonPhotos {
  name: string;
  /** 64x64 crops in [-1, 1], concatenated. */
  images: Float32Array;
  files: string[];
}

/**
 * A person's photos: `celeba:<id>` takes the files listed for that identity
 * in training/eval/identities.json from the CelebA folder; anything else is a
 * folder of photos (CelebA-aligned ones get the training crop, square ones
 * are taken whole).
 */
export async function personPhotos(spec: string, dataDir = DEFAULT_DATA_DIR): Promise<PersonPhotos> {
  const m = /^celeba:(\d+)$/.exec(spec);
  if (m) {
    const files = readIdentityList().identities[m[1]];
    if (!files) throw new Error(`identity ${m[1]} is not listed in training/eval/identities.json`);
    return { name: spec, files, images: await loadAligned(dataDir, files) };
  }
  if (!existsSync(spec) || !statSync(spec).isDirectory()) throw new Error(`photo folder not found: ${spec}`);
  // Cropped as `npm run finetune` and the page crop them (face detection and landmarks).
  const crops: Float32Array[] = [];
  const files: string[] = [];
  for (const f of readdirSync(spec).filter((n) => /\.(jpe?g|png|webp)$/i.test(n)).sort()) {
    const crop = await cropFaceNode(await decodeImage(join(spec, f)));
    if (crop) {
      crops.push(crop.pixels);
      files.push(join(spec, f));
    }
  }
  if (crops.length < 2) throw new Error(`${spec}: faces found in ${crops.length} photo(s); the measure needs at least 2`);
  const images = new Float32Array(crops.length * PIXELS);
  crops.forEach((c, i) => images.set(c, i * PIXELS));
  return { name: spec, images, files };
}

export interface PhotoStats {
  photos: number;
  /** Mean distance of each photo to the centre of the others (leave-one-out). */
  leave_one_out: number;
  /** Mean pairwise distance of the photos. */
  pairwise: number;
  detection_rate: number;
}

export interface IdentityReport {
  person: string;
  samples: number;
  seed: number;
  calibration: Calibration;
  photos: PhotoStats;
  /** One entry per generator, same latents. */
  generators: Record<string, IdentityMeasures>;
  /** Mean distance the tuned generator must reach: halfway from the first generator's to the photos' leave-one-out. */
  target_mean_distance?: number;
}

export async function photoDescriptors(person: PersonPhotos): Promise<{ descriptors: Float32Array; stats: PhotoStats }> {
  const descriptors = await describeFaces(person.images);
  const found = await detectFaces(person.images);
  const n = person.images.length / PIXELS;
  return {
    descriptors,
    stats: {
      photos: n,
      leave_one_out: n > 1 ? mean(leaveOneOut(descriptors)) : NaN,
      pairwise: n > 1 ? meanPairwise(descriptors) : NaN,
      detection_rate: found.filter(Boolean).length / n,
    },
  };
}

/** Measures for samples (64x64 in [-1, 1]) against a person's photos. */
export async function measureSamples(samples: Float32Array, person: PersonPhotos, photoCentre: Float32Array, cal: Calibration): Promise<IdentityMeasures> {
  const found = await detectFaces(samples);
  const descriptors = await describeFaces(samples);
  return identityMeasures(descriptors, found, samples, person.images, photoCentre, cal);
}

/** Judge generators (name -> model, e.g. pretrained and fine-tuned) on the same `samples` latents from Rng(seed). */
export async function evaluateIdentity(
  person: PersonPhotos, generators: Record<string, LayersModel>, opts: { samples: number; seed: number; calibration?: Calibration },
): Promise<IdentityReport> {
  const cal = opts.calibration ?? readCalibration();
  const { descriptors, stats } = await photoDescriptors(person);
  const c = centre(descriptors);
  const out: Record<string, IdentityMeasures> = {};
  for (const [name, g] of Object.entries(generators)) {
    const images = await generatorImages(g, opts.samples, opts.seed);
    out[name] = await measureSamples(images, person, c, cal);
  }
  const first = Object.values(out)[0];
  return {
    person: person.name, samples: opts.samples, seed: opts.seed, calibration: pickCalibration(cal), photos: stats, generators: out,
    ...(first && Number.isFinite(stats.leave_one_out) ? { target_mean_distance: (first.mean_distance + stats.leave_one_out) / 2 } : {}),
  };
}

function pickCalibration(c: Calibration): Calibration {
  return { samePersonThreshold: c.samePersonThreshold, medianSamePair: c.medianSamePair, medianDifferentPair: c.medianDifferentPair, nearCopyRms: c.nearCopyRms };
}

/** The "done" bar for one person, from a report (tuned is the generator judged, the first entry the baseline). */
export function targetsMet(r: IdentityReport, tuned: string): Record<string, boolean> {
  const m = r.generators[tuned];
  return {
    within_threshold: m.within_threshold >= 0.6,
    mean_distance: r.target_mean_distance !== undefined && m.mean_distance <= r.target_mean_distance,
    detection: m.detection_rate >= 0.9,
    diversity: m.diversity_ratio >= 0.9,
    near_copies: m.near_copies < 0.1,
  };
}

export function tensorCount(): number {
  return tf.memory().numTensors;
}
