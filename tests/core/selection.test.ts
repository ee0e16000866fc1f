/** λ selection: closed-form leave-one-out against brute-force refits, GCV, the metric, and the no-harm candidates. */
import { Matrix as MlMatrix, solve as mlSolve } from 'ml-matrix';
import {
  applyHead,
  computeSourceStatistics,
  LvaAccumulator,
  lvaUpdate,
  matrix,
  sourceMetric,
  sub,
  takeRows,
  transpose,
  type Head,
  type Matrix,
} from '../../src/core/index.js';
import { appendOnes, matmul } from '../../src/core/matrix.js';
import { dualSystem, heldOutPerGroup, primalSystem } from '../../src/core/ridge-system.js';
import { cholesky } from '../../src/core/cholesky.js';
import { expectArrayClose, expectMatrixClose } from '../helpers/expect-close.js';
import { randomMatrix, reluFeatures } from '../helpers/random.js';

const toMl = (a: Matrix) => new MlMatrix(Array.from({ length: a.rows }, (_, i) => Array.from(a.data.subarray(i * a.cols, (i + 1) * a.cols))));

/** Refit without row i by an independent solver and return the squared error on row i. */
function bruteForceLoo(z: Matrix, q: Matrix, lambda: number, S: Matrix | undefined): Float64Array {
  const n = z.rows, d = z.cols;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const keep = Array.from({ length: n }, (_, k) => k).filter((k) => k !== i);
    const zk = takeRows(z, keep), qk = takeRows(q, keep);
    const A = toMl(matmul(transpose(zk), zk)).add((S ? toMl(S) : MlMatrix.eye(d)).mul(lambda));
    const delta = mlSolve(A, toMl(matmul(transpose(zk), qk)));
    const pred = toMl(takeRows(z, [i])).mmul(delta);
    let s = 0;
    for (let k = 0; k < q.cols; k++) s += (q.data[i * q.cols + k]! - pred.get(0, k)) ** 2;
    out[i] = s;
  }
  return out;
}

describe('closed-form leave-one-out', () => {
  const problems: [string, number, number][] = [
    ['dual (n < p)', 9, 20],
    ['primal (n > p)', 40, 7],
  ];
  it.each(problems)('equals brute-force refits in the %s form, identity metric', (_name, n, d) => {
    const z = reluFeatures(n, d, n * 7 + d, 1, 1);
    const q = randomMatrix(n, 2, 3);
    for (const lambda of [1e-3, 0.5, 20]) {
      const sys = n <= d ? dualSystem(z, q, undefined, undefined) : primalSystem({ kind: 'rows', z, q }, undefined, undefined);
      expectArrayClose(sys.rowLoo(lambda)!, bruteForceLoo(z, q, lambda, undefined), { atol: 1e-9, rtol: 1e-7 });
    }
  });

  it.each(problems)('equals brute-force refits in the %s form, source-feature metric', (_name, n, d) => {
    const z = randomMatrix(n, d, 40 + n);
    const q = randomMatrix(n, 1, 41);
    const S = sourceMetric(computeSourceStatistics(randomMatrix(200, d, 42)), false, 1e-3);
    const L = cholesky(S);
    const sys = n <= d ? dualSystem(z, q, L, undefined) : primalSystem({ kind: 'rows', z, q }, L, undefined);
    for (const lambda of [1e-2, 1, 30]) {
      expectArrayClose(sys.rowLoo(lambda)!, bruteForceLoo(z, q, lambda, S), { atol: 1e-9, rtol: 1e-7 });
    }
  });

  it.each([
    ['dual (n < p), 3 outputs', 11, 20, 3],
    ['primal (n > p), 3 outputs', 41, 7, 3],
    ['primal (n > p), 1 output', 18, 5, 1],
  ])('rowLooGrid (every λ in one pass, rows in blocks of 4) equals brute-force refits for each λ: %s', (_name, n, d, m) => {
    const z = reluFeatures(n, d, n * 11 + d, 1, 1);
    const q = randomMatrix(n, m, 9 + n);
    const sys = n <= d ? dualSystem(z, q, undefined, undefined) : primalSystem({ kind: 'rows', z, q }, undefined, undefined);
    const lambdas = [1e-3, 0.05, 0.5, 4, 20];
    const grid = sys.rowLooGrid(lambdas)!;
    expect(grid).toHaveLength(lambdas.length);
    lambdas.forEach((lambda, g) => expectArrayClose(grid[g]!, bruteForceLoo(z, q, lambda, undefined), { atol: 1e-9, rtol: 1e-7 }));
  });

  it('primal and dual forms agree on Δ, degrees of freedom, LOO and GCV', () => {
    const z = randomMatrix(12, 12, 50);
    const q = randomMatrix(12, 3, 51);
    const S = sourceMetric(computeSourceStatistics(randomMatrix(100, 12, 52)), false, 1e-3);
    for (const L of [undefined, cholesky(S)]) {
      const dual = dualSystem(z, q, L, undefined);
      const primal = primalSystem({ kind: 'rows', z, q }, L, undefined);
      for (const lambda of [1e-4, 0.3, 7]) {
        expectMatrixClose(dual.delta(lambda), primal.delta(lambda), { atol: 1e-10, rtol: 1e-8 });
        expect(dual.degreesOfFreedom(lambda)).toBeCloseTo(primal.degreesOfFreedom(lambda), 10);
        expectArrayClose(dual.rowLoo(lambda)!, primal.rowLoo(lambda)!, { atol: 1e-10, rtol: 1e-8 });
        expect(dual.gcv(lambda)).toBeCloseTo(primal.gcv(lambda), 8);
      }
    }
  });

  it.each([
    ['dual (n < p)', 9, 20, 3, false],
    ['primal (n > p)', 40, 7, 2, false],
    ['dual (n < p), source metric', 12, 25, 4, true],
    ['primal (n > p), source metric', 45, 9, 3, true],
    ['primal, large enough for the SIMD kernel', 150, 30, 20, true],
  ] as const)('heldOutErrors equals an independent ridge solve scored on the held-out rows: %s', (_name, n, d, m, withMetric) => {
    const z = reluFeatures(n, d, n * 13 + d, 1, 1), q = randomMatrix(n, m, 70 + n);
    const zt = reluFeatures(17, d, 900 + d, 1, 1), qt = randomMatrix(17, m, 71 + n);
    const S = withMetric ? sourceMetric(computeSourceStatistics(randomMatrix(300, d, 72)), false, 1e-3) : undefined;
    const L = S && cholesky(S);
    const sys = n <= d ? dualSystem(z, q, L, undefined) : primalSystem({ kind: 'rows', z, q }, L, undefined);
    const lambdas = [1e-3, 0.2, 3, 50];
    const got = sys.heldOutErrors(zt, qt, lambdas);
    lambdas.forEach((lambda, g) => {
      // (ZᵀZ + λS)·Δ = ZᵀQ by ml-matrix, then ‖q_i − z_i·Δ‖² of each held-out row
      const A = toMl(matmul(transpose(z), z)).add((S ? toMl(S) : MlMatrix.eye(d)).mul(lambda));
      const delta = mlSolve(A, toMl(matmul(transpose(z), q)));
      const pred = toMl(zt).mmul(delta);
      const want = Float64Array.from({ length: zt.rows }, (_, i) => Array.from({ length: m }, (_, k) => (qt.data[i * m + k]! - pred.get(i, k)) ** 2).reduce((a, b) => a + b, 0));
      expectArrayClose(got[g]!, want, { atol: 1e-9, rtol: 1e-7 });
    });
  });

  it.each([
    ['dual, 2 groups', 9, 20, 3, 2, 200, false, true],
    ['primal, 3 groups, source metric', 40, 12, 6, 3, 200, true, true],
    ['primal, few held-out rows', 40, 12, 6, 3, 17, true, false],
    ['primal, 1 row per group', 40, 7, 2, 17, 17, false, false],
    ['primal, 60 features, 30 outputs, 4 groups, source metric', 160, 60, 30, 4, 400, true, true],
  ] as const)('heldOutErrors with groups equals the per-group sums of an independent ridge solve: %s', (_name, n, d, m, count, nt, withMetric, perGroup) => {
    // which of the two ways the sizes take (so both are checked)
    expect(heldOutPerGroup(nt, n <= d ? n : d, m, count, 5)).toBe(perGroup);
    const z = reluFeatures(n, d, n * 17 + d, 1, 1), q = randomMatrix(n, m, 80 + n);
    const zt = reluFeatures(nt, d, 910 + d, 1, 1), qt = randomMatrix(nt, m, 81 + n);
    const ids = Int32Array.from({ length: nt }, (_, i) => (count === nt ? i : (i * 7) % count));
    const S = withMetric ? sourceMetric(computeSourceStatistics(randomMatrix(300, d, 82)), false, 1e-3) : undefined;
    const sys = n <= d ? dualSystem(z, q, S && cholesky(S), undefined) : primalSystem({ kind: 'rows', z, q }, S && cholesky(S), undefined);
    const lambdas = [1e-4, 0.1, 2, 40, 900];
    const got = sys.heldOutErrors(zt, qt, lambdas, { ids, count });
    lambdas.forEach((lambda, g) => {
      const A = toMl(matmul(transpose(z), z)).add((S ? toMl(S) : MlMatrix.eye(d)).mul(lambda));
      const pred = toMl(zt).mmul(mlSolve(A, toMl(matmul(transpose(z), q))));
      const want = new Float64Array(count);
      for (let i = 0; i < nt; i++) for (let k = 0; k < m; k++) want[ids[i]!] += (qt.data[i * m + k]! - pred.get(i, k)) ** 2;
      expect(got[g]).toHaveLength(count);
      expectArrayClose(got[g]!, want, { atol: 1e-9, rtol: 1e-7 });
    });
  });

  it('GCV from statistics alone equals GCV with rows', () => {
    const z = randomMatrix(60, 9, 60);
    const q = randomMatrix(60, 2, 61);
    const withRows = primalSystem({ kind: 'rows', z, q }, undefined, undefined);
    const g = matmul(transpose(z), z);
    const stats = primalSystem(
      { kind: 'statistics', stats: { gram: g, cross: matmul(transpose(z), q), residualSq: withRows.residualSq, rows: 60 } },
      undefined,
      undefined,
    );
    for (const lambda of [1e-3, 1, 100]) {
      expect(stats.gcv(lambda)).toBeCloseTo(withRows.gcv(lambda), 9);
      expectArrayClose(stats.fitResidualSq(lambda), withRows.fitResidualSq(lambda), { atol: 1e-9, rtol: 1e-8 });
    }
  });
});

describe('source-feature metric', () => {
  it('solves the normal equations (ZᵀZ + λS)·ΔW = ZᵀQ of the metric-penalised problem', () => {
    const z = randomMatrix(15, 10, 70);
    const head: Head = { weights: randomMatrix(10, 2, 71), bias: Float64Array.of(0.1, -0.2) };
    const y = randomMatrix(15, 2, 72);
    const source = computeSourceStatistics(reluFeatures(300, 10, 73, 2, 1));
    const S = sourceMetric(source, true, 1e-3);
    const r = lvaUpdate(z, y, head, { regularization: 0.4, source });
    if (r.kind !== 'updated') throw new Error(r.kind);
    expect(r.diagnostics.metric).toBe('source');
    const za = appendOnes(z);
    const dW = matrix(11, 2, [...r.delta.weights.data, ...r.delta.bias!]);
    const lhs = toMl(matmul(transpose(za), za)).add(toMl(S).mul(0.4)).mmul(toMl(dW));
    const rhs = toMl(matmul(transpose(za), sub(y, applyHead(z, head))));
    expectMatrixClose(matrix(11, 2, lhs.to1DArray()), matrix(11, 2, rhs.to1DArray()), { atol: 1e-9, rtol: 1e-8 });
  });

  it('leaves predictions on source inputs closer to the pretrained head than the identity metric does at the same fit', () => {
    const src = randomMatrix(400, 8, 80);
    const source = computeSourceStatistics(src);
    const z = randomMatrix(6, 8, 81);
    const head: Head = { weights: randomMatrix(8, 1, 82) };
    const y = randomMatrix(6, 1, 83, 3);
    const change = (h: Head) => {
      const d = sub(applyHead(src, h), applyHead(src, head));
      return d.data.reduce((s, v) => s + v * v, 0);
    };
    // Compare at equal degrees of freedom (equal fit flexibility): choose λ so both fit the rows equally well.
    const id = lvaUpdate(z, y, head, { regularization: 1 });
    const sm = lvaUpdate(z, y, head, { regularization: 1, source });
    if (id.kind !== 'updated' || sm.kind !== 'updated') throw new Error('expected updates');
    const idFit = id.diagnostics.residualAfter[0]!, smFit = sm.diagnostics.residualAfter[0]!;
    // Normalise: change on source per unit of fit gained.
    const before = id.diagnostics.residualBefore[0]!;
    expect(change(sm.head) / (before - smFit)).toBeLessThan(change(id.head) / (before - idFit));
  });
});

describe("regularization: 'auto'", () => {
  it('on a residue of pure noise, the paired-gain rule declines and the default barely moves (no held-out harm)', () => {
    const z = randomMatrix(30, 20, 90);
    const head: Head = { weights: randomMatrix(20, 1, 91) };
    const noisy = (zz: typeof z, seed: number) => {
      const y = applyHead(zz, head), e = randomMatrix(zz.rows, 1, seed, 0.1);
      return matrix(zz.rows, 1, y.data.map((v, i) => v + e.data[i]!));
    };
    const y = noisy(z, 92);
    const strict = lvaUpdate(z, y, head, { selection: 'paired-gain', ensemble: { rounds: 0, fraction: 0.8 } });
    expect(strict.kind).toBe('declined');
    if (strict.kind === 'declined') expect(strict.reason).toBe('no-adaptation-wins');
    const r = lvaUpdate(z, y, head);
    const zTest = randomMatrix(2000, 20, 93), yTest = noisy(zTest, 94);
    const err = (h: Head) => sub(applyHead(zTest, h), yTest).data.reduce((s, v) => s + v * v, 0);
    const adapted = r.kind === 'updated' ? r.head : head;
    expect(err(adapted)).toBeLessThan(1.05 * err(head));
  });

  it('adapts, and reduces held-out error, when the target has a real linear shift', () => {
    const d = 16;
    const head: Head = { weights: randomMatrix(d, 1, 93) };
    const shift = randomMatrix(d, 1, 94, 0.5);
    const truth: Head = { weights: matrix(d, 1, head.weights.data.map((v, i) => v + shift.data[i]!)) };
    const make = (n: number, seed: number) => {
      const z = randomMatrix(n, d, seed);
      const noise = randomMatrix(n, 1, seed + 1, 0.05);
      return { z, y: matrix(n, 1, applyHead(z, truth).data.map((v, i) => v + noise.data[i]!)) };
    };
    const fit = make(24, 95), test = make(500, 97);
    const r = lvaUpdate(fit.z, fit.y, head);
    expect(r.kind).toBe('updated');
    const err = (h: Head) => sub(applyHead(test.z, h), test.y).data.reduce((s, v) => s + v * v, 0);
    if (r.kind === 'updated') {
      expect(err(r.head)).toBeLessThan(0.5 * err(head));
      expect(r.diagnostics.regularization.selection!.estimatedGain).toBeGreaterThan(0);
    }
  });

  it('refuses with too-few-rows below 3 rows, naming the count', () => {
    const r = lvaUpdate(randomMatrix(2, 5, 1), randomMatrix(2, 1, 2), { weights: randomMatrix(5, 1, 3) });
    expect(r.kind).toBe('refused');
    if (r.kind === 'refused') {
      expect(r.reason).toBe('too-few-rows');
      expect(r.message).toMatch(/received 2/);
    }
  });

  it('declines with residue-below-tolerance when the head already fits the targets', () => {
    const z = randomMatrix(10, 4, 4);
    const head: Head = { weights: randomMatrix(4, 2, 5), bias: Float64Array.of(1, 2) };
    const r = lvaUpdate(z, applyHead(z, head), head);
    expect(r.kind).toBe('declined');
    if (r.kind === 'declined') expect(r.reason).toBe('residue-below-tolerance');
  });

  it("with metric: 'best', considers both metrics and reports the one chosen", () => {
    const z = randomMatrix(20, 6, 6);
    const head: Head = { weights: randomMatrix(6, 1, 7) };
    const y = randomMatrix(20, 1, 8, 2);
    const r = lvaUpdate(z, y, head, { source: computeSourceStatistics(randomMatrix(50, 6, 9)), metric: 'best' });
    expect(r.diagnostics.regularization.selection?.candidates).toBe(2 * 37 + 1);
    expect(['identity', 'source']).toContain(r.diagnostics.metric);
  });
});

describe('groups: cross-validation over whole groups of rows', () => {
  /** Rows in groups of `size`: each group is one random base row plus small jitter, with one shared noise draw. */
  function grouped(groupsCount: number, size: number, d: number, seed: number, truth: Head, noiseSd = 0.6) {
    const base = randomMatrix(groupsCount, d, seed), jitter = randomMatrix(groupsCount * size, d, seed + 1, 0.05);
    const noise = randomMatrix(groupsCount, 1, seed + 2, noiseSd);
    const z = matrix(groupsCount * size, d, jitter.data.map((v, i) => v + base.data[Math.floor(i / (size * d)) * d + (i % d)]!));
    const clean = applyHead(z, truth);
    const y = matrix(z.rows, 1, clean.data.map((v, i) => v + noise.data[Math.floor(i / size)]!));
    const ids = Array.from({ length: z.rows }, (_, i) => Math.floor(i / size));
    return { z, y, ids };
  }

  /** Independent leave-one-group-out (ml-matrix solves) for one absolute λ: mean over groups of the group's squared error. */
  function bruteForceLogo(z: Matrix, q: Matrix, ids: number[], lambda: number): number {
    const G = Math.max(...ids) + 1;
    let total = 0;
    for (let g = 0; g < G; g++) {
      const tr = ids.flatMap((v, i) => (v === g ? [] : [i])), te = ids.flatMap((v, i) => (v === g ? [i] : []));
      const zk = takeRows(z, tr), qk = takeRows(q, tr);
      const A = toMl(matmul(transpose(zk), zk)).add(MlMatrix.eye(z.cols).mul(lambda));
      const delta = mlSolve(A, toMl(matmul(transpose(zk), qk)));
      const pred = toMl(takeRows(z, te)).mmul(delta);
      for (let r = 0; r < te.length; r++) for (let k = 0; k < q.cols; k++) total += (q.data[te[r]! * q.cols + k]! - pred.get(r, k)) ** 2;
    }
    return total / G;
  }

  it.each([
    ['primal folds', 5, 8, 6, 1e-8],
    ['dual folds', 4, 5, 30, 1e-6],
  ])('with ≤ 5 groups it is exact leave-one-group-out (%s): the chosen λ and its score match brute-force refits', (_name, G, size, d, smallest) => {
    const truth: Head = { weights: randomMatrix(d, 1, 70) };
    const head: Head = { weights: randomMatrix(d, 1, 71, 0.3) };
    const { z, y, ids } = grouped(G, size, d, 72, truth);
    const r = lvaUpdate(z, y, head, { groups: ids, fitBias: false, maxDegreesOfFreedom: 1 });
    const sel = r.diagnostics.regularization.selection!;
    expect(sel.validation).toEqual({ kind: 'grouped-k-fold', groups: G, folds: G });
    const q = sub(y, applyHead(z, head));
    // The grid in absolute units: relative values × the mean eigenvalue of ZᵀZ (trace / min(n, p)).
    let trace = 0;
    for (const v of z.data) trace += v * v;
    const scale = trace / Math.min(z.rows, d);
    // Very small λ on the dual folds (fewer rows than features) is an ill-posed solve for ml-matrix: compare from 1e-6.
    const grid = Array.from({ length: 37 }, (_, i) => 10 ** (-8 + i / 3)).filter((g) => g >= smallest * 0.999);
    const scores = grid.map((g) => g * scale).map((lambda) => ({ lambda, score: bruteForceLogo(z, q, ids, lambda) }));
    let keep = 0;
    for (const v of q.data) keep += v * v;
    const best = scores.reduce((a, c) => (c.score < a.score ? c : a), { lambda: Infinity, score: keep / G });
    expect(r.diagnostics.regularization.lambda / best.lambda).toBeCloseTo(1, 10);
    expect(sel.chosenScore).toBeCloseTo(best.score, 8);
    expect(sel.noAdaptationScore).toBeCloseTo(keep / G, 10);
  });

  it('rows copied within a group fool leave-one-row-out but not the grouped choice, which predicts new groups better', () => {
    // 16 groups of 12 near-copies, one noise draw per group: a fit can memorise each group's noise.
    const d = 12;
    const truth: Head = { weights: randomMatrix(d, 1, 280, 0.3) };
    const head: Head = { weights: randomMatrix(d, 1, 281, 0.2) };
    const fit = grouped(16, 12, d, 282, truth, 1), test = grouped(400, 1, d, 283, truth, 1);
    const rowLoo = lvaUpdate(fit.z, fit.y, head, { fitBias: false });
    const byGroup = lvaUpdate(fit.z, fit.y, head, { fitBias: false, groups: fit.ids });
    const err = (h: Head) => sub(applyHead(test.z, h), test.y).data.reduce((s, v) => s + v * v, 0) / test.z.rows;
    const lambdaOf = (x: typeof rowLoo) => x.diagnostics.regularization.lambda;
    expect(lambdaOf(byGroup)).toBeGreaterThan(10 * lambdaOf(rowLoo));
    if (rowLoo.kind !== 'updated' || byGroup.kind !== 'updated') throw new Error(`${rowLoo.kind} / ${byGroup.kind}`);
    expect(err(byGroup.head)).toBeLessThan(0.8 * err(rowLoo.head));
    expect(err(byGroup.head)).toBeLessThan(0.8 * err(head)); // leave-one-row-out barely beats not adapting
    expect(rowLoo.diagnostics.regularization.selection?.validation).toBeUndefined();
    expect(byGroup.diagnostics.ensemble).toBeUndefined(); // the 'auto' ensemble is off with groups
  });

  it('an explicit ensemble subsamples whole groups', () => {
    const d = 40;
    const { z, y, ids } = grouped(10, 4, d, 90, { weights: randomMatrix(d, 1, 91) });
    const r = lvaUpdate(z, y, { weights: randomMatrix(d, 1, 92, 0.1) }, { fitBias: false, groups: ids, ensemble: { rounds: 5, fraction: 0.8 } });
    expect(r.diagnostics.ensemble).toMatchObject({ rounds: 5, fraction: 0.8 });
    expect(r.diagnostics.form).toBe('dual');
  });

  /** Independent K-fold over groups (ml-matrix refits): fold of group g = g mod 5 (the accumulator's dealing for ids 0, 1, 2, …). */
  function bruteForceFolds(z: Matrix, q: Matrix, ids: number[], lambda: number): number[] {
    return [0, 1, 2, 3, 4].map((f) => {
      const tr = ids.flatMap((v, i) => (v % 5 === f ? [] : [i])), te = ids.flatMap((v, i) => (v % 5 === f ? [i] : []));
      const zk = takeRows(z, tr), qk = takeRows(q, tr);
      const A = toMl(matmul(transpose(zk), zk)).add(MlMatrix.eye(z.cols).mul(lambda));
      const pred = toMl(takeRows(z, te)).mmul(mlSolve(A, toMl(matmul(transpose(zk), qk))));
      let e = 0;
      for (let r = 0; r < te.length; r++) for (let k = 0; k < q.cols; k++) e += (q.data[te[r]! * q.cols + k]! - pred.get(r, k)) ** 2;
      return e;
    });
  }

  it('the streaming accumulator with groups cross-validates over 5 folds of groups from statistics alone, as brute-force refits do', () => {
    const d = 8, G = 20;
    const truth: Head = { weights: randomMatrix(d, 2, 300) };
    const head: Head = { weights: randomMatrix(d, 2, 301, 0.3) };
    const { z, ids } = grouped(G, 6, d, 302, { weights: randomMatrix(d, 1, 303) });
    const y = matrix(z.rows, 2, applyHead(z, truth).data.map((v, i) => v + 0.5 * Math.sin(7 * i)));
    const acc = new LvaAccumulator(head, { fitBias: false });
    for (let r = 0; r < z.rows; r += 25) {
      const end = Math.min(z.rows, r + 25);
      acc.add({ rows: end - r, cols: d, data: z.data.subarray(r * d, end * d) }, { rows: end - r, cols: 2, data: y.data.subarray(r * 2, end * 2) }, ids.slice(r, end));
    }
    expect(acc.groups).toBe(G);
    const r = acc.solve();
    const sel = r.diagnostics.regularization.selection!;
    expect(sel.validation).toEqual({ kind: 'grouped-k-fold', groups: G, folds: 5 });
    const q = sub(y, applyHead(z, head));
    let trace = 0;
    for (const v of z.data) trace += v * v;
    const scale = trace / d;
    const grid = Array.from({ length: 37 }, (_, i) => 10 ** (-8 + i / 3) * scale);
    const scores = grid.map((lambda) => ({ lambda, score: bruteForceFolds(z, q, ids, lambda).reduce((a, b) => a + b, 0) / 5 }));
    const best = scores.reduce((a, c) => (c.score < a.score ? c : a));
    expect(r.diagnostics.regularization.lambda / best.lambda).toBeCloseTo(1, 10);
    expect(sel.chosenScore).toBeCloseTo(best.score, 6);
    // Two accumulators over disjoint groups (10 each, so each deals its groups to folds as one accumulator would) merge to the same solution.
    const a1 = new LvaAccumulator(head, { fitBias: false }), a2 = new LvaAccumulator(head, { fitBias: false });
    const split = 10 * 6;
    a1.add({ rows: split, cols: d, data: z.data.subarray(0, split * d) }, { rows: split, cols: 2, data: y.data.subarray(0, split * 2) }, ids.slice(0, split));
    a2.add({ rows: z.rows - split, cols: d, data: z.data.subarray(split * d) }, { rows: z.rows - split, cols: 2, data: y.data.subarray(split * 2) }, ids.slice(split));
    const merged = a1.merge(a2).solve();
    expect(merged.diagnostics.regularization.lambda / r.diagnostics.regularization.lambda).toBeCloseTo(1, 12);
    if (merged.kind !== 'updated' || r.kind !== 'updated') throw new Error(`${merged.kind} / ${r.kind}`);
    expectMatrixClose(merged.head.weights, r.head.weights, { atol: 1e-10, rtol: 1e-9 });
  });

  it('checks groups: one integer per row, at least 3 groups for auto, rows only', () => {
    const z = randomMatrix(12, 3, 1), y = randomMatrix(12, 1, 2), head: Head = { weights: randomMatrix(3, 1, 3) };
    expect(() => lvaUpdate(z, y, head, { groups: [0, 1] })).toThrow(/groups has 2 entries but there are 12 rows; pass one group id per row/);
    expect(() => lvaUpdate(z, y, head, { groups: Array.from({ length: 12 }, (_, i) => i / 2) })).toThrow(/groups\[1\] is 0.5; group ids must be integers/);
    expect(() => lvaUpdate(z, y, head, { groups: 'abc' as never })).toThrow(/groups must be an array with one integer group id per row/);
    const two = lvaUpdate(z, y, head, { groups: Array.from({ length: 12 }, (_, i) => i % 2) });
    expect(two.kind === 'refused' && two.message).toMatch(/needs at least 3 groups \(samples\) to cross-validate λ over groups; received 2 \(12 rows\)/);
    // Every row its own group is plain leave-one-out, bit for bit.
    expect(lvaUpdate(z, y, head, { groups: Array.from({ length: 12 }, (_, i) => 100 + i) })).toEqual(lvaUpdate(z, y, head));
    expect(() => new LvaAccumulator(head).add(z, y).solve({ groups: Array.from({ length: 12 }, (_, i) => i % 4) })).toThrow(
      /LvaAccumulator.solve: pass groups to add\(\) with each batch/,
    );
    const half = (from: number) => ({ rows: 6, cols: 3, data: z.data.subarray(from * 3, (from + 6) * 3) });
    const halfY = (from: number) => ({ rows: 6, cols: 1, data: y.data.subarray(from, from + 6) });
    expect(() => new LvaAccumulator(head).add(half(0), halfY(0), [0, 0, 1, 1, 2, 2]).add(half(6), halfY(6))).toThrow(/pass groups with every batch or with none/);
    expect(() => new LvaAccumulator(head).add(half(0), halfY(0), [0, 0.5, 1, 1, 2, 2])).toThrow(/groups\[1\] is 0.5/);
    // A fixed λ needs no validation: groups change nothing.
    expect(lvaUpdate(z, y, head, { groups: Array.from({ length: 12 }, (_, i) => i % 2), regularization: 0.5 })).toEqual(lvaUpdate(z, y, head, { regularization: 0.5 }));
  });
});
