/**
 * adaptOnnxModel's `groups` (one id per sample) on the PyTorch-exported fixtures of fixtures/onnx: the λ and head
 * chosen over whole groups equal the tfjs-free core solver's (lvaUpdate with the groups) on the features torch computed
 * (ref.Z, independent of onnxruntime); a Conv head's 64 rows per image take the image's group; bad groups and
 * classification heads are refused.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lvaUpdate, matrix, OptionError, type LvaResult } from '../../src/core/index.js';
import { adaptOnnxModel } from '../../src/adapters/onnx/index.js';
import { expectArrayClose } from '../helpers/expect-close.js';
import { FIXTURES, readJson, readNpy } from '../helpers/fixtures.js';

const load = (name: string) => ({
  bytes: new Uint8Array(readFileSync(join(FIXTURES, 'onnx', `${name}.onnx`))),
  ref: readJson(`onnx/${name}.ref.json`) as any,
  x: readNpy(`onnx/${name}.x.npy`),
  y: readNpy(`onnx/${name}.y.npy`),
});
const lambda = (r: LvaResult) => r.diagnostics.regularization.lambda;
function solved(r: LvaResult) {
  if (r.kind !== 'updated' && r.kind !== 'updated-with-cutoff') throw new Error(`expected an update, got ${r.kind}`);
  return r.head;
}

describe('adaptOnnxModel groups', () => {
  it('Gemm head: λ and head chosen over whole groups equal the core solver’s on torch’s features', async () => {
    const f = load('mlp_gemm');
    const n = f.x.shape[0]!;
    const groups = Array.from({ length: n }, (_, i) => 20 + (i % 6)); // 6 interleaved groups of 8 samples
    const Z = matrix(n, 16, Float64Array.from((f.ref.Z as number[][]).flat()));
    const Y = matrix(n, 3, f.y.data);
    const head = { weights: matrix(16, 3, Float64Array.from((f.ref.W as number[][]).flat())), bias: Float64Array.from(f.ref.b as number[]) };
    const expected = lvaUpdate(Z, Y, head, { groups });
    const ungrouped = lvaUpdate(Z, Y, head);
    // the grouping changes λ here, so the comparison below can tell grouped from ungrouped
    expect(Math.abs(Math.log(lambda(expected) / lambda(ungrouped)))).toBeGreaterThan(0.1);

    const { report } = await adaptOnnxModel(f.bytes, { x: { data: f.x.data, shape: [...f.x.shape] }, y: { data: f.y.data, shape: [...f.y.shape] } }, { groups });
    expect(report.outcome).toBe('written');
    expect(report.result.diagnostics.regularization.selection?.validation).toEqual({ kind: 'grouped-k-fold', groups: 6, folds: 5 });
    expect(lambda(report.result) / lambda(expected)).toBeCloseTo(1, 3);
    const got = solved(report.result), want = solved(expected);
    const scale = Math.max(...Array.from(want.weights.data, Math.abs));
    expectArrayClose(got.weights.data, want.weights.data, { rtol: 1e-3, atol: 1e-3 * scale });

    // streamed (rows beyond maxRowValuesInMemory), the groups stay
    const streamed = await adaptOnnxModel(f.bytes, { x: { data: f.x.data, shape: [...f.x.shape] }, y: { data: f.y.data, shape: [...f.y.shape] } }, { groups, maxRowValuesInMemory: 0, batchSize: 5 });
    expect(streamed.report.mode).toBe('streamed');
    expect(streamed.report.result.diagnostics.regularization.selection?.validation).toMatchObject({ kind: 'grouped-k-fold', groups: 6 });
  });

  it('Conv head: the 64 rows of an image take the image’s group', async () => {
    const f = load('cnn_conv_head');
    const imageGroups = [5, 5, 6, 7]; // 3 groups over 4 images
    const Z = matrix(256, 200, Float64Array.from((f.ref.Z as number[][]).flat()));
    const W = matrix(200, 1, Float64Array.from((f.ref.W as number[][]).flat()));
    const rowGroups = Array.from({ length: 256 }, (_, r) => imageGroups[Math.floor(r / 64)]!); // NumPy rows: (n·H + i)·W + j
    const expected = lvaUpdate(Z, matrix(256, 1, f.y.data), { weights: W }, { groups: rowGroups });
    const perImage = lvaUpdate(Z, matrix(256, 1, f.y.data), { weights: W }, { groups: Array.from({ length: 256 }, (_, r) => Math.floor(r / 64)) });
    expect(Math.abs(Math.log(lambda(expected) / lambda(perImage)))).toBeGreaterThan(0.1); // the sample groups matter
    const { report } = await adaptOnnxModel(f.bytes, { x: { data: f.x.data, shape: [...f.x.shape] }, y: { data: f.y.data, shape: [...f.y.shape] } }, { groups: imageGroups, fitBias: false, batchSize: 3 });
    expect(report.result.diagnostics.regularization.selection?.validation).toEqual({ kind: 'grouped-k-fold', groups: 3, folds: 3 });
    expect(lambda(report.result) / lambda(expected)).toBeCloseTo(1, 3);
  });

  it('refuses groups of the wrong length, non-integer ids and classification heads', async () => {
    const f = load('mlp_gemm');
    const data = { x: { data: f.x.data, shape: [...f.x.shape] }, y: { data: f.y.data, shape: [...f.y.shape] } };
    const n = f.x.shape[0]!;
    await expect(adaptOnnxModel(f.bytes, data, { groups: new Array(n - 1).fill(0) })).rejects.toThrow(/adaptOnnxModel: groups has 47 ids but x has 48 samples; pass one group id per sample/);
    await expect(adaptOnnxModel(f.bytes, data, { groups: Array.from({ length: n }, (_, i) => (i === 3 ? 1.5 : i)) })).rejects.toThrow(/groups\[3\] is 1.5; group ids must be integers/);
    await expect(adaptOnnxModel(f.bytes, data, { groups: 7 as never })).rejects.toBeInstanceOf(OptionError);
    const c = load('classifier_softmax');
    const labels = readNpy('onnx/classifier_softmax.labels.npy');
    await expect(adaptOnnxModel(c.bytes, { x: { data: c.x.data, shape: [...c.x.shape] }, y: { data: labels.data, shape: [...labels.shape] } }, { groups: Array.from({ length: c.x.shape[0]! }, (_, i) => i % 4) })).rejects.toThrow(/groups are supported for regression heads/);
  });
});
