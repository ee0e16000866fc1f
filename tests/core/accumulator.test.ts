/** Streaming: statistics-only solves equal one-shot solves on the concatenated rows, and merge by addition. */
import { LvaAccumulator, lvaUpdate, sliceRows, vstack, type Head, type LvaResult } from '../../src/core/index.js';
import { expectMatrixClose } from '../helpers/expect-close.js';
import { randomMatrix, reluFeatures } from '../helpers/random.js';

function head(r: LvaResult) {
  if (r.kind !== 'updated' && r.kind !== 'updated-with-cutoff') throw new Error(`expected an update, got ${r.kind}`);
  return r.head;
}

describe('LvaAccumulator', () => {
  const n = 300, d = 12, m = 2;
  const z = reluFeatures(n, d, 1, 1, 1);
  const y = randomMatrix(n, m, 2);
  const pre: Head = { weights: randomMatrix(d, m, 3), bias: Float64Array.of(0.2, -0.1) };

  it.each([['none' as const], [0.5], [50]])('solving from batches equals solving on all rows (regularization %p)', (reg) => {
    const acc = new LvaAccumulator(pre);
    for (let s = 0; s < n; s += 37) acc.add(sliceRows(z, s, Math.min(n, s + 37)), sliceRows(y, s, Math.min(n, s + 37)));
    const streamed = head(acc.solve({ regularization: reg }));
    const oneShot = head(lvaUpdate(z, y, pre, { regularization: reg }));
    expectMatrixClose(streamed.weights, oneShot.weights, { atol: 1e-9, rtol: 1e-8 });
    expectMatrixClose({ rows: 1, cols: m, data: streamed.bias! }, { rows: 1, cols: m, data: oneShot.bias! }, { atol: 1e-9, rtol: 1e-8 });
  });

  it("'auto' (GCV) from statistics chooses the same λ and head as GCV on the rows", () => {
    const acc = new LvaAccumulator(pre).add(z, y);
    const a = acc.solve();
    const b = lvaUpdate(z, y, pre, { selection: 'gcv' });
    expect(a.diagnostics.regularization.lambda).toBeCloseTo(b.diagnostics.regularization.lambda, 10);
    expectMatrixClose(head(a).weights, head(b).weights, { atol: 1e-9, rtol: 1e-7 });
  });

  it('merging accumulators of disjoint batches equals one accumulator over all rows', () => {
    const a = new LvaAccumulator(pre).add(sliceRows(z, 0, 100), sliceRows(y, 0, 100));
    const b = new LvaAccumulator(pre).add(sliceRows(z, 100, n), sliceRows(y, 100, n));
    const merged = head(a.merge(b).solve({ regularization: 1 }));
    const whole = head(new LvaAccumulator(pre).add(z, y).solve({ regularization: 1 }));
    expectMatrixClose(merged.weights, whole.weights, { atol: 1e-10, rtol: 1e-9 });
    expect(a.rows).toBe(n);
  });

  it('with forgetting γ, equals a one-shot solve on rows weighted by γ^age', () => {
    const gamma = 0.5;
    const acc = new LvaAccumulator(pre, { forgetting: gamma });
    acc.add(sliceRows(z, 0, 150), sliceRows(y, 0, 150)).add(sliceRows(z, 150, n), sliceRows(y, 150, n));
    // Weighting rows by √γ scales their squared error by γ; the residue is against the fixed anchor, so scale Z and Q alike.
    const w = Math.sqrt(gamma);
    const scaleRows = (mtx: typeof z, from: number, to: number, s: number) => {
      const part = sliceRows(mtx, from, to);
      return { ...part, data: part.data.map((v) => v * s) };
    };
    // Q = Y − Z·W − b: scaling Z, Y and the bias column together is what the accumulator does.
    const zOld = scaleRows(z, 0, 150, w), yOld = scaleRows(y, 0, 150, w);
    const biasCol = new Float64Array(n).map((_, i) => (i < 150 ? w : 1));
    const zs = vstack(zOld, sliceRows(z, 150, n));
    const ys = vstack(yOld, sliceRows(y, 150, n));
    // The bias column must carry the same weight; emulate with fitBias false and an explicit column.
    const zAug = { rows: n, cols: d + 1, data: new Float64Array(n * (d + 1)) };
    for (let i = 0; i < n; i++) {
      zAug.data.set(zs.data.subarray(i * d, (i + 1) * d), i * (d + 1));
      zAug.data[i * (d + 1) + d] = biasCol[i]!;
    }
    const preAug: Head = { weights: { rows: d + 1, cols: m, data: Float64Array.from([...pre.weights.data, ...pre.bias!]) } };
    const ref = head(lvaUpdate(zAug, ys, preAug, { regularization: 0.3 }));
    const got = head(acc.solve({ regularization: 0.3 }));
    expectMatrixClose(got.weights, { rows: d, cols: m, data: ref.weights.data.slice(0, d * m) }, { atol: 1e-9, rtol: 1e-8 });
  });

  it('keeps memory independent of the row count (only p² + p·m statistics)', () => {
    const acc = new LvaAccumulator(pre);
    const sizeBefore = JSON.stringify(acc).length;
    for (let i = 0; i < 20; i++) acc.add(z, y);
    expect(JSON.stringify(acc).length).toBeLessThan(sizeBefore * 2);
    expect(acc.rows).toBe(20 * n);
  });

  it('rejects batches of the wrong width and explains how to fix it', () => {
    const acc = new LvaAccumulator(pre);
    expect(() => acc.add(randomMatrix(5, d + 1, 9), randomMatrix(5, m, 9))).toThrow(/13 columns but the head's input width is 12/);
    expect(() => acc.solve()).toThrow(/no rows were added/);
    expect(() => acc.add(z, y).solve({ selection: 'loo' })).toThrow(/needs the rows/);
  });
});
