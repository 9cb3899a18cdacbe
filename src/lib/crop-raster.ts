/**
 * Drawing an aligned face square (src/lib/faces.ts) out of a photo without a
 * canvas: bilinear sampling of the rotated square at 4x, grey outside the
 * photo, then area averaging down to the model's size (`out`, 64 or 128;
 * cropResize), as the page's canvas path does. Isomorphic: the Node
 * fine-tuner uses it, and a worker can.
 */
import type { AlignedSquare } from './faces.ts';
import { cropResize, type RawImage } from './images.ts';
import { IMAGE_SIZE } from './models.ts';

/** Where the square runs past the photo's edge: mid grey, as on the page. */
export const FILL = 128;

/** The square drawn upright into drawSize x drawSize RGBA, then averaged to out x out in [-1, 1]. */
export function renderAlignedCrop(
  img: RawImage,
  square: AlignedSquare,
  drawSize = 4 * IMAGE_SIZE,
  out = IMAGE_SIZE,
): Float32Array {
  const { data, width, height, channels } = img;
  const rgba = new Uint8ClampedArray(drawSize * drawSize * 4);
  const cos = Math.cos(square.angle),
    sin = Math.sin(square.angle);
  const step = square.size / drawSize;
  const px = (x: number, y: number, c: number) =>
    x < 0 || y < 0 || x >= width || y >= height ? FILL : data[(y * width + x) * channels + c];
  for (let j = 0; j < drawSize; j++) {
    for (let i = 0; i < drawSize; i++) {
      // Pixel centre in the square's frame, rotated into the photo.
      const u = (i + 0.5) * step - square.size / 2;
      const v = (j + 0.5) * step - square.size / 2;
      const x = square.cx + u * cos - v * sin - 0.5;
      const y = square.cy + u * sin + v * cos - 0.5;
      const x0 = Math.floor(x),
        y0 = Math.floor(y);
      const fx = x - x0,
        fy = y - y0;
      const o = (j * drawSize + i) * 4;
      for (let c = 0; c < 3; c++) {
        const top = px(x0, y0, c) * (1 - fx) + px(x0 + 1, y0, c) * fx;
        const bottom = px(x0, y0 + 1, c) * (1 - fx) + px(x0 + 1, y0 + 1, c) * fx;
        rgba[o + c] = top * (1 - fy) + bottom * fy;
      }
      rgba[o + 3] = 255;
    }
  }
  return cropResize(
    { data: rgba, width: drawSize, height: drawSize, channels: 4 },
    { left: 0, top: 0, size: drawSize },
    out,
  );
}
