// Photos cut short are caught before the browser decodes them into faces with a grey lower half.
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { isComplete, readHeader } from '../src/browser/photo-formats.ts';

const photo = () =>
  sharp({
    create: {
      width: 96,
      height: 80,
      channels: 3,
      background: '#808080',
      noise: { type: 'gaussian', mean: 128, sigma: 40 },
    },
  });

describe('isComplete', () => {
  it.each([
    ['jpeg', () => photo().jpeg().toBuffer()],
    ['png', () => photo().png().toBuffer()],
    ['webp', () => photo().webp().toBuffer()],
    ['gif', () => photo().gif().toBuffer()],
  ] as const)('accepts a whole %s and refuses it cut in half or missing its last bytes', async (format, make) => {
    const bytes = new Uint8Array(await make());
    expect(readHeader(bytes).format).toBe(format);
    expect(isComplete(format, bytes)).toBe(true);
    expect(isComplete(format, bytes.subarray(0, bytes.length >> 1))).toBe(false);
    expect(isComplete(format, bytes.subarray(0, bytes.length - 2))).toBe(false);
  });

  it('is not fooled by the end marker of an EXIF thumbnail before the cut', async () => {
    const thumb = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#888' } })
      .jpeg()
      .toBuffer();
    const main = await photo().jpeg().toBuffer();
    // An APP1 segment carrying a whole JPEG (as EXIF thumbnails do), then the main image cut short.
    const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, (thumb.length + 2) >> 8, (thumb.length + 2) & 0xff]), thumb]);
    const withThumb = Buffer.concat([main.subarray(0, 2), app1, main.subarray(2)]);
    expect(isComplete('jpeg', new Uint8Array(withThumb))).toBe(true);
    expect(isComplete('jpeg', new Uint8Array(withThumb.subarray(0, withThumb.length - 200)))).toBe(false);
  });
});
