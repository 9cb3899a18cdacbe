/**
 * Linear pieces of the direction fit: class-balanced L2 logistic regression
 * in z by gradient descent, and Gram-Schmidt against other directions.
 */

export interface LogisticFit {
  /** Unit normal of the separating hyperplane (positive side = attribute present). */
  direction: Float64Array;
  /** Held-out accuracy, and the mean of per-class accuracies there. */
  accuracy: number;
  balancedAccuracy: number;
}

/**
 * Fit on rows [0, trainCount) of x ([n, dim]) and score on the rest. Classes
 * are weighted to equal total weight, so rare attributes still get a normal.
 */
export function fitLogistic(
  x: Float32Array,
  y: Uint8Array,
  dim: number,
  trainCount: number,
  iterations = 300,
  l2 = 1e-3,
): LogisticFit {
  const n = y.length;
  let pos = 0;
  for (let i = 0; i < trainCount; i++) pos += y[i];
  const neg = trainCount - pos;
  const wPos = pos ? trainCount / (2 * pos) : 0;
  const wNeg = neg ? trainCount / (2 * neg) : 0;
  const w = new Float64Array(dim);
  let b = 0;
  const grad = new Float64Array(dim);
  const lr = 2;
  for (let it = 0; it < iterations; it++) {
    grad.fill(0);
    let gb = 0;
    for (let i = 0; i < trainCount; i++) {
      const row = i * dim;
      let s = b;
      for (let j = 0; j < dim; j++) s += w[j] * x[row + j];
      const p = 1 / (1 + Math.exp(-s));
      const e = (p - y[i]) * (y[i] ? wPos : wNeg);
      for (let j = 0; j < dim; j++) grad[j] += e * x[row + j];
      gb += e;
    }
    for (let j = 0; j < dim; j++) w[j] -= lr * (grad[j] / trainCount + l2 * w[j]);
    b -= (lr * gb) / trainCount;
  }
  let correct = 0,
    tp = 0,
    tn = 0,
    p1 = 0,
    p0 = 0;
  for (let i = trainCount; i < n; i++) {
    let s = b;
    for (let j = 0; j < dim; j++) s += w[j] * x[i * dim + j];
    const pred = s > 0 ? 1 : 0;
    if (pred === y[i]) correct++;
    if (y[i]) {
      p1++;
      if (pred) tp++;
    } else {
      p0++;
      if (!pred) tn++;
    }
  }
  const test = n - trainCount;
  const norm = Math.hypot(...w) || 1;
  return {
    direction: w.map((v) => v / norm),
    accuracy: test ? correct / test : NaN,
    balancedAccuracy: test ? ((p1 ? tp / p1 : 0) + (p0 ? tn / p0 : 0)) / ((p1 ? 1 : 0) + (p0 ? 1 : 0) || 1) : NaN,
  };
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** `v` with its components along `basis` removed (basis made orthonormal first), renormalised. */
export function orthogonalise(v: ArrayLike<number>, basis: readonly ArrayLike<number>[]): Float64Array {
  const ortho: Float64Array[] = [];
  for (const b of basis) {
    const u = Float64Array.from(b);
    for (const o of ortho) {
      const d = dot(u, o);
      for (let i = 0; i < u.length; i++) u[i] -= d * o[i];
    }
    const n = Math.hypot(...u);
    if (n > 1e-9) ortho.push(u.map((x) => x / n));
  }
  const out = Float64Array.from(v);
  for (const o of ortho) {
    const d = dot(out, o);
    for (let i = 0; i < out.length; i++) out[i] -= d * o[i];
  }
  const n = Math.hypot(...out) || 1;
  return out.map((x) => x / n);
}
