/**
 * From the visitor's files to decoded, upright, reasonably sized bitmaps,
 * or a sentence saying why a file cannot be used. Nothing leaves the page.
 */
import { MAX_PHOTOS } from '../lib/photo-limits.ts';
import { isComplete, readHeader, type PhotoHeader } from './photo-formats.ts';

/** Files and images beyond these are refused before decoding, so a stray panorama cannot exhaust memory. */
export const MAX_FILE_BYTES = 50 * 1024 * 1024;
export const MAX_PIXELS = 100_000_000;
/** Photos are scaled so their longer side is at most this before face detection. */
export const WORK_SIZE = 1024;

export interface DecodedPhoto {
  name: string;
  bitmap: ImageBitmap;
  /** Things worth telling the visitor that did not stop the photo (animated GIF, scaled down). */
  notes: string[];
}

export class PhotoError extends Error {
  constructor(
    readonly fileName: string,
    message: string,
  ) {
    super(message);
    this.name = 'PhotoError';
  }
}

/** Split a drop into the photos to read and a message about the rest, if any. */
export function capPhotos<T>(files: readonly T[], alreadyHave: number): { take: T[]; message: string | null } {
  const room = Math.max(0, MAX_PHOTOS - alreadyHave);
  if (files.length <= room) return { take: [...files], message: null };
  const skipped = files.length - room;
  return {
    take: files.slice(0, room),
    message: `${files.length} photos were chosen, but a session takes at most ${MAX_PHOTOS}: ${skipped} ${skipped === 1 ? 'was' : 'were'} left out.`,
  };
}

function refuseHeader(name: string, h: PhotoHeader): void {
  if (h.format === 'heic')
    throw new PhotoError(
      name,
      'HEIC/HEIF photos (the iPhone default) cannot be read here. Export them as JPEG (or set the camera to "Most Compatible") and add them again.',
    );
  if (h.format === 'avif') throw new PhotoError(name, 'AVIF images are not supported here. Use JPEG, PNG or WebP.');
  if (h.format === 'unknown')
    throw new PhotoError(name, 'This is not a photo this page can read. Use JPEG, PNG or WebP images.');
  if (h.width === null || h.height === null)
    throw new PhotoError(
      name,
      `This ${h.format.toUpperCase()} file is damaged or cut short: its image header could not be read.`,
    );
  if (h.width === 0 || h.height === 0) throw new PhotoError(name, 'This image has no pixels (zero width or height).');
  if (h.width * h.height > MAX_PIXELS) {
    throw new PhotoError(
      name,
      `This image is ${h.width} x ${h.height} pixels, too large to decode safely in a browser (limit ${MAX_PIXELS / 1e6} megapixels). Scale it down and add it again.`,
    );
  }
}

/** Header bytes: enough for JPEG's start-of-frame behind big EXIF/ICC segments; the whole file if it is smaller. */
async function headerBytes(file: Blob): Promise<Uint8Array> {
  const first = new Uint8Array(await file.slice(0, 256 * 1024).arrayBuffer());
  const h = readHeader(first);
  if (h.format === 'jpeg' && h.width === null && file.size > first.length)
    return new Uint8Array(await file.arrayBuffer());
  return first;
}

async function decode(file: Blob, name: string, h: PhotoHeader): Promise<ImageBitmap> {
  const longer = Math.max(h.width!, h.height!);
  const options: ImageBitmapOptions = { imageOrientation: 'from-image', premultiplyAlpha: 'none' };
  // One side is enough: the browser keeps the aspect ratio (and applies EXIF rotation first).
  if (longer > WORK_SIZE)
    Object.assign(options, {
      resizeWidth: Math.max(1, Math.round((h.width! * WORK_SIZE) / longer)),
      resizeQuality: 'high',
    });
  try {
    return await createImageBitmap(file, options);
  } catch {
    throw new PhotoError(
      name,
      `This ${h.format.toUpperCase()} file could not be decoded: it is probably damaged or incomplete.`,
    );
  }
}

export async function readPhoto(file: File): Promise<DecodedPhoto> {
  const name = file.name || 'unnamed file';
  if (file.size === 0) throw new PhotoError(name, 'This file is empty (0 bytes).');
  if (file.size > MAX_FILE_BYTES)
    throw new PhotoError(
      name,
      `This file is ${(file.size / 1048576).toFixed(0)} MB; the limit is ${MAX_FILE_BYTES / 1048576} MB per photo.`,
    );
  const h = readHeader(await headerBytes(file));
  refuseHeader(name, h);
  if (!isComplete(h.format, new Uint8Array(await file.arrayBuffer()))) {
    throw new PhotoError(
      name,
      `This ${h.format.toUpperCase()} file is cut short (incomplete download or copy): part of the image is missing, so it is left out.`,
    );
  }
  const bitmap = await decode(file, name, h);
  const notes: string[] = [];
  if (h.animated) notes.push('animated GIF: its first frame is used');
  if (Math.max(h.width!, h.height!) > WORK_SIZE) notes.push(`scaled down from ${h.width} x ${h.height}`);
  return { name, bitmap, notes };
}
