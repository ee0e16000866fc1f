/**
 * The dense products and triangular solves that go through the SIMD kernel of multiplyABt when large (matmul,
 * matmulTN, applyHead, and the blocked substitution in solveLower / solveUpperT / solveLowerRows / solveUpperTRows),
 * against ml-matrix's products and solves: shapes on both sides of each crossover (rows < 8, widths < 16, products
 * below 2^15 multiply-adds, triangles narrower than 96 or fewer than 16 right-hand sides), sizes that are not multiples of 2 or 4 (the kernel's SIMD
 * tails), ReLU inputs (half exact zeros, which the JavaScript loops skip), and every case again with the
 * WebAssembly kernels off.
 */
import { Matrix as MlMatrix, solve as mlSolve } from 'ml-matrix';
import { cholesky, solveLower, solveLowerRows, solveUpperT, solveUpperTRows } from '../../src/core/cholesky.js';
import { applyHead } from '../../src/core/head.js';
import { setWasmKernels, wasmKernelsAvailable } from '../../src/core/kernels.js';
import { gram, matmul, matmulTN, transpose, type Matrix } from '../../src/core/matrix.js';
import { expectMatrixClose } from '../helpers/expect-close.js';
import { randomMatrix, reluFeatures } from '../helpers/random.js';

const toMl = (a: Matrix): MlMatrix => new MlMatrix(Array.from({ length: a.rows }, (_, i) => Array.from(a.data.subarray(i * a.cols, (i + 1) * a.cols))));
const fromMl = (a: MlMatrix): Matrix => ({ rows: a.rows, cols: a.columns, data: Float64Array.from(a.to1DArray()) });
const maxAbs = (a: Matrix): number => a.data.reduce((s, v) => Math.max(s, Math.abs(v)), 0);

/** Runs `f` with the WebAssembly kernels on, then off (restored in `finally`). */
function bothPaths(f: (path: string) => void): void {
  f('wasm');
  setWasmKernels(false);
  try {
    f('js');
  } finally {
    setWasmKernels(true);
  }
}

/** An error bound for a k-term dot product in float64: a few k·ε of the sum of |terms|. */
const dotTol = (k: number, scale: number): number => 8 * Math.max(1, k) * Number.EPSILON * scale;

function operand(rows: number, cols: number, seed: number, relu: boolean): Matrix {
  return relu ? reluFeatures(rows, cols, seed, Math.min(2, cols), Math.min(1, Math.max(0, cols - 2))) : randomMatrix(rows, cols, seed);
}

afterAll(() => setWasmKernels(true));

it('the WebAssembly kernels are available here (otherwise both paths below are the fallback)', () => {
  expect(wasmKernelsAvailable()).toBe(true);
});

// n × k × m: below 2^15; fewer than 8 rows; just past the work threshold; odd sizes; several kernel row blocks.
const productShapes: [number, number, number][] = [
  [3, 5, 7],
  [7, 90, 70],
  [8, 64, 64],
  [33, 33, 31],
  [61, 17, 1],
  [130, 97, 3],
  [257, 129, 65],
  [2100, 513, 5],
];

describe.each([false, true])('matmul and applyHead (A with ReLU zeros: %s)', (relu) => {
  it.each(productShapes)('%i×%i · %i-wide matches ml-matrix mmul', (n, k, m) => {
    const a = operand(n, k, n + 3 * k + m, relu), b = randomMatrix(k, m, 7 * n + k);
    const bias = Float64Array.from(randomMatrix(1, m, n + 11).data);
    const ref = toMl(a).mmul(toMl(b));
    const refHead = ref.clone().addRowVector(Array.from(bias));
    // Entries are sums of k products of |a|·|b| ≤ about 5²: bound the error by the sum of magnitudes.
    const scale = toMl(a).abs().mmul(toMl(b).abs()).max() + maxAbs({ rows: 1, cols: m, data: bias });
    bothPaths(() => {
      expectMatrixClose(matmul(a, b), fromMl(ref), { atol: dotTol(k, scale), rtol: 0 });
      expectMatrixClose(applyHead(a, { weights: b, bias }), fromMl(refHead), { atol: dotTol(k + 1, scale), rtol: 0 });
      expectMatrixClose(applyHead(a, { weights: b }), fromMl(ref), { atol: dotTol(k, scale), rtol: 0 });
    });
  });
});

// n × d × m for Aᵀ·B (A n×d, B n×m): narrow sides (< 16) stay in JavaScript, wide ones go to the kernel.
const tnShapes: [number, number, number][] = [
  [5, 3, 2],
  [300, 15, 40],
  [301, 17, 33],
  [1000, 65, 1],
  [3, 129, 67],
  [2100, 97, 51],
];

describe.each([false, true])('matmulTN (A with ReLU zeros: %s)', (relu) => {
  it.each(tnShapes)('(%i×%i)ᵀ · %i-wide matches ml-matrix transpose().mmul', (n, d, m) => {
    const a = operand(n, d, 5 * n + d + m, relu), b = randomMatrix(n, m, n + 13 * d);
    const ref = toMl(a).transpose().mmul(toMl(b));
    const scale = toMl(a).abs().transpose().mmul(toMl(b).abs()).max();
    bothPaths(() => expectMatrixClose(matmulTN(a, b), fromMl(ref), { atol: dotTol(n, scale), rtol: 0 }));
  });
});

/**
 * A Cholesky factor of a floored source metric, as lva.ts builds it: ReLU features with dead and duplicated
 * columns (rank-deficient Gram) plus `floor`·(tr/p)·I. The smaller the floor, the worse the conditioning
 * (κ(L) ≈ 1/√floor).
 */
function metricFactor(p: number, seed: number, floor: number): Matrix {
  const z = reluFeatures(Math.max(8, Math.round(p * 0.8)), p, seed, 3, 4); // fewer rows than columns: singular Gram
  const g = gram(z);
  let tr = 0;
  for (let i = 0; i < p; i++) tr += g.data[i * p + i]!;
  for (let i = 0; i < p; i++) g.data[i * p + i] += (floor * tr) / p;
  return cholesky(g);
}

/**
 * Backward error of a triangular solve, computed with ml-matrix's product: ‖T·X − B‖_max / (‖|T|·|X|‖_max), which
 * substitution (blocked or not) keeps at a small multiple of n·ε whatever the conditioning.
 */
function backwardError(t: MlMatrix, x: MlMatrix, b: MlMatrix): number {
  // ml-matrix's abs() and sub() work in place: on copies.
  return t.mmul(x).sub(b).abs().max() / t.clone().abs().mmul(x.clone().abs()).max();
}

// n × m (triangle × right-hand sides): below two blocks; too few right-hand sides; odd sizes past the crossover.
const solveShapes: [number, number][] = [
  [37, 50],
  [97, 15],
  [97, 16],
  [130, 61],
  [203, 301],
];

describe.each([1e-2, 1e-8])('triangular solves with a metric factor floored at %g', (floor) => {
  it.each(solveShapes)('n = %i, %i right-hand sides: match ml-matrix solves, at substitution-level backward error', (n, m) => {
    const L = metricFactor(n, n + m, floor);
    const b = randomMatrix(n, m, 3 * n + m);
    const lMl = toMl(L), ltMl = lMl.transpose(), bMl = toMl(b);
    const refLower = mlSolve(lMl, bMl), refUpper = mlSolve(ltMl, bMl);
    // Forward error of any backward-stable solve: κ·(backward error); κ(L) ≈ 1/√floor here, so allow n·ε·κ·‖X‖.
    const kappa = 1 / Math.sqrt(floor);
    const tolLower = 64 * n * Number.EPSILON * kappa * maxAbs(fromMl(refLower));
    const tolUpper = 64 * n * Number.EPSILON * kappa * maxAbs(fromMl(refUpper));
    bothPaths(() => {
      const lower = solveLower(L, b), upper = solveUpperT(L, b);
      expectMatrixClose(lower, fromMl(refLower), { atol: tolLower, rtol: 0 });
      expectMatrixClose(upper, fromMl(refUpper), { atol: tolUpper, rtol: 0 });
      expect(backwardError(lMl, toMl(lower), bMl)).toBeLessThan(4 * n * Number.EPSILON);
      expect(backwardError(ltMl, toMl(upper), bMl)).toBeLessThan(4 * n * Number.EPSILON);
      // The row forms are the transposed solves.
      const y = transpose(b);
      const lowerRows = solveLowerRows(L, y), upperRows = solveUpperTRows(L, y);
      expectMatrixClose(lowerRows, transpose(fromMl(refLower)), { atol: tolLower, rtol: 0 });
      expectMatrixClose(upperRows, transpose(fromMl(refUpper)), { atol: tolUpper, rtol: 0 });
      expect(backwardError(lMl, toMl(transpose(lowerRows)), bMl)).toBeLessThan(4 * n * Number.EPSILON);
      expect(backwardError(ltMl, toMl(transpose(upperRows)), bMl)).toBeLessThan(4 * n * Number.EPSILON);
    });
  });
});

it('the blocked and plain substitutions agree to rounding on a 203-wide factor floored at 1e-8 (scaled by κ·ε)', () => {
  const n = 203, L = metricFactor(n, 5, 1e-8), y = reluFeatures(400, n, 6, 2, 2);
  const fast = { lower: solveLowerRows(L, y), upper: solveUpperTRows(L, y) };
  setWasmKernels(false);
  try {
    var plain = { lower: solveLowerRows(L, y), upper: solveUpperTRows(L, y) };
  } finally {
    setWasmKernels(true);
  }
  const tol = (x: Matrix): number => 64 * n * Number.EPSILON * 1e4 * maxAbs(x);
  expectMatrixClose(fast.lower, plain.lower, { atol: tol(plain.lower), rtol: 0 });
  expectMatrixClose(fast.upper, plain.upper, { atol: tol(plain.upper), rtol: 0 });
});

it('solves refuse a right-hand side of the wrong height, naming the shapes', () => {
  const L = metricFactor(10, 1, 1e-2);
  expect(() => solveLower(L, randomMatrix(9, 3, 2))).toThrow(/L is 10×10 but the right-hand sides have 9 rows/);
  expect(() => solveUpperTRows(L, randomMatrix(3, 9, 2))).toThrow(/L is 10×10 but the right-hand sides have 9 columns/);
});
