/**
 * adaptModel on real tfjs models: the written head equals the core solution computed on features extracted
 * independently (chained layer.apply, not the adapter's sub-model), for every supported head kind.
 */
import * as tf from '@tensorflow/tfjs';
import { applyHead, lvaUpdate, matrix, type Head, type LvaResult } from '../../src/core/index.js';
import { lvaClassifyCrossEntropy } from '../../src/core/classification.js';
import { adaptModel, findHead, im2col, UnsupportedModelError } from '../../src/adapters/tfjs/index.js';
import { expectMatrixClose } from '../helpers/expect-close.js';
import { randomTensor, seedWeights, useBackend, weightValues } from '../helpers/tf.js';

function solved(r: LvaResult): Head {
  if (r.kind !== 'updated' && r.kind !== 'updated-with-cutoff') throw new Error(`expected an update, got ${r.kind}`);
  return r.head;
}

/** Head-input features by chaining layer.apply up to (not including) the head, in inference mode. */
function chainedFeatures(model: tf.LayersModel, x: tf.Tensor, headName: string): tf.Tensor {
  return tf.tidy(() => {
    let t = x;
    for (const layer of model.layers) {
      if (layer.name === headName) break;
      if (layer.getClassName() === 'InputLayer') continue;
      t = layer.apply(t, { training: false }) as tf.Tensor;
    }
    return t;
  });
}

async function asMatrix(t: tf.Tensor): Promise<{ rows: number; cols: number; data: Float64Array }> {
  const cols = t.shape[t.shape.length - 1]!;
  return matrix(t.size / cols, cols, await t.data());
}

describe.each(['cpu', 'wasm'] as const)('adaptModel on the %s backend', (backend) => {
  beforeAll(async () => useBackend(backend));

  it('Sequential Dense head: predictions on the target rows equal the core solution on independently extracted features', async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [5], units: 12, activation: 'relu', name: 'fc1' }),
        tf.layers.dropout({ rate: 0.5 }),
        tf.layers.dense({ units: 3, name: 'head' }),
      ],
    });
    seedWeights(model, 1);
    const x = randomTensor([20, 5], 2), y = randomTensor([20, 3], 3);
    const feats = chainedFeatures(model, x, 'head');
    const z = await asMatrix(feats);
    const pre: Head = { weights: matrix(12, 3, await model.getLayer('head').getWeights()[0]!.data()), bias: Float64Array.from(await model.getLayer('head').getWeights()[1]!.data()) };
    const expected = solved(lvaUpdate(z, matrix(20, 3, await y.data()), pre, { regularization: 'none' }));
    const report = await adaptModel(model, x, y, { regularization: 'none' });
    expect(report.outcome).toBe('written');
    expect(report).toMatchObject({ layer: 'head', kind: 'dense', rows: 20, mode: 'rows' });
    const pred = model.predict(x) as tf.Tensor;
    expectMatrixClose(await asMatrix(pred), applyHead(z, expected), { atol: 1e-4, rtol: 1e-4 });
    tf.dispose([x, y, feats, pred]);
  });

  it('functional model with a branch and a bias-free head; fixed λ', async () => {
    const input = tf.input({ shape: [4] });
    const a = tf.layers.dense({ units: 6, activation: 'tanh', name: 'a' }).apply(input) as tf.SymbolicTensor;
    const b = tf.layers.dense({ units: 5, activation: 'relu', name: 'b' }).apply(input) as tf.SymbolicTensor;
    const cat = tf.layers.concatenate({ name: 'cat' }).apply([a, b]) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 2, useBias: false, name: 'head' }).apply(cat) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    seedWeights(model, 4);
    const x = randomTensor([30, 4], 5), y = randomTensor([30, 2], 6);
    const feats = tf.model({ inputs: input, outputs: cat }).predict(x) as tf.Tensor;
    const z = await asMatrix(feats);
    const pre: Head = { weights: matrix(11, 2, await model.getLayer('head').getWeights()[0]!.data()) };
    const expected = solved(lvaUpdate(z, matrix(30, 2, await y.data()), pre, { regularization: 0.5 }));
    const report = await adaptModel(model, x, y, { regularization: 0.5 });
    expect(report.outcome).toBe('written');
    expectMatrixClose(matrix(11, 2, await model.getLayer('head').getWeights()[0]!.data()), expected.weights, { atol: 1e-5, rtol: 1e-4 });
    tf.dispose([x, y, feats]);
  });

  it.each([
    ['same', 1, true],
    ['valid', 1, false],
    ['same', 2, true],
    ['valid', 2, true],
  ] as const)('Conv2D head (padding %s, stride %i, bias %p): im2col·W equals the layer output, and the fit equals the core solution', async (padding, stride, useBias) => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [9, 8, 2], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }),
        tf.layers.batchNormalization({ name: 'bn' }),
        tf.layers.conv2d({ filters: 2, kernelSize: [3, 2], strides: stride, padding, useBias, name: 'head' }),
      ],
    });
    seedWeights(model, 7);
    const head = findHead(model);
    expect(head).toMatchObject({ kind: 'conv2d', inputWidth: 3 * 2 * 4, outputs: 2 });
    const x = randomTensor([3, 9, 8, 2], 8);
    const feats = chainedFeatures(model, x, 'head');
    const { rows: u, outH, outW } = im2col(await feats.data(), feats.shape as [number, number, number, number], head.conv!);
    const w = model.getLayer('head').getWeights();
    const pre: Head = { weights: matrix(24, 2, await w[0]!.data()), ...(useBias ? { bias: Float64Array.from(await w[1]!.data()) } : {}) };
    const direct = model.getLayer('head').apply(feats) as tf.Tensor;
    expect(direct.shape).toEqual([3, outH, outW, 2]);
    expectMatrixClose(applyHead(u, pre), await asMatrix(direct), { atol: 2e-5, rtol: 1e-4 });
    const y = randomTensor(direct.shape, 9);
    const expected = solved(lvaUpdate(u, await asMatrix(y), pre, { regularization: 0.1 }));
    const report = await adaptModel(model, x, y, { regularization: 0.1 });
    expect(report.rows).toBe(3 * outH * outW);
    const pred = model.predict(x) as tf.Tensor;
    expectMatrixClose(await asMatrix(pred), applyHead(u, expected), { atol: 1e-4, rtol: 1e-3 });
    tf.dispose([x, y, feats, direct, pred]);
  });

  it("'auto' on a Conv2D head cross-validates over samples: each sample's output positions form one group", async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [9, 8, 2], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }),
        tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', name: 'head' }),
      ],
    });
    seedWeights(model, 13);
    const head = findHead(model);
    const x = randomTensor([8, 9, 8, 2], 14);
    const feats = chainedFeatures(model, x, 'head');
    const { rows: u } = im2col(await feats.data(), feats.shape as [number, number, number, number], head.conv!);
    const w = model.getLayer('head').getWeights();
    const pre: Head = { weights: matrix(36, 2, await w[0]!.data()), bias: Float64Array.from(await w[1]!.data()) };
    const y = randomTensor([8, 9, 8, 2], 15);
    // Independent grouping: row i of the im2col matrix belongs to sample ⌊i / 72⌋ (9 × 8 positions per sample).
    const expected = lvaUpdate(u, await asMatrix(y), pre, { groups: Array.from({ length: u.rows }, (_, i) => Math.floor(i / 72)) });
    const report = await adaptModel(model, x, y, { batchSize: 3 }); // batches that split the samples 3 + 3 + 2
    expect(report.result.diagnostics.regularization.selection?.validation).toEqual({ kind: 'grouped-k-fold', groups: 8, folds: 5 });
    expect(report.result.diagnostics.regularization.lambda).toBeCloseTo(expected.diagnostics.regularization.lambda, 6);
    expect(expected.kind).toBe('updated');
    expect(report.outcome).toBe('written');
    {
      const pred = model.predict(x) as tf.Tensor;
      expectMatrixClose(await asMatrix(pred), applyHead(u, solved(expected)), { atol: 1e-4, rtol: 1e-3 });
      pred.dispose();
    }
    // Streamed (beyond maxRowValuesInMemory), the accumulator keeps 5 folds of samples and still cross-validates over them.
    seedWeights(model, 13);
    const streamed = await adaptModel(model, x, y, { batchSize: 3, maxRowValuesInMemory: 0 });
    expect(streamed.mode).toBe('streamed');
    expect(streamed.result.diagnostics.regularization.selection?.validation).toEqual({ kind: 'grouped-k-fold', groups: 8, folds: 5 });
    tf.dispose([x, y, feats]);
  });

  // tfjs cannot run 'causal' Conv1D (NotImplementedError), so such a model never reaches us.
  it.each([['same'], ['valid']] as const)('Conv1D head (padding %s, dilation 2)', async (padding) => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv1d({ inputShape: [12, 3], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }),
        tf.layers.conv1d({ filters: 2, kernelSize: 3, padding, dilationRate: 2, name: 'head' }),
      ],
    });
    seedWeights(model, 10);
    const x = randomTensor([4, 12, 3], 11);
    const feats = chainedFeatures(model, x, 'head');
    const head = findHead(model);
    const [b, L, C] = feats.shape as [number, number, number];
    const { rows: u } = im2col(await feats.data(), [b, 1, L, C], head.conv!);
    const w = model.getLayer('head').getWeights();
    const pre: Head = { weights: matrix(12, 2, await w[0]!.data()), bias: Float64Array.from(await w[1]!.data()) };
    const direct = model.getLayer('head').apply(feats) as tf.Tensor;
    expectMatrixClose(applyHead(u, pre), await asMatrix(direct), { atol: 2e-5, rtol: 1e-4 });
    const y = randomTensor(direct.shape, 12);
    const expected = solved(lvaUpdate(u, await asMatrix(y), pre, { regularization: 0.2 }));
    await adaptModel(model, x, y, { regularization: 0.2 });
    const pred = model.predict(x) as tf.Tensor;
    expectMatrixClose(await asMatrix(pred), applyHead(u, expected), { atol: 1e-4, rtol: 1e-3 });
    tf.dispose([x, y, feats, direct, pred]);
  });

  it.each([['TimeDistributed(Dense)', true], ['Dense on a sequence', false]])('%s head: batch × time flattened into rows', async (_name, td) => {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [6, 3], units: 5, activation: 'relu' }),
        td ? tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 2 }), name: 'head' }) : tf.layers.dense({ units: 2, name: 'head' }),
      ],
    });
    seedWeights(model, 13);
    const x = randomTensor([4, 6, 3], 14), y = randomTensor([4, 6, 2], 15);
    const feats = chainedFeatures(model, x, 'head');
    const z = await asMatrix(feats);
    const w = model.getLayer('head').getWeights();
    const pre: Head = { weights: matrix(5, 2, await w[0]!.data()), bias: Float64Array.from(await w[1]!.data()) };
    const expected = solved(lvaUpdate(z, await asMatrix(y), pre, { regularization: 'none' }));
    const report = await adaptModel(model, x, y, { regularization: 'none' });
    expect(report.kind).toBe(td ? 'time-distributed-dense' : 'dense');
    expect(report.rows).toBe(24);
    const pred = model.predict(x) as tf.Tensor;
    expectMatrixClose(await asMatrix(pred), applyHead(z, expected), { atol: 1e-4, rtol: 1e-3 });
    // With 'auto' the six time steps of a sequence are one group: λ is cross-validated over sequences.
    seedWeights(model, 13);
    const auto = await adaptModel(model, x, y);
    const byHand = lvaUpdate(z, await asMatrix(y), pre, { groups: Array.from({ length: 24 }, (_, i) => Math.floor(i / 6)) });
    expect(auto.result.diagnostics.regularization.selection?.validation).toEqual({ kind: 'grouped-k-fold', groups: 4, folds: 4 });
    expect(auto.result.diagnostics.regularization.lambda).toBeCloseTo(byHand.diagnostics.regularization.lambda, 6);
    tf.dispose([x, y, feats, pred]);
  });
});

describe('adaptModel behaviour', () => {
  beforeAll(async () => useBackend('cpu'));

  function mlp(seed: number, headActivation: 'linear' | 'tanh' | 'softmax' | 'relu' = 'linear'): tf.LayersModel {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [4], units: 10, activation: 'relu', name: 'fc1' }),
        tf.layers.batchNormalization({ name: 'bn' }),
        tf.layers.dense({ units: 2, activation: headActivation, name: 'head' }),
      ],
    });
    seedWeights(model, seed);
    return model;
  }

  it('leaves BatchNorm moving statistics and every non-head weight bit-identical', async () => {
    const model = mlp(20);
    const before = await weightValues(model);
    const x = randomTensor([16, 4], 21, 3), y = randomTensor([16, 2], 22);
    const report = await adaptModel(model, x, y, { regularization: 0.1 });
    expect(report.outcome).toBe('written');
    const after = await weightValues(model);
    const headIdx = model.weights.map((w, i) => [w.name, i] as const).filter(([n]) => n.startsWith('head')).map(([, i]) => i);
    after.forEach((w, i) => {
      if (headIdx.includes(i)) expect(Array.from(w)).not.toEqual(Array.from(before[i]!));
      else expect(Array.from(w)).toEqual(Array.from(before[i]!));
    });
    tf.dispose([x, y]);
  });

  it('fits a tanh head in pre-activation space', async () => {
    const model = mlp(23, 'tanh');
    const x = randomTensor([6, 4], 24);
    const y = tf.tidy(() => tf.tanh(randomTensor([6, 2], 25)));
    const report = await adaptModel(model, x, y, { regularization: 'none' });
    expect(report.space).toBe('pre-activation');
    const pred = model.predict(x) as tf.Tensor;
    expectMatrixClose(await asMatrix(pred), await asMatrix(y), { atol: 1e-4, rtol: 1e-3 });
    tf.dispose([x, y, pred]);
  });

  it('perturb variant equals the exact variant when the feature map is linear (J_F·δx = F(x̃) − F(x))', async () => {
    const make = () => {
      const m = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 8, useBias: false, name: 'lin' }), tf.layers.dense({ units: 1, name: 'head' })] });
      seedWeights(m, 26);
      return m;
    };
    const a = make(), b = make();
    const xs = randomTensor([12, 3], 27), xt = tf.tidy(() => tf.add(xs, randomTensor([12, 3], 28, 0.3))), y = randomTensor([12, 1], 29);
    await adaptModel(a, xt, y, { regularization: 0.05 });
    const r = await adaptModel(b, xt, y, { regularization: 0.05, variant: 'perturb', paired: { x: xs }, step: 0.5 });
    expect(r.variant).toBe('perturb');
    const wa = await a.getLayer('head').getWeights()[0]!.data(), wb = await b.getLayer('head').getWeights()[0]!.data();
    expectMatrixClose(matrix(8, 1, wb), matrix(8, 1, wa), { atol: 1e-4, rtol: 1e-3 });
    tf.dispose([xs, xt, y]);
  });

  it('rolls back when the validation loss gets worse, leaving the head bit-identical', async () => {
    const model = mlp(30);
    const before = await weightValues(model);
    const x = randomTensor([8, 4], 31), y = randomTensor([8, 2], 32, 5);
    // Validation targets are the model's own predictions: any change makes them worse.
    const vx = randomTensor([40, 4], 33);
    const vy = model.predict(vx) as tf.Tensor;
    const report = await adaptModel(model, x, y, { regularization: 1e-3, validation: { x: vx, y: vy } });
    expect(report.outcome).toBe('rolled-back');
    expect(report.validation!.after).toBeGreaterThan(report.validation!.before);
    expect((await weightValues(model)).map((w) => Array.from(w))).toEqual(before.map((w) => Array.from(w)));
    tf.dispose([x, y, vx, vy]);
  });

  it('leaves the model untouched when writing fails midway, and rethrows', async () => {
    const model = mlp(34);
    const before = await weightValues(model);
    const layer = model.getLayer('head');
    const original = layer.setWeights.bind(layer);
    let calls = 0;
    layer.setWeights = (w: tf.Tensor[]) => {
      calls++;
      if (calls === 1) {
        original([w[0]!, w[1]!]); // half-written state…
        throw new Error('injected write failure');
      }
      original(w);
    };
    const x = randomTensor([10, 4], 35), y = randomTensor([10, 2], 36);
    await expect(adaptModel(model, x, y, { regularization: 0.1 })).rejects.toThrow('injected write failure');
    layer.setWeights = original;
    expect((await weightValues(model)).map((w) => Array.from(w))).toEqual(before.map((w) => Array.from(w)));
    tf.dispose([x, y]);
  });

  it('does not leak tensors across 50 adaptations', async () => {
    const model = mlp(37);
    const x = randomTensor([12, 4], 38), y = randomTensor([12, 2], 39);
    await adaptModel(model, x, y);
    const count = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) await adaptModel(model, x, y, { regularization: i % 2 ? 'auto' : 0.1 });
    expect(tf.memory().numTensors).toBe(count);
    tf.dispose([x, y]);
  });

  it('streams through the accumulator (GCV) when the rows exceed the in-memory budget, matching the in-memory fixed-λ solution', async () => {
    const a = mlp(40), b = mlp(40);
    const x = randomTensor([64, 4], 41), y = randomTensor([64, 2], 42);
    const ra = await adaptModel(a, x, y, { regularization: 0.3, batchSize: 16 });
    const rb = await adaptModel(b, x, y, { regularization: 0.3, batchSize: 16, maxRowValuesInMemory: 100 });
    expect(ra.mode).toBe('rows');
    expect(rb.mode).toBe('streamed');
    expectMatrixClose(matrix(10, 2, await b.getLayer('head').getWeights()[0]!.data()), matrix(10, 2, await a.getLayer('head').getWeights()[0]!.data()), { atol: 1e-6, rtol: 1e-5 });
    tf.dispose([x, y]);
  });

  it('refuses non-invertible heads with a message naming the activation, and classification losses on regression heads', async () => {
    const x = randomTensor([6, 4], 43), y = randomTensor([6, 2], 44);
    await expect(adaptModel(mlp(46, 'relu'), x, y)).rejects.toThrow(/activation 'relu', which is not invertible/);
    await expect(adaptModel(mlp(47, 'linear'), x, y, { loss: 'cross-entropy' })).rejects.toThrow(/loss 'cross-entropy' needs a softmax or sigmoid head/);
    tf.dispose([x, y]);
  });

  it('softmax head: cross-entropy LVA equals the core solver on independently extracted features; integer labels = one-hot', async () => {
    const labels = [0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1];
    const x = randomTensor([12, 4], 48, 2);
    const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), 2);
    const a = mlp(49, 'softmax'), b = mlp(49, 'softmax'), c = mlp(49, 'softmax');
    const feats = chainedFeatures(a, x, 'head');
    const z = await asMatrix(feats);
    const w = a.getLayer('head').getWeights();
    const pre: Head = { weights: matrix(10, 2, await w[0]!.data()), bias: Float64Array.from(await w[1]!.data()) };
    const expected = solved(lvaClassifyCrossEntropy(z, Int32Array.from(labels), pre, { regularization: 0.05 }));
    const ra = await adaptModel(a, x, onehot, { regularization: 0.05 });
    const rb = await adaptModel(b, x, tf.tensor1d(labels, 'int32'), { regularization: 0.05 });
    expect(ra.space).toBe('classification');
    expect((ra.result.diagnostics as { classification?: { variant: string } }).classification?.variant).toBe('cross-entropy');
    const wa = matrix(10, 2, await a.getLayer('head').getWeights()[0]!.data());
    expectMatrixClose(wa, expected.weights, { atol: 1e-5, rtol: 1e-4 });
    expectMatrixClose(matrix(10, 2, await b.getLayer('head').getWeights()[0]!.data()), wa, { atol: 0, rtol: 0 });
    expect(rb.outcome).toBe('written');
    const rc = await adaptModel(c, x, onehot, { loss: 'logit', regularization: 0.05 });
    expect((rc.result.diagnostics as { classification?: { variant: string } }).classification?.variant).toBe('logit');
    await expect(adaptModel(mlp(50, 'softmax'), x, tf.tensor1d(labels.map((l) => l + 1), 'int32'))).rejects.toThrow(/label \d+ is 2; class labels must be integers in \[0, 2\)/);
    tf.dispose([x, onehot, feats]);
  });

  it('gives clear errors for unknown layers, unsupported heads, shape mismatch and NaN targets', async () => {
    const model = mlp(47);
    const x = randomTensor([6, 4], 48);
    await expect(adaptModel(model, x, randomTensor([6, 2], 1), { layer: 'nope' })).rejects.toThrow(/no layer named "nope". Available: fc1, bn, head/);
    await expect(adaptModel(model, x, randomTensor([5, 2], 1))).rejects.toThrow(/x has 6 samples but y has 5/);
    await expect(adaptModel(model, x, randomTensor([6, 3], 1))).rejects.toThrow(/y has 3 values per position but head "head" has 2 units/);
    await expect(adaptModel(model, x, [[1, 2], [3, NaN], [1, 1], [1, 1], [1, 1], [1, 1]])).rejects.toThrow(/y contains NaN at row 1, column 1/);
    await expect(adaptModel(model, x, randomTensor([6, 2], 1), { regularisation: 1 } as never)).rejects.toThrow(/did you mean "regularization"/);
    const relu = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 3 }), tf.layers.reLU({ name: 'relu_out' })] });
    await expect(adaptModel(relu, x, randomTensor([6, 3], 1))).rejects.toThrow(UnsupportedModelError);
    await expect(adaptModel(relu, x, randomTensor([6, 3], 1))).rejects.toThrow(/output comes from "relu_out" \(ReLU\)/);
    tf.dispose(x);
  });
});

describe('adaptModel progress and cancellation', () => {
  beforeAll(async () => useBackend('cpu'));

  it('reports progress per batch and stops, model untouched, when the signal aborts', async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 6, activation: 'relu' }), tf.layers.dense({ units: 1, name: 'head' })] });
    seedWeights(model, 50);
    const before = (await weightValues(model)).map((w) => Array.from(w));
    const x = randomTensor([40, 3], 51), y = randomTensor([40, 1], 52);
    const seen: number[] = [];
    await adaptModel(model, x, y, { batchSize: 10, regularization: 0.1, onProgress: (p) => seen.push(p.done) });
    expect(seen).toEqual([10, 20, 30, 40]);
    const fresh = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 6, activation: 'relu' }), tf.layers.dense({ units: 1, name: 'head' })] });
    seedWeights(fresh, 50);
    const controller = new AbortController();
    await expect(
      adaptModel(fresh, x, y, { batchSize: 10, onProgress: (p) => p.done === 20 && controller.abort(), signal: controller.signal }),
    ).rejects.toThrow(/aborted during feature extraction; the model was not changed/);
    expect((await weightValues(fresh)).map((w) => Array.from(w))).toEqual(before);
    tf.dispose([x, y]);
  });
});
