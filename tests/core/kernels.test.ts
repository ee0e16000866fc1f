/**
 * The WebAssembly (f64x2 SIMD) kernels against the JavaScript code they replace: every public routine that uses them
 * is run twice, with the kernels on and off (setWasmKernels), on shapes that exercise the SIMD tails (odd sizes),
 * zero rows, rank deficiency and a problem large enough for several row blocks. The committed module must be the
 * build of wasm/kernels.ts.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { eigh, gram, kernel, lvaUpdate, LvaAccumulator, matrix, multiplyABt, type Matrix } from '../../src/core/index.js';
import { setWasmKernels, wasmKernelsAvailable, withKernels } from '../../src/core/kernels.js';
import { expectArrayClose, expectMatrixClose } from '../helpers/expect-close.js';
import { randomMatrix, reluFeatures } from '../helpers/random.js';

/** Runs `f` with the kernels off, then on; returns both results. */
function both<T>(f: () => T): { js: T; wasm: T } {
  setWasmKernels(false);
  try {
    var js = f();
  } finally {
    setWasmKernels(true);
  }
  return { js, wasm: f() };
}

afterAll(() => setWasmKernels(true));

describe('WebAssembly kernels', () => {
  it('are available in Node 20 (otherwise every other test here would compare the fallback with itself)', () => {
    expect(wasmKernelsAvailable()).toBe(true);
  });

  it.each([17, 33, 64, 101])('eigh of a rank-deficient %i-wide Gram: same eigenvalues, and eigenvectors that diagonalise A, on both paths', (p) => {
    const z = reluFeatures(Math.round(p * 0.7), p, p, 1, 1); // fewer rows than columns: rank-deficient Gram
    const a = gram(z);
    const { js, wasm } = both(() => eigh(a));
    const top = js.values[0]!;
    expectArrayClose(wasm.values, js.values, { atol: 1e-12 * top, rtol: 0 });
    // Eigenvectors are unique only up to sign and within clusters: check A·v = λ·v and orthonormality instead.
    for (let j = 0; j < p; j += 3) {
      const v = wasm.vectorsT.data.subarray(j * p, (j + 1) * p);
      for (let i = 0; i < p; i++) {
        let s = 0;
        for (let k = 0; k < p; k++) s += a.data[i * p + k]! * v[k]!;
        expect(Math.abs(s - wasm.values[j]! * v[i]!)).toBeLessThan(1e-11 * top);
      }
      for (let l = 0; l < p; l += 5) {
        let s = 0;
        for (let k = 0; k < p; k++) s += v[k]! * wasm.vectorsT.data[l * p + k]!;
        expect(Math.abs(s - (j === l ? 1 : 0))).toBeLessThan(1e-12);
      }
    }
  });

  it.each([
    [9, 5],
    [1200, 37],
    [300, 64],
  ])('gram and kernel of %i×%i features agree to rounding', (n, d) => {
    const z = reluFeatures(n, d, n + d, 1, 1);
    const g = both(() => gram(z));
    expectMatrixClose(g.wasm, g.js, { atol: 1e-12 * n, rtol: 1e-13 });
    const small: Matrix = { rows: Math.min(n, 80), cols: d, data: z.data.subarray(0, Math.min(n, 80) * d) };
    const k = both(() => kernel(small));
    expectMatrixClose(k.wasm, k.js, { atol: 1e-12 * d, rtol: 1e-13 });
    for (let i = 0; i < k.wasm.rows; i++) for (let j = 0; j < i; j++) expect(k.wasm.data[i * k.wasm.rows + j]).toBe(k.wasm.data[j * k.wasm.rows + i]);
  });

  it('A·Bᵀ over several row blocks (2^20 values each) agrees to rounding', () => {
    const a = randomMatrix(9001, 121, 5), b = randomMatrix(9, 121, 6);
    const r = both(() => multiplyABt(a, b));
    expectMatrixClose(r.wasm, r.js, { atol: 1e-12, rtol: 1e-12 });
  });

  it.each([
    ['primal, grouped rows', 300, 40, 3],
    ['dual, leave-one-out', 30, 90, 2],
    ['primal, leave-one-out, one output', 250, 20, 1],
  ])('lvaUpdate (%s) gives the same λ and head to rounding', (_name, n, d, m) => {
    const z = reluFeatures(n as number, d as number, 7, 1, 1), y = randomMatrix(n as number, m as number, 8);
    const head = { weights: randomMatrix(d as number, m as number, 9, 0.1), bias: new Float64Array(m as number) };
    const options = _name.includes('grouped') ? { groups: Array.from({ length: n as number }, (_, i) => Math.floor(i / 10)) } : {};
    const r = both(() => lvaUpdate(z, y, head, options));
    expect(r.wasm.kind).toBe(r.js.kind);
    expect(r.wasm.diagnostics.regularization.lambda).toBeCloseTo(r.js.diagnostics.regularization.lambda, 10);
    if (r.wasm.kind === 'updated' && r.js.kind === 'updated') expectMatrixClose(r.wasm.head.weights, r.js.head.weights, { atol: 1e-10, rtol: 1e-8 });
  });

  it('the streaming accumulator agrees on both paths', () => {
    const z = reluFeatures(500, 30, 11, 1, 1), y = randomMatrix(500, 2, 12);
    const head = { weights: randomMatrix(30, 2, 13, 0.1) };
    const solve = () => {
      const acc = new LvaAccumulator(head);
      for (let r = 0; r < 500; r += 64) acc.add(matrix(Math.min(64, 500 - r), 30, z.data.subarray(r * 30, Math.min(500, r + 64) * 30)), matrix(Math.min(64, 500 - r), 2, y.data.subarray(r * 2, Math.min(500, r + 64) * 2)));
      return acc.solve();
    };
    const r = both(solve);
    if (r.wasm.kind !== 'updated' || r.js.kind !== 'updated') throw new Error(`${r.wasm.kind} / ${r.js.kind}`);
    expectMatrixClose(r.wasm.head.weights, r.js.head.weights, { atol: 1e-10, rtol: 1e-8 });
  });

  it('declines (so the caller falls back to JavaScript) when a call would need more than 2 GB of module memory', () => {
    let called = false;
    expect(withKernels(3 * 2 ** 30, () => (called = true))).toBeUndefined();
    expect(called).toBe(false);
    expect(withKernels(1024, (_k, heap) => heap.alloc(16))).toBeGreaterThan(0);
  });

  it('the committed module is the build of wasm/kernels.ts', () => {
    const root = join(__dirname, '..', '..');
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-wasm.mjs'), '--check'], { cwd: root, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/kernels-wasm\.ts matches wasm\/kernels\.ts/);
  });
});
