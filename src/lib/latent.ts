/**
 * Seeded latent sampling. A seed gives the same noise vector in Node and in
 * every browser, so a face can be shared as a number (`?seed=...`).
 *
 * The generator is xoshiro128** seeded through splitmix32: 32-bit integer
 * maths only, so results are bit-identical across JS engines.
 */

export const Z_DIM = 100;

/** The full internal state of a Rng (4 words, then a pending normal sample or null); JSON-serialisable. */
export type RngState = [number, number, number, number, number | null];

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

export class Rng {
  private s: [number, number, number, number];
  /** A spare normal sample from the last Box-Muller pair. */
  private spare: number | null = null;

  constructor(seed: number | RngState = 0) {
    if (Array.isArray(seed)) {
      this.s = [seed[0], seed[1], seed[2], seed[3]];
      this.spare = seed[4] ?? null;
    } else {
      const sm = splitmix32(seed);
      this.s = [sm(), sm(), sm(), sm()];
    }
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] = (s[2] ^ t) >>> 0;
    s[3] = rotl(s[3], 11);
    s[0] >>>= 0;
    s[1] >>>= 0;
    return result;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal sample (Box-Muller). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  /** State to resume from: a Rng built from it continues the exact same sequence. */
  getState(): RngState {
    return [...this.s, this.spare];
  }
}

/** The latent vector for one seed: zDim standard-normal values. */
export function latentFromSeed(seed: number, zDim = Z_DIM): Float32Array {
  const rng = new Rng(seed);
  const z = new Float32Array(zDim);
  for (let i = 0; i < zDim; i++) z[i] = rng.normal();
  return z;
}

/** Latents for several seeds, row-major [seeds.length, zDim]. */
export function latentBatch(seeds: readonly number[], zDim = Z_DIM): Float32Array {
  const out = new Float32Array(seeds.length * zDim);
  seeds.forEach((seed, i) => out.set(latentFromSeed(seed, zDim), i * zDim));
  return out;
}

/** `count` fresh latents drawn from a running Rng (training noise). */
export function sampleLatents(rng: Rng, count: number, zDim = Z_DIM): Float32Array {
  const out = new Float32Array(count * zDim);
  for (let i = 0; i < out.length; i++) out[i] = rng.normal();
  return out;
}

/** A random seed that fits in a URL and in 32 bits. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 4294967296) >>> 0;
}

/**
 * Spherical interpolation. Gaussian latents live near a sphere, so a straight
 * line between two of them passes through low-norm points the generator
 * rarely saw; slerp keeps the norm and gives a smoother morph.
 */
export function slerp(a: Float32Array, b: Float32Array, t: number): Float32Array {
  if (a.length !== b.length) throw new Error(`slerp: length ${a.length} != ${b.length}`);
  let dot = 0,
    na = 0,
    nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  const cos = Math.min(1, Math.max(-1, dot / (Math.sqrt(na * nb) || 1)));
  const omega = Math.acos(cos);
  const out = new Float32Array(a.length);
  if (omega < 1e-6) {
    for (let i = 0; i < a.length; i++) out[i] = (1 - t) * a[i] + t * b[i];
    return out;
  }
  const so = Math.sin(omega);
  const wa = Math.sin((1 - t) * omega) / so;
  const wb = Math.sin(t * omega) / so;
  for (let i = 0; i < a.length; i++) out[i] = wa * a[i] + wb * b[i];
  return out;
}
