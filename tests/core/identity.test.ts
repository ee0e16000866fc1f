/** method.md §3.4 and §9.3: the exact residue needs no source data, and any pairing gives the same update. */
import { applyHead, lvaUpdate, lvaUpdateFromResidue, pairedResidue, perturbResidue, takeRows, type Head } from '../../src/core/index.js';
import { expectMatrixClose } from '../helpers/expect-close.js';
import { randomMatrix, rng } from '../helpers/random.js';

describe('source-free identity', () => {
  const n = 20, d = 8, m = 2;
  const head: Head = { weights: randomMatrix(d, m, 1), bias: Float64Array.of(0.3, 0.1) };
  const zTarget = randomMatrix(n, d, 2), yTarget = randomMatrix(n, m, 3);
  const zSource = randomMatrix(n, d, 4), ySource = randomMatrix(n, m, 5);

  it('the paired residue δy − (f(x̃) − f(x)) + (y − f(x)) equals Ỹ − f(X̃) for any pairing, including a random permutation', () => {
    const r = rng(6);
    const perm = Array.from({ length: n }, (_, i) => i).sort(() => r() - 0.5);
    const exact = { rows: n, cols: m, data: yTarget.data.map((v, i) => v - applyHead(zTarget, head).data[i]!) };
    for (const order of [Array.from({ length: n }, (_, i) => i), perm]) {
      const zs = takeRows(zSource, order), ys = takeRows(ySource, order);
      const q = pairedResidue({ targets: yTarget, targetOutputs: applyHead(zTarget, head), sourceTargets: ys, sourceOutputs: applyHead(zs, head) });
      expectMatrixClose(q, exact, { atol: 1e-12 });
      const a = lvaUpdateFromResidue(zTarget, q, head, { regularization: 0.2 });
      const b = lvaUpdate(zTarget, yTarget, head, { regularization: 0.2 });
      if (a.kind !== 'updated' || b.kind !== 'updated') throw new Error('expected updates');
      expectMatrixClose(a.head.weights, b.head.weights, { atol: 1e-12 });
    }
  });

  it('the perturb residue with the exact intrinsic term (h = 1) reduces to the exact residue', () => {
    const fx = applyHead(zSource, head), fxt = applyHead(zTarget, head);
    const directional = { rows: n, cols: m, data: fxt.data.map((v, i) => v - fx.data[i]!) };
    const q = perturbResidue({ targets: yTarget, sourceOutputs: fx, directional });
    expectMatrixClose(q, { rows: n, cols: m, data: yTarget.data.map((v, i) => v - fxt.data[i]!) }, { atol: 1e-12 });
  });
});
