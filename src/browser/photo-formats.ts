/**
 * What a dropped file really is, read from its first bytes rather than its
 * name or MIME type (which are often missing or wrong): the format, its
 * pixel size from the header, and whether a GIF is animated. Lets the page
 * refuse HEIC, non-images and huge images with a clear message before the
 * browser spends memory decoding them.
 */

export type PhotoFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'heic' | 'avif' | 'unknown';

export interface PhotoHeader {
  format: PhotoFormat;
  width: number | null;
  height: number | null;
  animated: boolean;
}

const ascii = (b: Uint8Array, from: number, len: number) => String.fromCharCode(...b.subarray(from, from + len));
const be16 = (b: Uint8Array, i: number) => (b[i] << 8) | b[i + 1];
const be32 = (b: Uint8Array, i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
const le16 = (b: Uint8Array, i: number) => b[i] | (b[i + 1] << 8);
const le24 = (b: Uint8Array, i: number) => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16);

const HEIC_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1']);

export function sniffFormat(b: Uint8Array): PhotoFormat {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && be32(b, 0) === 0x89504e47 && be32(b, 4) === 0x0d0a1a0a) return 'png';
  if (b.length >= 6 && ascii(b, 0, 4) === 'GIF8') return 'gif';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return 'webp';
  if (b.length >= 12 && ascii(b, 4, 4) === 'ftyp') {
    const brand = ascii(b, 8, 4);
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (HEIC_BRANDS.has(brand)) return 'heic';
  }
  return 'unknown';
}

/** JPEG size from its start-of-frame segment; null if the markers run out first (corrupt or cut short). */
function jpegSize(b: Uint8Array): [number, number] | null {
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) return [be16(b, i + 7), be16(b, i + 5)];
    if (marker === 0xd9 || marker === 0xda) return null;
    i += 2 + be16(b, i + 2);
  }
  return null;
}

function webpSize(b: Uint8Array): [number, number] | null {
  if (b.length < 30) return null;
  const chunk = ascii(b, 12, 4);
  if (chunk === 'VP8 ') return [le16(b, 26) & 0x3fff, le16(b, 28) & 0x3fff];
  if (chunk === 'VP8L')
    return [1 + (((b[22] & 0x3f) << 8) | b[21]), 1 + (((b[24] & 0x0f) << 10) | (b[23] << 2) | ((b[22] & 0xc0) >> 6))];
  if (chunk === 'VP8X') return [1 + le24(b, 24), 1 + le24(b, 27)];
  return null;
}

function sizeOf(format: PhotoFormat, b: Uint8Array): [number, number] | null {
  switch (format) {
    case 'jpeg':
      return jpegSize(b);
    case 'png':
      return b.length >= 24 ? [be32(b, 16), be32(b, 20)] : null;
    case 'gif':
      return b.length >= 10 ? [le16(b, 6), le16(b, 8)] : null;
    case 'webp':
      return webpSize(b);
    default:
      return null;
  }
}

/** An animated GIF carries the NETSCAPE2.0 looping extension near its start. */
function isAnimatedGif(b: Uint8Array): boolean {
  const text = ascii(b, 0, Math.min(b.length, 4096));
  return text.includes('NETSCAPE2.0') || text.includes('ANIMEXTS1.0');
}

/** Where the main image's start-of-scan segment begins, walking segment by segment (EXIF thumbnails live inside one); -1 if none. */
function jpegScanStart(b: Uint8Array): number {
  let i = 2;
  while (i + 3 < b.length) {
    if (b[i] !== 0xff) return -1;
    const marker = b[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    if (marker === 0xda) return i;
    if (marker === 0xd9) return -1;
    i += 2 + be16(b, i + 2);
  }
  return -1;
}

/** Whether an end-of-image marker (FF D9) follows `from`: entropy-coded data never holds one (FF is stuffed). */
function hasJpegEnd(b: Uint8Array, from: number): boolean {
  for (let i = b.length - 2; i >= from; i--) if (b[i] === 0xff && b[i + 1] === 0xd9) return true;
  return false;
}

/** PNG's closing IEND chunk with its checksum, searched from the end (it is normally the last 12 bytes). */
function hasIend(b: Uint8Array): boolean {
  for (let i = b.length - 8; i >= 8; i--)
    if (b[i] === 0x49 && b[i + 1] === 0x45 && b[i + 2] === 0x4e && b[i + 3] === 0x44) return true;
  return false;
}

function lastNonZero(b: Uint8Array): number {
  let i = b.length - 1;
  while (i > 0 && b[i] === 0) i--;
  return b[i];
}

/**
 * Whether the whole image is in the file. Browsers decode a file cut short
 * without complaint and paint the missing rows grey; such a photo would
 * teach the model faces with a grey lower half. A JPEG must end its scan
 * with an end-of-image marker after the main image's start-of-scan (an
 * EXIF thumbnail's own markers sit inside an earlier segment), a PNG must reach its IEND
 * chunk, a WebP must hold as many bytes as its RIFF header promises and a GIF
 * must end with its trailer byte. Needs the whole file.
 */
export function isComplete(format: PhotoFormat, b: Uint8Array): boolean {
  switch (format) {
    case 'jpeg': {
      const sos = jpegScanStart(b);
      return sos >= 0 && hasJpegEnd(b, sos + 2);
    }
    case 'png':
      return hasIend(b);
    case 'webp':
      return b.length >= 12 && b.length >= 8 + ((b[4] | (b[5] << 8) | (b[6] << 16) | (b[7] << 24)) >>> 0);
    case 'gif':
      return lastNonZero(b) === 0x3b;
    default:
      return true;
  }
}

export function readHeader(bytes: Uint8Array): PhotoHeader {
  const format = sniffFormat(bytes);
  const size = sizeOf(format, bytes);
  return {
    format,
    width: size?.[0] ?? null,
    height: size?.[1] ?? null,
    animated: format === 'gif' && isAnimatedGif(bytes),
  };
}
