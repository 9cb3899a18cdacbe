/**
 * The face worker: finds and crops the face in each photo the visitor adds,
 * off the main thread (detection and landmarks take hundreds of
 * milliseconds a photo on WASM). One reply per request, with its id.
 */
import { cropFace, loadFaceDetector } from '../browser/face-detector.ts';
import type { FaceReply, FaceRequest } from '../browser/face-protocol.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

scope.onmessage = async (ev: MessageEvent<FaceRequest>) => {
  const req = ev.data;
  try {
    if (req.type === 'load') {
      await loadFaceDetector(req.wasmPath);
      scope.postMessage({ id: req.id, ok: true } satisfies FaceReply);
      return;
    }
    try {
      const crop = await cropFace(req.bitmap, req.wasmPath, req.size);
      scope.postMessage({ id: req.id, ok: true, crop } satisfies FaceReply, [crop.pixels.buffer]);
    } finally {
      req.bitmap.close();
    }
  } catch (err) {
    scope.postMessage({
      id: req.id,
      ok: false,
      error: err instanceof Error ? err.message : String(err),
    } satisfies FaceReply);
  }
};
