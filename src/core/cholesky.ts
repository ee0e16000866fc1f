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
 * Width at which the recursive substitution stops splitting. The off-diagonal updates (all but about n·LEAF/2 of
 * the n²/2 multiply-adds per right-hand side) go through {@link multiplyABt}'s SIMD kernel; the diagonal blocks of
 * this width are plain substitution in JavaScript. 16–32 measure alike (bench/dense.ts shapes); 48 is 25 % slower.
 */
const LEAF = 24;

/** Recursive substitution pays from here on (measured: n = 96 with 16 right-hand sides is at par); below, the plain loops run. */
function blocked(n: number, rhs: number): boolean {
  return n >= 4 * LEAF && rhs >= 16 && wasmKernelsAvailable();
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
 * Forward substitution on the rows of Y (m×n), by halves: solve columns [a, mid), subtract their contribution
 * X_[a,mid)·L_[mid,b),[a,mid)ᵀ from columns [mid, b) in one multiplyABt call, solve [mid, b). Same sums as the plain
 * loop, grouped differently (equal to rounding; the backward error stays at substitution level).
 */
function blockedLowerRows(L: Matrix, y: Matrix): Matrix {
  const x: Matrix = { rows: y.rows, cols: y.cols, data: Float64Array.from(y.data) };
  lowerBlock(L, x, 0, L.rows);
  return x;
}

function lowerBlock(L: Matrix, x: Matrix, a: number, b: number): void {
  const n = L.rows, m = x.rows, X = x.data, Ld = L.data;
  if (b - a <= LEAF) {
    for (let r = 0; r < m; r++) {
      const xr = r * n;
      for (let i = a; i < b; i++) {
        const li = i * n;
        let s = X[xr + i]!;
        for (let k = a; k < i; k++) s -= Ld[li + k]! * X[xr + k]!;
        X[xr + i] = s / Ld[li + i]!;
      }
    }
    return;
  }
  const mid = a + Math.ceil((b - a) / 2 / LEAF) * LEAF, w = b - mid, h = mid - a;
  lowerBlock(L, x, a, mid);
  const block = new Float64Array(w * h); // L_[mid,b),[a,mid): rows of L, contiguous pieces
  for (let i = 0; i < w; i++) block.set(Ld.subarray((mid + i) * n + a, (mid + i) * n + mid), i * h);
  subtractColumns(x, mid, multiplyABt(columns(x, a, mid), { rows: w, cols: h, data: block }));
  lowerBlock(L, x, mid, b);
}

/**
 * Back substitution with Lᵀ on the rows of Y (m×n), by halves from the right: solve columns [mid, b), subtract
 * X_[mid,b)·L_[mid,b),[a,mid) from columns [a, mid) in one multiplyABt call (L's block gathered transposed), solve
 * [a, mid).
 */
function blockedUpperTRows(L: Matrix, y: Matrix): Matrix {
  const x: Matrix = { rows: y.rows, cols: y.cols, data: Float64Array.from(y.data) };
  upperTBlock(L, x, 0, L.rows);
  return x;
}

function upperTBlock(L: Matrix, x: Matrix, a: number, b: number): void {
  const n = L.rows, m = x.rows, X = x.data, Ld = L.data;
  if (b - a <= LEAF) {
    const w = b - a, u = new Float64Array(w * w); // L_JJᵀ, so that each substitution reads a contiguous row
    for (let k = 0; k < w; k++) for (let t = 0; t <= k; t++) u[t * w + k] = Ld[(a + k) * n + a + t]!;
    for (let r = 0; r < m; r++) {
      const xr = r * n + a;
      for (let t = w - 1; t >= 0; t--) {
        const ut = t * w;
        let s = X[xr + t]!;
        for (let k = t + 1; k < w; k++) s -= u[ut + k]! * X[xr + k]!;
        X[xr + t] = s / u[ut + t]!;
      }
    }
    return;
  }
  const mid = a + Math.ceil((b - a) / 2 / LEAF) * LEAF, w = b - mid, h = mid - a;
  upperTBlock(L, x, mid, b);
  const block = new Float64Array(h * w); // L_[mid,b),[a,mid)ᵀ (h × w)
  for (let k = 0; k < w; k++) for (let t = 0; t < h; t++) block[t * w + k] = Ld[(mid + k) * n + a + t]!;
  subtractColumns(x, a, multiplyABt(columns(x, mid, b), { rows: h, cols: w, data: block }));
  upperTBlock(L, x, a, mid);
}

/** x[:, from : from + update.cols] −= update. */
function subtractColumns(x: Matrix, from: number, update: Matrix): void {
  const n = x.cols, w = update.cols, X = x.data, U = update.data;
  for (let r = 0; r < x.rows; r++) {
    const xr = r * n + from, ur = r * w;
    for (let t = 0; t < w; t++) X[xr + t] -= U[ur + t]!;
  }
}
