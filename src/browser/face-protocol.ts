/**
 * Messages between a page and the face worker (src/workers/face.worker.ts):
 * every request carries an id and gets exactly one reply with that id.
 */

/** A photo's face crop, as the face worker cuts it. */
export interface FaceCrop {
  /** size x size x 3 in [-1, 1] (the size asked for: the generator's), ready for training. */
  pixels: Float32Array;
  /** True when a face was found; false means a centre crop. */
  face: boolean;
  score: number | null;
}

export type FaceRequest =
  | { id: number; type: 'load'; wasmPath: string }
  /** `size`: the side of the crop, the generator's (64 or 128). */
  | { id: number; type: 'crop'; wasmPath: string; bitmap: ImageBitmap; size: number };

export type FaceReply = { id: number; ok: true; crop?: FaceCrop } | { id: number; ok: false; error: string };
