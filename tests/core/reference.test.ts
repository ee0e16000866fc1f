/**
 * The solver against independent references: ml-matrix's SVD pseudo-inverse and linear solves, and NumPy float64
 * solutions of PyTorch-exported heads (fixtures/onnx/make_fixtures.py).
 */
import fc from 'fast-check';
import { Matrix as MlMatrix, pseudoInverse, SingularValueDecomposition, solve as mlSolve } from 'ml-matrix';
import { applyHead, lvaUpdate, matrix, sub, transpose, type Head, type LvaResult, type Matrix } from '../../src/core/index.js';
import { appendOnes, matmul } from '../../src/core/matrix.js';
import { expectMatrixClose } from '../helpers/expect-close.js';
import { readJson, readNpy } from '../helpers/fixtures.js';
import { randomMatrix, reluFeatures } from '../helpers/random.js';

const toMl = (a: Matrix) => new MlMatrix(Array.from({ length: a.rows }, (_, i) => Array.from(a.data.subarray(i * a.cols, (i + 1) * a.cols))));
const fromMl = (a: MlMatrix): Matrix => matrix(a.rows, a.columns, a.to1DArray());

function updated(r: LvaResult): Extract<LvaResult, { kind: 'updated' | 'updated-with-cutoff' }> {
  if (r.kind !== 'updated' && r.kind !== 'updated-with-cutoff') throw new Error(`expected an update, got ${r.kind}`);
  return r;
}

/** ΔW = pinv(Z)·Q by ml-matrix's SVD. */
function pinvDelta(z: Matrix, q: Matrix): Matrix {
  return fromMl(pseudoInverse(toMl(z)).mmul(toMl(q)));
}

describe('raw pseudo-inverse semantics (regularization: "none")', () => {
  const cases: [string, () => Matrix][] = [
    ['N < d', () => randomMatrix(12, 40, 1)],
    ['N = d', () => randomMatrix(24, 24, 2)],
    ['N > d', () => randomMatrix(80, 16, 3)],
    ['N < d, ReLU-like with dead and duplicated units', () => reluFeatures(20, 40, 4, 5, 5)],
    ['N > d, ReLU-like with dead and duplicated units', () => reluFeatures(100, 30, 5, 4, 6)],
  ];
  it.each(cases)('matches the ml-matrix SVD pseudo-inverse update: %s', (_name, make) => {
    const z = make();
    const m = 3;
    const head: Head = { weights: randomMatrix(z.cols, m, 7) };
    const y = randomMatrix(z.rows, m, 8);
    const r = updated(lvaUpdate(z, y, head, { regularization: 'none' }));
    const expected = pinvDelta(z, sub(y, applyHead(z, head)));
    const scale = Math.max(...expected.data.map(Math.abs));
    expectMatrixClose(r.delta.weights, expected, { atol: 1e-9 * Math.max(1, scale), rtol: 1e-7 });
  });

  it('reports updated-with-cutoff and the numerical rank when features are rank-deficient', () => {
    const z = reluFeatures(50, 30, 9, 4, 6); // 20 independent columns
    const r = lvaUpdate(z, randomMatrix(50, 2, 10), { weights: randomMatrix(30, 2, 11) }, { regularization: 'none' });
    expect(r.kind).toBe('updated-with-cutoff');
    expect(r.diagnostics.rank).toBe(20);
    expect(r.diagnostics.flags).toContain('rank-deficient');
  });

  it('fits every target row exactly when the latents are linearly independent (rank = N ≤ d)', () => {
    const z = randomMatrix(10, 32, 12);
    const y = randomMatrix(10, 4, 13);
    const r = updated(lvaUpdate(z, y, { weights: randomMatrix(32, 4, 14), bias: new Float64Array(4).fill(0.3) }, { regularization: 'none' }));
    expect(r.diagnostics.exactFitCondition).toBe(true);
    expectMatrixClose(applyHead(z, r.head), y, { atol: 1e-10 });
    expect(Math.max(...r.diagnostics.residualAfter)).toBeLessThan(1e-10);
  });

  it('equals the ordinary least-squares refit when Z has full column rank (the pretrained W is forgotten)', () => {
    const z = randomMatrix(60, 8, 15);
    const y = randomMatrix(60, 2, 16);
    const a = updated(lvaUpdate(z, y, { weights: randomMatrix(8, 2, 17) }, { regularization: 'none' }));
    const b = updated(lvaUpdate(z, y, { weights: randomMatrix(8, 2, 18, 100) }, { regularization: 'none' }));
    const ols = fromMl(mlSolve(toMl(z), toMl(y), true));
    expectMatrixClose(a.head.weights, ols, { atol: 1e-10, rtol: 1e-9 });
    expectMatrixClose(b.head.weights, ols, { atol: 1e-10, rtol: 1e-9 });
  });

  it('property: residual orthogonality Zᵀ(Q − Z·ΔW) = 0 and ΔW in the row space of Z', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 14 }), fc.integer({ min: 1, max: 14 }), fc.integer({ min: 1, max: 3 }), fc.integer(), (n, d, m, seed) => {
        const z = randomMatrix(n, d, seed);
        const head: Head = { weights: randomMatrix(d, m, seed + 1) };
        const q = sub(randomMatrix(n, m, seed + 2), applyHead(z, head));
        const r = updated(lvaUpdate(z, randomMatrix(n, m, seed + 2), head, { regularization: 'none' }));
        const dW = r.delta.weights;
        const ortho = matmul(transpose(z), sub(q, matmul(z, dW)));
        // The solver works on ZᵀZ (or ZZᵀ), so ΔW carries an error of about ε·cond(Z)²·‖ΔW‖ and Zᵀ·Z·ΔW one of
        // ε·cond(Z)²·s_max²·‖ΔW‖: on a nearly singular draw (13×13, cond 3.8e4) that alone exceeds the flat tolerance.
        const sv = new SingularValueDecomposition(toMl(z)).diagonal, sMax = Math.max(...sv);
        const cond = sMax / Math.min(...sv.filter((s) => s > 1e-12 * sMax));
        const tol = 1e-9 * (1 + Math.max(...q.data.map(Math.abs))) * (1 + Math.max(...z.data.map(Math.abs))) ** 2 + 100 * Number.EPSILON * cond ** 2 * sMax ** 2 * Math.max(...dW.data.map(Math.abs));
        expectMatrixClose(ortho, matrix(d, m), { atol: tol });
        // Row space: (I − Z⁺Z)·ΔW = 0.
        const proj = fromMl(MlMatrix.eye(d).sub(pseudoInverse(toMl(z)).mmul(toMl(z))).mmul(toMl(dW)));
        expectMatrixClose(proj, matrix(d, m), { atol: 1e-8 * (1 + Math.max(...dW.data.map(Math.abs))) });
      }),
      // A fixed seed: every machine checks the same 60 cases (change it to explore others).
      { numRuns: 60, seed: 1402 },
    );
  });
});

describe('ridge toward the pretrained head (fixed λ)', () => {
  it('equals (ZᵀZ + λI)⁻¹ZᵀQ solved by ml-matrix, in both the primal and dual forms', () => {
    for (const [n, d] of [[10, 30], [50, 12]] as const) {
      const z = reluFeatures(n, d, 20 + n, 2, 2);
      const head: Head = { weights: randomMatrix(d, 2, 21) };
      const y = randomMatrix(n, 2, 22);
      const lambda = 0.7;
      const q = sub(y, applyHead(z, head));
      const A = toMl(matmul(transpose(z), z)).add(MlMatrix.eye(d).mul(lambda));
      const expected = fromMl(mlSolve(A, toMl(matmul(transpose(z), q))));
      for (const form of ['primal', 'dual'] as const) {
        const r = updated(lvaUpdate(z, y, head, { regularization: lambda, form }));
        expect(r.diagnostics.form).toBe(form);
        expectMatrixClose(r.delta.weights, expected, { atol: 1e-10, rtol: 1e-8 });
      }
    }
  });

  it('goes to the minimum-norm solution as λ → 0 and to no change as λ → ∞, with ‖ΔW_λ‖ decreasing in λ', () => {
    const z = randomMatrix(15, 25, 30);
    const head: Head = { weights: randomMatrix(25, 2, 31) };
    const y = randomMatrix(15, 2, 32);
    const pinv = updated(lvaUpdate(z, y, head, { regularization: 'none' })).delta.weights;
    const tiny = updated(lvaUpdate(z, y, head, { regularization: 1e-10 })).delta.weights;
    expectMatrixClose(tiny, pinv, { atol: 1e-7, rtol: 1e-6 });
    const norms = [1e-3, 1e-1, 1, 10, 1e3, 1e6, 1e12].map((l) => updated(lvaUpdate(z, y, head, { regularization: l })).diagnostics.deltaNorm);
    for (let i = 1; i < norms.length; i++) expect(norms[i]!).toBeLessThan(norms[i - 1]!);
    expect(norms.at(-1)!).toBeLessThan(1e-9);
  });

  it('penalises the bias change too, through the augmented ones column', () => {
    const z = randomMatrix(20, 6, 33);
    const head: Head = { weights: randomMatrix(6, 1, 34), bias: Float64Array.of(0.5) };
    const y = randomMatrix(20, 1, 35);
    const za = appendOnes(z);
    const q = sub(y, applyHead(z, head));
    const A = toMl(matmul(transpose(za), za)).add(MlMatrix.eye(7).mul(2));
    const expected = fromMl(mlSolve(A, toMl(matmul(transpose(za), q))));
    const r = updated(lvaUpdate(z, y, head, { regularization: 2 }));
    expectMatrixClose(matrix(7, 1, [...r.delta.weights.data, ...r.delta.bias!]), expected, { atol: 1e-10 });
  });

  it('keeps the bias fixed with fitBias: false', () => {
    const z = randomMatrix(20, 6, 36);
    const head: Head = { weights: randomMatrix(6, 1, 37), bias: Float64Array.of(0.5) };
    const r = updated(lvaUpdate(z, randomMatrix(20, 1, 38), head, { regularization: 0.1, fitBias: false }));
    expect(Array.from(r.head.bias!)).toEqual([0.5]);
    expect(r.diagnostics.width).toBe(6);
  });
});

describe('NumPy float64 references of PyTorch-exported heads (fixtures/onnx)', () => {
  const models = ['mlp_gemm', 'mlp_matmul_add', 'cnn_conv_head', 'classifier_softmax', 'flatten_head'];
  it.each(models)('%s: raw pinv and λ = 1 ridge updates equal NumPy', (name) => {
    const ref = readJson(`onnx/${name}.ref.json`);
    const [n, d] = ref.Z_shape as [number, number];
    const z = matrix(n, d, (ref.Z as number[][]).flat());
    const m = (ref.W_shape as number[])[1]!;
    const head: Head = { weights: matrix(d, m, (ref.W as number[][]).flat()), bias: ref.b ? Float64Array.from(ref.b as number[]) : undefined };
    // Labels as regression rows: one per sample for dense heads, one per output pixel (C_out = 1) for the conv head.
    const yMat = matrix(n, m, readNpy(`onnx/${name}.y.npy`).data);
    const pinv = updated(lvaUpdate(z, yMat, head, { regularization: 'none' }));
    const ridge = updated(lvaUpdate(z, yMat, head, { regularization: ref.ridge.lambda }));
    const flat = (w: unknown) => (w as number[][]).flat();
    expectMatrixClose(pinv.head.weights, matrix(d, m, flat(ref.exact_pinv.W)), { atol: 1e-8, rtol: 1e-7 });
    expectMatrixClose(ridge.head.weights, matrix(d, m, flat(ref.ridge.W)), { atol: 1e-9, rtol: 1e-8 });
    if (ref.b) expectMatrixClose(matrix(1, m, ridge.head.bias!), matrix(1, m, ref.ridge.b as number[]), { atol: 1e-9, rtol: 1e-8 });
  });
});
