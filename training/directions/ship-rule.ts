/**
 * Which sliders ship. A slider must change its own attribute (the project's
 * classifier flips for most faces over its range), leave a face (the detector
 * finds one at both ends), keep the person at half its range (face-api's
 * recogniser), and, except for Male itself, keep the sex: face-api's gender
 * net, which fits nothing here, may see the sex change between the two ends
 * for no more faces than along a random direction moved as far.
 */
import { formatRange, type RejectionKind, type SliderRange } from '../../src/lib/directions.ts';

export interface Rejection {
  kind: RejectionKind;
  reason: string;
}

export interface ShipRule {
  /** Share of faces whose classifier decision must flip between -range and +range. */
  minFlip: number;
  /**
   * The share a slider's range is chosen to flip on the faces it is fitted on: above minFlip, so that on other
   * faces (`eval:directions -- --faces-seed 2`) the shortest range found still flips minFlip, not just under it.
   */
  rangeFlip: number;
  /** Share of faces the detector must still find at both ends. */
  minDetected: number;
  /** The most faces whose sex may flip, whatever the random baseline. */
  maxSexFlip: number;
  /** Mean face-descriptor distance at half range must stay under this (face-api's "same person" threshold). */
  maxHalfRangeDistance: number;
}

export const SHIP_RULE: ShipRule = {
  minFlip: 0.8,
  rangeFlip: 0.85,
  minDetected: 0.8,
  maxSexFlip: 0.25,
  maxHalfRangeDistance: 0.6,
};

/** The slider that is allowed to change sex. */
export const SEX_ATTRIBUTE = 'Male';

export interface SliderMeasures {
  name: string;
  range: SliderRange;
  flipRate: number;
  detectedBothEnds: number | null;
  /** The judge's measures, once taken. */
  sexFlipRate?: number;
  sexJudged?: number;
  randomSexFlipRates?: readonly number[];
  halfRangeDistance?: number;
}

const pct = (v: number) => `${Math.round(v * 100)}%`;

/**
 * The most sex flips a slider may have: the larger random direction's share plus two standard errors of it over
 * the judged faces (the measure's own sampling noise), and never above rule.maxSexFlip.
 */
export function sexFlipAllowance(randomRates: readonly number[], judged: number, rule: ShipRule = SHIP_RULE): number {
  const p = Math.max(0, ...randomRates);
  const noise = judged > 0 ? 2 * Math.sqrt((p * (1 - p)) / judged) : 0;
  return Math.min(rule.maxSexFlip, p + noise);
}

/** Null when the slider ships (so far as it was measured), else which check failed and why (a clause for people). */
export function shipVerdict(m: SliderMeasures, rule: ShipRule = SHIP_RULE): Rejection | null {
  const range = formatRange(m.range);
  if (m.flipRate < rule.minFlip)
    return {
      kind: 'flip',
      reason: `it flips the classifier's decision for only ${pct(m.flipRate)} of faces over ${range} (needs ${pct(rule.minFlip)})`,
    };
  if (m.detectedBothEnds !== null && m.detectedBothEnds < rule.minDetected)
    return {
      kind: 'detect',
      reason: `a face is still detected at both ends of ${range} for only ${pct(m.detectedBothEnds)} of faces`,
    };
  if (m.name !== SEX_ATTRIBUTE && m.sexFlipRate !== undefined && m.randomSexFlipRates) {
    const allowed = sexFlipAllowance(m.randomSexFlipRates, m.sexJudged ?? 0, rule);
    if (!(m.sexFlipRate <= allowed))
      return {
        kind: 'sex',
        reason: `it changes the sex (face-api's gender net) of ${pct(m.sexFlipRate)} of faces over ${range}, against ${m.randomSexFlipRates.map(pct).join(' and ')} along random directions (allowed ${pct(allowed)})`,
      };
  }
  if (m.halfRangeDistance !== undefined && !(m.halfRangeDistance < rule.maxHalfRangeDistance))
    return {
      kind: 'identity',
      reason: `half way to an end the face is another person (descriptor distance ${m.halfRangeDistance.toFixed(2)}, threshold ${rule.maxHalfRangeDistance})`,
    };
  return null;
}
