/**
 * The out-of-bag guard of the subsample ensemble (issue 16): on by default without source statistics, it keeps the
 * averaged change only when the rows each subsample left out are predicted better than by no change.
 */
import { applyHead, computeSourceStatistics, lvaUpdate, matrix, type Head, type Matrix } from '../../src/core/index.js';
import { gaussian, randomMatrix, rng } from '../helpers/random.js';

function mse(z: Matrix, y: Matrix, h: Head): number {
  const p = applyHead(z, h);
  let s = 0;
  for (let i = 0; i < p.data.length; i++) s += (p.data[i]! - y.data[i]!) ** 2;
  return s / z.rows;
}

/** Rows from a 3-dimensional latent space lifted to 40 correlated features; targets = pretrained head + signal + noise. */
function problem(seed: number, n: number, signal: number) {
  const r = rng(seed);
  const A = randomMatrix(3, 40, seed + 1);
  const rows = (k: number): Matrix => {
    const g = matrix(k, 3, Float64Array.from({ length: k * 3 }, () => gaussian(r)));
    const z = matrix(k, 40);
    for (let i = 0; i < k; i++) for (let j = 0; j < 40; j++) {
      let s = 0;
      for (let l = 0; l < 3; l++) s += g.data[i * 3 + l]! * A.data[l * 40 + j]!;
      z.data[i * 40 + j] = Math.tanh(s);
    }
    return z;
  };
  const head: Head = { weights: randomMatrix(40, 2, seed + 2, 0.2), bias: new Float64Array(2) };
  const shift: Head = { weights: randomMatrix(40, 2, seed + 3, 0.2 * signal) };
  const targets = (z: Matrix) => {
    const y = applyHead(z, head), s = applyHead(z, shift);
    for (let i = 0; i < y.data.length; i++) y.data[i] += s.data[i]! + 0.3 * gaussian(r);
    return y;
  };
  const z = rows(n), test = rows(500);
  return { z, y: targets(z), test, yTest: targets(test), head };
}

describe('out-of-bag guard', () => {
  it('is on without source statistics and off with them; when it keeps the change, the head is the unguarded one', () => {
    const { z, y, head } = problem(1, 16, 2);
    const guarded = lvaUpdate(z, y, head), plain = lvaUpdate(z, y, head, { outOfBagGuard: false });
    expect(guarded.kind).toBe('updated');
    expect(guarded.diagnostics.ensemble?.outOfBagGain).toBeGreaterThan(0);
    expect(plain.diagnostics.ensemble?.outOfBagGain).toBeUndefined();
    if (guarded.kind !== 'updated' || plain.kind !== 'updated') throw new Error('expected updates');
    expect(Array.from(guarded.head.weights.data)).toEqual(Array.from(plain.head.weights.data));
    const source = computeSourceStatistics(z);
    expect(lvaUpdate(z, y, head, { source }).diagnostics.ensemble?.outOfBagGain).toBeUndefined();
    expect(lvaUpdate(z, y, head, { source, outOfBagGuard: true }).diagnostics.ensemble?.outOfBagGain).toBeDefined();
    expect(() => lvaUpdate(z, y, head, { outOfBagGuard: 'yes' as never })).toThrow(/outOfBagGuard must be a boolean/);
  });

  it('on targets with no signal it declines more often than the unguarded default, and never does more harm on fresh rows', () => {
    let declinedOnlyWithGuard = 0, harmGuarded = 0, harmPlain = 0;
    for (let seed = 10; seed < 40; seed++) {
      const { z, y, test, yTest, head } = problem(seed, 12, 0);
      const base = mse(test, yTest, head);
      const g = lvaUpdate(z, y, head), p = lvaUpdate(z, y, head, { outOfBagGuard: false });
      const hg = g.kind === 'updated' || g.kind === 'updated-with-cutoff' ? g.head : head;
      const hp = p.kind === 'updated' || p.kind === 'updated-with-cutoff' ? p.head : head;
      if (g.kind === 'declined' && p.kind === 'updated') {
        declinedOnlyWithGuard++;
        expect(g.diagnostics.ensemble!.outOfBagGain!).toBeLessThanOrEqual(0);
      }
      if (g.kind === 'updated') expect(Array.from(hg.weights.data)).toEqual(Array.from(hp.weights.data));
      harmGuarded += Math.max(0, mse(test, yTest, hg) - base);
      harmPlain += Math.max(0, mse(test, yTest, hp) - base);
    }
    expect(declinedOnlyWithGuard).toBeGreaterThan(0);
    expect(harmGuarded).toBeLessThan(harmPlain);
  });
});
