import { NonFiniteError, ShapeError } from './errors.js';
import { wasmKernelsAvailable, withKernels } from './kernels.js';

/** Dense row-major float64 matrix; `data.length === rows * cols`. */
export interface Matrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float64Array;
}

/** A matrix of zeros, or a float64 copy of `data` (row-major). */
export function matrix(rows: number, cols: number, data?: ArrayLike<number>): Matrix {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new ShapeError(`matrix: rows and cols must be non-negative integers; received ${rows} × ${cols}.`, [], [rows, cols]);
  }
  if (data === undefined) return { rows, cols, data: new Float64Array(rows * cols) };
  if (data.length !== rows * cols) {
    throw new ShapeError(
      `matrix: data has ${data.length} entries but ${rows} × ${cols} needs ${rows * cols}; pass row-major data of that length.`,
      [rows * cols],
      [data.length],
    );
  }
  return { rows, cols, data: Float64Array.from(data) };
}

/** A matrix from nested arrays, one inner array per row. */
export function fromRows(rows: readonly (readonly number[])[]): Matrix {
  const r = rows.length;
  const c = r === 0 ? 0 : rows[0]!.length;
  const out = new Float64Array(r * c);
  rows.forEach((row, i) => {
    if (row.length !== c) {
      throw new ShapeError(`fromRows: row ${i} has ${row.length} entries but row 0 has ${c}; pass a rectangular array.`, [c], [row.length]);
    }
    out.set(row, i * c);
  });
  return { rows: r, cols: c, data: out };
}

/** Nested arrays, one per row (for JSON and printing). */
export function toRows(a: Matrix): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < a.rows; i++) out.push(Array.from(a.data.subarray(i * a.cols, (i + 1) * a.cols)));
  return out;
}

export function identity(n: number): Matrix {
  const m = matrix(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

export function transpose(a: Matrix): Matrix {
  const { rows, cols, data } = a;
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    for (let j = 0; j < cols; j++) out[j * rows + i] = data[base + j]!;
  }
  return { rows: cols, cols: rows, data: out };
}

/**
 * Products at least this large (multiply-adds) go through the SIMD kernel of {@link multiplyABt}; below, the
 * JavaScript loops run (bench/dense.ts measures where the kernel starts to pay).
 */
const KERNEL_WORK = 1 << 15;

/**
 * A·B. Large products are A·(Bᵀ)ᵀ through the SIMD kernel of {@link multiplyABt} (the transpose is O(size));
 * with fewer than 8 rows of A the transpose of B costs more than the kernel saves, and small products, or no
 * WebAssembly, run the i-k-j loop below (contiguous inner loop, zero entries of A skipped — ReLU features are about
 * half zeros, which halves the loop's work but still leaves it 4–6× slower than the kernel on large shapes).
 */
export function matmul(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.rows) {
    throw new ShapeError(`matmul: inner dimensions differ (${a.rows}×${a.cols} · ${b.rows}×${b.cols}).`, [a.cols], [b.rows]);
  }
  const n = a.rows, k = a.cols, m = b.cols;
  if (n >= 8 && n * k * m >= KERNEL_WORK && wasmKernelsAvailable()) return multiplyABt(a, transpose(b));
  const out = new Float64Array(n * m);
  const A = a.data, B = b.data;
  for (let i = 0; i < n; i++) {
    const oi = i * m;
    for (let p = 0; p < k; p++) {
      const v = A[i * k + p]!;
      if (v === 0) continue;
      const bp = p * m;
      for (let j = 0; j < m; j++) out[oi + j] += v * B[bp + j]!;
    }
  }
  return { rows: n, cols: m, data: out };
}

/**
 * Aᵀ·B. Large products are Aᵀ·(Bᵀ)ᵀ through the SIMD kernel of {@link multiplyABt}; when A or B has fewer than 16
 * columns (one output, say) the two O(size) transposes cost more than the kernel saves, and the row-by-row loop below
 * (zero entries of A skipped, Aᵀ never formed) runs, as it does for small products or without WebAssembly.
 */
export function matmulTN(a: Matrix, b: Matrix): Matrix {
  if (a.rows !== b.rows) {
    throw new ShapeError(`matmulTN: row counts differ (${a.rows}×${a.cols}ᵀ · ${b.rows}×${b.cols}).`, [a.rows], [b.rows]);
  }
  const n = a.rows, d = a.cols, m = b.cols;
  if (Math.min(d, m) >= 16 && n * d * m >= KERNEL_WORK && wasmKernelsAvailable()) return multiplyABt(transpose(a), transpose(b));
  const out = new Float64Array(d * m);
  const A = a.data, B = b.data;
  for (let r = 0; r < n; r++) {
    const ar = r * d, br = r * m;
    for (let i = 0; i < d; i++) {
      const v = A[ar + i]!;
      if (v === 0) continue;
      const oi = i * m;
      for (let j = 0; j < m; j++) out[oi + j] += v * B[br + j]!;
    }
  }
  return { rows: d, cols: m, data: out };
}

/**
 * Adds ZᵀZ (upper triangle only) of the row block `z` into the d×d accumulator `g`, scaled by `scale`.
 * Rows are processed four at a time so each pass over `g` does four rank-one updates.
 */
export function addGramUpper(g: Float64Array, z: Float64Array, rows: number, d: number, scale = 1): void {
  if (scale === 1 && rows >= 8 && d >= 8 && addGramUpperWasm(g, z, rows, d)) return;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const b0 = r * d, b1 = b0 + d, b2 = b1 + d, b3 = b2 + d;
    for (let i = 0; i < d; i++) {
      const a0 = z[b0 + i]! * scale, a1 = z[b1 + i]! * scale, a2 = z[b2 + i]! * scale, a3 = z[b3 + i]! * scale;
      if (a0 === 0 && a1 === 0 && a2 === 0 && a3 === 0) continue;
      const gi = i * d;
      for (let j = i; j < d; j++) {
        g[gi + j] += a0 * z[b0 + j]! + a1 * z[b1 + j]! + a2 * z[b2 + j]! + a3 * z[b3 + j]!;
      }
    }
  }
  for (; r < rows; r++) {
    const b0 = r * d;
    for (let i = 0; i < d; i++) {
      const a0 = z[b0 + i]! * scale;
      if (a0 === 0) continue;
      const gi = i * d;
      for (let j = i; j < d; j++) g[gi + j] += a0 * z[b0 + j]!;
    }
  }
}

/** Rows per block copied into the WebAssembly memory (about 8 MB of them). */
const rowsPerBlock = (width: number): number => Math.max(4, Math.floor((1 << 20) / Math.max(1, width)));

/** {@link addGramUpper} through the SIMD kernel, rows copied in blocks; false when WebAssembly is unavailable. */
function addGramUpperWasm(g: Float64Array, z: Float64Array, rows: number, d: number): boolean {
  const block = Math.min(rows, rowsPerBlock(d));
  return (
    withKernels(8 * (d * d + block * d), (k, heap) => {
      const G = heap.alloc(d * d), Z = heap.alloc(block * d);
      heap.view(G, d * d).set(g.subarray(0, d * d));
      for (let r0 = 0; r0 < rows; r0 += block) {
        const r1 = Math.min(rows, r0 + block);
        heap.view(Z, (r1 - r0) * d).set(z.subarray(r0 * d, r1 * d));
        k.addGramUpper(G, Z, r1 - r0, d);
      }
      g.set(heap.view(G, d * d));
      return true;
    }) === true
  );
}

/** {@link multiplyABt} through the SIMD kernel, rows of A in blocks; undefined when WebAssembly is unavailable. */
function multiplyABtWasm(a: Matrix, b: Matrix): Matrix | undefined {
  const n = a.rows, k = b.rows, p = a.cols;
  const block = Math.min(n, rowsPerBlock(p + k));
  return withKernels(8 * (k * p + block * (p + k)), (kernels, heap) => {
    const B = heap.alloc(k * p), A = heap.alloc(block * p), O = heap.alloc(block * k);
    heap.view(B, k * p).set(b.data.subarray(0, k * p));
    const out = new Float64Array(n * k);
    for (let r0 = 0; r0 < n; r0 += block) {
      const r1 = Math.min(n, r0 + block);
      heap.view(A, (r1 - r0) * p).set(a.data.subarray(r0 * p, r1 * p));
      kernels.multiplyABt(A, B, O, r1 - r0, k, p);
      out.set(heap.view(O, (r1 - r0) * k), r0 * k);
    }
    return { rows: n, cols: k, data: out };
  });
}

/** Copies the upper triangle of a square matrix into its lower triangle. */
export function symmetrizeFromUpper(g: Float64Array, d: number): void {
  for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) g[j * d + i] = g[i * d + j]!;
}

/** ZᵀZ (d×d). */
export function gram(z: Matrix): Matrix {
  const g = new Float64Array(z.cols * z.cols);
  addGramUpper(g, z.data, z.rows, z.cols);
  symmetrizeFromUpper(g, z.cols);
  return { rows: z.cols, cols: z.cols, data: g };
}

/**
 * A·Bᵀ for row-major A (n×p) and B (k×p): every entry is a dot product of two contiguous rows, summed in index
 * order. Four rows of A share each pass over a row of B (four independent accumulators), which halves memory
 * traffic without changing any sum. With `symmetric` (A = B) only j ≥ i is computed and mirrored.
 */
export function multiplyABt(a: Matrix, b: Matrix, symmetric = false): Matrix {
  if (a.cols !== b.cols) throw new ShapeError(`multiplyABt: widths differ (${a.cols} vs ${b.cols}).`, [a.cols], [b.cols]);
  // The SIMD kernel computes every entry (also under `symmetric`: entry (i, j) and (j, i) are the same sums there).
  if (a.rows * b.rows * a.cols >= KERNEL_WORK) {
    const fast = multiplyABtWasm(a, b);
    if (fast) return fast;
  }
  const n = a.rows, k = b.rows, p = a.cols, A = a.data, B = b.data;
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i += 4) {
    const rows = Math.min(4, n - i);
    const a0 = i * p, a1 = (i + Math.min(1, rows - 1)) * p, a2 = (i + Math.min(2, rows - 1)) * p, a3 = (i + Math.min(3, rows - 1)) * p;
    for (let j = symmetric ? i : 0; j < k; j++) {
      const bj = j * p;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let t = 0; t < p; t++) {
        const v = B[bj + t]!;
        s0 += A[a0 + t]! * v;
        s1 += A[a1 + t]! * v;
        s2 += A[a2 + t]! * v;
        s3 += A[a3 + t]! * v;
      }
      const sums = [s0, s1, s2, s3];
      for (let r = 0; r < rows; r++) {
        out[(i + r) * k + j] = sums[r]!;
        if (symmetric) out[j * k + i + r] = sums[r]!;
      }
    }
  }
  return { rows: n, cols: k, data: out };
}

/** ZZᵀ (n×n). */
export function kernel(z: Matrix): Matrix {
  return multiplyABt(z, z, true);
}

export function add(a: Matrix, b: Matrix): Matrix {
  sameShape('add', a, b);
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = a.data[i]! + b.data[i]!;
  return { rows: a.rows, cols: a.cols, data: out };
}

export function sub(a: Matrix, b: Matrix): Matrix {
  sameShape('sub', a, b);
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = a.data[i]! - b.data[i]!;
  return { rows: a.rows, cols: a.cols, data: out };
}

export function scale(a: Matrix, s: number): Matrix {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = a.data[i]! * s;
  return { rows: a.rows, cols: a.cols, data: out };
}

/** Frobenius norm, scaled to avoid overflow for very large entries. */
export function frobenius(a: Matrix | Float64Array): number {
  const d = 'data' in a ? a.data : a;
  let mx = 0;
  for (let i = 0; i < d.length; i++) mx = Math.max(mx, Math.abs(d[i]!));
  if (mx === 0 || !Number.isFinite(mx)) return mx;
  let s = 0;
  for (let i = 0; i < d.length; i++) {
    const v = d[i]! / mx;
    s += v * v;
  }
  return mx * Math.sqrt(s);
}

/** Euclidean norm of each column. */
export function columnNorms(a: Matrix): number[] {
  const out: number[] = [];
  for (let j = 0; j < a.cols; j++) {
    let mx = 0;
    for (let i = 0; i < a.rows; i++) mx = Math.max(mx, Math.abs(a.data[i * a.cols + j]!));
    if (mx === 0) {
      out.push(0);
      continue;
    }
    let s = 0;
    for (let i = 0; i < a.rows; i++) {
      const v = a.data[i * a.cols + j]! / mx;
      s += v * v;
    }
    out.push(mx * Math.sqrt(s));
  }
  return out;
}

/** [A 1]: appends a column of ones (the bias column). */
export function appendOnes(a: Matrix): Matrix {
  const c = a.cols + 1;
  const out = new Float64Array(a.rows * c);
  for (let i = 0; i < a.rows; i++) {
    out.set(a.data.subarray(i * a.cols, (i + 1) * a.cols), i * c);
    out[i * c + a.cols] = 1;
  }
  return { rows: a.rows, cols: c, data: out };
}

/** Rows [from, to) as a view-free copy. */
export function sliceRows(a: Matrix, from: number, to: number): Matrix {
  return { rows: to - from, cols: a.cols, data: a.data.slice(from * a.cols, to * a.cols) };
}

/** Rows picked by index. */
export function takeRows(a: Matrix, idx: readonly number[]): Matrix {
  const out = new Float64Array(idx.length * a.cols);
  idx.forEach((r, i) => out.set(a.data.subarray(r * a.cols, (r + 1) * a.cols), i * a.cols));
  return { rows: idx.length, cols: a.cols, data: out };
}

/** Vertical concatenation. */
export function vstack(...parts: Matrix[]): Matrix {
  const cols = parts[0]?.cols ?? 0;
  const rows = parts.reduce((s, p) => s + p.rows, 0);
  const out = new Float64Array(rows * cols);
  let off = 0;
  for (const p of parts) {
    if (p.cols !== cols) throw new ShapeError(`vstack: blocks have ${cols} and ${p.cols} columns.`, [cols], [p.cols]);
    out.set(p.data, off);
    off += p.data.length;
  }
  return { rows, cols, data: out };
}

export function sameShape(fn: string, a: Matrix, b: Matrix): void {
  if (a.rows !== b.rows || a.cols !== b.cols) {
    throw new ShapeError(`${fn}: shapes differ (${a.rows}×${a.cols} vs ${b.rows}×${b.cols}).`, [a.rows, a.cols], [b.rows, b.cols]);
  }
}

/** Throws {@link NonFiniteError} naming the first NaN/±Infinity entry of `a`. */
export function assertFinite(fn: string, argument: string, a: Matrix | Float64Array, hint = ''): void {
  const d = 'data' in a ? a.data : a;
  const cols = 'data' in a ? a.cols : d.length;
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    if (!Number.isFinite(v)) {
      const r = Math.floor(i / Math.max(cols, 1)), c = i % Math.max(cols, 1);
      throw new NonFiniteError(
        `${fn}: ${argument} contains ${v} at row ${r}, column ${c}; pass finite numbers${hint ? ` (${hint})` : ''}.`,
        argument,
        r,
        c,
      );
    }
  }
}

/** Largest absolute entry. */
export function maxAbs(a: Matrix | Float64Array): number {
  const d = 'data' in a ? a.data : a;
  let m = 0;
  for (let i = 0; i < d.length; i++) m = Math.max(m, Math.abs(d[i]!));
  return m;
}
