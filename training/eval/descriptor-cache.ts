/**
 * Held-out photos' face descriptors on disk. They are the same for every
 * evaluation (about two minutes of compute for 1,547 photos here), so they are
 * kept per file, keyed by name, size and modification time, under one file
 * per face-api version and backend (backends differ in the last float bits).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** node_modules/.cache is where tools keep rebuildable caches; git and npm leave it alone. */
export const DEFAULT_CACHE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../node_modules/.cache/facegan-eval');

interface CacheFile {
  faceApi: string;
  backend: string;
  /** "abs path|size|mtimeMs" -> descriptor values. */
  entries: Record<string, number[]>;
}

export class DescriptorCache {
  private readonly file: string;
  private data: CacheFile;
  private dirty = false;

  constructor(dir: string, faceApi: string, backend: string) {
    this.file = join(dir, `held-out-descriptors-${faceApi}-${backend}.json`);
    this.data = { faceApi, backend, entries: {} };
    if (existsSync(this.file)) {
      try {
        const read = JSON.parse(readFileSync(this.file, 'utf8')) as CacheFile;
        if (read.faceApi === faceApi && read.backend === backend && read.entries) this.data = read;
      } catch {
        // A torn or foreign file is only a cache miss: it is rebuilt.
      }
    }
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
