import { LvaError, ShapeError } from './errors.js';
import type { Matrix } from './matrix.js';

/**
 * Lower-triangular Cholesky factor L with A = L·Lᵀ, in float64.
 * @throws {@link LvaError} when `a` is not positive definite (a pivot ≤ 0).
 */
export function cholesky(a: Matrix): Matrix {
  const n = a.rows;
  if (a.cols !== n) throw new ShapeError(`cholesky: expected a square matrix; received ${a.rows}×${a.cols}.`, [n, n], [a.rows, a.cols]);
  const L = new Float64Array(n * n);
  const A = a.data;
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let s = A[rj + j]!;
    for (let k = 0; k < j; k++) s -= L[rj + k]! * L[rj + k]!;
    if (!(s > 0)) {
      throw new LvaError(`cholesky: matrix is not positive definite (pivot ${j} is ${s}); add a small ridge to the diagonal.`);
    }
    const ljj = Math.sqrt(s);
    L[rj + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let t = A[ri + j]!;
      for (let k = 0; k < j; k++) t -= L[ri + k]! * L[rj + k]!;
      L[ri + j] = t / ljj;
    }
  }
  return { rows: n, cols: n, data: L };
}

/** Solves L·X = B for lower-triangular L (B is n×m; returns X). */
export function solveLower(L: Matrix, b: Matrix): Matrix {
  const n = L.rows, m = b.cols;
  const X = Float64Array.from(b.data);
  for (let i = 0; i < n; i++) {
    const ri = i * n, xi = i * m;
    for (let k = 0; k < i; k++) {
      const l = L.data[ri + k]!;
      if (l === 0) continue;
      const xk = k * m;
      for (let j = 0; j < m; j++) X[xi + j] -= l * X[xk + j]!;
    }
    const d = L.data[ri + i]!;
    for (let j = 0; j < m; j++) X[xi + j] = X[xi + j]! / d;
  }
  return { rows: n, cols: m, data: X };
}

/** Solves Lᵀ·X = B for lower-triangular L (B is n×m; returns X). */
export function solveUpperT(L: Matrix, b: Matrix): Matrix {
  const n = L.rows, m = b.cols;
  const X = Float64Array.from(b.data);
  for (let i = n - 1; i >= 0; i--) {
    const xi = i * m;
    for (let k = i + 1; k < n; k++) {
      const l = L.data[k * n + i]!;
      if (l === 0) continue;
      const xk = k * m;
      for (let j = 0; j < m; j++) X[xi + j] -= l * X[xk + j]!;
    }
    const d = L.data[i * n + i]!;
    for (let j = 0; j < m; j++) X[xi + j] = X[xi + j]! / d;
  }
  return { rows: n, cols: m, data: X };
}
