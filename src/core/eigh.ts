import { ShapeError } from './errors.js';
import { withKernels } from './kernels.js';
import type { Matrix } from './matrix.js';

/** Eigendecomposition of a symmetric matrix A = Σ_j values[j]·v_j·v_jᵀ. */
export interface SymmetricEigen {
  /** Eigenvalues, sorted in decreasing order. */
  readonly values: Float64Array;
  /** Eigenvectors as **rows**: row j is v_j (unit norm). Row storage keeps every later product contiguous. */
  readonly vectorsT: Matrix;
}

/**
 * Symmetric eigendecomposition in float64: Householder reduction to tridiagonal form, then implicit QR
 * steps with Wilkinson shifts. O(n³); only the upper triangle of `a` is read.
 *
 * @param a - a square symmetric matrix (not modified).
 * @throws {@link ShapeError} when `a` is not square.
 */
export function eigh(a: Matrix): SymmetricEigen {
  const n = a.rows;
  if (a.cols !== n) throw new ShapeError(`eigh: expected a square matrix; received ${a.rows}×${a.cols}.`, [n, n], [a.rows, a.cols]);
  if (n === 0) return { values: new Float64Array(0), vectorsT: { rows: 0, cols: 0, data: new Float64Array(0) } };
  // The same algorithm in WebAssembly (SIMD) where it pays. It needs 3·n² values of module memory (400 MB at
  // n = 4096, about what the TypeScript path allocates too), given back after the call.
  const fast = n >= 16 && n <= 4096 ? eighWasm(a) : undefined;
  if (fast) return fast;

  // Work on a full symmetric copy built from the upper triangle.
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const v = a.data[i * n + j]!;
      A[i * n + j] = v;
      A[j * n + i] = v;
    }
  }

  const diag = new Float64Array(n);
  const off = new Float64Array(n); // off[i] = T[i+1][i]; off[n-1] unused
  const reflectors: Float64Array[] = [];

  // Householder: for column k, zero A[k+2.., k] with H = I − 2vvᵀ acting on indices k+1..n-1.
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const m = n - k - 1;
    const v = new Float64Array(m);
    let scale = 0;
    for (let i = 0; i < m; i++) scale = Math.max(scale, Math.abs(A[(k + 1 + i) * n + k]!));
    if (scale === 0) {
      reflectors.push(v); // zero vector: H = I
      continue;
    }
    let norm2 = 0;
    for (let i = 0; i < m; i++) {
      const x = A[(k + 1 + i) * n + k]! / scale;
      v[i] = x;
      norm2 += x * x;
    }
    const alphaScaled = (v[0]! >= 0 ? -1 : 1) * Math.sqrt(norm2);
    v[0] = v[0]! - alphaScaled;
    let vn = 0;
    for (let i = 0; i < m; i++) vn += v[i]! * v[i]!;
    vn = Math.sqrt(vn);
    if (vn === 0) {
      reflectors.push(new Float64Array(m));
      continue;
    }
    for (let i = 0; i < m; i++) v[i] = v[i]! / vn;
    reflectors.push(v);

    // p = A_sub·v, K = vᵀp, q = p − K·v, A_sub −= 2(vqᵀ + qvᵀ)
    const o = k + 1;
    let K = 0;
    for (let i = 0; i < m; i++) {
      const row = (o + i) * n + o;
      let s = 0;
      for (let j = 0; j < m; j++) s += A[row + j]! * v[j]!;
      p[i] = s;
      K += v[i]! * s;
    }
    for (let i = 0; i < m; i++) p[i] = p[i]! - K * v[i]!;
    for (let i = 0; i < m; i++) {
      const row = (o + i) * n + o;
      const vi = 2 * v[i]!, qi = 2 * p[i]!;
      for (let j = 0; j < m; j++) A[row + j] -= vi * p[j]! + qi * v[j]!;
    }
    A[(k + 1) * n + k] = alphaScaled * scale;
    A[k * n + k + 1] = alphaScaled * scale;
  }
  for (let i = 0; i < n; i++) diag[i] = A[i * n + i]!;
  for (let i = 0; i < n - 1; i++) off[i] = A[(i + 1) * n + i]!;

  // Eᵀ = Qᵀ = H_{n-3}···H_0, accumulated backward by right-multiplication: before H_k is applied the
  // product is the identity outside its trailing block, so each step touches only rows and columns > k.
  const E = new Float64Array(n * n);
  for (let i = 0; i < n; i++) E[i * n + i] = 1;
  for (let k = reflectors.length - 1; k >= 0; k--) {
    const v = reflectors[k]!;
    const o = k + 1, m = v.length;
    for (let i = o; i < n; i++) {
      const row = i * n + o;
      let s = 0;
      for (let j = 0; j < m; j++) s += E[row + j]! * v[j]!;
      if (s === 0) continue;
      s *= 2;
      for (let j = 0; j < m; j++) E[row + j] -= s * v[j]!;
    }
  }

  tridiagonalQr(diag, off, n, (lo, hi, cosines, sines) => {
    for (let k = lo; k < hi; k++) {
      const cs = cosines[k]!, sn = sines[k]!;
      const r0 = k * n, r1 = r0 + n;
      for (let j = 0; j < n; j++) {
        const t1 = E[r0 + j]!, t2 = E[r1 + j]!;
        E[r0 + j] = cs * t1 + sn * t2;
        E[r1 + j] = cs * t2 - sn * t1;
      }
    }
  });
  return sorted(diag, E, n);
}

/** Eigenvalues in decreasing order, with the eigenvector rows of E permuted alike. */
function sorted(diag: Float64Array, E: Float64Array, n: number): SymmetricEigen {
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => diag[y]! - diag[x]!);
  const values = new Float64Array(n);
  const vt = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = diag[src]!;
    vt.set(E.subarray(src * n, (src + 1) * n), dst * n);
  });
  return { values, vectorsT: { rows: n, cols: n, data: vt } };
}

/** Rotations logged per flush of the WebAssembly path: at most three 2 MB arrays (a full solve needs about n²). */
const logRotations = (n: number): number => Math.min(1 << 18, Math.max(1024, 2 * n * n));

/**
 * {@link eigh} through the WebAssembly kernels: Householder reduction and reflector accumulation there, the scalar
 * bulge chase here, and its rotations logged and applied to E in column blocks (each block stays in cache through all
 * logged sweeps). `undefined` when WebAssembly is unavailable.
 */
function eighWasm(a: Matrix): SymmetricEigen | undefined {
  const n = a.rows, nn = n * n, LOG_ROTATIONS = logRotations(n);
  return withKernels(8 * (3 * nn + 3 * n + 32 + 3 * LOG_ROTATIONS), (k, heap) => {
    const A = heap.alloc(nn), R = heap.alloc(nn), E = heap.alloc(nn);
    const diagAt = heap.alloc(n), offAt = heap.alloc(n), scratch = heap.alloc(n), carry = heap.alloc(32);
    const sweepsAt = heap.alloc(LOG_ROTATIONS), cosAt = heap.alloc(LOG_ROTATIONS), sinAt = heap.alloc(LOG_ROTATIONS);
    const { f64, i32 } = heap;
    const base = A / 8;
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        const v = a.data[i * n + j]!;
        f64[base + i * n + j] = v;
        f64[base + j * n + i] = v;
      }
    }
    k.tridiagonalize(A, R, n, diagAt, offAt, scratch);
    k.accumulateReflectors(R, E, n);
    const diag = Float64Array.from(heap.view(diagAt, n)), off = Float64Array.from(heap.view(offAt, n));
    let sweeps = 0, rotations = 0;
    const flush = () => {
      if (sweeps > 0) k.applySweeps(E, n, sweeps, sweepsAt, cosAt, sinAt, carry);
      sweeps = 0;
      rotations = 0;
    };
    tridiagonalQr(diag, off, n, (lo, hi, cosines, sines) => {
      if (rotations + (hi - lo) > LOG_ROTATIONS || sweeps >= LOG_ROTATIONS) flush();
      i32[sweepsAt / 4 + 2 * sweeps] = lo;
      i32[sweepsAt / 4 + 2 * sweeps + 1] = hi;
      f64.set(cosines.subarray(lo, hi), cosAt / 8 + rotations);
      f64.set(sines.subarray(lo, hi), sinAt / 8 + rotations);
      sweeps++;
      rotations += hi - lo;
    });
    flush();
    return sorted(diag, Float64Array.from(heap.view(E, nn)), n);
  });
}

/**
 * Implicit symmetric QR on the tridiagonal (d, e). Each sweep chases a bulge down an unreduced block lo…hi after a
 * Wilkinson-shifted first rotation; `onSweep` receives its rotations (entries lo…hi−1 of the arrays: rotation k mixes
 * rows k and k+1 of the eigenvector matrix) to accumulate them in order.
 */
function tridiagonalQr(
  d: Float64Array,
  e: Float64Array,
  n: number,
  onSweep: (lo: number, hi: number, cosines: Float64Array, sines: Float64Array) => void,
): void {
  const cosines = new Float64Array(n), sines = new Float64Array(n);
  const eps = Number.EPSILON;
  let hi = n - 1;
  let iterations = 0;
  const maxIterations = 60 * n + 100;
  while (hi > 0) {
    // Deflate negligible off-diagonals.
    for (let i = 0; i < hi; i++) {
      if (Math.abs(e[i]!) <= eps * (Math.abs(d[i]!) + Math.abs(d[i + 1]!))) e[i] = 0;
    }
    if (e[hi - 1] === 0) {
      hi--;
      continue;
    }
    let lo = hi - 1;
    while (lo > 0 && e[lo - 1] !== 0) lo--;
    if (++iterations > maxIterations) throw new Error('eigh: QR iteration did not converge; the input may contain NaN.');

    // Wilkinson shift from the trailing 2×2 block.
    const a = d[hi - 1]!, b = e[hi - 1]!, c = d[hi]!;
    const delta = (a - c) / 2;
    const sgn = delta >= 0 ? 1 : -1;
    const mu = c - (b * b) / (delta + sgn * Math.hypot(delta, b));
    let x = d[lo]! - mu;
    let z = e[lo]!;
    for (let k = lo; k < hi; k++) {
      const r = Math.hypot(x, z);
      const cs = r === 0 ? 1 : x / r;
      const sn = r === 0 ? 0 : z / r;
      if (k > lo) e[k - 1] = r;
      cosines[k] = cs;
      sines[k] = sn;
      const dk = d[k]!, dk1 = d[k + 1]!, ek = e[k]!;
      d[k] = cs * cs * dk + 2 * cs * sn * ek + sn * sn * dk1;
      d[k + 1] = sn * sn * dk - 2 * cs * sn * ek + cs * cs * dk1;
      e[k] = cs * sn * (dk1 - dk) + (cs * cs - sn * sn) * ek;
      if (k < hi - 1) {
        x = e[k]!;
        z = sn * e[k + 1]!;
        e[k + 1] = cs * e[k + 1]!;
      }
    }
    onSweep(lo, hi, cosines, sines);
  }
}
