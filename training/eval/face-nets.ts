/**
 * The two face-api networks the evaluation judges faces with, loaded from the
 * weights that ship inside the @vladmandic/face-api package (no download):
 * TinyFaceDetector (is there a face?) and FaceRecognitionNet (a 128-d
 * descriptor per face, the features of the Fréchet distance).
 *
 * face-api's node-wasm build is used because it needs neither
 * @tensorflow/tfjs-node nor a canvas: it runs on the same tfjs-core engine as
 * the rest of the project, on whichever backend is active.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { faceApiEmbedder, type FaceEmbedder, type NetInputClass } from '../../src/lib/identity.ts';
import { IMAGE_SIZE } from '../../src/lib/models.ts';

/** The slice of face-api's API used here (its bundled typings carry a private copy of tf's types). */
interface FaceDetectionLike {
  score: number;
}
interface WeightMapNet {
  loadFromWeightMap(map: tf.NamedTensorMap): void;
  dispose(): void;
}
interface TinyFaceDetectorLike extends WeightMapNet {
  locateFaces(input: tf.Tensor3D, options: unknown): Promise<FaceDetectionLike[]>;
}
interface RecognitionNetLike extends WeightMapNet {
  forward(input: tf.Tensor3D[]): Promise<tf.Tensor2D>;
  forwardInput(input: never): tf.Tensor2D;
}
interface FaceApiModule {
  version: string;
  TinyFaceDetector: new () => TinyFaceDetectorLike;
  TinyFaceDetectorOptions: new (o: { inputSize: number; scoreThreshold: number }) => unknown;
  FaceRecognitionNet: new () => RecognitionNetLike;
  NetInput: NetInputClass;
}

const require = createRequire(import.meta.url);

export const DESCRIPTOR_DIM = 128;

/**
 * Detector settings, chosen on held-out photos and noise (see README): a
 * 64x64 face fills its frame, which TinyFaceDetector misses at every input
 * size; upscaled 1.5x to 96 px and centred on a 160x160 mid-grey canvas it
 * finds ~97% of real faces and no faces in noise. Faces of other sizes are
 * resized to the same 96 px, so every size is detected on one scale.
 */
export const DETECTOR = {
  net: 'tiny_face_detector',
  inputSize: 160,
  faceSize: 96,
  padValue: 128,
  scoreThreshold: 0.5,
} as const;

export interface FaceNets {
  version: string;
  detector: TinyFaceDetectorLike;
  recognizer: RecognitionNetLike;
  detectorOptions: unknown;
  /** The recognizer as a differentiable function of generator-range faces (src/lib/identity.ts). */
  embedder: FaceEmbedder;
}

function loadFaceApi(): FaceApiModule {
  return require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApiModule;
}

/** The package's own model folder. */
export function faceApiModelDir(): string {
  return join(dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
}

/** Read `<name>-weights_manifest.json` and its shards into named tensors. */
export function readWeightMap(name: string): tf.NamedTensorMap {
  const dir = faceApiModelDir();
  const manifest = JSON.parse(
    readFileSync(join(dir, `${name}-weights_manifest.json`), 'utf8'),
  ) as tf.io.WeightsManifestConfig;
  const bytes = Buffer.concat(manifest.flatMap((group) => group.paths.map((p) => readFileSync(join(dir, p)))));
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return tf.io.decodeWeights(
    buffer,
    manifest.flatMap((group) => group.weights),
  );
}

let loaded: FaceNets | null = null;

/** Load both networks once per process (on the active backend); later calls reuse them. */
export function faceNets(): FaceNets {
  if (loaded) return loaded;
  const api = loadFaceApi();
  const detector = new api.TinyFaceDetector();
  detector.loadFromWeightMap(readWeightMap('tiny_face_detector_model'));
  const recognizer = new api.FaceRecognitionNet();
  recognizer.loadFromWeightMap(readWeightMap('face_recognition_model'));
  const detectorOptions = new api.TinyFaceDetectorOptions({
    inputSize: DETECTOR.inputSize,
    scoreThreshold: DETECTOR.scoreThreshold,
  });
  loaded = {
    version: api.version,
    detector,
    recognizer,
    detectorOptions,
    embedder: faceApiEmbedder(recognizer, api.NetInput),
  };
  return loaded;
}

/** Free the networks' weights (tests check that nothing else is left behind). */
export function disposeFaceNets(): void {
  loaded?.detector.dispose();
  loaded?.recognizer.dispose();
  loaded = null;
}

function checkBatch(images: Float32Array, size: number): number {
  const pixels = size * size * 3;
  if (images.length === 0 || images.length % pixels !== 0) {
    throw new Error(`expected a whole number of ${size}x${size}x3 images, got ${images.length} values`);
  }
  return images.length / pixels;
}

/** Model-range images [-1, 1] to face-api's 0..255 pixel range. */
function toPixels(images: Float32Array, start: number, count: number, size: number): tf.Tensor4D {
  const pixels = size * size * 3;
  return tf.tidy(() => {
    const x = tf.tensor4d(images.subarray(start * pixels, (start + count) * pixels), [count, size, size, 3]);
    return tf.clipByValue(tf.mul(tf.add(x, 1), 127.5), 0, 255) as tf.Tensor4D;
  });
}

/**
 * The detector's view of one image: the face resized (bilinear) to
 * DETECTOR.faceSize whatever its own size, centred on a grey canvas, so a
 * 64 px and a 128 px face are looked at on the same scale.
 */
function detectorInput(pixels: tf.Tensor4D): tf.Tensor3D {
  const pad = (DETECTOR.inputSize - DETECTOR.faceSize) / 2;
  return tf.tidy(() => {
    const face = tf.image.resizeBilinear(pixels, [DETECTOR.faceSize, DETECTOR.faceSize]);
    return tf.squeeze(
      tf.pad(
        face,
        [
          [0, 0],
          [pad, pad],
          [pad, pad],
          [0, 0],
        ],
        DETECTOR.padValue,
      ),
      [0],
    ) as tf.Tensor3D;
  });
}

/** For each size x size image ([-1, 1], HWC, row-major), whether the detector finds a face. */
export async function detectFaces(images: Float32Array, size: number = IMAGE_SIZE): Promise<boolean[]> {
  const count = checkBatch(images, size);
  const { detector, detectorOptions } = faceNets();
  const found: boolean[] = [];
  // TinyFaceDetector decodes boxes for one image per call.
  for (let i = 0; i < count; i++) {
    const pixels = toPixels(images, i, 1, size);
    const input = detectorInput(pixels);
    try {
      const faces = await detector.locateFaces(input, detectorOptions);
      found.push(faces.some((f) => f.score >= DETECTOR.scoreThreshold));
    } finally {
      tf.dispose([pixels, input]);
    }
  }
  return found;
}

/**
 * 128-d FaceRecognitionNet descriptors, row-major [count, 128]. The net
 * resizes each size x size image to its 150x150 input (bilinear), so
 * generated and real faces of one size take exactly the same path.
 */
export async function describeFaces(
  images: Float32Array,
  size: number = IMAGE_SIZE,
  batch = 32,
): Promise<Float32Array> {
  const count = checkBatch(images, size);
  const { recognizer } = faceNets();
  const out = new Float32Array(count * DESCRIPTOR_DIM);
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const pixels = toPixels(images, start, n, size);
    const singles = tf.unstack(pixels) as tf.Tensor3D[];
    let descriptors: tf.Tensor2D | null = null;
    try {
      descriptors = await recognizer.forward(singles);
      out.set((await descriptors.data()) as Float32Array, start * DESCRIPTOR_DIM);
    } finally {
      tf.dispose([pixels, ...singles, ...(descriptors ? [descriptors] : [])]);
    }
  }
  return out;
}
