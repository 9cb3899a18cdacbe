/**
 * Face crop geometry from detected landmarks, so a visitor's photo is framed
 * the way CelebA's aligned images are: eyes level, the face centred, and the
 * same face-to-crop scale as `alignedFaceCrop` gives on a CelebA image.
 * Pure maths on points: the page draws the crop with a canvas transform.
 */
import { IMAGE_SIZE } from './models.ts';

export interface Point {
  x: number;
  y: number;
}

/** The landmarks alignment needs; "left" is the eye on the image's left. */
export interface FaceKeyPoints {
  leftEye: Point;
  rightEye: Point;
  mouth: Point;
}

/** A square in the photo, rotated by `angle` radians about its centre. */
export interface AlignedSquare {
  cx: number;
  cy: number;
  size: number;
  angle: number;
}

/**
 * Mean landmark positions of CelebA's aligned 178x218 images (from
 * list_landmarks_align_celeba.txt), and the crop `alignedFaceCrop` takes there:
 * a 142.4 px square centred at (89, 122.08).
 */
export const CELEBA_KEY_POINTS: FaceKeyPoints = {
  leftEye: { x: 69.2, y: 111.5 },
  rightEye: { x: 107.6, y: 111.6 },
  mouth: { x: 88.35, y: 152.1 },
};
const CELEBA_CROP = { cx: 89, cy: 218 * 0.56, size: 178 * 0.8 };

const mid = (a: Point, b: Point): Point => ({ x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 });
const dist = (a: Point, b: Point) => Math.hypot(a.x - b.x, a.y - b.y);

/** The face's scale: the mean of eye distance and eyes-to-mouth distance, steadier under head turns than either alone. */
function faceScale(k: FaceKeyPoints): number {
  return (dist(k.leftEye, k.rightEye) + dist(mid(k.leftEye, k.rightEye), k.mouth)) / 2;
}

/** The crop centre relative to the eye centre, in face-scale units, in the face's own (eyes-level) frame. */
function celebaOffset(): { along: number; down: number; size: number } {
  const k = CELEBA_KEY_POINTS;
  const eyes = mid(k.leftEye, k.rightEye);
  const scale = faceScale(k);
  const angle = Math.atan2(k.rightEye.y - k.leftEye.y, k.rightEye.x - k.leftEye.x);
  const dx = CELEBA_CROP.cx - eyes.x;
  const dy = CELEBA_CROP.cy - eyes.y;
  const cos = Math.cos(angle),
    sin = Math.sin(angle);
  return { along: (dx * cos + dy * sin) / scale, down: (-dx * sin + dy * cos) / scale, size: CELEBA_CROP.size / scale };
}
const OFFSET = celebaOffset();

function assertFinitePoints(k: FaceKeyPoints): void {
  for (const [name, p] of Object.entries(k) as [string, Point][]) {
    if (!p || !Number.isFinite(p.x) || !Number.isFinite(p.y))
      throw new Error(`face landmarks: ${name} is not a finite point`);
  }
}

/** The square that frames this face as CelebA frames its faces. */
export function alignedSquare(k: FaceKeyPoints): AlignedSquare {
  assertFinitePoints(k);
  const scale = faceScale(k);
  if (!(scale > 0)) throw new Error('face landmarks: eyes and mouth coincide, no face scale');
  const angle = Math.atan2(k.rightEye.y - k.leftEye.y, k.rightEye.x - k.leftEye.x);
  const eyes = mid(k.leftEye, k.rightEye);
  const cos = Math.cos(angle),
    sin = Math.sin(angle);
  const along = OFFSET.along * scale;
  const down = OFFSET.down * scale;
  return {
    cx: eyes.x + along * cos - down * sin,
    cy: eyes.y + along * sin + down * cos,
    size: OFFSET.size * scale,
    angle,
  };
}

/** The mean of a run of points (a landmark group). */
export function centroid(points: readonly Point[]): Point {
  if (points.length === 0) throw new Error('centroid of no points');
  const s = points.reduce((a, p) => ({ x: a.x + p.x, y: a.y + p.y }), { x: 0, y: 0 });
  return { x: s.x / points.length, y: s.y / points.length };
}

/** Key points from the usual 68-point (iBUG) landmarks: eyes 36-41 and 42-47, mouth 48-67. */
export function keyPointsFrom68(points: readonly Point[]): FaceKeyPoints {
  if (points.length !== 68) throw new Error(`expected 68 face landmarks, got ${points.length}`);
  return {
    leftEye: centroid(points.slice(36, 42)),
    rightEye: centroid(points.slice(42, 48)),
    mouth: centroid(points.slice(48, 68)),
  };
}

/**
 * The 2D affine transform [a, b, c, d, e, f] (canvas `setTransform` order)
 * that maps the photo so `square` fills an out x out canvas, upright.
 */
export function squareToCanvasTransform(
  square: AlignedSquare,
  out = IMAGE_SIZE,
): [number, number, number, number, number, number] {
  const k = out / square.size;
  const cos = Math.cos(-square.angle) * k,
    sin = Math.sin(-square.angle) * k;
  // p' = R(-angle) * k * (p - c) + out/2
  return [
    cos,
    sin,
    -sin,
    cos,
    out / 2 - (cos * square.cx - sin * square.cy),
    out / 2 - (sin * square.cx + cos * square.cy),
  ];
}

/** Apply a canvas-order affine transform to a point. */
export function applyTransform(t: readonly number[], p: Point): Point {
  return { x: t[0] * p.x + t[2] * p.y + t[4], y: t[1] * p.x + t[3] * p.y + t[5] };
}

/** The fraction of the square that lies inside the photo (sampled), to flag crops that are mostly padding. */
export function insideFraction(square: AlignedSquare, width: number, height: number, samples = 16): number {
  let inside = 0;
  const cos = Math.cos(square.angle),
    sin = Math.sin(square.angle);
  for (let i = 0; i < samples; i++) {
    for (let j = 0; j < samples; j++) {
      const u = ((i + 0.5) / samples - 0.5) * square.size;
      const v = ((j + 0.5) / samples - 0.5) * square.size;
      const x = square.cx + u * cos - v * sin;
      const y = square.cy + u * sin + v * cos;
      if (x >= 0 && x < width && y >= 0 && y < height) inside++;
    }
  }
  return inside / (samples * samples);
}
