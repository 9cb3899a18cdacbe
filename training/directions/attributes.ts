/**
 * CelebA's attribute labels (list_attr_celeba.txt: a count line, a header of
 * 40 names, then `file v1 ... v40` with 1 / -1) and the 64x64 crops of the
 * labelled photos, split by identity as the trainer splits them.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { IMAGE_SIZE } from '../../src/lib/models.ts';
import { decodeOne, writeAtomic } from '../data.ts';
import { isHeldOut, readIdentities } from '../split.ts';

const PIXELS = IMAGE_SIZE * IMAGE_SIZE * 3;

export interface AttributeTable {
  names: string[];
  /** File name -> 0/1 per attribute. */
  rows: Map<string, Uint8Array>;
}

export function parseAttributes(text: string): AttributeTable {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines.length < 2) throw new Error('attribute file has no header');
  const names = lines[1].split(/\s+/);
  const rows = new Map<string, Uint8Array>();
  for (const line of lines.slice(2)) {
    const parts = line.split(/\s+/);
    if (parts.length !== names.length + 1)
      throw new Error(`attribute row "${parts[0]}" has ${parts.length - 1} values, expected ${names.length}`);
    rows.set(
      parts[0],
      Uint8Array.from(parts.slice(1), (v) => (v === '1' ? 1 : 0)),
    );
  }
  return { names, rows };
}

/** list_attr_celeba.txt beside the image folder. */
export function readAttributes(imageDir: string): AttributeTable {
  const file = join(dirname(imageDir), 'list_attr_celeba.txt');
  if (!existsSync(file)) throw new Error(`no attribute labels: ${file}`);
  return parseAttributes(readFileSync(file, 'utf8'));
}

export interface LabelledSet {
  files: string[];
  /** [n, 64, 64, 3] bytes. */
  pixels: Uint8Array;
  /** [n, attributes] 0/1. */
  labels: Uint8Array;
}

/**
 * The labelled photos of one side of the identity split, decoded once and
 * cached as bytes. `limit` keeps the first N (name order), for quick runs.
 */
export async function loadLabelled(
  imageDir: string,
  table: AttributeTable,
  side: 'train' | 'heldOut',
  cacheDir: string,
  limit?: number,
): Promise<LabelledSet> {
  const ids = readIdentities(imageDir);
  let files = [...table.rows.keys()]
    .filter((f) => (side === 'heldOut') === isHeldOut(ids.get(f)))
    .filter((f) => existsSync(join(imageDir, f)))
    .sort();
  if (limit) files = files.slice(0, limit);
  const h = createHash('sha256').update(`1\n${resolve(imageDir)}\n`);
  for (const f of files) h.update(`${f}:${statSync(join(imageDir, f)).size}\n`);
  const bin = join(cacheDir, `attr64-${h.digest('hex').slice(0, 16)}.bin`);
  let pixels: Uint8Array;
  if (existsSync(bin) && statSync(bin).size === files.length * PIXELS) {
    pixels = new Uint8Array(readFileSync(bin));
  } else {
    pixels = new Uint8Array(files.length * PIXELS);
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const i = next++;
        pixels.set(await decodeOne(join(imageDir, files[i])), i * PIXELS);
      }
    };
    await Promise.all([worker(), worker()]);
    mkdirSync(cacheDir, { recursive: true });
    writeAtomic(bin, pixels);
  }
  const k = table.names.length;
  const labels = new Uint8Array(files.length * k);
  files.forEach((f, i) => labels.set(table.rows.get(f)!, i * k));
  return { files, pixels, labels };
}
