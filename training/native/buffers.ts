/**
 * Reuse of large output buffers. A fresh Float32Array of a few MB costs more
 * in first-touch page faults than the element-wise kernel that fills it, and
 * V8 frees disposed tensors' memory only at its next GC. So the native
 * backend keeps the arrays of disposed tensors and hands them to the next
 * output of the same length.
 *
 * Only arrays that never left the native kernels are reused: the cpu backend
 * returns its arrays themselves from dataSync()/data(), and some cpu kernels
 * return views into their inputs (slice), so an array is dropped from reuse
 * as soon as it is read or handed to a cpu kernel.
 */

/** Below this many floats allocation is cheap: not worth tracking. */
const MIN_LENGTH = 1 << 14;

export class BufferPool {
  private readonly free = new Map<number, Float32Array[]>();
  private readonly owned = new WeakSet<Float32Array>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** An array for a kernel's output. Its contents are arbitrary: the kernel must write every element. */
  take(length: number): Float32Array {
    if (length < MIN_LENGTH) return new Float32Array(length);
    const reused = this.free.get(length)?.pop();
    if (reused) this.bytes -= reused.byteLength;
    const out = reused ?? new Float32Array(length);
    this.owned.add(out);
    return out;
  }

  /** The array is now visible outside the native kernels: never reuse it. */
  escape(values: unknown): void {
    if (values instanceof Float32Array) this.owned.delete(values);
  }

  /** The tensor that held `values` is gone. */
  recycle(values: unknown): void {
    if (!(values instanceof Float32Array) || !this.owned.has(values)) return;
    this.owned.delete(values);
    if (this.bytes + values.byteLength > this.maxBytes) return;
    const list = this.free.get(values.length) ?? [];
    list.push(values);
    this.free.set(values.length, list);
    this.bytes += values.byteLength;
  }

  /** Bytes held for reuse (not counted by tf.memory(): these arrays belong to no tensor). */
  heldBytes(): number {
    return this.bytes;
  }

  clear(): void {
    this.free.clear();
    this.bytes = 0;
  }
}

/**
 * At most this many MB of free arrays are kept (FACEGAN_BUFFER_POOL_MB overrides). A width-64, batch-64
 * step disposes about 1 GB of activations and gradients at once; with 512 MB the overflow was page-faulted
 * in again every step (a steady width-64 step: 1,056 ms with 512 MB, 899 ms with 1 GB, 903 ms with 1.5 GB).
 */
export function poolMegabytes(env: string | undefined = process.env.FACEGAN_BUFFER_POOL_MB): number {
  if (env === undefined || env === '') return 1024;
  const mb = Number(env);
  if (!Number.isFinite(mb) || mb < 0)
    throw new Error(`FACEGAN_BUFFER_POOL_MB must be a number of megabytes >= 0, got "${env}"`);
  return mb;
}

/** One pool per process, shared by the native kernels and the backend that disposes their outputs. */
export const outputBuffers = new BufferPool(poolMegabytes() * 1024 * 1024);
