/**
 * Held-out photos' face descriptors on disk. They are the same for every
 * evaluation (about two minutes of compute for 1,547 photos here), so they are
 * kept per file, keyed by name, file size and modification time, under one file
 * per face-api version, backend (backends differ in the last float bits) and
 * image size (a photo cropped at 64 and at 128 px has different descriptors).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IMAGE_SIZE } from '../../src/lib/models.ts';

/** node_modules/.cache is where tools keep rebuildable caches; git and npm leave it alone. */
export const DEFAULT_CACHE_DIR = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../node_modules/.cache/facegan-eval',
);

interface CacheFile {
  faceApi: string;
  backend: string;
  /** The side the photos were cropped to; absent in files written before 128 px (they are 64). */
  size?: number;
  /** "abs path|size|mtimeMs" -> descriptor values. */
  entries: Record<string, number[]>;
}

export class DescriptorCache {
  private readonly file: string;
  private data: CacheFile;
  private dirty = false;

  constructor(dir: string, faceApi: string, backend: string, size: number = IMAGE_SIZE) {
    this.file = join(dir, DescriptorCache.fileName(faceApi, backend, size));
    this.data = { faceApi, backend, size, entries: {} };
    if (existsSync(this.file)) {
      try {
        const read = JSON.parse(readFileSync(this.file, 'utf8')) as CacheFile;
        const same = read.faceApi === faceApi && read.backend === backend && (read.size ?? IMAGE_SIZE) === size;
        if (same && read.entries) this.data = { ...read, size };
      } catch {
        // A torn or foreign file is only a cache miss: it is rebuilt.
      }
    }
  }

  /** 64 px keeps the name it had before other sizes, so an existing cache stays warm. */
  private static fileName(faceApi: string, backend: string, size: number): string {
    return `held-out-descriptors-${faceApi}-${backend}${size === IMAGE_SIZE ? '' : `-${size}px`}.json`;
  }

  private static key(path: string): string {
    const s = statSync(path);
    return `${resolve(path)}|${s.size}|${s.mtimeMs}`;
  }

  get(path: string): Float32Array | undefined {
    const values = this.data.entries[DescriptorCache.key(path)];
    return values ? Float32Array.from(values) : undefined;
  }

  set(path: string, descriptor: Float32Array): void {
    this.data.entries[DescriptorCache.key(path)] = Array.from(descriptor);
    this.dirty = true;
  }

  /** Write through a temporary file so a crash never leaves half a cache. */
  save(): void {
    if (!this.dirty) return;
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.data));
    renameSync(tmp, this.file);
    this.dirty = false;
  }
}
