/**
 * chooseAdaptation, adaptByChoice and lvaCallback with `groups` (one id per sample, for samples that are not
 * independent). The outer folds must hold out whole groups and count groups; the closed-form head of every fold must be
 * the core solver's (lvaUpdate with the groups of the fold's training rows, on features extracted here independently),
 * checked through its held-out losses; the final head must be the core solver's over all groups.
 */
import * as tf from '@tensorflow/tfjs';
import { adaptByChoice, chooseAdaptation, formatChoice } from '../../src/adapters/tfjs/index.js';
import { lvaCallback } from '../../src/callbacks/lva-callback.js';
import { lvaUpdate, matrix, OptionError, type LvaResult, type Matrix } from '../../src/core/index.js';
import { coreReference, groupedData, groupedModel, headAndFeatures } from '../helpers/grouped.js';
import { useBackend } from '../helpers/tf.js';

beforeAll(() => useBackend('cpu'));

const G = 10, F = 6; // 10 "utterances" × 6 frames

const model = (seed: number, compiled = false) => groupedModel(seed, compiled);
/** Frames of one utterance, near-duplicates with correlated errors (tests/helpers/grouped.ts), rows interleaved. */
const data = (seed: number) => groupedData(seed, { groups: G, frames: F, id: (g) => 7 * g + 3, interleave: true });
const features = headAndFeatures;

const rowsOf = (a: Matrix, rows: number[]): Matrix => matrix(rows.length, a.cols, Float64Array.from(rows.flatMap((r) => Array.from(a.data.subarray(r * a.cols, (r + 1) * a.cols)))));

/** Per-row mean squared error of the solved head on rows `rows` (float64, by hand). */
function heldOutLosses(result: LvaResult, Z: Matrix, y: number[][], rows: number[]): number[] {
  if (result.kind !== 'updated' && result.kind !== 'updated-with-cutoff') throw new Error(`reference solve returned ${result.kind}`);
  const { weights: W, bias } = result.head;
  return rows.map((r) => {
    let s = 0;
    for (let k = 0; k < 3; k++) {
      let v = bias?.[k] ?? 0;
      for (let j = 0; j < 16; j++) v += Z.data[r * 16 + j]! * W.data[j * 3 + k]!;
      s += (v - y[r]![k]!) ** 2;
    }
    return s / 3;
  });
}

/** Every group's rows share one fold, and every fold holds a whole number of groups. */
function expectGroupedFolds(fold: Int32Array, groups: number[]) {
  const foldOf = new Map<number, number>();
  groups.forEach((g, i) => {
    if (!foldOf.has(g)) foldOf.set(g, fold[i]!);
    expect(fold[i]).toBe(foldOf.get(g));
  });
  return foldOf;
}

describe('chooseAdaptation with groups', () => {
  it('holds out whole groups (leave-one-group-out for 10 groups), and each fold’s head is the core solver’s with that fold’s groups', async () => {
    const m = model(1), d = data(2);
    const before = tf.memory().numTensors;
    const choice = await chooseAdaptation(m, d.x, d.y, { epochs: 0 }, { groups: d.groups, budgetSeconds: Infinity });
    expect(tf.memory().numTensors).toBe(before);
    expect(choice.kind).toBe('cross-validated');
    if (choice.kind !== 'cross-validated') return;
    expect(choice.groups).toBe(G);
    expect(choice.folds).toBe(G); // autoFolds counts groups: leave-one-group-out up to 10
    const foldOf = expectGroupedFolds(choice.heldOut.fold, d.groups);
    expect(new Set(foldOf.values()).size).toBe(G);
    expect(choice.reason).toMatch(/cross-validation \(10 folds over 10 groups, paired\)/);
    expect(formatChoice(choice)).toMatch(/60 samples in 10 groups, folds over whole groups/);

    const { Z, head } = await features(m, d.x);
    const Y = matrix(d.y.length, 3, Float64Array.from(d.y.flat()));
    const got = choice.heldOut.losses.head!;
    let differs = 0;
    for (let f = 0; f < choice.folds; f++) {
      const train = d.x.map((_, i) => i).filter((i) => choice.heldOut.fold[i] !== f), test = d.x.map((_, i) => i).filter((i) => choice.heldOut.fold[i] === f);
      const ref = lvaUpdate(rowsOf(Z, train), rowsOf(Y, train), head, { groups: train.map((i) => d.groups[i]!) });
      const expected = heldOutLosses(ref, Z, d.y, test);
      test.forEach((row, j) => expect(got[row]).toBeCloseTo(expected[j]!, 3));
      // Without the fold's groups the core picks another λ, and the held-out losses differ: the check can fail.
      const plain = heldOutLosses(lvaUpdate(rowsOf(Z, train), rowsOf(Y, train), head), Z, d.y, test);
      if (test.some((row, j) => Math.abs(plain[j]! - got[row]!) > 1e-3 * Math.max(1, got[row]!))) differs++;
    }
    expect(differs).toBeGreaterThan(choice.folds / 2);
    m.dispose();
  });

  it('without groups the folds split utterances and the head’s CV loss is optimistic; with groups it is not', async () => {
    const m = model(3), d = data(4);
    const grouped = await chooseAdaptation(m, d.x, d.y, { epochs: 0 }, { groups: d.groups, budgetSeconds: Infinity });
    const plain = await chooseAdaptation(m, d.x, d.y, { epochs: 0 }, { budgetSeconds: Infinity });
    if (grouped.kind !== 'cross-validated' || plain.kind !== 'cross-validated') throw new Error('expected cross-validated decisions');
    expect(plain.groups).toBeUndefined();
    expect(plain.folds).toBe(5);
    // ungrouped folds put frames of one utterance on both sides
    const split = new Set(d.groups).size - new Set(d.groups.map((g, i) => `${g}:${plain.heldOut.fold[i]}`)).size;
    expect(split).toBeLessThan(0);
    const loss = (c: typeof grouped) => c.candidates.find((q) => q.path === 'head')!.loss;
    expect(loss(plain)).toBeLessThan(0.8 * loss(grouped));
    // deterministic from the seed; another seed deals the groups differently
    const again = await chooseAdaptation(m, d.x, d.y, { epochs: 0 }, { groups: d.groups, budgetSeconds: Infinity, folds: 3 });
    const same = await chooseAdaptation(m, d.x, d.y, { epochs: 0 }, { groups: d.groups, budgetSeconds: Infinity, folds: 3 });
    const other = await chooseAdaptation(m, d.x, d.y, { epochs: 0 }, { groups: d.groups, budgetSeconds: Infinity, folds: 3, seed: 5 });
    if (again.kind !== 'cross-validated' || same.kind !== 'cross-validated' || other.kind !== 'cross-validated') throw new Error('expected cross-validated decisions');
    expect(Array.from(again.heldOut.fold)).toEqual(Array.from(same.heldOut.fold));
    expect(Array.from(again.heldOut.fold)).not.toEqual(Array.from(other.heldOut.fold));
    expectGroupedFolds(other.heldOut.fold, d.groups);
    m.dispose();
  });

  it('is blind with too few groups for the head to choose λ over groups, and refuses bad groups with nothing leaked', async () => {
    const m = model(5), d = data(6);
    const three = d.groups.map((g) => g % 3);
    const blind = await chooseAdaptation(m, d.x, d.y, { epochs: 0 }, { groups: three, budgetSeconds: Infinity });
    expect(blind.kind).toBe('blind');
    expect(blind.reason).toMatch(/3 groups in 3 folds a fold trains on 2 groups/);
    const before = tf.memory().numTensors;
    await expect(chooseAdaptation(m, d.x, d.y, { epochs: 0 }, { groups: d.groups.slice(1) })).rejects.toThrow(/chooseAdaptation: groups has 59 ids but x has 60 samples/);
    await expect(chooseAdaptation(m, d.x, d.y, { epochs: 0 }, { groups: d.groups.map((g) => g / 2) })).rejects.toThrow(/groups\[\d+\] is \d+\.5; group ids must be integers/);
    await expect(adaptByChoice(m, d.x, d.y, { epochs: 0 }, { groups: 'utterance' as never })).rejects.toBeInstanceOf(OptionError);
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });
});

describe('adaptByChoice and lvaCallback with groups', () => {
  it('adaptByChoice writes the core solver’s head over all groups', async () => {
    const m = model(7), d = data(8);
    const { grouped: ref, plain } = await coreReference(m, d);
    expect(ref.diagnostics.regularization.lambda).toBeGreaterThan(2 * plain.diagnostics.regularization.lambda);
    const before = tf.memory().numTensors;
    const applied = await adaptByChoice(m, d.x, d.y, { epochs: 0 }, { groups: d.groups, budgetSeconds: Infinity });
    expect(tf.memory().numTensors).toBe(before);
    expect(applied.choice.path).toBe('head');
    expect(applied.report?.result.diagnostics.regularization.lambda).toBeCloseTo(ref.diagnostics.regularization.lambda, 8);
    if (ref.kind !== 'updated' && ref.kind !== 'updated-with-cutoff') throw new Error(ref.kind);
    const written = Array.from(await m.getLayer('head').getWeights()[0]!.data());
    written.forEach((v, i) => expect(v).toBeCloseTo(ref.head.weights.data[i]!, 4));
    m.dispose();
  });

  it('lvaCallback decides over whole groups and applies the grouped head', async () => {
    const m = model(9, true), d = data(10);
    const { grouped: ref } = await coreReference(m, d);
    if (ref.kind !== 'updated' && ref.kind !== 'updated-with-cutoff') throw new Error(ref.kind);
    const [xt, yt] = [tf.tensor2d(d.x), tf.tensor2d(d.y)];
    const before = tf.memory().numTensors;
    const cb = lvaCallback({ x: xt, y: yt, groups: d.groups, budgetSeconds: Infinity });
    await m.fit(xt, yt, { epochs: 2, batchSize: 16, verbose: 0, callbacks: [cb] });
    const choice = cb.decision?.choice;
    expect(choice?.kind).toBe('cross-validated');
    if (choice?.kind !== 'cross-validated') return;
    expect(choice.groups).toBe(G);
    expect(choice.folds).toBe(G);
    expectGroupedFolds(choice.heldOut.fold, d.groups);
    // an SGD step of 1e-4 barely moves the random head: the closed form wins, and is applied with the groups
    expect(cb.decision?.kind).toBe('analytic');
    expect(cb.decision?.report?.result.diagnostics.regularization.lambda).toBeCloseTo(ref.diagnostics.regularization.lambda, 8);
    const written = Array.from(await m.getLayer('head').getWeights()[0]!.data());
    written.forEach((v, i) => expect(v).toBeCloseTo(ref.head.weights.data[i]!, 4));
    expect(tf.memory().numTensors).toBe(before);
    await expect(m.fit(xt, yt, { epochs: 1, verbose: 0, callbacks: [lvaCallback({ x: xt, y: yt, groups: d.groups.slice(2), budgetSeconds: Infinity })] })).rejects.toThrow(/groups has 58 ids but x has 60 samples/);
    tf.dispose([xt, yt]);
    m.dispose();
  });

  it('with an explicit rowsPerFeature (the fixed threshold, no cross-validation) the analytic head is chosen over groups too', async () => {
    const m = model(11, true), d = data(12);
    const { grouped: ref, plain } = await coreReference(m, d);
    if (ref.kind !== 'updated' && ref.kind !== 'updated-with-cutoff') throw new Error(ref.kind);
    expect(ref.diagnostics.regularization.lambda).toBeGreaterThan(2 * plain.diagnostics.regularization.lambda);
    const [xt, yt] = [tf.tensor2d(d.x), tf.tensor2d(d.y)];
    const before = tf.memory().numTensors;
    const cb = lvaCallback({ x: xt, y: yt, groups: d.groups, rowsPerFeature: Infinity });
    await m.fit(xt, yt, { epochs: 2, batchSize: 16, verbose: 0, callbacks: [cb] });
    expect(cb.decision?.kind).toBe('analytic');
    expect(cb.decision?.choice).toBeUndefined();
    expect(cb.decision?.report?.result.diagnostics.regularization.lambda).toBeCloseTo(ref.diagnostics.regularization.lambda, 8);
    const written = Array.from(await m.getLayer('head').getWeights()[0]!.data());
    written.forEach((v, i) => expect(v).toBeCloseTo(ref.head.weights.data[i]!, 4));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([xt, yt]);
    m.dispose();
  });
});
