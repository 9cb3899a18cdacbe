/**
 * An outside judge of the sliders: face-api's AgeGenderNet (sex and age) and
 * FaceRecognitionNet (identity) on the aligned face chip, found as the
 * likeness judges find it (training/eval/judges.ts: TinyFaceDetector and 68
 * landmarks on the face upscaled on a grey canvas, then face-api's aligned
 * rectangle). Neither net fits any direction: they only judge the edits, so
 * a slider cannot pass by fooling the classifier it was fitted with.
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { IMAGE_SIZE } from '../../src/lib/models.ts';
export { SAME_PERSON } from '../../src/lib/directions.ts';
import { readWeightMap } from '../eval/face-nets.ts';
import { ALIGN, canvasOf } from '../eval/judges.ts';

export const TRAIT_DESCRIPTOR_DIM = 128;
export const TRAITS_ABOUT =
  'face-api AgeGenderNet (sex, age) and FaceRecognitionNet (128-d descriptor) on the aligned face chip (TinyFaceDetector + 68 landmarks)';

interface Net {
  isLoaded: boolean;
  loadFromWeightMap(m: tf.NamedTensorMap): void;
}
interface Judged {
  gender: 'male' | 'female';
  genderProbability: number;
  age: number;
  descriptor: Float32Array;
}
interface FaceApi {
  nets: Record<'tinyFaceDetector' | 'faceLandmark68Net' | 'ageGenderNet' | 'faceRecognitionNet', Net>;
  TinyFaceDetectorOptions: new (o: { inputSize: number; scoreThreshold: number }) => unknown;
  detectSingleFace(
    input: tf.Tensor3D,
    options: unknown,
  ): { withFaceLandmarks(): { withAgeAndGender(): { withFaceDescriptor(): Promise<Judged | undefined> } } };
}

const NET_FILES = {
  tinyFaceDetector: 'tiny_face_detector_model',
  faceLandmark68Net: 'face_landmark_68_model',
  ageGenderNet: 'age_gender_model',
  faceRecognitionNet: 'face_recognition_model',
} as const;

const require = createRequire(import.meta.url);

/** The same face-api module the likeness judges use (require caches it), with the four nets loaded once. */
function faceApi(): FaceApi {
  const api = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApi;
  for (const [net, file] of Object.entries(NET_FILES) as [keyof typeof NET_FILES, string][])
    if (!api.nets[net].isLoaded) api.nets[net].loadFromWeightMap(readWeightMap(file));
  return api;
}

export interface FaceTraits {
  /** Per image: whether a face (with landmarks) was found. */
  found: boolean[];
  /** P(male) per image; NaN where no face was found. */
  male: Float32Array;
  /** Age in years per image; NaN where no face was found. */
  age: Float32Array;
  /** [count, 128] descriptors; rows of images without a face are NaN. */
  descriptors: Float32Array;
}

/** Sex, age and identity of each image (size x size x 3 in [-1, 1], concatenated), one image per detector call. */
export async function faceTraits(images: Float32Array, size: number = IMAGE_SIZE): Promise<FaceTraits> {
  const fa = faceApi();
  const count = images.length / (size * size * 3);
  if (!Number.isInteger(count)) throw new Error(`expected whole ${size}x${size}x3 images, got ${images.length} values`);
  const options = new fa.TinyFaceDetectorOptions({ inputSize: ALIGN.inputSize, scoreThreshold: ALIGN.scoreThreshold });
  const out: FaceTraits = {
    found: [],
    male: new Float32Array(count).fill(NaN),
    age: new Float32Array(count).fill(NaN),
    descriptors: new Float32Array(count * TRAIT_DESCRIPTOR_DIM).fill(NaN),
  };
  for (let i = 0; i < count; i++) {
    const canvas = canvasOf(images, i, size);
    try {
      const face = await fa
        .detectSingleFace(canvas, options)
        .withFaceLandmarks()
        .withAgeAndGender()
        .withFaceDescriptor();
      out.found.push(face !== undefined);
      if (!face) continue;
      out.male[i] = face.gender === 'male' ? face.genderProbability : 1 - face.genderProbability;
      out.age[i] = face.age;
      out.descriptors.set(face.descriptor, i * TRAIT_DESCRIPTOR_DIM);
    } finally {
      canvas.dispose();
    }
  }
  return out;
}

/** Euclidean distance between descriptor rows i of a and j of b (NaN when either face was not found). */
export function descriptorDistance(a: Float32Array, i: number, b: Float32Array, j: number): number {
  let s = 0;
  for (let k = 0; k < TRAIT_DESCRIPTOR_DIM; k++)
    s += (a[i * TRAIT_DESCRIPTOR_DIM + k] - b[j * TRAIT_DESCRIPTOR_DIM + k]) ** 2;
  return Math.sqrt(s);
}
