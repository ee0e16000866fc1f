import { LvaError, ShapeError } from './errors.js';
import { wasmKernelsAvailable } from './kernels.js';
import { multiplyABt, transpose, type Matrix } from './matrix.js';

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
  checkSolve('solveLower', L, b.rows, 'rows');
  if (blocked(L.rows, b.cols)) return transpose(solveLowerRows(L, transpose(b)));
  return solveLowerColumns(L, b);
}

/** Solves Lᵀ·X = B for lower-triangular L (B is n×m; returns X). */
export function solveUpperT(L: Matrix, b: Matrix): Matrix {
  checkSolve('solveUpperT', L, b.rows, 'rows');
  if (blocked(L.rows, b.cols)) return transpose(solveUpperTRows(L, transpose(b)));
  return solveUpperTColumns(L, b);
}

/**
 * Y·L⁻ᵀ: every row x of the result solves L·x = y for the same row y of `y` (m×n), i.e.
 * `transpose(solveLower(L, transpose(y)))` without the two transposes. Whitening feature rows by a Cholesky factor
 * of their metric is this call.
 */
export function solveLowerRows(L: Matrix, y: Matrix): Matrix {
  checkSolve('solveLowerRows', L, y.cols, 'columns');
  if (blocked(L.rows, y.rows)) return blockedLowerRows(L, y);
  return transpose(solveLowerColumns(L, transpose(y)));
}

/** Y·L⁻¹: every row x of the result solves Lᵀ·x = y for the same row y of `y`; `transpose(solveUpperT(L, transpose(y)))`. */
export function solveUpperTRows(L: Matrix, y: Matrix): Matrix {
  checkSolve('solveUpperTRows', L, y.cols, 'columns');
  if (blocked(L.rows, y.rows)) return blockedUpperTRows(L, y);
  return transpose(solveUpperTColumns(L, transpose(y)));
}

function checkSolve(fn: string, L: Matrix, n: number, side: 'rows' | 'columns'): void {
  if (L.cols !== L.rows) throw new ShapeError(`${fn}: L must be square; received ${L.rows}×${L.cols}.`, [L.rows, L.rows], [L.rows, L.cols]);
  if (n !== L.rows) {
    throw new ShapeError(
      `${fn}: L is ${L.rows}×${L.rows} but the right-hand sides have ${n} ${side}; pass ${L.rows} ${side} (one per row of L).`,
      [L.rows],
      [n],
    );
  }
}

/**
 * Column width of the diagonal blocks of the blocked substitution. The off-diagonal updates (all but n·BLOCK/2 of
 * the ≈ n²/2 multiply-adds per right-hand side) go through {@link multiplyABt}'s SIMD kernel; the diagonal blocks
 * are plain substitution in JavaScript.
 */
const BLOCK = 48;

/** Blocked substitution pays from here on (bench/dense.ts measures the crossover); below, the plain loops run. */
function blocked(n: number, rhs: number): boolean {
  return n >= 2 * BLOCK && rhs >= 16 && wasmKernelsAvailable();
}

/** The plain forward substitution over the rows of B, zero entries of L skipped. */
function solveLowerColumns(L: Matrix, b: Matrix): Matrix {
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

/** The plain back substitution with Lᵀ over the rows of B, zero entries of L skipped. */
function solveUpperTColumns(L: Matrix, b: Matrix): Matrix {
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

/** Columns [from, to) of `a` as a contiguous matrix. */
function columns(a: Matrix, from: number, to: number): Matrix {
  const w = to - from, out = new Float64Array(a.rows * w);
  for (let i = 0; i < a.rows; i++) out.set(a.data.subarray(i * a.cols + from, i * a.cols + to), i * w);
  return { rows: a.rows, cols: w, data: out };
}

/**
 * Left-looking blocked forward substitution on the rows of Y (m×n): for each column block J,
 * X_J = (Y_J − X_{<J}·L_{J,<J}ᵀ)·L_JJ⁻ᵀ, the product through multiplyABt and the last factor by substitution
 * row by row. Same sums as the plain loop, grouped differently (equal to rounding).
 */
function blockedLowerRows(L: Matrix, y: Matrix): Matrix {
  const n = L.rows, m = y.rows, Ld = L.data;
  const X = Float64Array.from(y.data);
  const x: Matrix = { rows: m, cols: n, data: X };
  for (let j0 = 0; j0 < n; j0 += BLOCK) {
    const j1 = Math.min(n, j0 + BLOCK), w = j1 - j0;
    if (j0 > 0) {
      const update = multiplyABt(columns(x, 0, j0), columns({ rows: w, cols: n, data: Ld.subarray(j0 * n, j1 * n) }, 0, j0)).data;
      for (let r = 0; r < m; r++) {
        const xr = r * n + j0, ur = r * w;
        for (let t = 0; t < w; t++) X[xr + t] -= update[ur + t]!;
      }
    }
    for (let r = 0; r < m; r++) {
      const xr = r * n;
      for (let i = j0; i < j1; i++) {
        const li = i * n;
        let s = X[xr + i]!;
        for (let k = j0; k < i; k++) s -= Ld[li + k]! * X[xr + k]!;
        X[xr + i] = s / Ld[li + i]!;
      }
    }
  }
  return x;
}

/**
 * Right-to-left blocked back substitution with Lᵀ on the rows of Y (m×n): for each column block J from the last,
 * X_J = (Y_J − X_{>J}·L_{>J,J})·L_JJ⁻¹, the product through multiplyABt (with L_{>J,J}ᵀ gathered) and the last
 * factor by substitution row by row.
 */
function blockedUpperTRows(L: Matrix, y: Matrix): Matrix {
  const n = L.rows, m = y.rows, Ld = L.data;
  const X = Float64Array.from(y.data);
  const x: Matrix = { rows: m, cols: n, data: X };
  const last = Math.floor((n - 1) / BLOCK) * BLOCK;
  for (let j0 = last; j0 >= 0; j0 -= BLOCK) {
    const j1 = Math.min(n, j0 + BLOCK), w = j1 - j0;
    if (j1 < n) {
      const rest = n - j1, lt = new Float64Array(w * rest); // L_{>J,J}ᵀ (w × rest)
      for (let k = j1; k < n; k++) for (let t = 0; t < w; t++) lt[t * rest + k - j1] = Ld[k * n + j0 + t]!;
      const update = multiplyABt(columns(x, j1, n), { rows: w, cols: rest, data: lt }).data;
      for (let r = 0; r < m; r++) {
        const xr = r * n + j0, ur = r * w;
        for (let t = 0; t < w; t++) X[xr + t] -= update[ur + t]!;
      }
    }
    const u = new Float64Array(w * w); // L_JJᵀ, so that each substitution reads a contiguous row
    for (let k = 0; k < w; k++) for (let t = 0; t <= k; t++) u[t * w + k] = Ld[(j0 + k) * n + j0 + t]!;
    for (let r = 0; r < m; r++) {
      const xr = r * n + j0;
      for (let t = w - 1; t >= 0; t--) {
        const ut = t * w;
        let s = X[xr + t]!;
        for (let k = t + 1; k < w; k++) s -= u[ut + k]! * X[xr + k]!;
        X[xr + t] = s / u[ut + t]!;
      }
    }
  }
  return x;
}
