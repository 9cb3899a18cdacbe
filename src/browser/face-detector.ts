/**
 * Finding the face in each photo (face-api's tiny face detector and 68-point
 * landmarks, with weights served by this site) and cutting the crop at the
 * generator's size (64 or 128 px) the way CelebA frames faces
 * (src/lib/faces.ts gives the geometry). Runs in the face worker
 * (src/workers/face.worker.ts), so the page never stalls while photos are
 * read: only OffscreenCanvas, and face-api is given tensors, never DOM
 * elements.
 */
import * as faceapi from '@vladmandic/face-api/dist/face-api.esm-nobundle.js';
// face-api's build without its own copy of TensorFlow.js uses the site's, so there is one engine on the page.
import { browser, ready as tfReady, setBackend, type Tensor3D } from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import detectorManifest from '@vladmandic/face-api/model/tiny_face_detector_model-weights_manifest.json';
import detectorWeightsUrl from '@vladmandic/face-api/model/tiny_face_detector_model.bin?url';
import landmarkManifest from '@vladmandic/face-api/model/face_landmark_68_model-weights_manifest.json';
import landmarkWeightsUrl from '@vladmandic/face-api/model/face_landmark_68_model.bin?url';
import { alignedSquare, keyPointsFrom68, squareToCanvasTransform, type AlignedSquare } from '../lib/faces.ts';
import { centreCrop, cropResize } from '../lib/images.ts';
import type { FaceCrop } from './face-protocol.ts';
import { loadNet, type Manifest } from './face-weights.ts';

/**
 * The crop is drawn at 4x the model's size and then area-averaged down to it by cropResize, as the
 * trainer does: a 128 px crop is cut from the photo at 128 px (drawn at 512), never a 64 px crop
 * enlarged, so it is only ever upsampled where the face itself has fewer pixels than the crop.
 */
const OVERSAMPLE = 4;
/** Where a crop runs past the photo's edge (or the photo is transparent), mid grey. */
const FILL = 'rgb(128, 128, 128)';

/**
 * face-api looks for a window or Node's globals to decide where it runs; a
 * worker has neither, so it gets an environment built from what a worker has
 * (it only ever sees tensors here, but checks its environment on the way).
 */
function workerEnvironment(): void {
  const unavailable = (what: string) => () => {
    throw new Error(`${what} is not available in the face worker`);
  };
  faceapi.env.setEnv({
    Canvas: OffscreenCanvas as unknown as typeof HTMLCanvasElement,
    CanvasRenderingContext2D: OffscreenCanvasRenderingContext2D as unknown as typeof CanvasRenderingContext2D,
    Image: ImageBitmap as unknown as typeof HTMLImageElement,
    ImageData,
    Video: class {} as unknown as typeof HTMLVideoElement,
    createCanvasElement: () => new OffscreenCanvas(1, 1) as unknown as HTMLCanvasElement,
    createImageElement: unavailable('an image element'),
    createVideoElement: unavailable('a video element'),
    fetch: (input: RequestInfo, init?: RequestInit) => fetch(input, init),
    readFile: unavailable('the file system'),
  });
}

let ready: Promise<void> | null = null;

/**
 * The detector's nets are small: WASM (SIMD) runs them in tens of
 * milliseconds and leaves the GPU to the training worker; WebGL and plain JS
 * are the fallbacks.
 */
async function startDetectorBackend(wasmPath: string): Promise<void> {
  setWasmPaths(wasmPath);
  for (const name of ['wasm', 'webgl', 'cpu']) {
    if (await setBackend(name).catch(() => false)) return;
  }
  throw new Error('no TensorFlow.js backend could start for face detection');
}

/** Load the detector once (again after a failure); `wasmPath` is where the site serves TensorFlow.js' WASM binaries. */
export function loadFaceDetector(wasmPath: string): Promise<void> {
  ready ??= (async () => {
    if (!faceapi.env.isBrowser()) workerEnvironment();
    await startDetectorBackend(wasmPath);
    await tfReady();
    await Promise.all([
      loadNet(faceapi.nets.tinyFaceDetector, detectorManifest as Manifest, detectorWeightsUrl),
      loadNet(faceapi.nets.faceLandmark68Net, landmarkManifest as Manifest, landmarkWeightsUrl),
    ]);
  })();
  ready.catch(() => {
    ready = null;
  });
  return ready;
}

function photoCanvas(bitmap: ImageBitmap): OffscreenCanvas {
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.fillStyle = FILL;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(bitmap, 0, 0);
  return canvas;
}

/** Draw `square` of the photo upright at OVERSAMPLE x `size` pixels, then average down to the model's `size`. */
function renderCrop(source: CanvasImageSource, square: AlignedSquare, size: number): Float32Array {
  const draw = OVERSAMPLE * size;
  const canvas = new OffscreenCanvas(draw, draw);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.fillStyle = FILL;
  ctx.fillRect(0, 0, draw, draw);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.setTransform(...squareToCanvasTransform(square, draw));
  ctx.drawImage(source, 0, 0);
  const { data } = ctx.getImageData(0, 0, draw, draw);
  return cropResize({ data, width: draw, height: draw, channels: 4 }, { left: 0, top: 0, size: draw }, size);
}

export function centreCropOf(bitmap: ImageBitmap, size: number): Float32Array {
  const box = centreCrop(bitmap.width, bitmap.height);
  const square = { cx: box.left + box.size / 2, cy: box.top + box.size / 2, size: box.size, angle: 0 };
  return renderCrop(photoCanvas(bitmap), square, size);
}

/** The photo as an RGB tensor: face-api takes tensors without needing a DOM. */
function photoTensor(canvas: OffscreenCanvas): Tensor3D {
  const image = canvas.getContext('2d', { willReadFrequently: true })!.getImageData(0, 0, canvas.width, canvas.height);
  return browser.fromPixels(image, 3);
}

/** The largest face in the photo, cropped CelebA-style at `size` px; a centre crop (face: false) when there is none. */
export async function cropFace(bitmap: ImageBitmap, wasmPath: string, size: number): Promise<FaceCrop> {
  await loadFaceDetector(wasmPath);
  const canvas = photoCanvas(bitmap);
  const options = new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 });
  const input = photoTensor(canvas);
  let found;
  try {
    found = await faceapi.detectAllFaces(input as unknown as faceapi.TNetInput, options).withFaceLandmarks();
  } finally {
    input.dispose();
  }
  if (found.length === 0) return { pixels: centreCropOf(bitmap, size), face: false, score: null };
  const area = (f: (typeof found)[number]) => f.detection.box.width * f.detection.box.height;
  const best = found.reduce((a, b) => (area(b) > area(a) ? b : a));
  const square = alignedSquare(keyPointsFrom68(best.landmarks.positions));
  return { pixels: renderCrop(canvas, square, size), face: true, score: best.detection.score };
}
