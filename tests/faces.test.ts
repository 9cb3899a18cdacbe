import { describe, expect, it } from 'vitest';
import {
  CELEBA_KEY_POINTS,
  alignedSquare,
  applyTransform,
  centroid,
  insideFraction,
  keyPointsFrom68,
  squareToCanvasTransform,
  type FaceKeyPoints,
  type Point,
} from '../src/lib/faces.ts';
import { alignedFaceCrop } from '../src/lib/images.ts';

/** Move key points by a similarity transform: scale s, rotation a (radians) about the origin, then shift. */
function similarity(k: FaceKeyPoints, s: number, a: number, tx: number, ty: number): FaceKeyPoints {
  const f = (p: Point): Point => ({
    x: s * (p.x * Math.cos(a) - p.y * Math.sin(a)) + tx,
    y: s * (p.x * Math.sin(a) + p.y * Math.cos(a)) + ty,
  });
  return {
    leftEye: f(CELEBA_KEY_POINTS.leftEye),
    rightEye: f(CELEBA_KEY_POINTS.rightEye),
    mouth: f(CELEBA_KEY_POINTS.mouth),
  };
}

describe('alignedSquare', () => {
  it('frames a CelebA-aligned face exactly as the trainer crops CelebA', () => {
    const sq = alignedSquare(CELEBA_KEY_POINTS);
    const box = alignedFaceCrop(178, 218);
    expect(sq.size).toBeCloseTo(178 * 0.8, 6);
    expect(Math.abs(sq.cx - sq.size / 2 - box.left)).toBeLessThan(1);
    expect(Math.abs(sq.cy - sq.size / 2 - box.top)).toBeLessThan(1);
    expect(Math.abs(sq.angle)).toBeLessThan(0.01);
  });

  it('follows a face that is scaled, tilted and moved in a larger photo', () => {
    const s = 3.7,
      a = 0.4,
      tx = 500,
      ty = -120;
    const sq = alignedSquare(similarity(CELEBA_KEY_POINTS, s, a, tx, ty));
    const ref = alignedSquare(CELEBA_KEY_POINTS);
    expect(sq.size).toBeCloseTo(ref.size * s, 6);
    expect(sq.angle).toBeCloseTo(ref.angle + a, 6);
    expect(sq.cx).toBeCloseTo(s * (ref.cx * Math.cos(a) - ref.cy * Math.sin(a)) + tx, 6);
    expect(sq.cy).toBeCloseTo(s * (ref.cx * Math.sin(a) + ref.cy * Math.cos(a)) + ty, 6);
  });

  it('maps a tilted face to the same 64x64 place with its eyes level', () => {
    const k = similarity(CELEBA_KEY_POINTS, 2.5, -0.6, 300, 400);
    const t = squareToCanvasTransform(alignedSquare(k), 64);
    const tRef = squareToCanvasTransform(alignedSquare(CELEBA_KEY_POINTS), 64);
    for (const name of ['leftEye', 'rightEye', 'mouth'] as const) {
      const p = applyTransform(t, k[name]);
      const q = applyTransform(tRef, CELEBA_KEY_POINTS[name]);
      expect(p.x).toBeCloseTo(q.x, 6);
      expect(p.y).toBeCloseTo(q.y, 6);
    }
    const l = applyTransform(t, k.leftEye),
      r = applyTransform(t, k.rightEye);
    expect(Math.abs(l.y - r.y)).toBeLessThan(0.05);
    expect(l.x).toBeLessThan(r.x);
    // The square's centre lands in the middle of the output.
    const sq = alignedSquare(k);
    const c = applyTransform(t, { x: sq.cx, y: sq.cy });
    expect(c.x).toBeCloseTo(32, 6);
    expect(c.y).toBeCloseTo(32, 6);
  });

  it('rejects landmarks that are missing, not finite, or all in one place', () => {
    expect(() => alignedSquare({ ...CELEBA_KEY_POINTS, mouth: { x: NaN, y: 1 } })).toThrow(/mouth/);
    const p = { x: 5, y: 5 };
    expect(() => alignedSquare({ leftEye: p, rightEye: p, mouth: p })).toThrow(/scale/);
  });
});

describe('keyPointsFrom68', () => {
  it('takes eye and mouth centres from the 68-point layout', () => {
    const pts: Point[] = Array.from({ length: 68 }, (_, i) => ({ x: i, y: 0 }));
    const k = keyPointsFrom68(pts);
    expect(k.leftEye.x).toBeCloseTo(38.5);
    expect(k.rightEye.x).toBeCloseTo(44.5);
    expect(k.mouth.x).toBeCloseTo(57.5);
    expect(
      centroid([
        { x: 0, y: 0 },
        { x: 2, y: 4 },
      ]),
    ).toEqual({ x: 1, y: 2 });
  });

  it('refuses a landmark set of the wrong size', () => {
    expect(() => keyPointsFrom68([{ x: 0, y: 0 }])).toThrow(/68/);
  });
});

describe('insideFraction', () => {
  it('is 1 for a square inside the photo and about a quarter at a corner', () => {
    expect(insideFraction({ cx: 50, cy: 50, size: 40, angle: 0.3 }, 100, 100)).toBe(1);
    expect(insideFraction({ cx: 0, cy: 0, size: 40, angle: 0 }, 100, 100)).toBeCloseTo(0.25, 2);
  });
});
