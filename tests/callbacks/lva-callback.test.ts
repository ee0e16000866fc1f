/** The drop-in fit() callback: sparse path, fallback, warm start, rollback, logs, configuration errors, memory. */
import * as tf from '@tensorflow/tfjs';
import { lvaCallback, adaptModel, adaptModelFromDataset, type Decision } from '../../src/adapters/tfjs/index.js';
import { randomTensor, seedWeights, useBackend, weightValues } from '../helpers/tf.js';

// Decisions here are pinned to a fixed amount of work: budgetSeconds: Infinity wherever a test expects the folds to
// run, since the default budget (5 s) is wall time and a slower or busier machine would go over it (issue 13).

function mlp(seed: number, activation: 'linear' | 'softmax' = 'linear'): tf.LayersModel {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [4], units: 16, activation: 'relu', name: 'fc1' }),
      tf.layers.batchNormalization({ name: 'bn' }),
      tf.layers.dense({ units: 2, activation, name: 'head' }),
    ],
  });
  seedWeights(model, seed);
  model.compile({ optimizer: tf.train.adam(0.05), loss: activation === 'softmax' ? 'categoricalCrossentropy' : 'meanSquaredError' });
  return model;
}

const values = async (m: tf.LayersModel) => (await weightValues(m)).map((w) => Array.from(w));

/**
 * A drift the head absorbs: targets of the pretrained network (mlp(70)) with another head, on `rows` inputs (seed
 * `xSeed`) and 300 held-out ones; `err` is a model's held-out MSE. The caller disposes `tensors`.
 */
function headDrift(rows: number, xSeed: number) {
  const other = mlp(70);
  const [w, b] = other.getLayer('head').getWeights();
  const w2 = tf.tidy(() => tf.add(w!, randomTensor(w!.shape, 71, 0.8))), b2 = tf.add(b!, tf.scalar(0.5));
  other.getLayer('head').setWeights([w2, b2]);
  const x = randomTensor([rows, 4], xSeed), xh = randomTensor([300, 4], 73);
  const y = other.predict(x) as tf.Tensor, yh = other.predict(xh) as tf.Tensor;
  other.dispose();
  tf.dispose([w2, b2]);
  const err = (m: tf.LayersModel) => tf.tidy(() => tf.mean(tf.square(tf.sub(m.predict(xh) as tf.Tensor, yh))).dataSync()[0]!);
  return { x, y, err, tensors: [x, xh, y, yh] };
}

describe('lvaCallback', () => {
  beforeAll(async () => useBackend('cpu'));

  it('sparse data: the analytic head replaces fine-tuning and no gradient step survives', async () => {
    const model = mlp(1), reference = mlp(1);
    const x = randomTensor([12, 4], 2), y = randomTensor([12, 2], 3);
    const cb = lvaCallback({ x, y, regularization: 0.1, rowsPerFeature: 1 });
    const history = await model.fit(x, y, { epochs: 5, batchSize: 4, callbacks: [cb], verbose: 0 });
    expect(cb.decision?.kind).toBe('analytic');
    expect(history.epoch).toEqual([0]);
    expect(history.history['lva_decision']).toEqual([0]);
    expect(history.history['lva_residual_after']![0]).toBeLessThan(history.history['lva_residual_before']![0] as number);
    // The same closed form, applied directly, gives bit-identical weights; every non-head weight is the pretrained one.
    await adaptModel(reference, x, y, { regularization: 0.1 });
    expect(await values(model)).toEqual(await values(reference));
    tf.dispose([x, y]);
  });

  it('above the threshold: warm-starts the head, then fit() trains as written', async () => {
    const model = mlp(4), untouched = mlp(4);
    const x = randomTensor([64, 4], 5), y = randomTensor([64, 2], 6);
    const cb = lvaCallback({ x, y, rowsPerFeature: 1, warmStart: true });
    const history = await model.fit(x, y, { epochs: 3, batchSize: 16, callbacks: [cb], verbose: 0 });
    expect(cb.decision?.kind).toBe('warm-start');
    expect(cb.decision?.reason).toMatch(/64 target rows > 1 × width 17/);
    expect(history.epoch).toEqual([0, 1, 2]);
    expect(history.history['lva_decision']).toEqual([1]);
    const after = await values(model), before = await values(untouched);
    expect(after[0]).not.toEqual(before[0]); // the backbone trained
    tf.dispose([x, y]);
  });

  it('explicit rowsPerFeature: above it, plain gradient descent with the reason, and no cross-validation', async () => {
    const model = mlp(7);
    const x = randomTensor([64, 4], 8), y = randomTensor([64, 2], 9);
    const cb = lvaCallback({ x, y, rowsPerFeature: 0.25 });
    const history = await model.fit(x, y, { epochs: 2, batchSize: 32, callbacks: [cb], verbose: 0 });
    expect(cb.decision).toMatchObject({ kind: 'gradient-descent' });
    expect(cb.decision?.choice).toBeUndefined();
    expect(cb.decision?.reason).toMatch(/64 target rows > 0.25 × width 17: gradient descent as written \(warmStart is off\)/);
    expect(history.history['lva_decision']).toEqual([2]);
    tf.dispose([x, y]);
  });

  it('by default the decision is data-driven: cross-validated on a clone, applied as chosen, recorded in the History', async () => {
    const model = mlp(7), reference = mlp(7);
    const x = randomTensor([64, 4], 8), y = randomTensor([64, 2], 9);
    const progress: number[] = [];
    const cb = lvaCallback({ budgetSeconds: Infinity, x, y, onFold: (p) => void progress.push(p.done) });
    const history = await model.fit(x, y, { epochs: 2, batchSize: 32, callbacks: [cb], verbose: 0 });
    const d = cb.decision!;
    const c = d.choice!;
    if (c.kind !== 'cross-validated') throw new Error(`expected cross-validation, got ${c.kind}: ${c.reason}`);
    expect(c.prior).toBe('fit'); // 64 rows > 0.25 × 17
    expect(d.reason).toMatch(/^prior: 64 rows > 0.25 × width 17 → fit; cross-validation \(5 folds, paired\)/);
    expect(progress).toHaveLength(c.folds * 3);
    // The recipe the folds reproduced is this fit(): 2 epochs, batch 32 (from the callback's params).
    const kind = { keep: 'kept-pretrained', head: 'analytic', 'head-uncapped': 'analytic', fit: 'gradient-descent', 'head-then-fit': 'warm-start' }[c.path];
    expect(d.kind).toBe(kind);
    expect(history.history['lva_cv_fit']![0]).toBeCloseTo(c.candidates.find((q) => q.path === 'fit')!.loss, 5);
    expect(history.history['lva_cv_head']![0]).toBeCloseTo(c.candidates.find((q) => q.path === 'head')!.loss, 5);
    expect(history.history['lva_decision_seconds']![0]).toBeGreaterThan(0);
    if (d.kind === 'gradient-descent') expect(history.epoch).toEqual([0, 1]);
    else expect(await values(model)).not.toEqual(await values(reference));
    tf.dispose([x, y]);
  });

  it('a drift the head absorbs: the callback takes the closed form although the data is above the threshold', async () => {
    // Targets in the span of the pretrained features (the same network with another head); the fit is slow SGD.
    const model = mlp(70);
    model.compile({ optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError' });
    const { x, y, err, tensors } = headDrift(48, 72);
    const cb = lvaCallback({ budgetSeconds: Infinity, x, y, fit: { shuffle: false } });
    await model.fit(x, y, { epochs: 10, batchSize: 8, shuffle: false, callbacks: [cb], verbose: 0 });
    // Independent reference: the user's fit alone, on all rows, scored on the same held-out rows.
    const plain = mlp(70);
    plain.compile({ optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError' });
    await plain.fit(x, y, { epochs: 10, batchSize: 8, shuffle: false, verbose: 0 });
    expect(cb.decision?.kind).toBe('analytic');
    expect(cb.decision?.choice).toMatchObject({ kind: 'cross-validated', prior: 'fit', path: 'head', overridden: true });
    expect(err(model)).toBeLessThan(err(plain) / 3);
    [model, plain].forEach((m) => m.dispose());
    tf.dispose(tensors);
  });

  it("the same drift on 24 rows (< 2 per head feature): the head with its df cap lifted, applied as adaptModel's", async () => {
    const model = mlp(70), reference = mlp(70), capped = mlp(70);
    model.compile({ optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError' });
    const { x, y, err, tensors } = headDrift(24, 74);
    const cb = lvaCallback({ budgetSeconds: Infinity, x, y, fit: { shuffle: false } });
    const history = await model.fit(x, y, { epochs: 10, batchSize: 8, shuffle: false, callbacks: [cb], verbose: 0 });
    expect(cb.decision?.kind).toBe('analytic');
    expect(cb.decision?.choice).toMatchObject({ kind: 'cross-validated', path: 'head-uncapped' });
    expect(history.epoch).toEqual([0]);
    expect(Number.isFinite(history.history['lva_cv_head_uncapped']![0])).toBe(true);
    // Applied exactly as adaptModel with maxDegreesOfFreedom: 1, and better on held-out rows than the capped head.
    await adaptModel(reference, x, y, { maxDegreesOfFreedom: 1 });
    await adaptModel(capped, x, y);
    expect(await values(model)).toEqual(await values(reference));
    expect(err(model)).toBeLessThan(err(capped) / 3);
    [model, reference, capped].forEach((m) => m.dispose());
    tf.dispose(tensors);
  });

  it('verbose prints the cross-validation table; budgetSeconds: 0 skips the folds and the prior decides', async () => {
    const x = randomTensor([40, 4], 74), y = randomTensor([40, 2], 75);
    const log = jest.spyOn(console, 'log').mockImplementation(() => {});
    try {
      await mlp(76).fit(x, y, { epochs: 1, batchSize: 20, callbacks: [lvaCallback({ budgetSeconds: Infinity, x, y, verbose: true })], verbose: 0 });
      expect(log.mock.calls[0]![0]).toMatch(/lvaCallback: [a-z-]+ — prior: 40 rows[\s\S]*candidate +CV loss ± SE +gain over prior ± SE +wins\n +keep/);
    } finally {
      log.mockRestore();
    }
    const cb = lvaCallback({ x, y, budgetSeconds: 0 });
    await mlp(76).fit(x, y, { epochs: 3, batchSize: 20, callbacks: [cb], verbose: 0 });
    expect(cb.decision).toMatchObject({ kind: 'gradient-descent', choice: { kind: 'over-budget', path: 'fit', budgetSeconds: 0 } });
    expect(() => lvaCallback({ x, y, budgetSeconds: -1 })).toThrow(/budgetSeconds must be a number ≥ 0/);
    tf.dispose([x, y]);
  });

  it('a conv head counts samples, not its rows per sample, against the threshold', async () => {
    const conv = (seed: number) => {
      const m = tf.sequential({
        layers: [
          tf.layers.conv2d({ inputShape: [8, 8, 2], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }),
          tf.layers.conv2d({ filters: 1, kernelSize: 3, padding: 'same', name: 'head' }),
        ],
      });
      seedWeights(m, seed);
      m.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
      return m;
    };
    // Width 4·3·3 + 1 = 37, so the default 0.25 allows 9.25 samples: 8 images (512 rows) are sparse, 12 are not.
    const x8 = randomTensor([8, 8, 8, 2], 60), y8 = randomTensor([8, 8, 8, 1], 61);
    const sparse = conv(62);
    const cb = lvaCallback({ x: x8, y: y8, rowsPerFeature: 0.25 });
    await sparse.fit(x8, y8, { epochs: 2, batchSize: 4, callbacks: [cb], verbose: 0 });
    expect(cb.decision?.reason).toMatch(/^8 target samples \(512 rows, 64 per sample\) ≤ 0.25 × width 37/);
    expect(['analytic', 'kept-pretrained']).toContain(cb.decision?.kind);
    expect(cb.decision?.report?.result.diagnostics.regularization.selection?.validation).toEqual({ kind: 'grouped-k-fold', groups: 8, folds: 5 });
    const x12 = randomTensor([12, 8, 8, 2], 63), y12 = randomTensor([12, 8, 8, 1], 64);
    const cb12 = lvaCallback({ x: x12, y: y12, rowsPerFeature: 0.25 });
    await conv(65).fit(x12, y12, { epochs: 1, batchSize: 4, callbacks: [cb12], verbose: 0 });
    expect(cb12.decision).toMatchObject({ kind: 'gradient-descent' });
    expect(cb12.decision?.reason).toMatch(/^12 target samples \(768 rows, 64 per sample\) > 0.25 × width 37/);
    // The data-driven default counts samples the same way for its prior, and its folds are over samples.
    const cbAuto = lvaCallback({ budgetSeconds: Infinity, x: x12, y: y12 });
    await conv(65).fit(x12, y12, { epochs: 1, batchSize: 4, callbacks: [cbAuto], verbose: 0 });
    expect(cbAuto.decision?.choice).toMatchObject({ kind: 'cross-validated', samples: 12, rows: 768, folds: 5, prior: 'fit' });
    tf.dispose([x8, y8, x12, y12]);
  });

  it('adapts a softmax classifier on the sparse path without extra options', async () => {
    const model = mlp(10, 'softmax');
    const x = randomTensor([8, 4], 11, 2);
    const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 1, 0, 0, 1], 'int32'), 2);
    const cb = lvaCallback({ x, y, rowsPerFeature: 1, regularization: 0.05 });
    await model.fit(x, y, { epochs: 2, callbacks: [cb], verbose: 0 });
    expect(cb.decision?.kind).toBe('analytic');
    expect(cb.decision?.report?.space).toBe('classification');
    tf.dispose([x, y]);
  });

  it('one example per class (cross-validation blind): a classification head lets fit() run; blindPath: prior keeps the closed form', async () => {
    // Head width 17 ≥ 4 × 2 rows: the threshold's prior is the closed form.
    const x = randomTensor([2, 4], 12, 2), y = tf.oneHot(tf.tensor1d([0, 1], 'int32'), 2);
    const a = mlp(13, 'softmax'), b = mlp(13, 'softmax'), plain = mlp(13, 'softmax');
    const cb = lvaCallback({ x, y, budgetSeconds: Infinity });
    const history = await a.fit(x, y, { epochs: 3, batchSize: 2, shuffle: false, callbacks: [cb], verbose: 0 });
    expect(cb.decision?.kind).toBe('gradient-descent');
    expect(cb.decision?.choice).toMatchObject({ kind: 'blind', path: 'fit', prior: 'head' });
    expect(history.epoch).toEqual([0, 1, 2]);
    // fit() ran as written: the same weights as the same fit() without the callback.
    await plain.fit(x, y, { epochs: 3, batchSize: 2, shuffle: false, verbose: 0 });
    const [wa, wp] = [await values(a), await values(plain)];
    wa.forEach((w, i) => w.forEach((v, j) => expect(v).toBeCloseTo(wp[i]![j]!, 5)));
    const cbPrior = lvaCallback({ x, y, budgetSeconds: Infinity, blindPath: 'prior', regularization: 0.05 });
    await b.fit(x, y, { epochs: 3, batchSize: 2, callbacks: [cbPrior], verbose: 0 });
    expect(cbPrior.decision?.kind).toBe('analytic');
    [a, b, plain].forEach((m) => m.dispose());
    tf.dispose([x, y]);
  });

  it('falls back to gradient descent, and says why, when the head is unsupported', async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3, name: 'fc' }), tf.layers.dense({ units: 2, activation: 'relu', name: 'head' })] });
    seedWeights(model, 12);
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
    const x = randomTensor([8, 4], 13), y = randomTensor([8, 2], 14);
    const cb = lvaCallback({ x, y, rowsPerFeature: Infinity });
    const history = await model.fit(x, y, { epochs: 2, callbacks: [cb], verbose: 0 });
    expect(cb.decision?.kind).toBe('gradient-descent');
    expect(cb.decision?.reason).toMatch(/activation 'relu', which is not invertible/);
    expect(history.epoch).toEqual([0, 1]);
    tf.dispose([x, y]);
  });

  it('rolls back a worsening update (validation guard) and falls back to gradient descent', async () => {
    const model = mlp(12);
    const x = randomTensor([8, 4], 13), y = randomTensor([8, 2], 14, 5);
    const vx = randomTensor([30, 4], 15);
    const vy = model.predict(vx) as tf.Tensor;
    const cb = lvaCallback({ x, y, regularization: 1e-3, validation: { x: vx, y: vy }, rowsPerFeature: 1 });
    const history = await model.fit(x, y, { epochs: 2, callbacks: [cb], verbose: 0 });
    expect(cb.decision?.kind).toBe('gradient-descent');
    expect(cb.decision?.reason).toMatch(/validation loss worse/);
    expect(history.epoch).toEqual([0, 1]);
    tf.dispose([x, y, vx, vy]);
  });

  it('keeps the pretrained model when cross-validation declines on sparse data', async () => {
    const model = mlp(16), reference = mlp(16);
    const x = randomTensor([10, 4], 17);
    const y = model.predict(x) as tf.Tensor; // already fitted: nothing to learn
    const cb = lvaCallback({ x, y, selection: 'paired-gain', ensemble: { rounds: 0, fraction: 0.8 }, rowsPerFeature: 1 });
    await model.fit(x, y, { epochs: 3, callbacks: [cb], verbose: 0 });
    expect(cb.decision?.kind).toBe('kept-pretrained');
    expect(await values(model)).toEqual(await values(reference));
    tf.dispose([x, y]);
  });

  it('onDecision can veto the analytic path, and gradient descent then starts from the pretrained head', async () => {
    const x = randomTensor([12, 4], 19), y = randomTensor([12, 2], 20);
    // A spy after our callback sees the weights gradient descent starts from.
    const spy = () => {
      const seenAt: { weights: number[][] } = { weights: [] };
      const cb = new (class extends tf.Callback {
        override async onTrainBegin() {
          seenAt.weights = await values(this.model as tf.LayersModel);
        }
      })();
      return { cb, seenAt };
    };
    for (const rowsPerFeature of [1, undefined]) {
      const model = mlp(18), reference = mlp(18);
      const seen: Decision[] = [];
      const s = spy();
      const cb = lvaCallback({ x, y, regularization: 0.1, ...(rowsPerFeature !== undefined ? { rowsPerFeature } : {}), onDecision: ({ decision }) => (seen.push(decision), 'gradient-descent') });
      const history = await model.fit(x, y, { epochs: 2, callbacks: [cb, s.cb], verbose: 0 });
      if (rowsPerFeature !== undefined) expect(seen[0]?.kind).toBe('analytic');
      expect(cb.decision?.kind).toBe('gradient-descent');
      expect(cb.decision?.reason).toMatch(/vetoed by onDecision|prior/);
      expect(history.epoch).toEqual([0, 1]);
      expect(s.seenAt.weights).toEqual(await values(reference));
      [model, reference].forEach((m) => m.dispose());
    }
    tf.dispose([x, y]);
  });

  it('rejects bad configuration before any step, weights untouched', async () => {
    expect(() => lvaCallback({ x: [[1]], y: [[1]], rowsPerFeatur: 3 } as never)).toThrow(/unknown option "rowsPerFeatur" \(did you mean "rowsPerFeature"\?\)/);
    expect(() => lvaCallback({ y: [[1]] } as never)).toThrow(/x and y are required/);
    const model = mlp(21);
    const before = await values(model);
    const x = randomTensor([8, 4], 22), y = randomTensor([8, 3], 23);
    await expect(model.fit(x, randomTensor([8, 2], 1), { epochs: 1, callbacks: [lvaCallback({ x, y })], verbose: 0 })).rejects.toThrow(/3 values per position but head "head" has 2 units/);
    expect(await values(model)).toEqual(before);
    tf.dispose([x, y]);
  });

  it('does not leak tensors across repeated fits', async () => {
    const model = mlp(24);
    const x = randomTensor([12, 4], 25), y = randomTensor([12, 2], 26);
    const run = () => model.fit(x, y, { epochs: 2, callbacks: [lvaCallback({ x, y, rowsPerFeature: 1 })], verbose: 0 });
    await run();
    const count = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) await run();
    expect(tf.memory().numTensors).toBe(count);
    // The data-driven default: clones, optimizers and folds are all released.
    const auto = () => model.fit(x, y, { epochs: 2, callbacks: [lvaCallback({ budgetSeconds: Infinity, x, y })], verbose: 0 });
    await auto();
    const count2 = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await auto();
    expect(tf.memory().numTensors).toBe(count2);
    tf.dispose([x, y]);
  });

  it('an abort during the cross-validation rejects fit() with the model untouched', async () => {
    const model = mlp(77), before = await values(model);
    const x = randomTensor([30, 4], 78), y = randomTensor([30, 2], 79);
    const controller = new AbortController();
    const cb = lvaCallback({ budgetSeconds: Infinity, x, y, signal: controller.signal, onFold: (p) => void (p.done === 3 && controller.abort()) });
    await expect(model.fit(x, y, { epochs: 3, callbacks: [cb], verbose: 0 })).rejects.toThrow(/aborted during cross-validation; the model was not changed/);
    expect(cb.decisions).toEqual([]);
    expect(await values(model)).toEqual(before);
    tf.dispose([x, y]);
  });
});

describe('fitDataset', () => {
  beforeAll(async () => useBackend('cpu'));
  const dataset = (x: tf.Tensor, y: tf.Tensor, batch: number) =>
    tf.data.zip({ xs: tf.data.array(tf.unstack(x)), ys: tf.data.array(tf.unstack(y)) }).batch(batch) as unknown as tf.data.Dataset<{ xs: tf.Tensor; ys: tf.Tensor }>;

  it('adaptModelFromDataset streams the batches to the same head as adaptModel on the tensors', async () => {
    const a = mlp(30), b = mlp(30);
    const x = randomTensor([20, 4], 31), y = randomTensor([20, 2], 32);
    await adaptModel(a, x, y, { regularization: 0.2 });
    const report = await adaptModelFromDataset(b, dataset(x, y, 6), { regularization: 0.2 });
    expect(report).toMatchObject({ outcome: 'written', samples: 20, rows: 20 });
    const wa = await a.getLayer('head').getWeights()[0]!.data(), wb = await b.getLayer('head').getWeights()[0]!.data();
    Array.from(wa).forEach((v, i) => expect(wb[i]).toBeCloseTo(v, 5));
    tf.dispose([x, y]);
  });

  it('lvaCallback({ dataset }) in fitDataset: analytic below the threshold, untouched head above it', async () => {
    const x = randomTensor([4, 4], 33), y = randomTensor([4, 2], 34);
    const sparse = mlp(35);
    const cb = lvaCallback({ dataset: dataset(x, y, 2), regularization: 0.1 });
    await sparse.fitDataset(dataset(x, y, 2), { epochs: 3, callbacks: [cb], verbose: 0 });
    expect(cb.decision?.kind).toBe('analytic');

    const big = mlp(36), reference = mlp(36);
    const xb = randomTensor([40, 4], 37), yb = randomTensor([40, 2], 38);
    const cb2 = lvaCallback({ dataset: dataset(xb, yb, 8) });
    // A spy after our callback sees the weights gradient descent starts from: the streamed update must be undone.
    let atStart: number[][] = [];
    const spy = new (class extends tf.Callback {
      override async onTrainBegin() {
        atStart = await values(this.model as tf.LayersModel);
      }
    })();
    await big.fitDataset(dataset(xb, yb, 8), { epochs: 1, callbacks: [cb2, spy], verbose: 0 });
    expect(cb2.decision?.kind).toBe('gradient-descent');
    expect(cb2.decision?.reason).toMatch(/40 target rows > 0.25 × width 17/);
    expect(atStart).toEqual(await values(reference));
    tf.dispose([x, y, xb, yb]);
  });
});

describe('cancellation (signal)', () => {
  beforeAll(async () => useBackend('cpu'));

  /** SGD keeps no per-weight state, so the tensor count before and after fit() is comparable. */
  function sgdModel(seed: number): tf.LayersModel {
    const model = mlp(seed);
    model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
    return model;
  }
  /** A user callback that fires the abort at a given epoch and batch (after our callback's check for that batch). */
  const abortAt = (controller: AbortController, epoch: number, batch: number) =>
    new (class extends tf.Callback {
      private e = 0;
      override async onEpochBegin(e: number) {
        this.e = e;
      }
      override async onBatchEnd(b: number) {
        if (this.e === epoch && b === batch) controller.abort();
      }
    })();

  it('aborting gradient descent mid-epoch restores every weight to its value before fit() and rejects with AbortError', async () => {
    const model = sgdModel(40);
    const x = randomTensor([64, 4], 41), y = randomTensor([64, 2], 42);
    const before = await values(model);
    const tensors = tf.memory().numTensors;
    const controller = new AbortController();
    const cb = lvaCallback({ x, y, rowsPerFeature: 0, signal: controller.signal });
    let batchesSeen = 0;
    const counter = new (class extends tf.Callback {
      override async onBatchEnd() {
        batchesSeen++;
      }
    })();
    await expect(model.fit(x, y, { epochs: 5, batchSize: 8, verbose: 0, callbacks: [cb, counter, abortAt(controller, 1, 3)] })).rejects.toMatchObject({
      name: 'AbortError',
      message: expect.stringMatching(/aborted at epoch 1, batch 4; every weight was restored to its value before fit\(\)/),
    });
    expect(cb.decision?.kind).toBe('gradient-descent');
    expect(batchesSeen).toBe(8 + 5); // stopped one batch after the abort, not at the end of the 5 epochs
    expect(await values(model)).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    // The model is usable afterwards: fit() runs again and trains.
    await model.fit(x, y, { epochs: 1, batchSize: 8, verbose: 0 });
    expect(await values(model)).not.toEqual(before);
    tf.dispose([x, y]);
  });

  it('an abort in the last batch still undoes the whole fit()', async () => {
    const model = sgdModel(43);
    const x = randomTensor([32, 4], 44), y = randomTensor([32, 2], 45);
    const before = await values(model);
    const controller = new AbortController();
    await expect(model.fit(x, y, { epochs: 2, batchSize: 8, verbose: 0, callbacks: [lvaCallback({ x, y, rowsPerFeature: 0, signal: controller.signal }), abortAt(controller, 1, 3)] })).rejects.toThrow(
      /aborted after the last batch; every weight was restored/,
    );
    expect(await values(model)).toEqual(before);
    tf.dispose([x, y]);
  });

  it('an abort during the analytic adaptation or before fit() leaves the model untouched', async () => {
    const model = sgdModel(46);
    const x = randomTensor([12, 4], 47), y = randomTensor([12, 2], 48);
    const before = await values(model);
    const tensors = tf.memory().numTensors;
    const controller = new AbortController();
    const cb = lvaCallback({ x, y, rowsPerFeature: 1, batchSize: 4, signal: controller.signal, onProgress: (p) => void (p.done >= 4 && controller.abort()) });
    await expect(model.fit(x, y, { epochs: 3, verbose: 0, callbacks: [cb] })).rejects.toThrow(/aborted during feature extraction; the model was not changed/);
    expect(cb.decisions).toEqual([]);
    expect(await values(model)).toEqual(before);
    await expect(model.fit(x, y, { epochs: 3, verbose: 0, callbacks: [lvaCallback({ x, y, signal: controller.signal })] })).rejects.toThrow(/aborted before fit\(\) started/);
    expect(await values(model)).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(() => lvaCallback({ x, y, signal: 'stop' as never })).toThrow(/signal must be an AbortSignal/);
    tf.dispose([x, y]);
  });

  it('without an abort, a signal changes nothing: the analytic path is bit-identical to the run without one', async () => {
    const a = sgdModel(49), b = sgdModel(49);
    const x = randomTensor([12, 4], 50), y = randomTensor([12, 2], 51);
    await a.fit(x, y, { epochs: 2, verbose: 0, callbacks: [lvaCallback({ x, y, rowsPerFeature: 1, regularization: 0.1 })] });
    await b.fit(x, y, { epochs: 2, verbose: 0, callbacks: [lvaCallback({ x, y, rowsPerFeature: 1, regularization: 0.1, signal: new AbortController().signal })] });
    expect(await values(b)).toEqual(await values(a));
    expect(await values(b)).not.toEqual(await values(sgdModel(49)));
    tf.dispose([x, y]);
  });
});
