/**
 * chooseAdaptation: the decision against a brute-force reference (each path run on all rows, scored on held-out
 * rows), the user's model untouched, no leaks, abort, budget, blindness, classes and conv heads.
 */
import * as tf from '@tensorflow/tfjs';
import { adaptByChoice, adaptModel, attachSourceStatistics, chooseAdaptation, computeSourceStatistics, formatChoice, type AdaptationChoice } from '../../src/adapters/tfjs/index.js';
import { structuralClone } from '../../src/adapters/tfjs/choose.js';
import { randomTensor, seedWeights, useBackend, weightValues } from '../helpers/tf.js';

// Decisions here are pinned to a fixed amount of work: budgetSeconds: Infinity wherever a test expects the folds to
// run, since the default budget (5 s) is wall time and a slower or busier machine would go over it (issue 13).

/** A 4-16-16-1 tanh MLP with seeded weights standing in for a pretrained network; compiled with `optimizer`. */
function mlp(seed: number, optimizer: () => tf.Optimizer = () => tf.train.sgd(0.01)): tf.LayersModel {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [4], units: 16, activation: 'tanh', name: 'fc1' }),
      tf.layers.dense({ units: 16, activation: 'tanh', name: 'fc2' }),
      tf.layers.dense({ units: 1, name: 'head' }),
    ],
  });
  seedWeights(model, seed);
  model.compile({ optimizer: optimizer(), loss: 'meanSquaredError' });
  return model;
}

const values = async (m: tf.LayersModel) => (await weightValues(m)).map((w) => Array.from(w));
const mse = (m: tf.LayersModel, x: tf.Tensor, y: tf.Tensor) => tf.tidy(() => tf.mean(tf.square(tf.sub(m.predict(x, { batchSize: 512 }) as tf.Tensor, y))).dataSync()[0]!);

/** Targets in the span of the pretrained features: the pretrained network with a different head, plus noise. */
function driftTargets(seed: number, x: tf.Tensor, noise: number): tf.Tensor {
  const other = mlp(seed);
  const head = other.getLayer('head');
  const [w, b] = head.getWeights();
  const w2 = tf.tidy(() => tf.add(w!, randomTensor(w!.shape, 99, 0.8))), b2 = tf.add(b!, tf.scalar(0.5));
  head.setWeights([w2, b2]);
  const y = tf.tidy(() => tf.add(other.predict(x) as tf.Tensor, tf.mul(randomTensor([x.shape[0]!, 1], 98), noise)));
  tf.dispose([w2, b2]);
  other.dispose();
  return y;
}

/** Held-out error of each path, each run on all of (x, y): the independent reference for the decision. Fits run unshuffled, as in the decisions below, so the tests are deterministic. */
async function bruteForce(seed: number, optimizer: () => tf.Optimizer, x: tf.Tensor, y: tf.Tensor, xh: tf.Tensor, yh: tf.Tensor, epochs: number, batchSize: number) {
  const keep = mlp(seed, optimizer), head = mlp(seed, optimizer), uncapped = mlp(seed, optimizer), fit = mlp(seed, optimizer);
  await adaptModel(head, x, y);
  await adaptModel(uncapped, x, y, { maxDegreesOfFreedom: 1 });
  await fit.fit(x, y, { epochs, batchSize, shuffle: false, verbose: 0 });
  const out = { keep: mse(keep, xh, yh), head: mse(head, xh, yh), 'head-uncapped': mse(uncapped, xh, yh), fit: mse(fit, xh, yh) };
  [keep, head, uncapped, fit].forEach((m) => m.dispose());
  return out;
}
type Reference = Awaited<ReturnType<typeof bruteForce>>;
const errorOf = (ref: Reference, c: AdaptationChoice) => {
  if (!(c.path in ref)) throw new Error(`no reference for path ${c.path}`);
  return ref[c.path as keyof Reference];
};

describe('chooseAdaptation', () => {
  beforeAll(async () => useBackend('cpu'));

  it('a drift the head can absorb, above the sparsity threshold: the choice is the best path on held-out rows (brute force)', async () => {
    const x = randomTensor([40, 4], 1), xh = randomTensor([400, 4], 2);
    const y = driftTargets(3, x, 0.01), yh = driftTargets(3, xh, 0.01);
    const opt = () => tf.train.sgd(0.01);
    const ref = await bruteForce(4, opt, x, y, xh, yh, 10, 8);
    // The paths differ by far more than the margin, so a wrong choice fails the test.
    expect(Math.max(ref.keep, ref.fit) / ref.head).toBeGreaterThan(3);
    const model = mlp(4, opt);
    const choice = await chooseAdaptation(model, x, y, { epochs: 10, batchSize: 8, shuffle: false }, { budgetSeconds: Infinity });
    expect(choice.kind).toBe('cross-validated');
    expect(choice.prior).toBe('fit'); // 40 rows > 0.25 × 17
    const best = Math.min(ref.keep, ref.head, ref.fit);
    expect(errorOf(ref, choice)).toBeLessThanOrEqual(1.1 * best);
    model.dispose();
    tf.dispose([x, xh, y, yh]);
  });

  it('nothing to learn (targets = pretrained output + noise), 8 rows: the choice is within 10 % of the best path (brute force)', async () => {
    const model = mlp(5, () => tf.train.adam(0.05));
    const x = randomTensor([8, 4], 6), xh = randomTensor([400, 4], 7);
    const noisy = (v: tf.Tensor, s: number) => tf.tidy(() => tf.add(model.predict(v) as tf.Tensor, tf.mul(randomTensor([v.shape[0]!, 1], s), 0.3)));
    const y = noisy(x, 8), yh = noisy(xh, 9);
    const ref = await bruteForce(5, () => tf.train.adam(0.05), x, y, xh, yh, 50, 8);
    expect(ref.fit / ref.keep).toBeGreaterThan(1.2); // the fit overfits the noise: choosing it would fail
    const choice = await chooseAdaptation(model, x, y, { epochs: 50, batchSize: 8, shuffle: false }, { budgetSeconds: Infinity });
    expect(choice).toMatchObject({ kind: 'cross-validated', prior: 'fit', folds: 8 }); // 8 rows > 0.25 × 17: the prior is the fit
    expect(errorOf(ref, choice)).toBeLessThanOrEqual(1.1 * Math.min(ref.keep, ref.head, ref.fit));
    model.dispose();
    tf.dispose([x, xh, y, yh]);
  });

  it('the head with its df cap lifted: a candidate below 2 rows per feature, taken where the folds show the cap costing (brute force)', async () => {
    // Noise-free targets in the span of the features, 24 rows for 17 head parameters: the cap (df ≤ 12) leaves the
    // head far from the exact fit, and the folds can see it.
    const x = randomTensor([24, 4], 41), xh = randomTensor([400, 4], 42);
    const y = driftTargets(44, x, 0), yh = driftTargets(44, xh, 0);
    const opt = () => tf.train.sgd(0.01);
    const ref = await bruteForce(44, opt, x, y, xh, yh, 10, 8);
    expect(ref.head / ref['head-uncapped']).toBeGreaterThan(3); // choosing the capped head would fail
    const model = mlp(44, opt);
    const choice = await chooseAdaptation(model, x, y, { epochs: 10, batchSize: 8, shuffle: false }, { budgetSeconds: Infinity });
    if (choice.kind !== 'cross-validated') throw new Error(choice.reason);
    expect(choice.candidates.map((c) => c.path)).toEqual(['keep', 'head', 'head-uncapped', 'fit']);
    expect(choice.path).toBe('head-uncapped');
    expect(errorOf(ref, choice)).toBeLessThanOrEqual(1.1 * Math.min(...Object.values(ref)));
    // Applied, it is adaptModel with maxDegreesOfFreedom: 1, no more.
    const applied = await adaptByChoice(model, x, y, { epochs: 10, batchSize: 8, shuffle: false }, { budgetSeconds: Infinity });
    expect(applied.choice.path).toBe('head-uncapped');
    expect(applied.report?.result?.diagnostics.regularization.degreesOfFreedom).toBeGreaterThan(12);
    expect(mse(model, xh, yh)).toBeCloseTo(ref['head-uncapped'], 8);
    // Not a candidate at 2 rows per feature and above, when the caller sets the cap, for a fixed λ, or on 2 folds
    // (where the rule could not take it).
    const x40 = randomTensor([40, 4], 45), y40 = driftTargets(44, x40, 0);
    for (const [xs, ys, extra] of [[x40, y40, {}], [x, y, { maxDegreesOfFreedom: 0.5 }], [x, y, { regularization: 1e-3 }], [x, y, { folds: 2 }]] as const) {
      const c = await chooseAdaptation(model, xs, ys, { epochs: 1, batchSize: 8 }, { budgetSeconds: Infinity, ...extra });
      if (c.kind !== 'cross-validated') throw new Error(c.reason);
      expect(c.candidates.map((q) => q.path)).toEqual(['keep', 'head', 'fit']);
    }
    model.dispose();
    tf.dispose([x, xh, y, yh, x40, y40]);
  });

  it("folds 'auto': leave-one-out while the rows do not exceed the head's width (17 here), 5 folds above, explicit folds as given", async () => {
    const model = mlp(11);
    const foldsFor = async (n: number, folds?: number) => {
      const x = randomTensor([n, 4], 12 + n), y = driftTargets(13, x, 0.01);
      try {
        const c = await chooseAdaptation(model, x, y, { epochs: 1, batchSize: 8 }, { budgetSeconds: Infinity, ...(folds ? { folds } : {}) });
        return c.kind === 'cross-validated' ? c.folds : c.kind;
      } finally {
        tf.dispose([x, y]);
      }
    };
    expect(await foldsFor(14)).toBe(14);
    expect(await foldsFor(17)).toBe(17);
    expect(await foldsFor(18)).toBe(5);
    expect(await foldsFor(14, 4)).toBe(4);
    model.dispose();
  });

  it('leaves the model bit-identical, leaks no tensor, reports progress, and adaptByChoice applies the chosen path', async () => {
    const model = mlp(10, () => tf.train.adam(0.01)), reference = mlp(10);
    const x = randomTensor([30, 4], 11), y = driftTargets(12, x, 0.01);
    const before = await values(model);
    const tensors = tf.memory().numTensors;
    const seen: number[] = [];
    const choice = await chooseAdaptation(model, x, y, { epochs: 5, batchSize: 10, shuffle: false }, { onFold: (p) => void seen.push(p.done), budgetSeconds: Infinity });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(await values(model)).toEqual(before);
    if (choice.kind !== 'cross-validated') throw new Error(`expected cross-validation, got ${choice.kind}`);
    expect(seen).toEqual(Array.from({ length: choice.folds * 4 }, (_, i) => i + 1));
    expect(choice.candidates.map((c) => c.path)).toEqual(['keep', 'head', 'head-uncapped', 'fit']); // 30 rows < 2 × 17
    for (const c of choice.candidates) expect(c.folds).toHaveLength(choice.folds);
    expect(formatChoice(choice)).toMatch(/candidate +CV loss ± SE +gain over prior ± SE +wins/);
    // Applied: the same choice (same folds, unshuffled fits: deterministic), then the path on the model itself.
    const applied = await adaptByChoice(model, x, y, { epochs: 5, batchSize: 10, shuffle: false }, { budgetSeconds: Infinity });
    expect(applied.choice.path).toBe(choice.path);
    if (applied.choice.path === 'head' || applied.choice.path === 'head-uncapped') {
      await adaptModel(reference, x, y, applied.choice.path === 'head-uncapped' ? { maxDegreesOfFreedom: 1 } : {});
      expect(await values(model)).toEqual(await values(reference));
    }
    [model, reference].forEach((m) => m.dispose());
    tf.dispose([x, y]);
  });

  it("'head-then-fit' is a fourth candidate on request, on the same folds", async () => {
    const model = mlp(30, () => tf.train.adam(0.01));
    const x = randomTensor([15, 4], 31), y = driftTargets(32, x, 0.05);
    let calls = 0;
    const choice = await chooseAdaptation(model, x, y, { epochs: 3, batchSize: 5 }, { candidates: ['keep', 'head', 'fit', 'head-then-fit'], onFold: () => void calls++, budgetSeconds: Infinity });
    if (choice.kind !== 'cross-validated') throw new Error(choice.reason);
    expect(choice.candidates.map((c) => c.path)).toEqual(['keep', 'head', 'fit', 'head-then-fit']);
    expect(calls).toBe(4 * choice.folds);
    await expect(chooseAdaptation(model, x, y, { epochs: 3 }, { candidates: ['head', 'finetune' as never], budgetSeconds: Infinity })).rejects.toThrow(/unknown candidate 'finetune'/);
    model.dispose();
    tf.dispose([x, y]);
  });

  it('an abort during the folds rejects with AbortError, model untouched, nothing leaked', async () => {
    const model = mlp(13, () => tf.train.adam(0.01));
    const x = randomTensor([20, 4], 14), y = randomTensor([20, 1], 15);
    const before = await values(model);
    const tensors = tf.memory().numTensors;
    const controller = new AbortController();
    await expect(chooseAdaptation(model, x, y, { epochs: 3 }, { signal: controller.signal, onFold: (p) => void (p.done === 2 && controller.abort()), budgetSeconds: Infinity })).rejects.toMatchObject({
      name: 'AbortError',
      message: expect.stringMatching(/aborted during cross-validation; the model was not changed/),
    });
    expect(await values(model)).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
    tf.dispose([x, y]);
  });

  it('over the budget, or blind (1 example per class), the prior stands (a classification head: the fit) and the reason says why', async () => {
    const model = mlp(16);
    const x = randomTensor([30, 4], 17), y = randomTensor([30, 1], 18);
    const over = await chooseAdaptation(model, x, y, { epochs: 50 }, { budgetSeconds: 0 });
    expect(over).toMatchObject({ kind: 'over-budget', path: 'fit', prior: 'fit', budgetSeconds: 0 });
    // over even before a training step is probed: each step costs at least a forward pass of its batch
    // ('auto' folds: even 2 folds, the fewest, which 'auto' falls back to over the budget)
    expect(over.reason).toMatch(/cross-validating the fit on 2 folds \(the fewest\) would take at least ≈ [\d.]+ s \(one forward pass per training step; > budget 0 s\), so the prior stands/);
    if (over.kind === 'over-budget') expect(over.estimatedSeconds).toBeGreaterThan(0);
    // Folds the user chose are not reduced.
    const asked = await chooseAdaptation(model, x, y, { epochs: 50 }, { budgetSeconds: 0, folds: 5 });
    expect(asked.kind).toBe('over-budget');
    expect(asked.reason).toMatch(/cross-validating the fit would take at least/);

    const clf = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 8, activation: 'relu' }), tf.layers.dense({ units: 3, activation: 'softmax', name: 'head' })] });
    seedWeights(clf, 19);
    clf.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const xc = randomTensor([3, 4], 20), yc = tf.oneHot(tf.tensor1d([0, 1, 2], 'int32'), 3).toFloat();
    const blind: AdaptationChoice = await chooseAdaptation(clf, xc, yc, { epochs: 5 }, { budgetSeconds: Infinity });
    expect(blind).toMatchObject({ kind: 'blind', path: 'fit', prior: 'fit' }); // 3 rows > 0.25 × 9
    expect(blind.reason).toMatch(/cross-validation cannot see a gain here \(some class has 1 example/);
    // Blind where the prior is the closed form (3 rows ≤ 0.25 × 49): a classification head takes the fit, as the
    // benchmarks justify; blindPath 'prior' keeps the threshold's head; a regression head too few to fold keeps it.
    const wide = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 48, activation: 'tanh' }), tf.layers.dense({ units: 3, activation: 'softmax', name: 'head' })] });
    seedWeights(wide, 22);
    wide.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const toFit = await chooseAdaptation(wide, xc, yc, { epochs: 5 }, { budgetSeconds: Infinity });
    expect(toFit).toMatchObject({ kind: 'blind', path: 'fit', prior: 'head' });
    expect(toFit.reason).toMatch(/so your fit\(\) runs: for a classification head at 1 example per class .* blindPath: 'prior' keeps head/);
    expect(await chooseAdaptation(wide, xc, yc, { epochs: 5 }, { budgetSeconds: Infinity, blindPath: 'prior' })).toMatchObject({ kind: 'blind', path: 'head', prior: 'head' });
    await expect(chooseAdaptation(wide, xc, yc, { epochs: 5 }, { blindPath: 'fit' as 'prior' })).rejects.toThrow(/blindPath must be 'auto' or 'prior'; received string fit\./);
    const x2 = randomTensor([2, 4], 23), y2 = randomTensor([2, 1], 24);
    expect(await chooseAdaptation(model, x2, y2, { epochs: 5 }, { budgetSeconds: Infinity })).toMatchObject({ kind: 'blind', path: 'head', prior: 'head' });
    wide.dispose();
    tf.dispose([x2, y2]);
    // Two per class: stratified folds, every class in every training split.
    const x6 = randomTensor([6, 4], 21), y6 = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32'), 3).toFloat();
    expect(await chooseAdaptation(clf, x6, y6, { epochs: 5 }, { budgetSeconds: Infinity })).toMatchObject({ kind: 'cross-validated', folds: 2 });
    [model, clf].forEach((m) => m.dispose());
    tf.dispose([x, y, xc, yc, x6, y6]);
  });

  it("the candidates' copy of a model: every initializer zeros (an orthogonal recurrent one costs seconds), the same outputs once the weights are set", async () => {
    const input = tf.input({ shape: [6, 5] });
    const rnn = tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 7, returnSequences: true }) as tf.RNN, mergeMode: 'sum' }).apply(input) as tf.SymbolicTensor;
    const out = tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 3, useBias: false }), name: 'head' }).apply(rnn) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    const x = randomTensor([4, 6, 5], 3);
    const before = tf.memory().numTensors;
    const copy = await structuralClone(model);
    const inits: unknown[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') for (const [k, w] of Object.entries(v)) (k.endsWith('_initializer') && w ? inits.push(w) : walk(w));
    };
    walk(copy.toJSON(null, false));
    expect(inits.length).toBeGreaterThanOrEqual(4); // the LSTM's kernel, recurrent and bias (one config for both directions), the head's kernel
    for (const i of inits) expect((i as { class_name: string }).class_name).toBe('Zeros');
    copy.setWeights(model.getWeights());
    const [a, b] = [model.predict(x) as tf.Tensor, copy.predict(x) as tf.Tensor];
    expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
    tf.dispose([a, b]);
    copy.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(x);
    model.dispose();
  });

  it('a path that cannot run is left out and named: an unsupported head, an optimizer tf.serialization does not know', async () => {
    const relu = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 6, activation: 'tanh' }), tf.layers.dense({ units: 1, activation: 'relu', name: 'head' })] });
    seedWeights(relu, 26);
    relu.compile({ optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError' });
    const x = randomTensor([12, 4], 27), y = randomTensor([12, 1], 28);
    const a = await chooseAdaptation(relu, x, y, { epochs: 2 }, { budgetSeconds: Infinity });
    expect(a).toMatchObject({ kind: 'cross-validated', prior: 'fit' });
    if (a.kind === 'cross-validated') expect(a.candidates.map((c) => c.path)).toEqual(['keep', 'fit']);
    expect(a.reason).toMatch(/not a candidate: closed-form head: .*activation 'relu', which is not invertible/);
    class Unregistered extends tf.SGDOptimizer {
      static override get className() {
        return 'UnregisteredForTest';
      }
    }
    const model = mlp(29, () => new Unregistered(0.01));
    const b = await chooseAdaptation(model, x, y, { epochs: 2 }, { budgetSeconds: Infinity });
    expect(b).toMatchObject({ kind: 'cross-validated', prior: 'head' }); // no fit: the closed form is the prior
    expect(b.reason).toMatch(/not a candidate: fit: .*optimizer class 'UnregisteredForTest' is not registered with tf.serialization/);
    [relu, model].forEach((m) => m.dispose());
    tf.dispose([x, y]);
  });

  it('the folds use the metric the final adaptation will: statistics attached to the model count as given ones', async () => {
    const xs = randomTensor([200, 4], 33, 2), x = randomTensor([20, 4], 34), y = driftTargets(35, x, 0.05);
    const headLosses = (c: AdaptationChoice) => (c.kind === 'cross-validated' ? Array.from(c.heldOut.losses.head!) : []);
    const recipe = { epochs: 1, shuffle: false };
    const plain = mlp(36), attached = mlp(36), given = mlp(36);
    const stats = await computeSourceStatistics(given, xs);
    await attachSourceStatistics(attached, stats, { precision: 'float64' });
    const [a, b, c] = [await chooseAdaptation(attached, x, y, recipe, { budgetSeconds: Infinity }), await chooseAdaptation(given, x, y, recipe, { source: stats, budgetSeconds: Infinity }), await chooseAdaptation(plain, x, y, recipe, { budgetSeconds: Infinity })];
    expect(headLosses(a)).toHaveLength(20);
    expect(headLosses(a)).toEqual(headLosses(b));
    expect(headLosses(a)).not.toEqual(headLosses(c)); // the metric matters, so the comparison above can fail
    // Stale statistics (the head changed since they were attached) are refused, as adaptModel refuses them.
    await adaptModel(attached, x, y, { source: stats });
    await expect(chooseAdaptation(attached, x, y, recipe, { budgetSeconds: Infinity })).rejects.toThrow(/attached to the model were computed for a different head/);
    [plain, attached, given].forEach((m) => m.dispose());
    tf.dispose([xs, x, y]);
  });

  it('a conv head: folds over samples (their rows stay together), the prior counts samples', async () => {
    const conv = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [6, 6, 1], filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }),
        tf.layers.conv2d({ filters: 1, kernelSize: 3, padding: 'same', name: 'head' }),
      ],
    });
    seedWeights(conv, 22);
    conv.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
    const x = randomTensor([6, 6, 6, 1], 23), y = randomTensor([6, 6, 6, 1], 24);
    const choice = await chooseAdaptation(conv, x, y, { epochs: 2, batchSize: 3 }, { budgetSeconds: Infinity });
    expect(choice).toMatchObject({ kind: 'cross-validated', samples: 6, rows: 216, folds: 6, prior: 'head' });
    expect(choice.reason).toMatch(/^prior: 6 samples \(216 rows\) ≤ 0.25 × width 28 → head/);
    await expect(chooseAdaptation(conv, x, randomTensor([6, 6, 6, 2], 25), { epochs: 1 }, { budgetSeconds: Infinity })).rejects.toThrow(/y has 2 values per position but head "head" has 1 units/);
    conv.dispose();
    tf.dispose([x, y]);
  });
});
