/**
 * Face identity in the browser: face-api's FaceRecognitionNet, its weights
 * served by this site and fetched only when first needed (a visitor starts
 * from a photo on the home page, or a fine-tune fits the likeness in its
 * worker), as a differentiable embedder (src/lib/identity.ts) on the
 * caller's backend. The photo projection pulls towards the photo's
 * descriptor with it and reports the same descriptor distance `npm run eval`
 * measures.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as faceapi from '@vladmandic/face-api/dist/face-api.esm-nobundle.js';
import manifest from '@vladmandic/face-api/model/face_recognition_model-weights_manifest.json';
import weightsUrl from '@vladmandic/face-api/model/face_recognition_model.bin?url';
import { squareSide } from '../lib/images.ts';
import { faceApiEmbedder, type FaceEmbedder, type NetInputClass, type RecognitionNetLike } from '../lib/identity.ts';
import { loadNet, type Manifest } from './face-weights.ts';

let loading: Promise<FaceEmbedder> | null = null;

/** Load the recognizer once (again after a failure). */
export function loadFaceEmbedder(): Promise<FaceEmbedder> {
  loading ??= (async () => {
    const net = new faceapi.FaceRecognitionNet();
    await loadNet(net, manifest as Manifest, weightsUrl);
    return faceApiEmbedder(net as unknown as RecognitionNetLike, faceapi.NetInput as unknown as NetInputClass);
  })();
  loading.catch(() => {
    loading = null;
  });
  return loading;
}

/** Drop the loaded recogniser (its weights went with a lost GPU context); the next load fetches it anew. */
export function forgetFaceEmbedder(): void {
  loading = null;
}

/** Descriptor distance from `photo` to each of `faces` (all size x size x 3 in [-1, 1], faces row-major). */
export async function descriptorDistances(
  embed: FaceEmbedder,
  photo: Float32Array,
  faces: Float32Array,
): Promise<number[]> {
  const size = squareSide(photo.length);
  const count = faces.length / photo.length;
  if (!Number.isInteger(count)) throw new Error('the faces are not the size of the photo');
  const d = tf.tidy(() => {
    const p = embed(tf.tensor4d(photo, [1, size, size, 3]));
    const f = embed(tf.tensor4d(faces, [count, size, size, 3]));
    return tf.sqrt(tf.sum(tf.squaredDifference(f, p), 1));
  });
  try {
    return Array.from(await d.data());
  } finally {
    d.dispose();
  }
}
