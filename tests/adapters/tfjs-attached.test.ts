/**
 * Source statistics attached to a tfjs model (issue 16): they survive model.save()/tf.loadLayersModel(), and
 * adaptModel, adaptModelFromDataset and lvaCallback use them when no `source` is given, giving the same head as the
 * explicit statistics; stale or foreign statistics are refused with the model left as it was.
 */
import * as tf from '@tensorflow/tfjs';
import { computeSourceStatistics as coreStatistics, lvaUpdate, matrix, roundTripSourceStatistics, SOURCE_STATISTICS_KEY, type Head } from '../../src/core/index.js';
import {
  adaptModel,
  adaptModelFromDataset,
  attachSourceStatistics,
  carrySourceStatistics,
  computeSourceStatistics,
  lvaCallback,
  readSourceStatistics,
} from '../../src/adapters/tfjs/index.js';
import { expectMatrixClose } from '../helpers/expect-close.js';
import { randomTensor, seedWeights, useBackend, weightValues } from '../helpers/tf.js';

// Decisions here are pinned to a fixed amount of work: budgetSeconds: Infinity wherever a test expects the folds to
// run, since the default budget (5 s) is wall time and a slower or busier machine would go over it (issue 13).

/** A 3 → 64 → 64 → 2 MLP: head width 64, so 12 target rows are "sparse" for the callback (≤ 0.25 × 65). Sequential or functional. */
function mlp(seed: number, kind: 'sequential' | 'functional' = 'sequential'): tf.LayersModel {
  const layers = () => [
    tf.layers.dense({ inputShape: [3], units: 64, activation: 'relu', name: 'fc1' }),
    tf.layers.dense({ units: 64, activation: 'tanh', name: 'fc2' }),
    tf.layers.dense({ units: 2, name: 'head' }),
  ];
  let model: tf.LayersModel;
  if (kind === 'sequential') model = tf.sequential({ layers: layers() });
  else {
    const input = tf.input({ shape: [3] });
    const out = layers().reduce<tf.SymbolicTensor>((t, l) => l.apply(t) as tf.SymbolicTensor, input);
    model = tf.model({ inputs: input, outputs: out });
  }
  seedWeights(model, seed);
  return model;
}

/** model.save() through a memory handler, the artifacts' JSON parts passed through JSON text as a file would be, then tf.loadLayersModel(). */
async function saveAndLoad(model: tf.LayersModel): Promise<{ loaded: tf.LayersModel; metadataBytes: number }> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => ((saved = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
  const json = JSON.stringify({ modelTopology: saved!.modelTopology, weightSpecs: saved!.weightSpecs, userDefinedMetadata: saved!.userDefinedMetadata });
  const parsed = JSON.parse(json);
  const loaded = await tf.loadLayersModel(tf.io.fromMemory({ ...parsed, weightData: saved!.weightData }));
  return { loaded, metadataBytes: JSON.stringify(parsed.userDefinedMetadata ?? {}).length };
}

const values = async (m: tf.LayersModel) => (await weightValues(m)).map((w) => Array.from(w));
async function headOf(m: tf.LayersModel): Promise<Head> {
  const [k, b] = m.getLayer('head').getWeights();
  return { weights: matrix(64, 2, await k!.data()), bias: Float64Array.from(await b!.data()) };
}

describe('source statistics attached to a tfjs model', () => {
  // Source inputs on [-1, 1]³, target inputs shifted: the source metric and the identity metric give different heads.
  let xSource: tf.Tensor, xTarget: tf.Tensor, yTarget: tf.Tensor;
  beforeAll(async () => {
    await useBackend('cpu');
    xSource = tf.tidy(() => randomTensor([600, 3], 11).tanh());
    xTarget = tf.tidy(() => randomTensor([12, 3], 12).tanh().add(0.4));
    yTarget = randomTensor([12, 2], 13);
  });
  afterAll(() => tf.dispose([xSource, xTarget, yTarget]));

  it('survive save/load, and adaptModel without source gives the head of explicit statistics (bit-identical to the same float32 rounding; within 1e-4 of unrounded ones)', async () => {
    const model = mlp(1);
    const before = tf.memory().numTensors;
    const attached = await attachSourceStatistics(model, xSource, { batchSize: 128 });
    expect(tf.memory().numTensors).toBe(before);
    expect(attached).toMatchObject({ head: { name: 'head', width: 64 }, precision: 'float32', statistics: { width: 64, count: 600 } });
    const { loaded, metadataBytes } = await saveAndLoad(model);
    expect(metadataBytes).toBeGreaterThan(4 * 64 * 65 / 2); // the covariance really is in model.json
    const read = await readSourceStatistics(loaded);
    expect(read?.current).toBe(true);

    const explicit = await computeSourceStatistics(model, xSource);
    const [viaAttached, viaRounded, viaExact, viaNone] = [(await saveAndLoad(model)).loaded, mlp(1), mlp(1), mlp(1)];
    const rA = await adaptModel(viaAttached, xTarget, yTarget);
    const rR = await adaptModel(viaRounded, xTarget, yTarget, { source: roundTripSourceStatistics(explicit) });
    const rE = await adaptModel(viaExact, xTarget, yTarget, { source: { x: xSource } });
    const rN = await adaptModel(viaNone, xTarget, yTarget);
    expect([rA.sourceStatistics, rR.sourceStatistics, rE.sourceStatistics, rN.sourceStatistics]).toEqual(['attached', 'explicit', 'explicit', 'none']);
    expect(rA.outcome).toBe('written');
    expect(rA.result.diagnostics.metric).toBe('source');
    expect(rN.result.diagnostics.metric).toBe('identity');
    // Same float64 solve on the same statistics: the same float32 weights.
    expect(await values(viaAttached)).toEqual(await values(viaRounded));
    // Against unrounded statistics: float32 rounding of the covariance moves the head by ~2e-5 relative here.
    const hA = await headOf(viaAttached), hE = await headOf(viaExact), hN = await headOf(viaNone);
    expectMatrixClose(hA.weights, hE.weights, { atol: 1e-4, rtol: 1e-4 });
    // …and the test can fail: without the statistics the head is measurably different.
    const gap = Math.max(...hA.weights.data.map((v, i) => Math.abs(v - hN.weights.data[i]!)));
    expect(gap).toBeGreaterThan(1e-3);
    // The attached statistics decode to the explicit ones (float32-rounded covariance, exact mean).
    const dec = read!.statistics;
    for (let i = 0; i < 64; i++) expect(dec.sum[i]).toBeCloseTo(explicit.sum[i]!, 8);
    for (let i = 0; i < 64 * 64; i += 97) expect(dec.moment.data[i]! / 600).toBeCloseTo(explicit.moment.data[i]! / 600, 5);
  });

  it('float64 precision stores them exactly: the same head as explicit statistics, to float64 rounding', async () => {
    const model = mlp(2);
    await attachSourceStatistics(model, xSource, { precision: 'float64' });
    const { loaded } = await saveAndLoad(model);
    const explicit = await computeSourceStatistics(model, xSource);
    const ref = mlp(2);
    const r = await adaptModel(loaded, xTarget, yTarget, { regularization: 0.05 });
    await adaptModel(ref, xTarget, yTarget, { regularization: 0.05, source: explicit });
    expect(r.sourceStatistics).toBe('attached');
    expectMatrixClose((await headOf(loaded)).weights, (await headOf(ref)).weights, { atol: 1e-7, rtol: 1e-6 });
  });

  it('the attached statistics equal an independent computation on the head-input features (ridge of the core)', async () => {
    const model = mlp(3);
    await attachSourceStatistics(model, xSource);
    const { loaded } = await saveAndLoad(model);
    const sub = tf.model({ inputs: model.inputs, outputs: model.getLayer('fc2').output as tf.SymbolicTensor });
    const zs = sub.predict(xSource, { batchSize: 600 }) as tf.Tensor, zt = sub.predict(xTarget) as tf.Tensor;
    const Zs = matrix(600, 64, await zs.data()), Zt = matrix(12, 64, await zt.data());
    const pre = await headOf(model);
    const expected = lvaUpdate(Zt, matrix(12, 2, await yTarget.data()), pre, { regularization: 0.2, source: roundTripSourceStatistics(coreStatistics(Zs)) });
    if (expected.kind !== 'updated') throw new Error(expected.kind);
    await adaptModel(loaded, xTarget, yTarget, { regularization: 0.2 });
    expectMatrixClose((await headOf(loaded)).weights, expected.head.weights, { atol: 2e-6, rtol: 1e-5 });
    tf.dispose([zs, zt]);
  });

  it.each(['functional', 'sequential'] as const)('lvaCallback and adaptModelFromDataset pick them up too (%s model)', async (kind) => {
    const model = mlp(4, kind);
    await attachSourceStatistics(model, xSource);
    const { loaded } = await saveAndLoad(model);
    // tfjs hands callbacks a Sequential's internal model (rebuilt by compile()), which has no metadata: a Sequential
    // loaded from disk must be seen once (readSourceStatistics, before or after compile). A functional model needs nothing.
    if (kind === 'sequential') expect((await readSourceStatistics(loaded))?.current).toBe(true);
    loaded.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
    const ref = mlp(4, kind);
    await adaptModel(ref, xTarget, yTarget, { source: roundTripSourceStatistics(await computeSourceStatistics(model, xSource)) });
    // rowsPerFeature: Infinity forces the closed form (the data-driven default may pick the fit on these random targets).
    const cb = lvaCallback({ x: xTarget, y: yTarget, rowsPerFeature: Infinity });
    await loaded.fit(xTarget, yTarget, { epochs: 3, batchSize: 4, callbacks: [cb], verbose: 0 });
    expect(cb.decision?.kind).toBe('analytic');
    expect(cb.decision?.report?.sourceStatistics).toBe('attached');
    expect(await values(loaded)).toEqual(await values(ref));

    const viaDataset = (await saveAndLoad(model)).loaded;
    const ds = tf.data.zip({ xs: tf.data.array(tf.unstack(xTarget)), ys: tf.data.array(tf.unstack(yTarget)) }).batch(5) as never;
    const r = await adaptModelFromDataset(viaDataset, ds);
    expect(r.sourceStatistics).toBe('attached');
    expectMatrixClose((await headOf(viaDataset)).weights, (await headOf(ref)).weights, { atol: 1e-6, rtol: 1e-5 });
  });

  it('a Sequential model attached in this session needs nothing more: attach, compile, fit with the callback', async () => {
    const model = mlp(11);
    await attachSourceStatistics(model, xSource);
    model.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    // The data-driven default's folds use them too (its choice records the metric); rowsPerFeature: Infinity then
    // forces the closed form, whose report says where its statistics came from.
    const twin = mlp(11);
    await attachSourceStatistics(twin, xSource);
    twin.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    const auto = lvaCallback({ budgetSeconds: Infinity, x: xTarget, y: yTarget });
    await twin.fit(xTarget, yTarget, { epochs: 1, callbacks: [auto], verbose: 0 });
    expect(auto.decision?.choice).toMatchObject({ kind: 'cross-validated', metric: 'attached' });
    twin.dispose();
    const cb = lvaCallback({ x: xTarget, y: yTarget, rowsPerFeature: Infinity });
    await model.fit(xTarget, yTarget, { epochs: 1, callbacks: [cb], verbose: 0 });
    expect(cb.decision?.report?.sourceStatistics).toBe('attached');
    // …and a loaded Sequential that nothing has read is adapted without them: the report says so.
    const loaded = (await saveAndLoad(model)).loaded;
    loaded.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    const cb2 = lvaCallback({ x: xTarget, y: yTarget, rowsPerFeature: Infinity });
    await loaded.fit(xTarget, yTarget, { epochs: 1, callbacks: [cb2], verbose: 0 });
    expect(cb2.decision?.report?.sourceStatistics).toBe('none');
  });

  it('explicit source wins over attached statistics', async () => {
    const model = mlp(5);
    await attachSourceStatistics(model, xSource);
    const other = tf.tidy(() => randomTensor([300, 3], 21).mul(2));
    const ref = mlp(5);
    const r = await adaptModel(model, xTarget, yTarget, { source: { x: other } });
    await adaptModel(ref, xTarget, yTarget, { source: { x: other } });
    expect(r.sourceStatistics).toBe('explicit');
    expect(await values(model)).toEqual(await values(ref));
    other.dispose();
  });

  it('after the head changed they are refused (model untouched) until carried forward or allowed', async () => {
    const model = mlp(6, 'functional');
    await attachSourceStatistics(model, xSource);
    await adaptModel(model, xTarget, yTarget); // writes a new head: the stamp no longer matches
    expect((await readSourceStatistics(model))?.current).toBe(false);
    const { loaded } = await saveAndLoad(model);
    const before = await values(loaded);
    const n0 = tf.memory().numTensors;
    await expect(adaptModel(loaded, xTarget, yTarget)).rejects.toThrow(/adapted or fine-tuned since.*carrySourceStatistics\(model\).*allowStaleSourceStatistics: true/s);
    expect(tf.memory().numTensors).toBe(n0);
    expect(await values(loaded)).toEqual(before);
    // The callback rejects fit() the same way rather than quietly fine-tuning.
    loaded.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    await expect(loaded.fit(xTarget, yTarget, { epochs: 1, callbacks: [lvaCallback({ x: xTarget, y: yTarget })], verbose: 0 })).rejects.toThrow(/allowStaleSourceStatistics/);
    expect(await values(loaded)).toEqual(before);

    const allowed = (await saveAndLoad(model)).loaded;
    const ra = await adaptModel(allowed, xTarget, yTarget, { allowStaleSourceStatistics: true });
    expect(ra.sourceStatistics).toBe('attached');
    await carrySourceStatistics(loaded);
    expect((await readSourceStatistics(loaded))?.current).toBe(true);
    const rc = await adaptModel(loaded, xTarget, yTarget);
    expect(rc.sourceStatistics).toBe('attached');
    expect(await values(loaded)).toEqual(await values(allowed));
  });

  it('carrySourceStatistics: true re-stamps them after adapting (explicit statistics become attached)', async () => {
    const model = mlp(7);
    await adaptModel(model, xTarget, yTarget, { source: { x: xSource }, carrySourceStatistics: true });
    const read = await readSourceStatistics(model);
    expect(read?.current).toBe(true);
    const { loaded } = await saveAndLoad(model);
    expect((await adaptModel(loaded, xTarget, yTarget)).sourceStatistics).toBe('attached');
  });

  it('statistics of another width or another layer are refused with the fix named; a wrong-width attach too', async () => {
    const narrow = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 8, activation: 'relu', name: 'fc' }), tf.layers.dense({ units: 2, name: 'head' })] });
    seedWeights(narrow, 8);
    await attachSourceStatistics(narrow, xSource);
    const model = mlp(8);
    model.setUserDefinedMetadata({ [SOURCE_STATISTICS_KEY]: (narrow.getUserDefinedMetadata() as Record<string, unknown>)[SOURCE_STATISTICS_KEY] });
    const before = await values(model);
    await expect(adaptModel(model, xTarget, yTarget)).rejects.toThrow(/attached to the model are 8 wide \(head "head"\) but head "head" takes 64 inputs.*attachSourceStatistics/);
    expect(await values(model)).toEqual(before);
    await expect(attachSourceStatistics(model, await computeSourceStatistics(narrow, xSource))).rejects.toThrow(/width 8 but head "head" takes 64 inputs/);
    const renamed = mlp(8);
    const enc = (narrow.getUserDefinedMetadata() as Record<string, { head: object }>)[SOURCE_STATISTICS_KEY]!;
    await attachSourceStatistics(renamed, xSource);
    const own = (renamed.getUserDefinedMetadata() as Record<string, { head: object }>)[SOURCE_STATISTICS_KEY]!;
    renamed.setUserDefinedMetadata({ [SOURCE_STATISTICS_KEY]: { ...own, head: { ...own.head, name: 'fc9' } } });
    await expect(adaptModel(renamed, xTarget, yTarget)).rejects.toThrow(/computed for head "fc9", not "head"/);
    void enc;
  });

  it('unlabelled target inputs: their statistics form the metric (same head as passing them as source), over attached ones; not with source', async () => {
    const xu = tf.tidy(() => randomTensor([200, 3], 31).tanh().add(0.4));
    const model = mlp(10, 'functional');
    await attachSourceStatistics(model, xSource);
    const ref = mlp(10, 'functional');
    const r = await adaptModel(model, xTarget, yTarget, { unlabelled: { x: xu } });
    await adaptModel(ref, xTarget, yTarget, { source: { x: xu } });
    expect(r.sourceStatistics).toBe('unlabelled-target');
    expect(r.result.diagnostics.metric).toBe('source');
    expect(await values(model)).toEqual(await values(ref));
    await expect(adaptModel(mlp(10), xTarget, yTarget, { unlabelled: { x: xu }, source: { x: xSource } })).rejects.toThrow(/pass source or unlabelled, not both/);
    const cbModel = mlp(10, 'functional');
    cbModel.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    const cb = lvaCallback({ x: xTarget, y: yTarget, unlabelled: { x: xu }, rowsPerFeature: Infinity });
    await cbModel.fit(xTarget, yTarget, { epochs: 1, callbacks: [cb], verbose: 0 });
    expect(cb.decision?.report?.sourceStatistics).toBe('unlabelled-target');
    expect(await values(cbModel)).toEqual(await values(ref));
    xu.dispose();
  });

  it('corrupt metadata is refused clearly', async () => {
    const model = mlp(9);
    await attachSourceStatistics(model, xSource);
    const own = (model.getUserDefinedMetadata() as Record<string, { covariance: string }>)[SOURCE_STATISTICS_KEY]!;
    model.setUserDefinedMetadata({ [SOURCE_STATISTICS_KEY]: { ...own, covariance: own.covariance.slice(0, 400) } });
    await expect(adaptModel(model, xTarget, yTarget)).rejects.toThrow(/covariance holds 300 bytes but 2080 float32 values need 8320; the attached statistics are corrupt/);
    model.setUserDefinedMetadata({ [SOURCE_STATISTICS_KEY]: { format: 'something-else' } });
    await expect(adaptModel(model, xTarget, yTarget)).rejects.toThrow(/not in the lva-transfer\/source-statistics format/);
  });
});
