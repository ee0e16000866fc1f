/**
 * What adaptOnnxModel refuses, and how it says so: every message names the argument, what was received, what was
 * expected and what to do (docs/style.md §5). Models are the fixtures, edited with onnx-buf where a test needs a
 * defect.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clone, create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { AttributeProtoSchema, ModelProtoSchema, NodeProtoSchema, TensorProtoSchema, type ModelProto } from 'onnx-buf';
import { OptionError, ShapeError } from '../../src/core/index.js';
import {
  AbortError,
  adaptOnnxModel,
  computeOnnxSourceStatistics,
  inspectOnnxModel,
  InvalidModelError,
  UnsupportedModelError,
} from '../../src/adapters/onnx/index.js';
import { FIXTURES, readNpy } from '../helpers/fixtures.js';

function load(name: string) {
  const x = readNpy(`onnx/${name}.x.npy`), y = readNpy(`onnx/${name}.y.npy`);
  return {
    bytes: new Uint8Array(readFileSync(join(FIXTURES, 'onnx', `${name}.onnx`))),
    x: { data: x.data, shape: [...x.shape] },
    y: { data: y.data, shape: [...y.shape] },
  };
}

function edit(bytes: Uint8Array, change: (m: ModelProto) => void): Uint8Array {
  const m = fromBinary(ModelProtoSchema, bytes);
  change(m);
  return toBinary(ModelProtoSchema, m);
}

const gemm = load('mlp_gemm');
const data = { x: gemm.x, y: gemm.y };

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('unreadable models', () => {
  it.each([0.1, 0.5, 0.97])('a file truncated to %p of its length is an InvalidModelError naming the byte count', async (fraction) => {
    const cut = gemm.bytes.slice(0, Math.floor(gemm.bytes.length * fraction));
    const e = await rejection(adaptOnnxModel(cut, data));
    expect(e).toBeInstanceOf(InvalidModelError);
    expect(e.message).toMatch(new RegExp(`adaptOnnxModel: the ${cut.length} bytes .*(truncated or corrupt)`));
    expect(() => inspectOnnxModel(cut)).toThrow(InvalidModelError);
  });

  it('a graph whose only input also has an initializer (nothing to feed) is an InvalidModelError', async () => {
    const frozen = edit(gemm.bytes, (m) => {
      const input = m.graph!.input[0]!;
      m.graph!.initializer.push(create(TensorProtoSchema, { name: input.name, dims: [1n, 8n], dataType: 1, floatData: new Array(8).fill(0) }));
    });
    const e = await rejection(adaptOnnxModel(frozen, data));
    expect(e).toBeInstanceOf(InvalidModelError);
    expect(e.message).toMatch(/adaptOnnxModel: the model has no data inputs .* export the model with its input left as a graph input/);
  });

  it('garbage and non-ONNX files are refused, as are empty buffers and non-bytes', async () => {
    const text = new TextEncoder().encode('this is not an onnx model\n');
    expect((await rejection(adaptOnnxModel(text, data))).message).toMatch(/not a readable ONNX model|hold no ONNX graph/);
    const noise = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251);
    expect(await rejection(adaptOnnxModel(noise, data))).toBeInstanceOf(InvalidModelError);
    expect((await rejection(adaptOnnxModel(new Uint8Array(0), data))).message).toMatch(/modelBytes is empty/);
    expect((await rejection(adaptOnnxModel('model.onnx' as unknown as Uint8Array, data))).message).toMatch(/modelBytes must be a Uint8Array .* received string model\.onnx/);
  });
});

describe('bad data and options', () => {
  it('a missing input name lists the model inputs', async () => {
    const e = await rejection(adaptOnnxModel(gemm.bytes, data, { inputName: 'images' }));
    expect(e).toBeInstanceOf(OptionError);
    expect(e.message).toBe('adaptOnnxModel: the model has no input named "images". Inputs: "x" [N, 8]. Pass { inputName: "<name>" } with one of them.');
  });

  it('x with the wrong feature dimension names the dimension and the declared shape', async () => {
    const e = await rejection(adaptOnnxModel(gemm.bytes, { x: { data: new Float32Array(48 * 7), shape: [48, 7] }, y: gemm.y }));
    expect(e).toBeInstanceOf(ShapeError);
    expect(e.message).toMatch(/x has shape \[48, 7\] but input "x" \[N, 8\]: dimension 1 must be 8, not 7/);
  });

  it('y with the wrong number of outputs names both shapes', async () => {
    const e = await rejection(adaptOnnxModel(gemm.bytes, { x: gemm.x, y: { data: new Float64Array(48 * 2), shape: [48, 2] } }));
    expect(e).toBeInstanceOf(ShapeError);
    expect(e.message).toMatch(/y has shape \[48, 2\] \(2 values per sample\) but the head Gemm "\/head\/Gemm" produces \[N, 3\], 3 values per sample/);
  });

  it('y with another sample count than x', async () => {
    const e = await rejection(adaptOnnxModel(gemm.bytes, { x: gemm.x, y: { data: new Float64Array(47 * 3), shape: [47, 3] } }));
    expect(e.message).toMatch(/y has 47 samples \(shape \[47, 3\]\) but x has 48/);
  });

  it('non-finite targets, mismatched data/shape, and data that is not { x, y }', async () => {
    const y = Float64Array.from(gemm.y.data);
    y[7] = NaN;
    expect((await rejection(adaptOnnxModel(gemm.bytes, { x: gemm.x, y: { data: y, shape: [48, 3] } }))).message).toMatch(/y contains NaN at sample 2, value 1/);
    expect((await rejection(adaptOnnxModel(gemm.bytes, { x: { data: gemm.x.data, shape: [48, 9] }, y: gemm.y }))).message).toMatch(/x has shape \[48, 9\] \(432 values\) but its data holds 384/);
    expect(await rejection(adaptOnnxModel(gemm.bytes, gemm.x as never))).toBeInstanceOf(ShapeError);
  });

  it('unknown and invalid options are named, with a suggestion', async () => {
    expect((await rejection(adaptOnnxModel(gemm.bytes, data, { regularisation: 'none' } as never))).message).toMatch(/unknown option "regularisation" \(did you mean "regularization"\?\)/);
    expect((await rejection(adaptOnnxModel(gemm.bytes, data, { batchSize: 0 }))).message).toMatch(/batchSize must be a positive integer; received number 0/);
    expect((await rejection(adaptOnnxModel(gemm.bytes, data, { regularization: -1 }))).message).toMatch(/regularization must be 'auto', 'none' or a finite number ≥ 0; received -1/);
    expect((await rejection(adaptOnnxModel(gemm.bytes, data, { loss: 'crossentropy' as never }))).message).toMatch(/loss must be one of 'auto', 'mse', 'cross-entropy', 'logit'/);
  });

  it('an aborted signal stops before anything runs', async () => {
    const c = new AbortController();
    c.abort();
    expect(await rejection(adaptOnnxModel(gemm.bytes, data, { signal: c.signal }))).toBeInstanceOf(AbortError);
    expect(await rejection(computeOnnxSourceStatistics(gemm.bytes, gemm.x, { signal: c.signal }))).toBeInstanceOf(AbortError);
  });

  it('a signal fired during feature extraction leaves nothing written', async () => {
    const c = new AbortController();
    const e = await rejection(adaptOnnxModel(gemm.bytes, data, { signal: c.signal, batchSize: 8, onProgress: (p) => p.done >= 16 && c.abort() }));
    expect(e).toBeInstanceOf(AbortError);
    expect(e.message).toMatch(/aborted during feature extraction; nothing was written/);
  });
});

describe('unsupported heads', () => {
  it('a graph output computed by another operator names it and what is supported', async () => {
    // expose the ReLU features as the only output: the output now comes from Relu, not a linear head
    const bytes = edit(gemm.bytes, (m) => {
      m.graph!.output[0]!.name = '/body/body.3/Relu_output_0';
    });
    const e = await rejection(adaptOnnxModel(bytes, data));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e.message).toMatch(/graph output "\/body\/body.3\/Relu_output_0" comes from Relu "\/body\/body.3\/Relu"/);
    expect(e.message).toMatch(/LVA rewrites a last Gemm, MatMul \(\+ Add bias\) or Conv \(group = 1\)/);
    expect(inspectOnnxModel(bytes).problem).toMatch(/comes from Relu/);
  });

  it('classification losses are refused on a regression head, and class labels outside the head are refused', async () => {
    const e = await rejection(adaptOnnxModel(gemm.bytes, data, { loss: 'cross-entropy' }));
    expect(e.message).toMatch(/loss 'cross-entropy' needs a head followed by Softmax or Sigmoid/);
    const f = load('classifier_softmax');
    const bad = await rejection(adaptOnnxModel(f.bytes, { x: f.x, y: { data: new Float32Array(64).fill(7), shape: [64] } }));
    expect(bad.message).toMatch(/y label 0 is 7; class labels must be integers in \[0, 4\)/);
  });

  it('float16 weights are refused with the conversion to do', async () => {
    const bytes = edit(gemm.bytes, (m) => {
      const w = m.graph!.initializer.find((t) => t.name === 'head.weight')!;
      w.dataType = 10;
      w.rawData = new Uint8Array(48 * 2);
    });
    const e = await rejection(adaptOnnxModel(bytes, data));
    expect(e).toBeInstanceOf(UnsupportedModelError);
    expect(e.message).toMatch(/the weight B "head.weight" is float16; expected float32 or float64\. float16 weights are not supported yet: convert the model to float32/);
  });

  it('Gemm with transA = 1 and grouped Conv are refused by name', async () => {
    const transA = edit(gemm.bytes, (m) => {
      m.graph!.node.find((n) => n.name === '/head/Gemm')!.attribute.push(create(AttributeProtoSchema, { name: 'transA', type: 2, i: 1n }));
    });
    expect((await rejection(adaptOnnxModel(transA, data))).message).toMatch(/Gemm "\/head\/Gemm" has transA = 1; only transA = 0 is supported/);
    const conv = load('cnn_conv_head');
    const grouped = edit(conv.bytes, (m) => {
      m.graph!.node.find((n) => n.name === '/head/Conv')!.attribute.find((a) => a.name === 'group')!.i = 2n;
    });
    expect((await rejection(adaptOnnxModel(grouped, { x: conv.x, y: conv.y }))).message).toMatch(/Conv "\/head\/Conv" has group = 2; grouped and depthwise heads/);
  });

  it('a weight shared with another node is refused', async () => {
    const shared = edit(gemm.bytes, (m) => {
      const extra = clone(NodeProtoSchema, m.graph!.node.find((n) => n.name === '/head/Gemm')!);
      extra.name = 'copy';
      extra.output = ['y2'];
      m.graph!.node.push(extra);
    });
    const e = await rejection(adaptOnnxModel(shared, data));
    expect(e.message).toMatch(/the weight B "head.weight" of Gemm "\/head\/Gemm" is used by 2 nodes; rewriting it would change the other uses too/);
  });

  it('an unknown node name lists the head candidates', async () => {
    const e = await rejection(adaptOnnxModel(gemm.bytes, data, { node: 'fc9' }));
    expect(e.message).toBe(
      'adaptOnnxModel: no node named "fc9". Head candidates: "/body/body.0/Gemm" (Gemm), "/body/body.2/Gemm" (Gemm), "/head/Gemm" (Gemm). Pass { node: "<name>" } naming one of them, or omit it to use the head feeding the output.',
    );
    const inner = await rejection(adaptOnnxModel(gemm.bytes, data, { node: '/body/body.2/Gemm' }));
    expect(inner.message).toMatch(/node "\/body\/body.2\/Gemm" \(Gemm\) does not feed a graph output as a head/);
  });
});
