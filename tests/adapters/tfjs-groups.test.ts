/**
 * adaptModel's `groups`: one id per target sample, for samples that are not independent (frames of one utterance).
 * Checked against the core solver run on features extracted here independently, with the groups expanded by hand;
 * grouping must change λ on correlated samples (leave-one-sample-out undersmooths there: bench/results/speech.md);
 * bad groups are refused with the model untouched and no tensor leaked.
 */
import * as tf from '@tensorflow/tfjs';
import { adaptModel, adaptModelFromDataset, chooseAdaptation } from '../../src/adapters/tfjs/index.js';
import { OptionError } from '../../src/core/index.js';
import { coreReference, groupedData, groupedModel } from '../helpers/grouped.js';
import { useBackend } from '../helpers/tf.js';

beforeAll(() => useBackend('cpu'));

const model = (seed: number) => groupedModel(seed);
/** 12 "utterances" × 6 frames of near-duplicates with correlated errors (tests/helpers/grouped.ts); ids 100 + g. */
const data = (seed: number) => groupedData(seed, { groups: 12, frames: 6, id: (g) => 100 + g });

describe('adaptModel groups', () => {
  it('chooses λ over whole groups: the same head as the core solver with the groups expanded by hand', async () => {
    const m = model(1), d = data(2);
    const { Z, Y, head, grouped: ref, plain } = await coreReference(m, d);
    expect(ref.kind === 'updated' || ref.kind === 'updated-with-cutoff').toBe(true);
    if (ref.kind !== 'updated' && ref.kind !== 'updated-with-cutoff') return;
    // the grouping matters here: leave-one-frame-out sees the frame's twins and picks a smaller λ
    expect(ref.diagnostics.regularization.lambda).toBeGreaterThan(plain.diagnostics.regularization.lambda * 2);

    const before = tf.memory().numTensors;
    const report = await adaptModel(m, d.x, d.y, { groups: d.groups });
    expect(tf.memory().numTensors).toBe(before);
    expect(report.outcome).toBe('written');
    expect(report.result.diagnostics.regularization.selection?.validation).toEqual({ kind: 'grouped-k-fold', groups: 12, folds: 5 });
    expect(report.result.diagnostics.regularization.lambda).toBeCloseTo(ref.diagnostics.regularization.lambda, 10);
    const written = Array.from(await m.getLayer('head').getWeights()[0]!.data());
    const expected = Array.from(ref.head.weights.data, Math.fround);
    for (let i = 0; i < written.length; i++) expect(written[i]).toBeCloseTo(expected[i]!, 5);
    m.dispose();
  });

  it('streamed rows keep the groups (K-fold over them from the accumulator’s statistics)', async () => {
    const m = model(3), d = data(4);
    const report = await adaptModel(m, d.x, d.y, { groups: d.groups, maxRowValuesInMemory: 16 * 8, batchSize: 8 });
    expect(report.mode).toBe('streamed');
    expect(report.result.diagnostics.regularization.selection?.validation).toMatchObject({ kind: 'grouped-k-fold', groups: 12 });
    m.dispose();
  });

  it('datasets carry the groups in their elements ({ xs, ys, groups }), in memory or streamed: the core solver’s λ and head', async () => {
    const m = model(7), d = data(8);
    const { grouped: ref, plain } = await coreReference(m, d);
    expect(ref.diagnostics.regularization.lambda).toBeGreaterThan(2 * plain.diagnostics.regularization.lambda);
    if (ref.kind !== 'updated' && ref.kind !== 'updated-with-cutoff') throw new Error(ref.kind);
    // batches of 8 cut through the utterances (6 frames each)
    const ds = () => tf.data.array(d.x.map((v, i) => ({ xs: v, ys: d.y[i]!, groups: d.groups[i]! }))).batch(8) as never;
    const before = tf.memory().numTensors;
    const weights = m.getWeights().map((w) => w.clone());
    const report = await adaptModelFromDataset(m, ds(), {});
    expect(report.result.diagnostics.regularization.selection?.validation).toEqual({ kind: 'grouped-k-fold', groups: 12, folds: 5 });
    expect(report.result.diagnostics.regularization.lambda).toBeCloseTo(ref.diagnostics.regularization.lambda, 10);
    const written = Array.from(await m.getLayer('head').getWeights()[0]!.data());
    written.forEach((v, i) => expect(v).toBeCloseTo(ref.head.weights.data[i]!, 5));
    m.setWeights(weights);
    const streamed = await adaptModelFromDataset(m, ds(), { maxRowValuesInMemory: 16 * 8 });
    expect(streamed.mode).toBe('streamed');
    expect(streamed.result.diagnostics.regularization.selection?.validation).toMatchObject({ kind: 'grouped-k-fold', groups: 12 });
    m.setWeights(weights);
    tf.dispose(weights);
    expect(tf.memory().numTensors).toBe(before);

    // groups in some elements only, or of the wrong length, are refused with the model untouched
    const snapshot = m.getWeights().map((w) => Array.from(w.dataSync()));
    const mixed = tf.data.array([
      { xs: tf.tensor2d(d.x.slice(0, 8)), ys: tf.tensor2d(d.y.slice(0, 8)), groups: d.groups.slice(0, 8) },
      { xs: tf.tensor2d(d.x.slice(8, 16)), ys: tf.tensor2d(d.y.slice(8, 16)) },
    ]) as never;
    await expect(adaptModelFromDataset(m, mixed)).rejects.toThrow(/dataset element 1 has no groups but the first element had them; give groups in every element or in none/);
    const short = tf.data.array([{ xs: tf.tensor2d(d.x.slice(0, 8)), ys: tf.tensor2d(d.y.slice(0, 8)), groups: d.groups.slice(0, 7) }]) as never;
    await expect(adaptModelFromDataset(m, short)).rejects.toThrow(/adaptModelFromDataset \(dataset element 0\): groups has 7 ids but x has 8 samples/);
    expect(m.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(snapshot);
    m.dispose();
  });

  it('refuses bad groups, classification heads and datasets, leaving the model as it was', async () => {
    const m = model(5), d = data(6);
    const weights = m.getWeights().map((w) => Array.from(w.dataSync()));
    const before = tf.memory().numTensors;
    await expect(adaptModel(m, d.x, d.y, { groups: d.groups.slice(1) })).rejects.toThrow(/groups has 71 ids but x has 72 samples; pass one group id per sample/);
    await expect(adaptModel(m, d.x, d.y, { groups: d.groups.map((g) => g + 0.5) })).rejects.toThrow(/groups\[0\] is 100.5; group ids must be integers/);
    await expect(adaptModel(m, d.x, d.y, { groups: 'utterance' as never })).rejects.toBeInstanceOf(OptionError);
    const ds = tf.data.array(d.x.map((v, i) => ({ xs: v, ys: d.y[i]! }))).batch(8) as never; // tensors only when iterated
    await expect(adaptModelFromDataset(m, ds, { groups: d.groups })).rejects.toThrow(/the groups option is for tensors; with a dataset put each batch's group ids in its element, \{ xs, ys, groups \}/);
    expect(tf.memory().numTensors).toBe(before);
    expect(m.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(weights);

    const input = tf.input({ shape: [2] });
    const out = tf.layers.dense({ units: 3, activation: 'softmax', name: 'cls' }).apply(tf.layers.dense({ units: 8, activation: 'tanh' }).apply(input) as tf.SymbolicTensor) as tf.SymbolicTensor;
    const clf = tf.model({ inputs: input, outputs: out });
    const labels = d.groups.map((g) => g % 3);
    const onehot = tf.oneHot(labels, 3);
    await expect(adaptModel(clf, d.x, onehot, { groups: d.groups })).rejects.toThrow(/groups are supported for the exact variant on regression heads; head "cls" ends in 'softmax'/);
    // The dataset path and the decision refuse the same way, with one message.
    const refusal = /groups are supported for regression heads; head "cls" ends in 'softmax' \(cross-entropy LVA chooses λ on its own folds over samples\)\. Pass loss: 'mse' to fit the logits with groups, or leave groups out\./;
    const grouped = tf.data.array(d.x.map((v, i) => ({ xs: v, ys: Array.from({ length: 3 }, (_, k) => (k === labels[i] ? 1 : 0)), groups: d.groups[i]! }))).batch(8) as never;
    await expect(adaptModelFromDataset(clf, grouped)).rejects.toThrow(refusal);
    clf.compile({ optimizer: tf.train.sgd(0.01), loss: 'categoricalCrossentropy' });
    await expect(chooseAdaptation(clf, d.x, onehot, { epochs: 1 }, { groups: d.groups })).rejects.toThrow(refusal);
    onehot.dispose();
    m.dispose();
    clf.dispose();
  });
});
