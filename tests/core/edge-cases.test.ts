/** Numerical edge cases: every outcome is a correct solution or a typed refusal, and never a non-finite head. */
import fc from 'fast-check';
import { applyHead, lvaUpdate, matrix, sub, transpose, type Head, type LvaOptions, type LvaResult } from '../../src/core/index.js';
import { appendOnes, matmul } from '../../src/core/matrix.js';
import { randomMatrix } from '../helpers/random.js';

const finiteHead = (r: LvaResult) => r.kind !== 'updated' && r.kind !== 'updated-with-cutoff' ? true : r.head.weights.data.every(Number.isFinite) && (r.head.bias ?? []).every(Number.isFinite);
const modes: LvaOptions[] = [{}, { regularization: 'none' }, { regularization: 1e-3 }, { selection: 'gcv' }];

describe('edge cases', () => {
  it.each(modes.map((m) => [JSON.stringify(m), m]))('all-zero features (a dead layer) with options %s: only the bias can move', (_n, options) => {
    const z = matrix(12, 6);
    const head: Head = { weights: randomMatrix(6, 2, 1), bias: Float64Array.of(0.5, -0.5) };
    const y = randomMatrix(12, 2, 2);
    const r = lvaUpdate(z, y, head, options);
    expect(finiteHead(r)).toBe(true);
    if (r.kind === 'updated' || r.kind === 'updated-with-cutoff') expect(Array.from(r.head.weights.data)).toEqual(Array.from(head.weights.data));
  });

  it('all-zero features without a bias: nothing can be learned, so nothing changes', () => {
    const r = lvaUpdate(matrix(10, 4), randomMatrix(10, 1, 3), { weights: randomMatrix(4, 1, 4) }, { regularization: 'none' });
    if (r.kind === 'updated' || r.kind === 'updated-with-cutoff') expect(r.diagnostics.deltaNorm).toBe(0);
    expect(r.diagnostics.rank).toBe(0);
  });

  it('a zero head on zero features reports finite relative numbers: no λ and no change relative to nothing is 0', () => {
    const zeroHead: Head = { weights: matrix(4, 2) };
    const y = randomMatrix(10, 2, 7);
    const none = lvaUpdate(matrix(10, 4), y, zeroHead, { regularization: 'none' });
    expect(none.diagnostics.regularization.relativeLambda).toBe(0);
    expect(none.diagnostics.relativeChange).toBe(0);
    // A positive λ on features whose mean eigenvalue is 0 has no finite relative size.
    const fixed = lvaUpdate(matrix(10, 4), y, zeroHead, { regularization: 1 });
    expect(fixed.diagnostics.regularization.relativeLambda).toBe(Infinity);
    expect(fixed.diagnostics.relativeChange).toBe(0);
  });

  it('duplicated and constant columns give the minimum-norm change (equal weight on each copy)', () => {
    const base = randomMatrix(20, 3, 5);
    const z = matrix(20, 5);
    for (let i = 0; i < 20; i++) z.data.set([base.data[i * 3]!, base.data[i * 3]!, base.data[i * 3 + 1]!, base.data[i * 3 + 2]!, 1], i * 5);
    const r = lvaUpdate(z, randomMatrix(20, 1, 6), { weights: matrix(5, 1) }, { regularization: 'none' });
    if (r.kind !== 'updated-with-cutoff') throw new Error(r.kind);
    expect(r.diagnostics.rank).toBe(4);
    expect(r.delta.weights.data[0]).toBeCloseTo(r.delta.weights.data[1]!, 12);
  });

  it('N = d exactly: the raw pseudo-inverse interpolates and is flagged; auto stays bounded', () => {
    const z = randomMatrix(16, 16, 7);
    const head: Head = { weights: randomMatrix(16, 1, 8) };
    const raw = lvaUpdate(z, randomMatrix(16, 1, 9), head, { regularization: 'none', fitBias: false });
    expect(raw.diagnostics.flags).toContain('interpolation-zone');
    expect(raw.diagnostics.exactFitCondition).toBe(true);
    const auto = lvaUpdate(z, randomMatrix(16, 1, 9), head);
    expect(auto.diagnostics.weightNorm).toBeLessThan(raw.diagnostics.weightNorm);
  });

  it.each([1e-30, 1e30])('features of norm ~%p: the solution scales exactly as it should (scale-invariant λ)', (s) => {
    const z = randomMatrix(10, 6, 10);
    const y = randomMatrix(10, 1, 11);
    const head: Head = { weights: matrix(6, 1) };
    const ref = lvaUpdate(z, y, head, { regularization: 'none' });
    const scaled = lvaUpdate({ ...z, data: z.data.map((v) => v * s) }, y, head, { regularization: 'none' });
    if (ref.kind === 'refused' || ref.kind === 'declined' || scaled.kind === 'refused' || scaled.kind === 'declined') throw new Error('expected updates');
    scaled.head.weights.data.forEach((v, i) => expect(v * s).toBeCloseTo(ref.head.weights.data[i]!, 8));
    const auto = lvaUpdate({ ...z, data: z.data.map((v) => v * s) }, y, head);
    expect(finiteHead(auto)).toBe(true);
  });

  it('targets already fitted exactly: zero change', () => {
    const z = randomMatrix(10, 5, 12);
    const head: Head = { weights: randomMatrix(5, 2, 13) };
    for (const options of modes) {
      const r = lvaUpdate(z, applyHead(z, head), head, options);
      expect(r.kind).toBe('declined');
    }
  });

  it('refuses a head that would overflow float32, keeping the old one', () => {
    const z = randomMatrix(4, 3, 14);
    const y = randomMatrix(4, 1, 15, 1e38);
    const r = lvaUpdate({ ...z, data: z.data.map((v) => v * 1e-3) }, y, { weights: matrix(3, 1) }, { regularization: 'none', fitBias: false });
    expect(r.kind).toBe('refused');
    if (r.kind === 'refused') expect(r.reason).toBe('float32-overflow');
  });

  it('property: for finite input of any shape, rank and scale, the result satisfies the normal equations of its own λ and is finite', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 12 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 0, max: 3 }),
        fc.double({ min: -6, max: 6, noNaN: true }),
        fc.integer(),
        fc.constantFrom<LvaOptions>({}, { regularization: 0.5 }, { selection: 'loo-one-se', ensemble: { rounds: 0, fraction: 0.8 } }),
        (n, d, dead, logScale, seed, options) => {
          const scale = 10 ** logScale;
          const z = randomMatrix(n, d, seed, scale);
          for (let i = 0; i < n; i++) for (let c = 0; c < Math.min(dead, d); c++) z.data[i * d + c] = 0;
          const head: Head = { weights: randomMatrix(d, 1, seed + 1), bias: Float64Array.of(0.1) };
          const y = randomMatrix(n, 1, seed + 2);
          const r = lvaUpdate(z, y, head, options);
          expect(finiteHead(r)).toBe(true);
          if (r.kind !== 'updated' || r.diagnostics.ensemble) return;
          // (ZᵀZ + λI)·ΔW = ZᵀQ for the augmented problem, relative to the size of the terms.
          const za = appendOnes(z);
          const dW = matrix(d + 1, 1, [...r.delta.weights.data, ...r.delta.bias!]);
          const q = sub(y, applyHead(z, head));
          const lhs = matmul(matmul(transpose(za), za), dW).data.map((v, i) => v + r.diagnostics.regularization.lambda * dW.data[i]!);
          const rhs = matmul(transpose(za), q).data;
          const size = Math.max(...rhs.map(Math.abs), ...lhs.map(Math.abs), 1e-300);
          lhs.forEach((v, i) => expect(Math.abs(v - rhs[i]!) / size).toBeLessThan(1e-7));
        },
      ),
      // A fixed seed: every machine checks the same 150 cases (change it to explore others).
      { numRuns: 150, seed: 2212 },
    );
  });
});
