/**
 * Finding the face in each photo (face-api's tiny face detector and 68-point
 * landmarks, with weights served by this site) and cutting the 64x64 crop
 * the way CelebA frames faces (src/lib/faces.ts gives the geometry).
 */
import * as faceapi from '@vladmandic/face-api/dist/face-api.esm-nobundle.js';
// face-api's build without its own copy of TensorFlow.js uses the site's, so there is one engine on the page.
import { ready as tfReady, setBackend } from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import detectorManifest from '@vladmandic/face-api/model/tiny_face_detector_model-weights_manifest.json';
import detectorWeightsUrl from '@vladmandic/face-api/model/tiny_face_detector_model.bin?url';
import landmarkManifest from '@vladmandic/face-api/model/face_landmark_68_model-weights_manifest.json';
import landmarkWeightsUrl from '@vladmandic/face-api/model/face_landmark_68_model.bin?url';
import { alignedSquare, keyPointsFrom68, squareToCanvasTransform, type AlignedSquare } from '../../lib/faces.ts';
import { centreCrop, cropResize } from '../../lib/images.ts';

/** The crop is drawn at 4x and then area-averaged to 64x64 by cropResize, as the trainer does. */
const DRAW_SIZE = 256;
/** The site's own copy of the WASM binaries (astro.config.mjs serves them). */
const WASM_PATH = `${import.meta.env.BASE_URL.replace(/\/$/, '')}/tfjs-wasm/`;
/** Where a crop runs past the photo's edge (or the photo is transparent), mid grey. */
const FILL = 'rgb(128, 128, 128)';

type Manifest = { weights: faceapi.tf.io.WeightsManifestEntry[] }[];

async function loadNet(net: { loadFromWeightMap(map: faceapi.tf.NamedTensorMap): void }, manifest: Manifest, url: string): Promise<void> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`face detector weights missing (${res.status} for ${url})`);
  net.loadFromWeightMap(faceapi.tf.io.decodeWeights(await res.arrayBuffer(), manifest.flatMap((g) => g.weights)));
}

let ready: Promise<void> | null = null;

/**
 * The detector's nets are small: WASM (SIMD) runs them in tens of
 * milliseconds and leaves the GPU to the training worker; WebGL and plain JS
 * are the fallbacks.
 */
async function startDetectorBackend(): Promise<void> {
  setWasmPaths(WASM_PATH);
  for (const name of ['wasm', 'webgl', 'cpu']) {
    if (await setBackend(name).catch(() => false)) return;
  }
  throw new Error('no TensorFlow.js backend could start for face detection');
}

/** Load the detector once (again after a failure). */
export function loadFaceDetector(): Promise<void> {
  ready ??= (async () => {
    await startDetectorBackend();
    await tfReady();
    await Promise.all([
      loadNet(faceapi.nets.tinyFaceDetector, detectorManifest as Manifest, detectorWeightsUrl),
      loadNet(faceapi.nets.faceLandmark68Net, landmarkManifest as Manifest, landmarkWeightsUrl),
    ]);
  })();
  ready.catch(() => { ready = null; });
  return ready;
}

export interface FaceCrop {
  /** 64x64x3 in [-1, 1], ready for training. */
  pixels: Float32Array;
  /** True when a face was found; false means a centre crop. */
  face: boolean;
  score: number | null;
}

function photoCanvas(bitmap: ImageBitmap): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = FILL;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(bitmap, 0, 0);
  return canvas;
}

/** Draw `square` of the photo upright into DRAW_SIZE pixels, then average down to the model's 64x64. */
function renderCrop(source: CanvasImageSource, square: AlignedSquare): Float32Array {
  const canvas = new OffscreenCanvas(DRAW_SIZE, DRAW_SIZE);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.fillStyle = FILL;
  ctx.fillRect(0, 0, DRAW_SIZE, DRAW_SIZE);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.setTransform(...squareToCanvasTransform(square, DRAW_SIZE));
  ctx.drawImage(source, 0, 0);
  const { data } = ctx.getImageData(0, 0, DRAW_SIZE, DRAW_SIZE);
  return cropResize({ data, width: DRAW_SIZE, height: DRAW_SIZE, channels: 4 }, { left: 0, top: 0, size: DRAW_SIZE });
}

export function centreCropOf(bitmap: ImageBitmap): Float32Array {
  const box = centreCrop(bitmap.width, bitmap.height);
  return renderCrop(photoCanvas(bitmap), { cx: box.left + box.size / 2, cy: box.top + box.size / 2, size: box.size, angle: 0 });
}

/** The largest face in the photo, cropped CelebA-style; a centre crop (face: false) when there is none. */
export async function cropFace(bitmap: ImageBitmap): Promise<FaceCrop> {
  await loadFaceDetector();
  const canvas = photoCanvas(bitmap);
  const options = new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 });
  const found = await faceapi.detectAllFaces(canvas, options).withFaceLandmarks();
  if (found.length === 0) return { pixels: centreCropOf(bitmap), face: false, score: null };
  const area = (f: (typeof found)[number]) => f.detection.box.width * f.detection.box.height;
  const best = found.reduce((a, b) => (area(b) > area(a) ? b : a));
  const square = alignedSquare(keyPointsFrom68(best.landmarks.positions));
  return { pixels: renderCrop(canvas, square), face: true, score: best.detection.score };
}
