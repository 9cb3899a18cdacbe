/**
 * The Fréchet distance between two Gaussians fitted to feature vectors, as
 * in FID: |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2).
 *
 * S1 S2 is not symmetric, so its square root is taken the stable way: with
 * A = S1^1/2 (symmetric, from an eigen-decomposition), S1 S2 is similar to the
 * symmetric positive semi-definite A S2 A, whose eigenvalues are those of
 * S1 S2; the trace of the root is the sum of their square roots.
 */
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';

/** Mean and (unbiased, N - 1) covariance of a set of feature vectors. */
export interface GaussianStats {
  dim: number;
  count: number;
  mean: Float64Array;
  /** Row-major dim x dim. */
  cov: Float64Array;
}

/** Fit mean and covariance to `count` rows of `dim` features, row-major. */
export function gaussianStats(rows: ArrayLike<number>, dim: number): GaussianStats {
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`gaussianStats: dim must be a positive integer, got ${dim}`);
  if (rows.length % dim !== 0)
    throw new Error(`gaussianStats: ${rows.length} values is not a whole number of ${dim}-d rows`);
  const count = rows.length / dim;
  if (count < 2) throw new Error(`gaussianStats: need at least 2 vectors for a covariance, got ${count}`);
  const mean = new Float64Array(dim);
  for (let r = 0; r < count; r++) for (let i = 0; i < dim; i++) mean[i] += rows[r * dim + i];
  for (let i = 0; i < dim; i++) mean[i] /= count;
  const cov = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  for (let r = 0; r < count; r++) {
    for (let i = 0; i < dim; i++) centred[i] = rows[r * dim + i] - mean[i];
    for (let i = 0; i < dim; i++) {
      const ci = centred[i];
      for (let j = i; j < dim; j++) cov[i * dim + j] += ci * centred[j];
    }
  }
  for (let i = 0; i < dim; i++) {
    for (let j = i; j < dim; j++) {
      const v = cov[i * dim + j] / (count - 1);
      cov[i * dim + j] = v;
      cov[j * dim + i] = v;
    }
  }
  for (const v of mean) if (!Number.isFinite(v)) throw new Error('gaussianStats: features contain NaN or infinity');
  return { dim, count, mean, cov };
}

function toMatrix(values: Float64Array, dim: number): Matrix {
  return Matrix.from1DArray(dim, dim, values);
}

/** Eigen-decomposition of a symmetric matrix (made exactly symmetric first: rounding can break it). */
function symmetricEigen(m: Matrix): EigenvalueDecomposition {
  // ml-matrix's add/mul work in place: start from a copy so `m` is left alone.
  const sym = m.clone().add(m.transpose()).mul(0.5);
  return new EigenvalueDecomposition(sym, { assumeSymmetric: true });
}

/** Square root of a symmetric positive semi-definite matrix; tiny negative eigenvalues from rounding count as 0. */
function sqrtPsd(m: Matrix): Matrix {
  const eig = symmetricEigen(m);
  const v = eig.eigenvectorMatrix;
  const roots = eig.realEigenvalues.map((l) => Math.sqrt(Math.max(l, 0)));
  return v.clone().mulRowVector(roots).mmul(v.transpose());
}

/** tr((S1 S2)^1/2) for symmetric positive semi-definite S1, S2. */
export function traceSqrtProduct(s1: Matrix, s2: Matrix): number {
  const a = sqrtPsd(s1);
  const eig = symmetricEigen(a.mmul(s2).mmul(a));
  return eig.realEigenvalues.reduce((sum, l) => sum + Math.sqrt(Math.max(l, 0)), 0);
}

/** The squared Fréchet distance between two fitted Gaussians (what FID reports). */
export function frechetDistance(a: GaussianStats, b: GaussianStats): number {
  if (a.dim !== b.dim) throw new Error(`frechetDistance: dimensions differ (${a.dim} vs ${b.dim})`);
  const dim = a.dim;
  let meanTerm = 0;
  for (let i = 0; i < dim; i++) meanTerm += (a.mean[i] - b.mean[i]) ** 2;
  let traces = 0;
  for (let i = 0; i < dim; i++) traces += a.cov[i * dim + i] + b.cov[i * dim + i];
  const cross = traceSqrtProduct(toMatrix(a.cov, dim), toMatrix(b.cov, dim));
  // Equal inputs can land a hair below zero through rounding; a distance cannot.
  return Math.max(0, meanTerm + traces - 2 * cross);
}
