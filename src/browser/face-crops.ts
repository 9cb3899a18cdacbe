/**
 * The page's side of face detection: each photo goes to the face worker
 * (src/workers/face.worker.ts), which finds the face and cuts the
 * CelebA-style crop at the generator's size, so reading photos never blocks
 * the page. The worker is started from its URL (a bundle of its own), not
 * imported.
 */
import type { FaceCrop, FaceReply, FaceRequest } from './face-protocol.ts';

export type { FaceCrop };

/** The site's own copy of the WASM binaries (astro.config.mjs serves them), as an absolute URL for the worker. */
const wasmPath = () => new URL(`${import.meta.env.BASE_URL.replace(/\/$/, '')}/tfjs-wasm/`, location.href).href;

type Pending = { resolve: (reply: FaceReply & { ok: true }) => void; reject: (err: Error) => void };

let worker: Worker | null = null;
let nextId = 1;
const pending = new Map<number, Pending>();

function failAll(message: string): void {
  for (const p of pending.values()) p.reject(new Error(message));
  pending.clear();
  worker?.terminate();
  worker = null;
}

function faceWorker(): Worker {
  if (worker) return worker;
  worker = new Worker(new URL('../workers/face.worker.ts', import.meta.url), { type: 'module', name: 'faces' });
  worker.onmessage = (ev: MessageEvent<FaceReply>) => {
    const p = pending.get(ev.data.id);
    if (!p) return;
    pending.delete(ev.data.id);
    if (ev.data.ok) p.resolve(ev.data);
    else p.reject(new Error(ev.data.error));
  };
  // A worker that cannot start (or crashes) fails what it was asked; the next request starts a new one.
  worker.onerror = (ev) => {
    ev.preventDefault();
    failAll(`face detection stopped: ${ev.message || 'its worker could not run'}`);
  };
  return worker;
}

/** A request before it gets its id (Omit does not distribute over a union). */
type Unsent<T> = T extends { id: number } ? Omit<T, 'id'> : never;

function ask(req: Unsent<FaceRequest>, transfer: Transferable[] = []): Promise<FaceReply & { ok: true }> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    faceWorker().postMessage({ ...req, id }, transfer);
  });
}

/** Start the worker and load the detector's weights (call early: it is fetched while the visitor picks photos). */
export async function loadFaceDetector(): Promise<void> {
  await ask({ type: 'load', wasmPath: wasmPath() });
}

/**
 * The largest face in the photo, cropped CelebA-style at `size` px (the generator's: cut from the photo at
 * that size, not enlarged from a smaller crop); a centre crop (face: false) when there is none. The bitmap
 * stays the caller's.
 */
export async function cropFace(bitmap: ImageBitmap, size: number): Promise<FaceCrop> {
  const copy = await createImageBitmap(bitmap);
  const reply = await ask({ type: 'crop', wasmPath: wasmPath(), bitmap: copy, size }, [copy]);
  return reply.crop!;
}
