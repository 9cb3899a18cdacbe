/**
 * The page's face crops in Node: face-api's tiny face detector (input 416,
 * score 0.5) and 68-point landmarks find the largest face, src/lib/faces.ts
 * gives the CelebA-style square, src/lib/crop-raster.ts draws it at 64x64.
 * The weights come from the @vladmandic/face-api package, as in the eval.
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { renderAlignedCrop } from '../src/lib/crop-raster.ts';
import { alignedSquare, insideFraction, keyPointsFrom68, type Point } from '../src/lib/faces.ts';
import type { RawImage } from '../src/lib/images.ts';
import { readWeightMap } from './eval/face-nets.ts';

const require = createRequire(import.meta.url);

interface Detected {
  detection: { score: number; box: { width: number; height: number } };
  landmarks: { positions: Point[] };
}
interface FaceApi {
  nets: {
    tinyFaceDetector: { loadFromWeightMap(m: tf.NamedTensorMap): void };
    faceLandmark68Net: { loadFromWeightMap(m: tf.NamedTensorMap): void };
  };
  TinyFaceDetectorOptions: new (o: { inputSize: number; scoreThreshold: number }) => unknown;
  detectAllFaces(input: tf.Tensor3D, options: unknown): { withFaceLandmarks(): Promise<Detected[]> };
}

let api: FaceApi | null = null;

function faceApi(): FaceApi {
  if (api) return api;
  const loaded = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApi;
  loaded.nets.tinyFaceDetector.loadFromWeightMap(readWeightMap('tiny_face_detector_model'));
  loaded.nets.faceLandmark68Net.loadFromWeightMap(readWeightMap('face_landmark_68_model'));
  api = loaded;
  return api;
}

export interface NodeFaceCrop {
  pixels: Float32Array;
  score: number;
  /** Share of the crop inside the photo. */
  inside: number;
}

/** The largest face in the photo, cropped as the page crops it (size x size); null when there is none. */
export async function cropFaceNode(img: RawImage, size = 64): Promise<NodeFaceCrop | null> {
  const fa = faceApi();
  const rgb = new Uint8Array(img.width * img.height * 3);
  for (let p = 0; p < img.width * img.height; p++)
    for (let c = 0; c < 3; c++) rgb[p * 3 + c] = img.data[p * img.channels + c];
  const input = tf.tensor3d(rgb, [img.height, img.width, 3], 'int32');
  try {
    const found = await fa
      .detectAllFaces(input, new fa.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 }))
      .withFaceLandmarks();
    if (found.length === 0) return null;
    const area = (f: Detected) => f.detection.box.width * f.detection.box.height;
    const best = found.reduce((a, b) => (area(b) > area(a) ? b : a));
    const square = alignedSquare(keyPointsFrom68(best.landmarks.positions));
    return {
      pixels: renderAlignedCrop(img, square, 4 * size, size),
      score: best.detection.score,
      inside: insideFraction(square, img.width, img.height),
    };
  } finally {
    input.dispose();
  }
}
