/**
 * `npm run eval:directions`: re-measure the sliders a directions.json ships,
 * on the generator it names (its weights hash must match): each slider's own
 * flip rate over its range (the project's classifier), the detector at both
 * ends, and face-api's judge: sex flips against two random directions of the
 * same range, age change and identity at half range. With another
 * `facesSeed` the faces are new ones, an independent check of the shipped numbers.
 */
import type { DirectionsFile } from '../../src/lib/directions.ts';
import { loadModelFile } from '../model-files.ts';
import { SAME_PERSON } from './face-traits.ts';
import { judgeSlider } from './judging.ts';
import {
  attributeClassifier,
  detectBothEnds,
  flipRate,
  generatorHash,
  measuring,
  sliderSteps,
  type DirectionsOptions,
} from './pipeline.ts';

/** The file with every shipped slider's measures taken again (vectors and ranges unchanged). */
export async function evaluateDirections(file: DirectionsFile, opts: DirectionsOptions): Promise<DirectionsFile> {
  const t0 = performance.now();
  const hash = await generatorHash(opts.generatorJson);
  if (hash !== file.generator.weightsSha256)
    throw new Error(
      `the directions belong to generator ${file.generator.weightsSha256.slice(0, 12)}…, not ${hash.slice(0, 12)}…`,
    );
  const g = await loadModelFile(opts.generatorJson);
  const clf = await attributeClassifier(opts);
  const m = await measuring(g, file.zDim, clf, opts);
  const attributes: DirectionsFile['attributes'] = [];
  for (const a of file.attributes) {
    const k = clf.names.indexOf(a.name);
    const { steps, images } = await sliderSteps(a.vector, k, a.range, m);
    const detected = await detectBothEnds(images[0], images[images.length - 1], opts);
    const judged = m.judge ? await judgeSlider(m.judge, a.vector, a.range, SAME_PERSON) : null;
    attributes.push({
      ...a,
      ...judged,
      flipRate: await flipRate(m, a.vector, k, a.range),
      detectedBothEnds: detected,
      steps,
    });
    opts.log(`  ${a.name}: measured`);
  }
  return {
    ...file,
    attributes,
    method: {
      ...file.method,
      seconds: Math.round((performance.now() - t0) / 1000),
      facesSeed: opts.facesSeed ?? opts.seed,
    },
  };
}
